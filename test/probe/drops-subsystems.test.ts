// Drop reasons of a subsystem (the reason's high 16 bits) named from the kernel's BTF, reasons
// grouped in families, and the dominant one. The vmlinux part is checked live against
// bpftool's reading of this kernel's BTF; the module part (openvswitch.ko is absent here)
// against a WRITTEN fixture: test/fixtures/btf/written-openvswitch-drop.c, compiled by clang
// and rewritten as split BTF on this kernel's vmlinux, checked by bpftool too.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { execa } from 'execa';
import { btfEnums } from '../../engine/host/btf.js';
import { packageRoot } from '../../engine/package-info.js';
import { tracepointFormat } from '../../engine/host/tracefs.js';
import type { RawRecord } from '../../engine/probe/types.js';
import { parseReasonNames } from '../../probes/lib/drop-reasons.js';
import { dominantOf, reasonFamily } from '../../probes/lib/drops/families.js';
import { readDrops } from '../../probes/lib/drops/read.js';
import { readSubsystemNames, reasonName, SUBSYS_SHIFT, type SubsystemNames } from '../../probes/lib/drops/subsystems.js';
import { readOvsReasons } from '../../probes/ovs.drops/kernel.js';

const VMLINUX = '/sys/kernel/btf/vmlinux';
const FIXTURE = join(packageRoot(), 'test', 'fixtures', 'btf', 'written-openvswitch-drop.c');

/** bpftool's raw dump: each type's header line and its member lines. */
async function bpftoolRaw(args: string[]): Promise<string> {
  return (await execa('bpftool', [...args, 'format', 'raw'], { stdin: 'ignore', maxBuffer: 1 << 30 })).stdout;
}

/** The enumerators of enum `name` in a bpftool raw dump: name → value. */
function rawEnum(dump: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  const at = dump.search(new RegExp(`^\\[\\d+\\] ENUM '${name}' `, 'm'));
  if (at < 0) return out;
  for (const line of dump.slice(at).split('\n').slice(1)) {
    const m = /^\s+'([^']+)' val=(-?\d+)$/.exec(line);
    if (!m) break;
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/**
 * The standalone BTF `blob` (clang's: ENUM, VAR, DATASEC, INT) rewritten as split BTF on a base
 * of `baseTypes` types and `baseStrLen` string bytes: name offsets and type ids continue the
 * base's, as in a module's file under /sys/kernel/btf.
 */
