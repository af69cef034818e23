// drops.kernel scoped to one VM, on a hypervisor's bridge in miniature (test/helpers/vm-bridge.ts):
// VM A's fault is counted exactly (against the counter of the rule, qdisc or tap that dropped),
// VM B's scoped total stays 0, and the guests' multicast/ND noise the host's own stack discards
// lands in hostCopies. Real programs, real frames, in namespaces this process made.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa, type ResultPromise } from 'execa';
import { packageRoot } from '../../engine/package-info.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params, ProbeDefinition, ProbeIO } from '../../engine/probe/types.js';
import { dropsKernel, type DropsData } from '../../probes/drops.kernel/probe.js';
import { resolveScope, SCOPE_LIMITS } from '../../probes/lib/drops/scope.js';
import { tempBundle } from '../helpers/bundle.js';
import { beforeFirstSleep } from '../helpers/probe-window.js';
import { canBuildTopologies, createVethPair, deviceCounter, run } from '../helpers/netns.js';
import { createVmBridge, labAddresses, nftCounted, type VmBridge } from '../helpers/vm-bridge.js';
import { canRunOvs, type OvsBridge } from '../lab/ovs.js';
import { newLabName } from '../lab/names.js';
import { assertDropsFlavoursAttach, NFT_PLACE, REASON_NAMES, REASONED } from '../helpers/drops-kernel-object.js';

const cannot = await canBuildTopologies();
const noOvs = await canRunOvs();
const TAP_HOLDER = join(packageRoot(), 'test', 'fixtures', 'tap-holder.py');
const PACKET_READER = join(packageRoot(), 'test', 'fixtures', 'packet-reader.py');
const SEND_FRAMES = join(packageRoot(), 'test', 'fixtures', 'send-frames.py');
const TABLE = `ebpfnet_scope_${process.pid}`;

/**
 * Each of `defs` (sessions of one window) runs `traffic` once all of them have attached (their
 * first wait), then waits its full duration: every packet lies inside every window.
 */
function sharedWindow<D extends Record<string, unknown>>(defs: Array<ProbeDefinition<D>>, traffic: () => Promise<void>): Array<ProbeDefinition<D>> {
  let waiting = 0;
  let release!: () => void;
  const allAttached = new Promise<void>((resolve) => (release = resolve));
  let sent: Promise<void> | undefined;
  const attached = async () => {
    if (++waiting === defs.length) {
      sent = traffic();
      release();
    }
    await allAttached;
    await sent;
  };
  return defs.map((def) => ({ ...def, collect: (params: Params, io: ProbeIO) => def.collect(params, beforeFirstSleep(io, attached)) }));
}

type Scoped = { name: string; params: Record<string, unknown> };

/** Runs one drops.kernel session per `runs` over the same window around `traffic`. */
async function scopedRuns(b: Awaited<ReturnType<typeof tempBundle>>, runs: Scoped[], traffic: () => Promise<void>): Promise<Finding[]> {
  const defs = sharedWindow(runs.map(() => dropsKernel), traffic);
  const findings = await Promise.all(
    runs.map((r, i) =>
      runProbe(defs[i]! as ProbeDefinition, { step: 'drops', alias: r.name, probe: 'drops.kernel', params: { duration: '1500ms', stacks: false, ...r.params } as Params }, b.opts(r.name)),
    ),
  );
  for (const f of findings) assert.equal(f.status, 'ok', `${f.alias}: ${f.reason}`);
  return findings;
}

const dataOf = (f: Finding) => f.data as DropsData;
const describeData = (d: DropsData) => JSON.stringify({ total: d.total, byReason: d.byReason, byDevice: d.byDevice, byLocation: d.byLocation, hostCopies: d.hostCopies, scope: d.scope });

