// other.ovs-ct-invalid on a real Open vSwitch, on the datapath this kernel serves (`system` where
// openvswitch.ko exists, as in the kernel lab; the userspace `netdev` one here): a bridge of the
// test's own with two namespaces on veth ports, whose IP traffic goes through conntrack
// (`ct(table=1,zone=7)`) and whose table 1 drops `ct_state=+inv+trk`. Inside the window one
// namespace pings the other (valid: tracked, delivered) and sends TCP segments with no flag
// set from a raw socket (invalid for OVS's tracker: an impossible flag combination). The probe
// counts exactly those segments on the +inv rule, names it as the dropping flow, puts them in
// zone 7 and on the sender's port, and the pings are not counted; the evidence replays to the
// same finding. (A bare ACK is not invalid for OVS's userspace tracker: it picks up the
// connection, so the invalid segments carry no flag at all.) On the kernel datapath the kprobes
// on ovs_ct_execute and nf_conntrack_in see the ct() action's verdicts and count the segments
// as invalid; without kprobes they are reported as not attached.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { detectFeatures } from '../../engine/host/features.js';
import { packageRoot } from '../../engine/package-info.js';
import { LiveIO } from '../../engine/probe/live-io.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params, ProbeDefinition, ProbeResult, RawRecord } from '../../engine/probe/types.js';
import { CT_PROGRAMS, parseConntrackKprobes, runConntrackKprobes } from '../../probes/lib/conntrack-kprobes.js';
import { OVS_KERNEL_BUDGET } from '../../probes/lib/ovs.js';
import { connectionsByZone, matchesInvalid, otherOvsCtInvalid, parseCtStats, type OvsCtInvalidData } from '../../probes/other.ovs-ct-invalid/probe.js';
import { canRunOvs, createOvsBridge, startOvs, type OvsBridge, type OvsDaemons } from '../lab/ovs.js';
import { tempBundle } from '../helpers/bundle.js';
import { createVethPair, run, type VethPair } from '../helpers/netns.js';
import { undisturbed, withTrafficInWindow } from '../helpers/probe-window.js';
import { assertReplaysSame } from '../helpers/replay.js';

const cannot = process.geteuid?.() !== 0 ? 'needs root' : await canRunOvs();
const TCP_RAW = join(packageRoot(), 'test', 'fixtures', 'tcp-raw.py');
const INVALID = 7;
const PINGS = 3;
const ZONE = 7;
const INV_MATCH = 'ct_state=+inv+trk';

