// perf.vm-latency on a real lab VM (QEMU under TCG on a tap, a Linux bridge, a peer namespace
// on a veth): steady UDP echo is timed through every layer both ways, a tbf shaper on the tap
// makes the qdisc the worst layer, a VM paused by QMP makes the tun ring the worst layer, and
// each finding replays from its evidence. Needs root, qemu-system-x86 and the guest image
// (scripts/setup.sh): without them the tests fail, saying what is missing.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { possibleCpus } from '../../engine/native/features.js';
import { liveHandles } from '../../engine/native/guard.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { ipv4Bytes } from '../../engine/probe/bpf-values.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params } from '../../engine/probe/types.js';
import { allPrograms, attachPlan, HOOKS } from '../../probes/perf.vm-latency/attach.js';
import { percentileNs, slotBounds } from '../../probes/lib/lathist.js';
import { LAYERS, perfVmLatency, type VmLatencyData } from '../../probes/perf.vm-latency/probe.js';
import { tempBundle, type TempBundle } from '../helpers/bundle.js';
import { buildLabTopology, type LabTopology } from '../lab/topology.js';
import { canBootVms } from '../lab/vm.js';
import { withAllLoaded } from '../helpers/attach-plan.js';
import { quietPair } from '../helpers/netdev-probes.js';
import { deviceCounter } from '../helpers/netns.js';
import { assertReplaysWithoutBpf } from '../helpers/replay.js';

/** Packets the host handed to the tap's reader. */
const tapTx = (tap: string) => deviceCounter(tap, 'tx_packets');

function request(params: Record<string, unknown>) {
  return { step: 'latency', alias: 'latency', probe: 'perf.vm-latency', params: params as Params };
}

/**
 * Starts the probe and resolves once its `links` programs are attached (the addon's live
 * link count says so: open, load and attach run without yielding), with the finding's promise
 * (wrapped: an async function returning a promise would wait for it).
 */
async function startProbe(b: TempBundle, name: string, params: Record<string, unknown>, links: number): Promise<{ finding: Promise<Finding> }> {
  const base = liveHandles().links;
  const finding = runProbe(perfVmLatency, request(params), b.opts(name));
  const started = Date.now();
  let done = false;
  void finding.finally(() => (done = true));
  while (liveHandles().links < base + links) {
    // A probe that ended (failed to attach) says why in its finding.
    if (done) return { finding };
    if (Date.now() - started > 30_000) throw new Error(`${name}: programs not attached after 30 s`);
    await delay(20);
  }
  return { finding };
}

function ordered(data: VmLatencyData): void {
  for (const l of data.layers) {
    const where = `${l.direction} ${l.layer}: ${JSON.stringify(l)}`;
    assert.ok(l.p50 >= 0 && l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max, `P50 ≤ P95 ≤ P99 ≤ max, ${where}`);
  }
}