async function bridgeTable(chain: string, hook: string, rule: string): Promise<() => Promise<number>> {
  await run(['nft', 'add', 'table', 'bridge', TABLE]);
  await run(['nft', 'add', 'chain', 'bridge', TABLE, chain, `{ type filter hook ${hook} priority 0; }`]);
  await run(['nft', 'add', 'rule', 'bridge', TABLE, chain, ...rule.split(' ')]);
  return () => nftCounted('bridge', TABLE);
}

async function dropTable(): Promise<void> {
  await execa('nft', ['delete', 'table', 'bridge', TABLE], { reject: false, stdin: 'ignore' });
  await execa('nft', ['delete', 'table', 'netdev', TABLE], { reject: false, stdin: 'ignore' });
}

/** Both guests' noise, then what `fault` sends: the traffic of one window. */
const withNoise = (lab: VmBridge, fault: () => Promise<void>) => async () => {
  await Promise.all([lab.noise(lab.a), lab.noise(lab.b)]);
  await fault();
};

/** The suite's lab: built before its tests, torn down (with the test tables) after them. */
function suiteLab(kind: 'linux' | 'ovs'): () => VmBridge {
  let lab: VmBridge | undefined;
  before(async () => {
    assert.equal(cannot, null, `cannot build test topologies: ${cannot}`);
    if (kind === 'ovs') assert.equal(noOvs, null, `cannot run Open vSwitch: ${noOvs}`);
    // A suite's before hook has no `after`: the suite's own after() tears the lab down.
    lab = await createVmBridge({ after: () => undefined }, kind);
  });
  after(async () => {
    await dropTable();
    await lab?.teardown();
  });
  return () => lab!;
}

/** An nftables netdev table with one chain on `hook` of `dev` and one rule; returns what the rule counted. */
async function netdevTable(hook: 'ingress' | 'egress', dev: string, rule: string): Promise<() => Promise<number>> {
  await run(['nft', 'add', 'table', 'netdev', TABLE]);
  await run(['nft', 'add', 'chain', 'netdev', TABLE, hook, `{ type filter hook ${hook} device ${dev} priority 0; }`]);
  await run(['nft', 'add', 'rule', 'netdev', TABLE, hook, ...rule.split(' ')]);
  return () => nftCounted('netdev', TABLE);
}

/**
 * A qdisc on `dev` that drops every IPv4 datagram to `dport` and lets the rest out: htb sends
 * them to class 1:30, whose pfifo holds none. Returns what that pfifo counted dropped.
 */