describe('other.ovs-ct-invalid on an OVS bridge (the datapath this kernel serves)', () => {
  const teardowns: Array<() => Promise<unknown>> = [];
  const host = { after: (fn: () => Promise<unknown>) => void teardowns.push(fn) };
  let daemons: OvsDaemons;
  let br: OvsBridge;
  let a: VethPair;
  let b: VethPair;
  before(async () => {
    assert.equal(cannot, null, `cannot run: ${cannot}`);
    daemons = await startOvs();
    br = await createOvsBridge(host, `ebct${process.pid % 100000}`);
    a = await createVethPair(host, { noIpv6: true });
    b = await createVethPair(host, { noIpv6: true });
    // Both namespaces on the bridge: the host side of each veth is a port (no address of its
    // own), and each namespace reaches the other's address through its veth.
    for (const p of [a, b]) {
      await run(['ip', 'addr', 'flush', 'dev', p.hostDev]);
      await br.addPort(p.hostDev);
    }
    await run(['ip', '-n', a.ns, 'route', 'add', `${b.peerIp}/32`, 'dev', a.peerDev]);
    await run(['ip', '-n', b.ns, 'route', 'add', `${a.peerIp}/32`, 'dev', b.peerDev]);
    await br.delFlows();
    await br.addFlow(`table=0,priority=10,ip,actions=ct(table=1,zone=${ZONE})`);
    await br.addFlow('table=0,priority=0,actions=NORMAL');
    await br.addFlow(`table=1,priority=100,${INV_MATCH},actions=drop`);
    await br.addFlow(`table=1,priority=50,ct_state=+new+trk,ip,actions=ct(commit,zone=${ZONE}),NORMAL`);
    await br.addFlow('table=1,priority=10,ct_state=+trk,actions=NORMAL');
    const ping = await run(['ip', 'netns', 'exec', a.ns, 'ping', '-n', '-q', '-c', '1', '-W', '2', b.peerIp]);
    assert.match(ping.stdout, / 1 received/);
  });
  after(async () => {
    for (const fn of teardowns.reverse()) await fn().catch(() => undefined);
    await daemons?.stop();
  });

  it(`${INVALID} TCP segments without flags: counted on the +inv rule in zone ${ZONE}, named as the dropping flow; ${PINGS} pings not counted; replays`, async (t) => {
    const params = { bridge: br.name, duration: '1500ms' };
    const { f, bundle } = await undisturbed(t, async () => {
      const bundle = await tempBundle(t, 'ebpfnet-ovs-ct-');
      const def = withTrafficInWindow(otherOvsCtInvalid, async () => {
        const ping = await run(['ip', 'netns', 'exec', a.ns, 'ping', '-n', '-q', '-c', String(PINGS), '-i', '0.05', '-W', '2', b.peerIp]);
        assert.match(ping.stdout, new RegExp(` ${PINGS} received`), 'valid traffic is delivered');
        // 100 ms apart: on the kernel datapath a segment sent while the first one's upcalls
        // (before and after the ct() recirculation) are still on their way would miss too.
        const sent = await execa('ip', ['netns', 'exec', a.ns, 'python3', TCP_RAW, a.peerIp, b.peerIp, '7777', String(INVALID), '-', '100']);
        assert.equal(sent.stdout.trim(), String(INVALID));
      });
      const request = { step: 's', alias: 'ctinv', probe: otherOvsCtInvalid.id, params: params as Params };
      return { f: await runProbe(def as ProbeDefinition, request, bundle.opts('live')), bundle };
    });
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as OvsCtInvalidData;
    t.diagnostic(f.summary);
    t.diagnostic(JSON.stringify({ rules: data.rules, megaflows: data.megaflows, counters: data.counters, connections: data.connections, zones: data.connectionsByZone, notes: data.notes }));

    assert.deepEqual(data.datapath, [br.datapath]);
    assert.deepEqual(data.bridges, [br.name]);
    assert.equal(data.invalid, INVALID, 'exactly the segments sent; the pings were valid');
    assert.deepEqual(data.byBridge, { [br.name]: INVALID });
    assert.deepEqual(data.byZone, { [String(ZONE)]: INVALID });
    assert.deepEqual(data.droppingRule, { bridge: br.name, table: 1, priority: 100, match: INV_MATCH, actions: 'drop', packets: INVALID, drops: true, zone: ZONE });
    assert.equal(data.rules.length, 1);
    // (ovs-vswitchd's conntrack_invalid_tcp_flags counts them too, but folds them into its
    // totals seconds later: over this window it is not asserted.)
    // The datapath flow: from the sender's port, after ct() in zone 7, matching +inv, dropping.
    // Installed by the first segment's upcall, it counts the others.
    const mf = data.megaflows.find((m) => m.drop && m.inPort === a.hostDev);
    assert.ok(mf, JSON.stringify(data.megaflows));
    assert.match(mf.ctState, /\+inv/);
    // The zone is known where the flow matches on it (the userspace datapath's flows do; the
    // kernel's leave it out when no rule matches ct_zone).
    assert.equal(mf.zone, /ct_zone\(/.test(mf.key) ? ZONE : null, mf.key);
    assert.equal(mf.packets + (mf.new ? 1 : 0), INVALID, `megaflow packets ${mf.packets} (new: ${mf.new})`);
    // The pings' connection is in zone 7 at the end; no invalid segment made one.
    assert.ok((data.connectionsByZone[String(ZONE)] ?? 0) >= 1, JSON.stringify(data.connectionsByZone));
    assert.equal(data.connections?.byProtocol.TCP ?? 0, 0, 'no TCP connection was made');
    if (br.datapath === 'netdev') assert.equal(data.kernel, null, 'no kernel datapath: no kprobes');
    else {
      // The ct() action ran in the kernel for every segment and nf_conntrack_in called them invalid.
      const k = data.kernel;
      assert.ok(k?.attachable, JSON.stringify(k));
      assert.equal(k.ovs.byVerdict.invalid, INVALID, JSON.stringify(k.ovs));
    }
    assert.equal(f.severity, 'warning');
    assert.match(f.summary, new RegExp(`^${INVALID} invalid \\(ct_state=\\+inv\\) packets in [\\d.]+m?s \\(${br.name}\\): ${INVALID} dropped by table=1,priority=100,ct_state=\\+inv\\+trk on ${br.name}`));

    await assertReplaysSame(otherOvsCtInvalid as ProbeDefinition, params, bundle, 'live', f);
  });

  it('valid traffic only: nothing counted; a bridge that does not exist: a clear error', async (t) => {
    const bundle = await tempBundle(t, 'ebpfnet-ovs-ct-');
    const def = withTrafficInWindow(otherOvsCtInvalid, async () => {
      await run(['ip', 'netns', 'exec', a.ns, 'ping', '-n', '-q', '-c', String(PINGS), '-i', '0.05', '-W', '2', b.peerIp]);
    });
    const f = await runProbe(def as ProbeDefinition, { step: 's', alias: 'ctinv', probe: otherOvsCtInvalid.id, params: { bridge: br.name, duration: '500ms' } }, bundle.opts('valid'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as OvsCtInvalidData;
    assert.equal(data.invalid, 0);
    assert.equal(data.droppingRule, null);
    assert.equal(data.rules[0]?.packets, 0);
    assert.equal(f.severity, 'info');
    assert.match(f.summary, /^no ct_state=\+inv packets in [\d.]+m?s \(ebct\d+\) \(1 \+inv rule\)/);
    const missing = await runProbe(otherOvsCtInvalid as ProbeDefinition, { step: 's', alias: 'ctinv', probe: otherOvsCtInvalid.id, params: { bridge: 'ebct-nosuch', duration: '200ms' } }, bundle.opts('missing'));
    assert.equal(missing.status, 'error');
    assert.match(missing.reason ?? '', /no OVS bridge ebct-nosuch/);
  });
});

describe('other.ovs-ct-invalid parsers and kernel-datapath programs', () => {
  it('tells +inv matches, reads ct-stats-show and dump-conntrack', () => {
    assert.equal(matchesInvalid('ct_state=+inv+trk'), true);
    assert.equal(matchesInvalid('tcp,ct_state=+trk+inv,ct_zone=3'), true);
    assert.equal(matchesInvalid('ct_state=0x10/0x10'), true);
    assert.equal(matchesInvalid('ct_state=0x10/0x20'), false);
    assert.equal(matchesInvalid('ct_state=-inv+trk'), false);
    assert.equal(matchesInvalid('ct_state=+new+trk,ip'), false);
    const stats = parseCtStats('Connections Stats:\n    Total: 6\n  TCP: 5\n    Conn per TCP states:\n\t  [TIME_WAIT]=4\n\t  [ESTABLISHED]=1\n  ICMP: 1\n');
    assert.deepEqual(stats, { total: 6, byProtocol: { TCP: 5, ICMP: 1 }, tcpStates: { TIME_WAIT: 4, ESTABLISHED: 1 } });
    const zones = connectionsByZone([
      'tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=1,dport=2),reply=(src=10.0.0.2,dst=10.0.0.1,sport=2,dport=1),zone=7,protoinfo=(state=TIME_WAIT)',
      'icmp,orig=(src=10.0.0.1,dst=10.0.0.2,id=1,type=8,code=0),reply=(src=10.0.0.2,dst=10.0.0.1,id=1,type=0,code=0)',
    ].join('\n'));
    assert.deepEqual(zones, { '7': 1, '0': 1 });
  });

  it('a kernel-datapath window written by hand (fixture, not recorded; the real one runs in the kernel lab): rule counts, zone, and the ct() verdicts of the kprobes', () => {
    const dp = 'system@ovs-system';
    const rules = (inv: number) => [
      'OFPST_FLOW reply (OF1.5) (xid=0x2):',
      ` cookie=0x0, duration=9.1s, table=0, n_packets=${40 + inv}, n_bytes=4000, priority=10,ip actions=ct(table=1,zone=3)`,
      ` cookie=0x0, duration=9.1s, table=1, n_packets=${inv}, n_bytes=${inv * 54}, priority=100,ct_state=+inv+trk actions=drop`,
      ' cookie=0x0, duration=9.1s, table=1, n_packets=40, n_bytes=3920, priority=10,ct_state=+trk actions=NORMAL',
    ].join('\n');
    const exec = (seq: number, name: string, stdout: string): RawRecord => ({ seq, op: 'exec', name, at: 1_000 * seq, durationMs: 1, stdout, stderr: '', exitCode: 0 });
    const kprobes = (JSON.parse(readFileSync(join(packageRoot(), 'test', 'fixtures', 'conntrack-kprobes.json'), 'utf8')) as RawRecord[]).map((r, i) => ({ ...r, seq: 10 + i }));
    const records: RawRecord[] = [
      exec(1, 'topology', `${dp}: hit:50 missed:2\n  br-vm:\n    br-vm 65534/0: (internal)\n    vnet0 1/1: (system)\n    vnet1 2/2: (system)\n`),
      ...kprobes.filter((r) => r.name === 'kprobes-attach'),
      exec(2, 'start-rules-br-vm', rules(5)),
      exec(3, 'start-coverage', ''),
      exec(4, 'end-rules-br-vm', rules(12)),
      exec(5, 'end-coverage', ''),
      exec(6, `end-conntrack-${dp}`, 'tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=1,dport=2),reply=(src=10.0.0.2,dst=10.0.0.1,sport=2,dport=1),zone=3,protoinfo=(state=ESTABLISHED)\n'),
      ...kprobes.filter((r) => r.name !== 'kprobes-attach'),
    ];
    const f = otherOvsCtInvalid.parse(records, { bridge: 'br-vm', duration: 2000, top: 10, kernel: true }) as ProbeResult<OvsCtInvalidData>;
    const data = f.data;
    assert.deepEqual(data.datapath, ['system']);
    assert.equal(data.invalid, 7);
    assert.deepEqual(data.byZone, { '3': 7 });
    assert.equal(data.droppingRule?.match, 'ct_state=+inv+trk');
    assert.deepEqual(data.connectionsByZone, { '3': 1 });
    // The kprobes: the ct() action's calls and what nf_conntrack_in decided inside it.
    assert.equal(data.kernel?.attachable, true);
    assert.equal(data.kernel?.ovs.calls, 28);
    assert.equal(data.kernel?.ovs.byVerdict.invalid, 7);
    assert.deepEqual(data.kernel?.ovs.errors, { '-12': 1 });
    assert.equal(f.summary, '7 invalid (ct_state=+inv) packets in 2s (br-vm): 7 dropped by table=1,priority=100,ct_state=+inv+trk on br-vm');
  });

  it('a kernel-datapath session on this kernel: the kprobes on ovs_ct_execute and nf_conntrack_in attach where kprobes exist, else are reported as not attached', async (t) => {
    assert.equal(process.geteuid?.(), 0, 'needs root');
    const io = new LiveIO(new AbortController().signal, OVS_KERNEL_BUDGET);
    await runConntrackKprobes(io, 'kprobes-', {}, CT_PROGRAMS, (windowIO) => windowIO.sleep(100));
    await io.settled();
    const k = parseConntrackKprobes(io.records(), 'kprobes-');
    assert.ok(k);
    t.diagnostic(JSON.stringify({ attached: k.attached, failed: k.failed }));
    if ((await detectFeatures()).kprobes.present === false) {
      assert.equal(k.attachable, false);
      assert.deepEqual(k.attached, []);
      for (const p of CT_PROGRAMS) assert.ok(k.failed.some((x) => x.startsWith(`${p.kind} ${p.target}: `)), `${p.kind} ${p.target}: ${k.failed.join('; ')}`);
      assert.equal(k.ovs.calls, 0);
    } else {
      // The netfilter programs attach wherever kprobes exist; the OVS ones need openvswitch.ko.
      const ovsLoaded = existsSync('/sys/module/openvswitch');
      for (const p of CT_PROGRAMS.filter((p) => ovsLoaded || !p.target.startsWith('ovs_'))) assert.ok(k.attached.includes(`${p.kind} ${p.target}`), `${p.kind} ${p.target} attached: ${k.failed.join('; ')}`);
    }
  });
});