describe('perf.vm-latency', () => {
  it('every program of perf.vm-latency.bpf.o passes the verifier; tp_btf, raw_tp, tracepoint in that order', () => {
    const all = allPrograms();
    assert.equal(all.length, 18);
    withAllLoaded('perf.vm-latency', all, { targ_tap: 1 });
    assert.deepEqual(attachPlan().map((a) => a.method), ['tp_btf', 'raw_tracepoint', 'tracepoint']);
    assert.deepEqual(attachPlan(HOOKS.slice(0, 1))[2]!.programs, ['vmlat_rx_tp']);
  });

  it('each flavour (tp_btf, raw_tp, classic tracepoint) counts the same packets through a tap: queued, handed to its driver, dropped past it', async (t) => {
    // A veth's host end as the tap: datagrams from the host to a port nobody listens on behind it.
    const pair = await quietPair(t);
    const tap = Number((await readFile(`/sys/class/net/${pair.hostDev}/ifindex`, 'utf8')).trim());
    const globals = { targ_tap: tap, targ_any_uplink: 1, targ_vm_ip: ipv4Bytes(pair.peerIp)!, targ_proto: 17, targ_port: 7 };
    const sock = createSocket('udp4');
    t.after(() => sock.close());
    const N = 20;
    for (const step of attachPlan()) {
      const o = BpfObject.open(bpfObjectPath('perf.vm-latency'), { globals, maxEntries: { cpus: possibleCpus() } });
      try {
        for (const p of o.programs()) p.autoload = step.programs.includes(p.name);
        o.load();
        step.attach(o);
        for (let i = 0; i < N; i++) await new Promise<void>((resolve, reject) => sock.send(Buffer.alloc(32), 7, pair.peerIp, (e) => (e ? reject(e) : resolve())));
        await delay(300);
        const cpus = o.map('cpus').readAllDecoded<number, { counters: number[] }>().map((e) => e.value);
        const c = cpus.reduce((sum, cpu) => sum.map((n, i) => n + Number(cpu.counters[i])), new Array<number>(18).fill(0));
        // enum vmlat_counter, to the VM: queue 1, xmit 2, queue unmatched 4 (no uplink rx), dropped 7
        assert.deepEqual({ queued: c[1], transmitted: c[2], unmatched: c[4], dropped: c[7] }, { queued: N, transmitted: N, unmatched: N, dropped: N }, step.method);
      } finally {
        o.close();
      }
    }
  });

  it('histogram slots tile the nanoseconds and percentiles stay within their slot', () => {
    for (let s = 0; s < 159; s++) assert.equal(slotBounds(s)[1] + 1, slotBounds(s + 1)[0], `slot ${s} ends where ${s + 1} starts`);
    assert.deepEqual(slotBounds(4), [4, 4]);
    assert.deepEqual(slotBounds(8), [8, 9]);
    // 100 values: 90 in [8192, 10239] ns (slot 48), 10 in [262144, 327679] ns (slot 68).
    assert.deepEqual(slotBounds(48), [8192, 10239]);
    assert.deepEqual(slotBounds(68), [262144, 327679]);
    const slots: Array<[number, number]> = [[68, 10], [48, 90]];
    const p50 = percentileNs(slots, 100, 300_000, 50);
    const p99 = percentileNs(slots, 100, 300_000, 99);
    assert.ok(p50 >= 8192 && p50 <= 10240, `p50 ${p50}`);
    assert.ok(p99 >= 262144 && p99 <= 300_000, `p99 ${p99} capped at the max`);
    assert.equal(percentileNs([], 0, 0, 99), 0);
  });

  it('fails with a clear reason when the tap does not exist', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-vmlat-nodev-');
    const f = await runProbe(perfVmLatency, request({ dev: 'ebl-nosuchtap', duration: '200ms' }), b.opts('nodev'));
    assert.equal(f.status, 'error');
    assert.match(f.reason ?? '', /no device ebl-nosuchtap/);
  });

  // The OVS lab boots while the Linux bridge tests run (they assert nothing a busy CPU breaks):
  // the file stays well under a minute.
  let ovsLab: Promise<LabTopology> | undefined;
  after(async () => (await ovsLab?.catch(() => undefined))?.teardown());

  describe('on a lab VM behind a Linux bridge', () => {
    let lab: LabTopology;
    before(async () => {
      const cannot = await canBootVms();
      assert.equal(cannot, null, `cannot boot lab VMs: ${cannot}`);
      lab = await buildLabTopology(undefined, { bridge: 'linux' });
      // No ARP request joins the traffic the tests count.
      await lab.peer.pinNeighbor(lab.vm.ip, lab.vm.mac);
      ovsLab = buildLabTopology(undefined, { bridge: 'ovs' });
      ovsLab.catch(() => undefined); // awaited (and its failure reported) by the OVS tests
    });
    after(() => lab?.teardown());

    it('times steady UDP echo through every layer both ways, only what the filters ask for, and replays', async (t) => {
      const b = await tempBundle(t, 'ebpfnet-vmlat-steady-');
      const params = { dev: lab.vm.tap, vm_ip: lab.vm.ip, protocol: 'udp', port: 7, duration: '4s' };
      const { finding: probe } = await startProbe(b, 'steady', params, HOOKS.length);
      const N = 80;
      // Pings ride along: the udp/7 filter must leave them out.
      const [udp, ping] = await Promise.all([
        lab.peer.sendUdp({ to: lab.vm.ip, port: 7, count: N, intervalMs: 5, expectEcho: true, echoWaitMs: 3000 }),
        lab.peer.ping(lab.vm.ip, { count: 10, interval: 0.05, wait: 2 }),
      ]);
      const f = await probe;
      assert.equal(f.status, 'ok', f.reason);
      assert.equal(udp.sent, N);
      assert.ok(udp.echoed >= N - 2, `echoed ${udp.echoed} of ${N}`);
      assert.ok(ping.received > 0, 'the guest answered pings too');
      const data = f.data as VmLatencyData;

      // Where it attached, how fast, and what it cost.
      assert.equal(data.method, 'tp_btf');
      assert.equal(data.attach.length, HOOKS.length);
      assert.ok(data.loadMs > 0 && data.loadMs < 2000, `loadMs ${data.loadMs}`);
      assert.ok(data.attachMs > 0 && data.attachMs < 1000, `attachMs ${data.attachMs}`);
      assert.ok(data.overhead && !data.overhead.stopped, JSON.stringify(data.overhead));
      assert.equal(data.uplinksFrom, 'bridge');
      assert.deepEqual(data.uplinks.map((u) => u.dev), [lab.peer.hostDev]);
      assert.equal(data.bridge?.kind, 'linux');

      // Every layer saw every packet (a few may straddle the window's edges); no ICMP counted.
      const near = (n: number, want: number, what: string) => assert.ok(Math.abs(n - want) <= 3, `${what}: ${n}, expected ${want}`);
      const to = data.directions['to-vm']!;
      const from = data.directions['from-vm']!;
      for (const layer of LAYERS['to-vm']) near(to.layers[layer]?.count ?? 0, N, `to-vm ${layer}`);
      for (const layer of LAYERS['from-vm']) near(from.layers[layer]?.count ?? 0, udp.echoed, `from-vm ${layer}`);
      for (const [stage, n] of Object.entries(to.packets)) near(n, N, `to-vm ${stage}`);
      for (const [stage, n] of Object.entries(from.packets)) near(n, udp.echoed, `from-vm ${stage}`);
      assert.deepEqual([to.unmatched, from.unmatched], [{ queued: 0, transmitted: 0 }, { queued: 0, transmitted: 0 }]);
      assert.equal(to.dropped, 0);
      ordered(data);
      assert.equal(data.layers.length, 8);
      // The parts never exceed the whole by much: bridge + qdisc ≤ total at the median.
      const toL = to.layers;
      assert.ok(toL.bridge!.p50 <= toL.total!.p50 * 1.5 + 5, JSON.stringify(toL));
      assert.ok(data.worst !== null && data.worst.layer !== 'total', JSON.stringify(data.worst));
      assert.match(f.summary, /^(to|from) the VM \(\d+ packets\): /);
      assert.equal(f.charts.filter((c) => c.kind === 'histogram').length, 8);
      assert.ok(f.tables.some((tb) => tb.title.startsWith('Latency per layer') && tb.rows.length === 8));
      // The per-layer breakdown the report stacks: each direction's mean time in each layer it crosses.
      const breakdown = f.charts.find((c) => c.kind === 'layers');
      assert.ok(breakdown && breakdown.kind === 'layers', 'no per-layer breakdown chart');
      assert.deepEqual(breakdown.layers, ['bridge', 'qdisc', 'tun ring', 'driver']);
      assert.deepEqual(
        breakdown.rows,
        [
          { label: 'to the VM', values: [toL.bridge!.mean, toL.qdisc!.mean, toL['tun ring']!.mean, 0] },
          { label: 'from the VM', values: [from.layers.bridge!.mean, from.layers.qdisc!.mean, 0, from.layers.driver!.mean] },
        ],
      );

      await assertReplaysWithoutBpf(perfVmLatency, params, b, 'steady', f);
    });

    it('a tbf shaper with a deep queue on the tap makes the qdisc the worst layer', async (t) => {
      await execa('tc', ['qdisc', 'add', 'dev', lab.vm.tap, 'root', 'tbf', 'rate', '100kbit', 'burst', '1600', 'latency', '500ms']);
      const removeTbf = () => execa('tc', ['qdisc', 'del', 'dev', lab.vm.tap, 'root'], { reject: false });
      t.after(removeTbf);
      const b = await tempBundle(t, 'ebpfnet-vmlat-tbf-');
      const params = { dev: lab.vm.tap, vm_ip: lab.vm.ip, protocol: 'udp', port: 7, direction: 'to-vm', duration: '4s' };
      const { finding: probe } = await startProbe(b, 'tbf', params, HOOKS.length);
      // 30 × 242-byte frames at 2 ms: ~7 KB into a 12.5 KB/s shaper with a 1600-byte burst.
      const N = 30;
      const udp = await lab.peer.sendUdp({ to: lab.vm.ip, port: 7, count: N, size: 200, intervalMs: 2, expectEcho: true, echoWaitMs: 2500 });
      const f = await probe;
      await removeTbf();
      assert.equal(f.status, 'ok', f.reason);
      assert.equal(udp.sent, N);
      const data = f.data as VmLatencyData;
      assert.equal(data.directions['from-vm'], undefined, 'direction to-vm only');
      const q = data.directions['to-vm']!.layers.qdisc!;
      assert.ok(Math.abs(q.count - N) <= 3, `qdisc count ${q.count}`);
      assert.ok(q.p99 >= 20_000, `qdisc p99 ${q.p99} µs: tens of ms at least`);
      assert.ok(q.p50 < q.p99, JSON.stringify(q));
      ordered(data);
      assert.deepEqual([data.worst?.direction, data.worst?.layer], ['to-vm', 'qdisc'], JSON.stringify(data.worst));
      assert.equal(data.worst?.p99, q.p99);
      assert.equal(f.severity, 'critical');
      assert.match(f.summary, new RegExp(`^to the VM \\(\\d+ packets\\): qdisc p99 [0-9.]+ ms \\(a queue or shaper on ${lab.vm.tap}\\)`));

      await assertReplaysWithoutBpf(perfVmLatency, params, b, 'tbf', f);
    });

    it('a VM paused by QMP while packets arrive makes the tun ring the worst layer', async (t) => {
      const b = await tempBundle(t, 'ebpfnet-vmlat-pause-');
      const params = { dev: lab.vm.tap, vm_ip: lab.vm.ip, protocol: 'udp', port: 7, duration: '4s' };
      const { finding: probe } = await startProbe(b, 'pause', params, HOOKS.length);
      const N = 100;
      const before = await tapTx(lab.vm.tap);
      const sending = lab.peer.sendUdp({ to: lab.vm.ip, port: 7, count: N, intervalMs: 5, expectEcho: true, echoWaitMs: 3000 });
      // Paused once packets flow (starting the sender takes a while on a busy host), for 300 ms.
      const deadline = Date.now() + 15_000;
      while ((await tapTx(lab.vm.tap)) - before < 5) {
        assert.ok(Date.now() < deadline, 'no packet reached the tap');
        await delay(5);
      }
      await lab.vm.pause();
      try {
        await delay(300);
      } finally {
        await lab.vm.resume();
      }
      const udp = await sending;
      const f = await probe;
      assert.equal(f.status, 'ok', f.reason);
      assert.equal(udp.sent, N);
      const data = f.data as VmLatencyData;
      const ring = data.directions['to-vm']!.layers['tun ring']!;
      assert.ok(Math.abs(ring.count - N) <= 3, `tun ring count ${ring.count}`);
      assert.ok(ring.p99 >= 100_000, `tun ring p99 ${ring.p99} µs ≥ 100 ms`);
      assert.ok(ring.max < 2_000_000, `tun ring max ${ring.max} µs: the pause was 300 ms`);
      ordered(data);
      assert.deepEqual([data.worst?.direction, data.worst?.layer], ['to-vm', 'tun ring'], JSON.stringify(data.worst));
      assert.match(f.summary, /^to the VM \(\d+ packets\): tun ring p99 [0-9.]+ ms \(QEMU not reading the tap\)/);
      // The other layers did not see the pause.
      assert.ok(data.directions['to-vm']!.layers.bridge!.p99 < ring.p99 / 10, JSON.stringify(data.directions['to-vm']!.layers.bridge));

      await assertReplaysWithoutBpf(perfVmLatency, params, b, 'pause', f);
    });

    it('a VM stopped through the whole window: what waits in its tun ring makes the tun ring the worst layer', async (t) => {
      const b = await tempBundle(t, 'ebpfnet-vmlat-stopped-');
      await lab.vm.pause();
      t.after(() => lab.vm.resume().catch(() => undefined));
      const params = { dev: lab.vm.tap, vm_ip: lab.vm.ip, protocol: 'udp', port: 9, direction: 'to-vm', duration: '3s' };
      const { finding: probe } = await startProbe(b, 'stopped', params, HOOKS.length);
      const N = 10;
      await lab.peer.sendUdp({ to: lab.vm.ip, port: 9, count: N, intervalMs: 2 });
      const f = await probe;
      await lab.vm.resume();
      assert.equal(f.status, 'ok', f.reason);
      const data = f.data as VmLatencyData;
      const to = data.directions['to-vm']!;
      // Every assertion says all it saw: a failure in CI is read from its message alone.
      const seen = JSON.stringify({ summary: f.summary, packets: to.packets, incomplete: to.incomplete, ring: to.layers['tun ring'], waiting: data.waitingInTunRing, worst: data.worst });
      // A stopped QEMU still reads one packet, which it then holds in its own queue.
      assert.ok((to.layers['tun ring']?.count ?? 0) <= 1, seen);
      assert.equal(to.packets.transmitted, N, seen);
      assert.ok(to.incomplete['tun ring'] >= N - 1, seen);
      assert.equal(data.waitingInTunRing.count, to.incomplete['tun ring'], seen);
      assert.ok((data.waitingInTunRing.oldestMs ?? 0) >= 300, seen);
      assert.deepEqual([data.worst?.direction, data.worst?.layer, data.worst?.basis], ['to-vm', 'tun ring', 'waiting'], seen);
      assert.match(f.summary, /^to the VM \(\d+ packets\): tun ring waiting [0-9.]+ (ms|s) \(QEMU not reading the tap\)/, seen);
      assert.ok(data.notes.some((n) => n.startsWith(`${data.waitingInTunRing.count} packets still waiting in ${lab.vm.tap}'s tun ring`)), data.notes.join('\n'));
    });

    it('a VM whose tap ring filled before the window: each packet to it dropped at the tap, as the tap counts them, none timed through the ring, flagged critical', async (t) => {
      const b = await tempBundle(t, 'ebpfnet-vmlat-full-');
      await lab.vm.pause();
      t.after(() => lab.vm.resume().catch(() => undefined));
      const txDropped = () => deviceCounter(lab.vm.tap, 'tx_dropped');
      // More than the ring holds (the tap's txqueuelen): it is full before the probe starts.
      const qlen = Number((await readFile(`/sys/class/net/${lab.vm.tap}/tx_queue_len`, 'utf8')).trim());
      const filled = await txDropped();
      await lab.peer.sendUdp({ to: lab.vm.ip, port: 9, count: qlen + 200, intervalMs: 0 });
      assert.ok((await txDropped()) > filled, `${lab.vm.tap}'s ring of ${qlen} did not fill`);
      const params = { dev: lab.vm.tap, vm_ip: lab.vm.ip, protocol: 'udp', port: 9, direction: 'to-vm', duration: '3s' };
      const { finding: probe } = await startProbe(b, 'full', params, HOOKS.length);
      const before = await txDropped();
      const N = 40;
      await lab.peer.sendUdp({ to: lab.vm.ip, port: 9, count: N, intervalMs: 2 });
      const f = await probe;
      const tapDropped = (await txDropped()) - before;
      await lab.vm.resume();
      assert.equal(f.status, 'ok', f.reason);
      const to = (f.data as VmLatencyData).directions['to-vm']!;
      // The tap's own count holds ours (and any other frame the bridge sent it meanwhile).
      assert.ok(tapDropped >= N, `${lab.vm.tap} tx_dropped grew ${tapDropped}`);
      assert.equal(to.dropped, N, JSON.stringify(to.packets));
      assert.equal(to.packets.queued, N);
      assert.equal(to.layers['tun ring']?.count ?? 0, 0, JSON.stringify(to.layers['tun ring']));
      assert.equal(f.severity, 'critical');
      assert.match(f.summary, new RegExp(`^to the VM \\(${N} packets\\): .*${N} dropped at ${lab.vm.tap} \\(tun ring full\\?\\)`));
      await assertReplaysWithoutBpf(perfVmLatency, params, b, 'full', f);
    });
  });

  describe('on a lab VM behind an Open vSwitch bridge (userspace datapath)', () => {
    let lab: LabTopology;
    before(async () => {
      const cannot = await canBootVms();
      assert.equal(cannot, null, `cannot boot lab VMs: ${cannot}`);
      lab = await (ovsLab ??= buildLabTopology(undefined, { bridge: 'ovs' }));
      await lab.peer.pinNeighbor(lab.vm.ip, lab.vm.mac);
    });

    it('follows packets across the new skb OVS re-injects, by their headers, through every layer', async (t) => {
      const b = await tempBundle(t, 'ebpfnet-vmlat-ovs-');
      const params = { dev: lab.vm.tap, vm_ip: lab.vm.ip, protocol: 'udp', port: 7, duration: '4s' };
      const { finding: probe } = await startProbe(b, 'ovs', params, HOOKS.length);
      const N = 60;
      const udp = await lab.peer.sendUdp({ to: lab.vm.ip, port: 7, count: N, intervalMs: 5, expectEcho: true, echoWaitMs: 3000 });
      const f = await probe;
      assert.equal(f.status, 'ok', f.reason);
      assert.equal(udp.sent, N);
      assert.ok(udp.echoed >= N - 2, `echoed ${udp.echoed} of ${N}`);
      const data = f.data as VmLatencyData;
      assert.deepEqual(data.bridge, { kind: 'ovs', name: lab.bridge.name });
      assert.equal(data.uplinksFrom, 'bridge');
      assert.deepEqual(data.uplinks.map((u) => u.dev), [lab.peer.hostDev]);
      const near = (n: number, want: number, what: string) => assert.ok(Math.abs(n - want) <= 3, `${what}: ${n}, expected ${want}`);
      for (const layer of LAYERS['to-vm']) near(data.directions['to-vm']!.layers[layer]?.count ?? 0, N, `to-vm ${layer}`);
      for (const layer of LAYERS['from-vm']) near(data.directions['from-vm']!.layers[layer]?.count ?? 0, udp.echoed, `from-vm ${layer}`);
      ordered(data);
      assert.match(f.summary, /OVS p99 [0-9.]+ (µs|ms)/);
      await assertReplaysWithoutBpf(perfVmLatency, params, b, 'ovs', f);
    });
  });
});