function asSplit(blob: Buffer, baseTypes: number, baseStrLen: number): Buffer {
  const out = Buffer.from(blob);
  const hdr = out.readUInt32LE(4);
  const types = hdr + out.readUInt32LE(8);
  const end = types + out.readUInt32LE(12);
  const name = (at: number) => {
    const off = out.readUInt32LE(at);
    if (off !== 0) out.writeUInt32LE(off + baseStrLen, at);
  };
  const typeId = (at: number) => out.writeUInt32LE(out.readUInt32LE(at) + baseTypes, at);
  for (let at = types; at < end; ) {
    const info = out.readUInt32LE(at + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    name(at);
    at += 12;
    if (kind === 6) {
      for (let i = 0; i < vlen; i++) name(at + i * 8); // ENUM: name, value
      at += vlen * 8;
    } else if (kind === 14) {
      typeId(at - 4); // VAR: type in the header's size/type word
      at += 4;
    } else if (kind === 15) {
      for (let i = 0; i < vlen; i++) typeId(at + i * 12); // DATASEC: type, offset, size
      at += vlen * 12;
    } else if (kind === 1) {
      at += 4;
    } else {
      throw new Error(`asSplit: BTF kind ${kind} not handled (the fixture holds an enum and a variable)`);
    }
  }
  return out;
}

describe('drops.kernel: subsystem drop reasons, families, dominance', () => {
  let vmlinuxDump = '';
  let subsystems = new Map<string, number>();
  before(async () => {
    vmlinuxDump = await bpftoolRaw(['btf', 'dump', 'file', VMLINUX]);
    subsystems = rawEnum(vmlinuxDump, 'skb_drop_reason_subsys');
  });

  it("names every subsystem of this kernel's vmlinux BTF as bpftool reads it, and numbers reasons whose module BTF is absent", async () => {
    const named = [...subsystems].filter(([n, v]) => v !== 0 && n !== 'SKB_DROP_REASON_SUBSYS_NUM');
    const unknownId = Math.max(0, ...subsystems.values()) + 5;
    const seen = [...named.map(([, v]) => (v << SUBSYS_SHIFT) | 7), (unknownId << SUBSYS_SHIFT) | 1];
    const names = await readSubsystemNames(seen);
    assert.deepEqual(
      names.subsystems,
      Object.fromEntries(named.map(([n, v]) => [String(v), n.replace('SKB_DROP_REASON_SUBSYS_', '').toLowerCase()])),
    );
    assert.ok(names.missing?.some((m) => m.startsWith(`subsystem ${unknownId} is not in enum skb_drop_reason_subsys`)), JSON.stringify(names.missing));
    assert.equal(reasonName((unknownId << SUBSYS_SHIFT) | 1, new Map(), names).name, `SUBSYS${unknownId}_1`);
    for (const [n, v] of named) {
      const sub = n.replace('SKB_DROP_REASON_SUBSYS_', '');
      const module = sub.toLowerCase();
      const value = (v << SUBSYS_SHIFT) | 7;
      const got = reasonName(value, new Map(), names);
      assert.equal(got.subsystem, module);
      const modFile = [module, module.split('_')[0]!].map((m) => `/sys/kernel/btf/${m}`).find((f) => existsSync(f));
      if (modFile === undefined) {
        // No module BTF: the reason is numbered within its subsystem, never REASON_<n>.
        assert.equal(got.name, `${sub}_7`);
        assert.ok(names.missing?.some((m) => m.startsWith(`no BTF of ${module} under /sys/kernel/btf`)), JSON.stringify(names.missing));
      } else {
        // The module is loaded (the kernel lab's openvswitch.ko): its enum, as bpftool reads it.
        const modDump = await bpftoolRaw(['-B', VMLINUX, 'btf', 'dump', 'file', modFile]);
        const byValue = new Map([...rawEnum(modDump, module === 'openvswitch' ? 'ovs_drop_reason' : `${module}_drop_reason`)].map(([k, val]) => [val >>> 0, k]));
        assert.equal(got.name, byValue.get(value) ?? `${sub}_7`);
      }
    }
  });

  it("names a module's reasons from its split BTF (the WRITTEN openvswitch fixture, checked by bpftool)", async (t) => {
    const ovs = subsystems.get('SKB_DROP_REASON_SUBSYS_OPENVSWITCH');
    if (ovs === undefined) {
      // Before 6.4 the kernel has no drop-reason subsystems (Debian 12's 6.1): a reason in OVS's
      // would-be subsystem (3) is named by nobody, and the names say so.
      const none = await readSubsystemNames([(3 << SUBSYS_SHIFT) + 1]);
      assert.deepEqual([none.subsystems, none.reasons], [{}, {}]);
      assert.match(none.missing?.join('\n') ?? '', /^subsystem 3 is not in enum \S+ of \/sys\/kernel\/btf\/vmlinux$/);
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'ebpfnet-btf-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await execa('clang', ['-target', 'bpf', '-g', '-c', `-DSUBSYS_OPENVSWITCH=${ovs}`, FIXTURE, '-o', join(dir, 'fixture.o')], { stdin: 'ignore' });
    await execa('llvm-objcopy', ['--dump-section', `.BTF=${join(dir, 'fixture.btf')}`, join(dir, 'fixture.o')], { stdin: 'ignore' });
    const standalone = await readFile(join(dir, 'fixture.btf'));
    // clang's encoding, read back: the enum as written.
    const own = btfEnums(standalone).find((e) => e.name === 'ovs_drop_reason');
    assert.deepEqual(own?.values.slice(0, 2), [['__OVS_DROP_REASON', ovs << SUBSYS_SHIFT], ['OVS_DROP_LAST_ACTION', (ovs << SUBSYS_SHIFT) + 1]]);

    const base = await readFile(VMLINUX);
    const baseTypes = [...vmlinuxDump.matchAll(/^\[(\d+)\] /gm)].reduce((n, m) => Math.max(n, Number(m[1])), 0);
    const split = asSplit(standalone, baseTypes, base.readUInt32LE(20));
    await symlink(VMLINUX, join(dir, 'vmlinux'));
    await writeFile(join(dir, 'openvswitch'), split);
    // bpftool reads the split fixture on this vmlinux: the rewrite is sound BTF.
    const asBpftool = rawEnum(await bpftoolRaw(['-B', VMLINUX, 'btf', 'dump', 'file', join(dir, 'openvswitch')]), 'ovs_drop_reason');
    assert.equal(asBpftool.get('OVS_DROP_IP_TTL'), (ovs << SUBSYS_SHIFT) + 11);

    const lastAction = (ovs << SUBSYS_SHIFT) + 1;
    const ttl = (ovs << SUBSYS_SHIFT) + 11;
    const unnamed = (ovs << SUBSYS_SHIFT) + 40;
    const names = await readSubsystemNames([lastAction, ttl, unnamed, 12], dir);
    assert.equal(names.subsystems[String(ovs)], 'openvswitch');
    // Every reason of the module's enum, from bpftool's reading, markers left out.
    assert.deepEqual(
      names.reasons,
      Object.fromEntries([...asBpftool].filter(([n]) => !n.startsWith('__') && n !== 'OVS_DROP_MAX').map(([n, v]) => [String(v), n])),
    );
    assert.equal(names.missing, undefined);
    // ovs.drops' kernel session names them alike from the same files.
    assert.deepEqual(await readOvsReasons(dir), names.reasons);
    assert.deepEqual(reasonName(lastAction, new Map(), names), { name: 'OVS_DROP_LAST_ACTION', subsystem: 'openvswitch' });
    assert.deepEqual(reasonName(unnamed, new Map(), names), { name: 'OPENVSWITCH_40', subsystem: 'openvswitch' });
    assert.equal(reasonFamily('OPENVSWITCH_40'), 'ovs');
    assert.equal(reasonFamily('OVS_DROP_IP_TTL', 'openvswitch'), 'ovs');
  });

  it('a replay names subsystem reasons as the session recorded them (a WRITTEN recording), by subsystem and family', () => {
    const ovs = (subsystems.get('SKB_DROP_REASON_SUBSYS_OPENVSWITCH') ?? 2) << SUBSYS_SHIFT;
    const recorded: SubsystemNames = { subsystems: { [String(ovs >>> SUBSYS_SHIFT)]: 'openvswitch' }, reasons: { [String(ovs + 1)]: 'OVS_DROP_LAST_ACTION' } };
    let seq = 0;
    const capture = (name: string, stdout: string): RawRecord => ({ seq: seq++, op: 'capture', name, at: 0, durationMs: 0, stdout, stderr: '', exitCode: 0 });
    const entry = (reason: number, count: number, location: string) => ({ reason, location, ifindex: 7, netns: 1, stackId: -1, flags: 0, count });
    const records = (withNames: boolean): RawRecord[] => [
      capture('reasons', '__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 12, "NETFILTER_DROP" })'),
      capture('attach', JSON.stringify({ loadMs: 1, attach: [{ program: 'drops_raw_tp', method: 'raw_tracepoint', target: 'kfree_skb', attachMs: 1 }], filters: {} })),
      capture(
        'dump',
        JSON.stringify({
          windowMs: 1000,
          seen: 12,
          unkeyed: 0,
          entries: [entry(ovs + 1, 7, '0x1'), entry(12, 3, '0x2'), entry(ovs + 40, 2, '0x3')],
          stacks: {},
          devices: { 7: 'vnet3' },
          hostNetns: 1,
          namespaces: {},
        }),
      ),
      ...(withNames ? [capture('subsystems', JSON.stringify(recorded))] : []),
      capture('symbols', JSON.stringify({ '0x1': 'ovs_execute_actions+0x1', '0x2': 'nft_do_chain+0x2', '0x3': 'do_execute_actions+0x3' })),
    ];
    const d = readDrops(records(true), { host_copies: 'apart' }).data;
    assert.deepEqual(d.byReason, { OVS_DROP_LAST_ACTION: 7, NETFILTER_DROP: 3, OPENVSWITCH_40: 2 });
    assert.deepEqual(d.bySubsystem, { openvswitch: 9, core: 3 });
    assert.deepEqual(d.byFamily, { ovs: 9, netfilter: 3 });
    assert.deepEqual(d.dominant, { reason: 'OVS_DROP_LAST_ACTION', count: 7, share: 0.5833 });
    assert.deepEqual(d.dominantFamily, { family: 'ovs', count: 9, share: 0.75 });
    // A recording without the names (made before they were recorded): numbered, never REASON_<n>.
    const old = readDrops(records(false), {}).data;
    const sub = ovs >>> SUBSYS_SHIFT;
    assert.deepEqual(Object.keys(old.byReason).sort(), ['NETFILTER_DROP', `SUBSYS${sub}_1`, `SUBSYS${sub}_40`].sort());
  });

  it("sorts this kernel's reason names into families by name", async () => {
    const format = await tracepointFormat('skb:kfree_skb');
    assert.ok(format, 'no skb:kfree_skb format');
    const names = [...parseReasonNames(format).values()];
    const family = new Map(names.map((n) => [n, reasonFamily(n)]));
    // Anchors, where this kernel has them: each family's best-known reason.
    const anchors: Record<string, string> = {
      FULL_RING: 'tun', TAP_FILTER: 'tun', NETFILTER_DROP: 'netfilter', QDISC_DROP: 'qdisc', TC_INGRESS: 'qdisc', CAKE_FLOOD: 'qdisc',
      IP_OUTNOROUTES: 'l3', PKT_TOO_BIG: 'l3', NEIGH_FAILED: 'l3', FRAG_REASM_TIMEOUT: 'l3', IP_RPFILTER: 'l3', IPV6_NDISC_NS_OTHERHOST: 'l3',
      NO_SOCKET: 'socket', TCP_CSUM: 'socket', UDP_CSUM: 'socket', SOCKET_RCVBUFF: 'socket',
      OTHERHOST: 'other', NOT_SPECIFIED: 'other', NOMEM: 'other',
    };
    for (const [name, want] of Object.entries(anchors)) if (family.has(name)) assert.equal(family.get(name), want, name);
    for (const n of names) {
      if (/^QDISC_|^FQ_/.test(n)) assert.equal(family.get(n), 'qdisc', n);
      if (/^TCP_/.test(n)) assert.equal(family.get(n), 'socket', n);
      if (/^NEIGH_/.test(n)) assert.equal(family.get(n), 'l3', n);
    }
    assert.deepEqual(dominantOf({}, 0), null);
    assert.deepEqual(dominantOf({ B: 2, A: 2, C: 1 }, 5), { key: 'A', count: 2, share: 0.4 });
  });
});