async function droppingClass(t: { after(fn: () => unknown): void }, dev: string, dport: number): Promise<() => Promise<number>> {
  t.after(() => execa('tc', ['qdisc', 'del', 'dev', dev, 'root'], { reject: false, stdin: 'ignore' }));
  await run(['tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb']);
  await run(['tc', 'class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:30', 'htb', 'rate', '100mbit']);
  await run(['tc', 'qdisc', 'add', 'dev', dev, 'parent', '1:30', 'handle', '30:', 'pfifo', 'limit', '0']);
  await run(['tc', 'filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'ip', 'u32', 'match', 'ip', 'dport', String(dport), '0xffff', 'flowid', '1:30']);
  return async () => {
    const list = JSON.parse((await run(['tc', '-s', '-j', 'qdisc', 'show', 'dev', dev])).stdout) as Array<{ handle: string; drops: number }>;
    return list.find((q) => q.handle === '30:')?.drops ?? Number.NaN;
  };
}

describe('drops.kernel scoped to one VM, Linux bridge', () => {
  const labOf = suiteLab('linux');
  let lab: VmBridge;
  before(() => (lab = labOf()));

  it("counts A's loss to a bridge rule exactly, none for B, and the guests' noise as host copies; a replay finds the same", async (t) => {
    t.after(dropTable);
    const counted = await bridgeTable('forward', 'forward', `ether daddr ${lab.a.mac} udp dport 7777 counter drop`);
    const b = await tempBundle(t, 'ebpfnet-drops-scope-');
    const N = 25;
    const [a, bb, aCounting] = await scopedRuns(
      b,
      [
        { name: 'a', params: lab.scopeOf(lab.a) },
        { name: 'b', params: lab.scopeOf(lab.b) },
        { name: 'a-counting', params: { ...lab.scopeOf(lab.a), host_copies: 'count' } },
      ],
      withNoise(lab, () => lab.send(lab.peer, lab.a.ip4, 7777, N)),
    );
    const dropped = await counted();
    assert.equal(dropped, N, 'the rule dropped every datagram');
    const da = dataOf(a!);
    assert.equal(da.total, dropped, describeData(da));
    assert.deepEqual(da.byReason, { NETFILTER_DROP: dropped });
    assert.deepEqual(da.byDevice, { [lab.a.port]: dropped });
    assert.deepEqual(da.dominant, { reason: 'NETFILTER_DROP', count: dropped, share: 1 });
    assert.deepEqual(da.dominantFamily, { family: 'netfilter', count: dropped, share: 1 });
    assert.deepEqual(da.bySubsystem, { core: dropped });
    assert.deepEqual(da.scope, { macs: [lab.a.mac], ips: [lab.a.ip4, lab.a.ip6], devs: [lab.a.port], matchedBy: { dev: dropped, mac: 0, ip: 0 } });
    // The noise: the bridge's local copies of the guests' multicast, which the host's IPv6 stack
    // (link-local on the bridge) discards, and the other guests' copies.
    assert.ok(da.hostCopies.total > 0, describeData(da));
    assert.ok((da.hostCopies.byDevice[lab.bridge.name] ?? 0) > 0, `no host copy on the bridge device: ${describeData(da)}`);
    assert.match(a!.summary, new RegExp(`^${dropped} of the VM's drops in [0-9.]+s: NETFILTER_DROP ${dropped} at ${NFT_PLACE}; ${da.hostCopies.total} host copies`));

    const db = dataOf(bb!);
    assert.equal(db.total, 0, describeData(db));
    assert.equal(db.dominant, null);
    assert.ok(db.hostCopies.total > 0, describeData(db));
    assert.equal(bb!.severity, 'info');

    // Counted as loss, the same session's host copies would have blamed A for the noise. The
    // sessions' windows close a few ms apart and the guests' kernels repeat MLD reports on their
    // own timers, so the two counts of the noise may differ by a report or two: compare where
    // it lands, and that most of it does.
    const dc = dataOf(aCounting!);
    const both = `${describeData(dc)} vs ${describeData(da)}`;
    assert.equal(dc.hostCopies.total, 0, both);
    assert.equal(dc.byReason.NETFILTER_DROP, dropped, both);
    const noiseAsLoss = dc.total - dropped;
    assert.ok(noiseAsLoss >= da.hostCopies.total * 0.8 && noiseAsLoss <= da.hostCopies.total * 1.2 + 2, both);
    for (const dev of Object.keys(dc.byDevice).filter((d) => d !== lab.a.port)) assert.ok(dev in da.hostCopies.byDevice, `${dev} is no host-copy device: ${both}`);

    const r = await runProbe(dropsKernel, { step: 'drops', alias: 'a', probe: 'drops.kernel', params: a!.params }, b.opts('replay', { replayFrom: b.dir('a') }));
    assert.equal(r.status, 'ok', r.reason);
    assert.equal(r.driver, 'replay');
    assert.deepEqual(r.data, a!.data);
    assert.equal(r.summary, a!.summary);
  });

  it("counts a qdisc's drops on A's port as A's loss (QDISC_DROP, the qdisc's own count)", async (t) => {
    const port = lab.a.port;
    const qdiscDrops = await droppingClass(t, port, 7778);
    const b = await tempBundle(t, 'ebpfnet-drops-qdisc-');
    const N = 20;
    const [a, bb] = await scopedRuns(b, [{ name: 'a', params: lab.scopeOf(lab.a) }, { name: 'b', params: lab.scopeOf(lab.b) }], withNoise(lab, () => lab.send(lab.peer, lab.a.ip4, 7778, N)));
    const dropped = await qdiscDrops();
    assert.equal(dropped, N);
    const da = dataOf(a!);
    assert.equal(da.total, dropped, describeData(da));
    assert.ok((da.byReason.QDISC_DROP ?? 0) === dropped, describeData(da));
    assert.deepEqual(da.dominantFamily, { family: 'qdisc', count: dropped, share: 1 });
    assert.equal(dataOf(bb!).total, 0, describeData(dataOf(bb!)));
  });

  it("counts a bridge port's ingress rule as A's loss, though A's frames for another MAC are dropped on their way in", async (t) => {
    t.after(dropTable);
    const counted = await netdevTable('ingress', lab.a.port, 'udp dport 7779 counter drop');
    const b = await tempBundle(t, 'ebpfnet-drops-ingress-');
    const N = 20;
    const [a, bb] = await scopedRuns(b, [{ name: 'a', params: lab.scopeOf(lab.a) }, { name: 'b', params: lab.scopeOf(lab.b) }], withNoise(lab, () => lab.send(lab.a, lab.peer.ip4, 7779, N)));
    const dropped = await counted();
    assert.equal(dropped, N);
    const da = dataOf(a!);
    assert.equal(da.total, dropped, describeData(da));
    assert.deepEqual(da.byReason, { NETFILTER_DROP: dropped });
    assert.equal(da.hostCopies.byDevice[lab.a.port] ?? 0, 0, `A's port is a bridge port: nothing there is a host copy: ${describeData(da)}`);
    assert.equal(dataOf(bb!).total, 0, describeData(dataOf(bb!)));
  });

  it("counts a full tun ring at a VM's tap as its loss (FULL_RING, the tap's TX dropped count)", async (t) => {
    const names = newLabName();
    const tap = names.dev('t');
    const { mac, ip4: ip } = labAddresses(4);
    let holder: ResultPromise | undefined;
    t.after(async () => {
      holder?.kill('SIGKILL');
      await holder?.catch(() => undefined);
      await execa('ip', ['link', 'del', tap], { reject: false, stdin: 'ignore' });
    });
    // A host without udev (the kernel lab) loads tun only when asked.
    if (!existsSync('/sys/module/tun')) await execa('modprobe', ['-q', 'tun'], { reject: false, stdin: 'ignore' });
    await run(['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await run(['ip', 'link', 'set', tap, 'txqueuelen', '16']);
    await lab.bridge.addPort(tap);
    // Only its own unicast reaches the tap: the other guests' multicast would fill the ring first.
    await run(['bridge', 'link', 'set', 'dev', tap, 'flood', 'off', 'mcast_flood', 'off', 'bcast_flood', 'off']);
    await run(['bridge', 'fdb', 'replace', mac, 'dev', tap, 'master', 'static']);
    await lab.peer.inNs(['ip', 'neigh', 'replace', ip, 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
    holder = execa('python3', [TAP_HOLDER, tap], { stdin: 'ignore', reject: false });
    await new Promise<void>((resolve, reject) => {
      holder!.stdout!.once('data', () => resolve());
      holder!.once('exit', (code) => reject(new Error(`tap-holder.py exited (${code})`)));
    });
    const txDropped = () => deviceCounter(tap, 'tx_dropped');
    const before0 = await txDropped();
    const b = await tempBundle(t, 'ebpfnet-drops-ring-');
    const N = 60;
    const [c] = await scopedRuns(b, [{ name: 'c', params: { vm_macs: [mac], vm_ips: [ip], vm_devs: [tap] } }], withNoise(lab, () => lab.send(lab.peer, ip, 7780, N, 1)));
    const dropped = (await txDropped()) - before0;
    // The ring holds about txqueuelen frames; the rest were dropped.
    assert.ok(dropped > 0 && dropped < N, `tx_dropped rose by ${dropped} of ${N}`);
    const dc = dataOf(c!);
    assert.equal(dc.total, dropped, describeData(dc));
    assert.deepEqual(dc.byReason, { FULL_RING: dropped });
    assert.deepEqual(dc.dominantFamily, { family: 'tun', count: dropped, share: 1 });
    assert.equal(dc.hostCopies.total, 0, describeData(dc));
  });

  it('filters by IPv6 address (ip, src_ip, dst_ip) and scopes by IPv6 alone', async (t) => {
    t.after(dropTable);
    const counted = await bridgeTable('forward', 'forward', `ip6 daddr ${lab.a.ip6} udp dport 7781 counter drop`);
    const b = await tempBundle(t, 'ebpfnet-drops-ipv6-');
    const N = 15;
    const found = await scopedRuns(
      b,
      [
        { name: 'ip', params: { ip: lab.a.ip6 } },
        { name: 'dst', params: { dst_ip: lab.a.ip6, protocol: 'udp', port: 7781 } },
        { name: 'src', params: { src_ip: lab.peer.ip6 } },
        { name: 'wrong-src', params: { src_ip: lab.a.ip6 } },
        { name: 'v4', params: { ip: lab.a.ip4 } },
        { name: 'scope6', params: { vm_ips: [lab.a.ip6] } },
      ],
      withNoise(lab, () => lab.send(lab.peer, lab.a.ip6, 7781, N)),
    );
    const dropped = await counted();
    assert.equal(dropped, N);
    const [ip, dst, src, wrongSrc, v4, scope6] = found.map(dataOf);
    for (const [what, d] of [['ip', ip], ['dst_ip', dst], ['src_ip', src], ['vm_ips', scope6]] as const) {
      assert.equal(d!.byReason.NETFILTER_DROP, dropped, `${what}: ${describeData(d!)}`);
      assert.equal(d!.total, dropped, `${what}: ${describeData(d!)}`);
    }
    assert.equal(wrongSrc!.total, 0, describeData(wrongSrc!));
    assert.equal(v4!.total, 0, describeData(v4!));
    assert.deepEqual(scope6!.scope?.matchedBy, { dev: 0, mac: 0, ip: dropped });
  });
});

describe('drops.kernel scoped to one VM, Open vSwitch bridge (on the datapath this kernel serves)', () => {
  const labOf = suiteLab('ovs');
  let lab: VmBridge;
  before(() => (lab = labOf()));

  it("counts A's loss at its port exactly, and the copies the switch hands the host as host copies (each port's OTHERHOST on the userspace datapath, the floods to the bridge's own port, down, on the kernel's); none for B", async (t) => {
    const { datapath } = lab.bridge as OvsBridge;
    // As a hypervisor's integration bridge: its own port down (the kernel datapath frees its copies there).
    await run(['ip', 'link', 'set', lab.bridge.name, 'down']);
    // The switch sends to A's port with AF_PACKET, through the port's qdisc, which drops on the
    // way out. (A qdisc, not nftables' netdev egress hook: kernels before 5.16 have none.)
    const counted = await droppingClass(t, lab.a.port, 7777);
    const b = await tempBundle(t, 'ebpfnet-drops-ovs-');
    const N = 20;
    // Paced: OVS stops sending a batch at the first datagram the qdisc drops.
    const [a, bb] = await scopedRuns(b, [{ name: 'a', params: lab.scopeOf(lab.a) }, { name: 'b', params: lab.scopeOf(lab.b) }], withNoise(lab, () => lab.send(lab.peer, lab.a.ip4, 7777, N, 10)));
    const dropped = await counted();
    assert.ok(dropped > 0, "A's port's qdisc dropped");
    const da = dataOf(a!);
    assert.equal(da.total, dropped, describeData(da));
    assert.deepEqual(da.byReason, { QDISC_DROP: dropped });
    if (datapath === 'netdev') {
      // Every datagram to A also went up the peer's port's stack (read with AF_PACKET), which
      // discarded it (another MAC).
      assert.ok((da.hostCopies.byReason.OTHERHOST ?? 0) >= N, describeData(da));
      assert.ok((da.hostCopies.byDevice[lab.peer.port] ?? 0) >= N, describeData(da));
    } else {
      // The kernel datapath hands the ports' stacks nothing. It floods A's multicast and ND to
      // the bridge's own port, down, and frees them: on their way out while the device is still
      // A's port (do_output: no carrier, 6.1), or at the bridge's device (internal_dev_recv: not
      // up, 5.10). Host copies, not A's loss (byReason above holds the qdisc's drops alone).
      const atDownPort = (da.hostCopies.byDevice[lab.a.port] ?? 0) + (da.hostCopies.byDevice[lab.bridge.name] ?? 0);
      assert.ok(atDownPort > 0, describeData(da));
      assert.equal(da.hostCopies.byDevice[lab.peer.port] ?? 0, 0, describeData(da));
    }
    const db = dataOf(bb!);
    assert.equal(db.total, 0, describeData(db));
    assert.ok(db.hostCopies.total > 0, describeData(db));
  });
});

describe("drops.kernel: a userspace switch's own read of its port", () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('counts the frames a full AF_PACKET reader (the switch) dropped as loss, not as host copies', async (t) => {
    // A port outside any bridge whose only reader is a packet socket that never drains, as a
    // userspace switch reads its ports; frames of an EtherType the host stack has no handler
    // for, so the reader holds the last reference and its drop is the frame's end.
    const pair = await createVethPair(t, { noIpv6: true });
    const reader = execa('python3', [PACKET_READER, pair.hostDev], { stdin: 'pipe', reject: false });
    t.after(async () => {
      reader.kill('SIGKILL');
      await reader.catch(() => undefined);
    });
    const lines: string[] = [];
    let waiting: ((l: string) => void) | undefined;
    reader.stdout!.on('data', (d: Buffer) => {
      lines.push(...String(d).trim().split('\n'));
      if (waiting && lines.length > 0) waiting(lines.shift()!);
    });
    const line = () => new Promise<string>((resolve) => (lines.length > 0 ? resolve(lines.shift()!) : (waiting = resolve)));
    assert.equal(await line(), 'bound');
    const vmMac = labAddresses(5).mac;
    const b = await tempBundle(t, 'ebpfnet-drops-afpacket-');
    const N = 50;
    let stats = { packets: 0, drops: 0 };
    const [found] = await scopedRuns(b, [{ name: 'vm', params: { vm_macs: [vmMac] } }], async () => {
      reader.stdin!.write('\n');
      await line(); // counts from here
      await pair.inNs(['python3', SEND_FRAMES, pair.peerDev, vmMac, String(N)]);
      reader.stdin!.write('\n');
      stats = JSON.parse(await line()) as typeof stats;
    });
    assert.ok(stats.drops > 0 && stats.packets === N, `the reader: ${JSON.stringify(stats)}`);
    const d = dataOf(found!);
    // Named PACKET_SOCK_ERROR by kernels that have it (6.4+), NOT_SPECIFIED by those with reasons
    // before it (6.1), by its place (packet_rcv) by those without reasons.
    const reason = REASONED && !REASON_NAMES.has('PACKET_SOCK_ERROR') ? 'NOT_SPECIFIED' : 'PACKET_SOCK_ERROR';
    assert.deepEqual(d.byReason, { [reason]: stats.drops }, describeData(d));
    assert.match(Object.keys(d.byLocation)[0] ?? '', /^packet_rcv\+/);
    assert.equal(d.hostCopies.total, 0, describeData(d));
    // The kernel side marked them as host copies (other-host frames dropped on their way in,
    // on no bridge port); the finding knows the switch's own read from the host stack's.
    const dumpFile = found!.raw.find((r) => r.endsWith('-dump.out'));
    const dump = JSON.parse(await readFile(join(b.root, dumpFile!), 'utf8')) as { entries: Array<{ flags: number; count: number }> };
    assert.equal(dump.entries.filter((e) => e.flags & 8).reduce((n, e) => n + e.count, 0), stats.drops);
  });
});

describe('drops.kernel scope params', () => {
  const probe = (params: Record<string, unknown>, t: { after(fn: () => unknown): void }) =>
    tempBundle(t, 'ebpfnet-drops-params-').then((b) => runProbe(dropsKernel, { step: 'd', alias: 'd', probe: 'drops.kernel', params: { duration: '100ms', stacks: false, ...params } as Params }, b.opts('live')));

  it('rejects more than the limit, malformed values and mixed address families with one line', async (t) => {
    const macs = Array.from({ length: 9 }, (_, i) => `02:00:00:00:00:0${i}`);
    const many = await probe({ vm_macs: macs }, t);
    assert.equal(many.status, 'error');
    assert.equal(many.reason, 'probe drops.kernel: param "vm_macs": at most 8 values (got 9); pass the VM\'s own ones only');
    const bad = await probe({ vm_macs: ['52:54:00:zz:00:01'] }, t);
    assert.match(bad.reason ?? '', /^probe drops\.kernel: param "vm_macs": expected MAC addresses like 52:54:00:12:34:56, got "52:54:00:zz:00:01"$/);
    const ips = await probe({ vm_ips: ['10.0.0.1', 'nope'] }, t);
    assert.match(ips.reason ?? '', /param "vm_ips": expected IPv4 or IPv6 addresses, got "nope"/);
    const mixed = await probe({ src_ip: '10.0.0.1', dst_ip: 'fd00::1' }, t);
    assert.match(mixed.reason ?? '', /param "dst_ip": src_ip, dst_ip mix IPv4 and IPv6/);
    for (const f of [many, bad, ips, mixed]) assert.doesNotMatch(f.reason ?? '', /\n/);
  });

  it('keeps the MACs when a device is gone, and fails when nothing of the scope is left', async (t) => {
    const gone = `eblgone${process.pid.toString(36)}`.slice(0, 15);
    const kept = await probe({ vm_devs: [gone], vm_macs: ['02:00:5e:00:00:01'] }, t);
    assert.equal(kept.status, 'ok', kept.reason);
    assert.deepEqual((kept.data as DropsData).scope?.missingDevs, [gone]);
    assert.match(kept.summary, new RegExp(`devices not found: ${gone}`));
    const none = await probe({ vm_devs: [gone] }, t);
    assert.equal(none.status, 'error');
    assert.match(none.reason ?? '', /none of the VM's devices exists/);
  });
});

describe('drops.kernel attach flavours with the scope on', () => {
  it('every flavour passes the verifier with every scope set full and IPv6 filters, and attaches where the kernel has its hook', async () => {
    const full = <T>(n: number, f: (i: number) => T) => Array.from({ length: n }, (_, i) => f(i));
    const scope = await resolveScope({
      macs: full(SCOPE_LIMITS.vm_macs, (i) => `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`),
      ips: [...full(SCOPE_LIMITS.vm_ips / 2, (i) => `192.0.2.${i + 1}`), ...full(SCOPE_LIMITS.vm_ips / 2, (i) => `2001:db8::${i + 1}`)],
      devs: ['lo'],
    });
    assert.equal(scope.globals.n_vm_macs, SCOPE_LIMITS.vm_macs);
    const v6 = new Uint8Array(16).fill(1);
    await assertDropsFlavoursAttach({ ...scope.globals, targ_family: 6, targ_addr6: v6, targ_saddr6: v6, targ_proto: 17, targ_port: 53 }, (o) => {
      // The kprobe twins loaded; without kprobes (no kprobe PMU, 4.17+) they cannot attach.
      if (!existsSync('/sys/bus/event_source/devices/kprobe')) {
        assert.throws(() => o.program('drops_kprobe').attach(), /kprobe/);
        assert.throws(() => o.program('drops_kprobe_legacy').attach(), /kprobe/);
      }
    });
  });
});
