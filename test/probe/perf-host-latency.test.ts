// perf.host-latency on a veth pair the test creates: UDP datagrams sent from inside the
// namespace to a socket this process holds on the host's end. Each TX stage (on the namespace's
// end) and each RX stage (on the host's end, up to the socket) counts exactly the datagrams
// sent. A tbf shaper on the sender's device (1 Mbit/s, a burst of one packet) holds them in the
// qdisc for the time its rate implies, far above every other stage; a tbf that does not shape
// leaves the qdisc stage small; a tbf too short for the burst and a port nobody listens on drop
// packets, counted by reason. Filters that match nothing see nothing; each finding replays.
// On a kernel without sock:sk_data_ready (6.1) the RX path ends at netif_receive_skb: no socket
// stage, and a drop after it is not the probe's. Needs root and iproute2 (tc).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { hasTracepoint } from '../../engine/host/tracefs.js';
import { liveHandles } from '../../engine/native/guard.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { possibleCpus } from '../../engine/native/features.js';
import { countsOf, ipv4Bytes } from '../../engine/probe/bpf-values.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding } from '../../engine/probe/types.js';
import { attachPlan, HOOKS, hooksFor } from '../../probes/perf.host-latency/attach.js';
import { readCpuTotals } from '../../probes/perf.host-latency/maps.js';
import { perfHostLatency, type HostLatencyData, type StageId } from '../../probes/perf.host-latency/probe.js';
import { tempBundle, type TempBundle } from '../helpers/bundle.js';
import { nsQdiscStats, quietPair, request, udpFrameBytes, udpFromNs, udpSink } from '../helpers/netdev-probes.js';
import { run, type TeardownHost, type VethPair, cannotBuildWith } from '../helpers/netns.js';
import { COUNTING_BUDGET, withTrafficInWindow } from '../helpers/probe-window.js';
import { assertStepsAttach, withAllLoaded } from '../helpers/attach-plan.js';
import { assertReplaysWithoutBpf } from '../helpers/replay.js';

const cannot = await cannotBuildWith([['tc', '-V'], 'iproute2']);

const SENT = 20;
const PAYLOAD = 1000;
/** The port udpFromNs sends to and udpSink listens on. */
const PORT = 9;
/** The shaper: 1 Mbit/s with a bucket of one frame, so each datagram waits for the one before. */
/** The shaper's rate: slow enough that a sender spacing its datagrams by a few ms (an emulated CPU) changes no frame's side of LATENCY_US. */
const RATE_BPS = 250_000;
const BURST = 1600;
/** The `latency_us` threshold of the shaped run: between the second and third frames' waits (~16 and ~49 ms), where the rate's error has not added up yet. */
const LATENCY_US = 32_000;
const TX_STAGES: StageId[] = ['queue', 'enqueue', 'qdisc', 'start_xmit', 'driver'];
/** Whether this kernel has the socket stage's tracepoint. */
const SOCKET_STAGE = await hasTracepoint('sock:sk_data_ready');
const RX_STAGES: StageId[] = ['rx_entry', 'backlog', ...(SOCKET_STAGE ? ['socket' as const] : [])];
/** The hooks this kernel has. */
const KERNEL_HOOKS = HOOKS.filter((h) => SOCKET_STAGE || h.name !== 'sk_data_ready');

/** udpSink's socket on the host's end, closed when the test ends. */
async function receiver(t: TeardownHost, pair: VethPair): Promise<{ received: () => number }> {
  const sink = await udpSink(t, pair);
  return sink;
}

/** Runs the probe with the datagrams sent inside its window. */
async function measure(b: TempBundle, name: string, pair: VethPair, params: Record<string, unknown>): Promise<Finding> {
  const def = withTrafficInWindow(perfHostLatency, () => udpFromNs(pair, SENT, PAYLOAD));
  // Its programs run for every packet of the host: the guard must not end the window before
  // the shaper let the last datagram go (CI saw 19 of 20 once).
  const f = await runProbe(def, request('perf.host-latency', params), b.opts(name, { budget: COUNTING_BUDGET }));
  assert.equal(f.status, 'ok', f.reason);
  assert.doesNotMatch(f.summary, /stopped/, f.summary);
  return f;
}

function counts(d: HostLatencyData, stages: StageId[]): Record<string, number> {
  return Object.fromEntries(stages.map((s) => [s, d.stages[s]?.packets ?? -1]));
}

const every = (stages: StageId[], n: number) => Object.fromEntries(stages.map((s) => [s, n]));

/** Wait of the i-th datagram (0-based) in a tbf of `rate` b/s whose bucket starts full at `burst` bytes (µs). */
function shaperWaitUs(i: number, frame: number): number {
  const bytesPerUs = RATE_BPS / 8 / 1e6;
  return Math.max(0, (i + 1) * frame - BURST) / bytesPerUs;
}

describe('perf.host-latency', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('every program of perf.host-latency.bpf.o passes the verifier; tp_btf, raw_tp, tracepoint attach in that order', () => {
    assert.equal(attachPlan().flatMap((s) => s.programs).length, HOOKS.length * 3);
    const plan = attachPlan(KERNEL_HOOKS);
    assert.deepEqual(plan.map((s) => s.method), ['tp_btf', 'raw_tracepoint', 'tracepoint']);
    const globals = { targ_ifindex: 1, targ_saddr: Uint8Array.of(10, 0, 0, 1), targ_dport: 1, threshold_ns: 1n, rx_ends_at_receive: !SOCKET_STAGE };
    const absent = attachPlan(HOOKS.filter((h) => !KERNEL_HOOKS.includes(h))).flatMap((s) => s.programs);
    withAllLoaded('perf.host-latency', plan.flatMap((s) => s.programs), globals, (o) => assertStepsAttach(o, plan, KERNEL_HOOKS.map((h) => h.name)), absent);
  });

  it('each flavour (tp_btf, raw_tp, classic tracepoint) attaches and follows every datagram to the driver and the socket', async (t) => {
    const pair = await quietPair(t);
    const sink = await receiver(t, pair);
    for (const step of attachPlan(KERNEL_HOOKS)) {
      const globals = { targ_saddr: ipv4Bytes(pair.peerIp)!, targ_dport: PORT, rx_ends_at_receive: !SOCKET_STAGE };
      const o = BpfObject.open(bpfObjectPath('perf.host-latency'), { globals, maxEntries: { cpus: possibleCpus() } });
      try {
        for (const p of o.programs()) p.autoload = step.programs.includes(p.name);
        o.load();
        step.attach(o);
        const before = sink.received();
        await udpFromNs(pair, SENT, PAYLOAD);
        while (sink.received() < before + SENT) await new Promise((r) => setTimeout(r, 10));
        // enum hostlat_stage: driver (net_dev_xmit) 4, backlog (netif_receive_skb) 6, socket 7
        const { counters } = readCpuTotals(o);
        const last = SOCKET_STAGE ? 7 : 6;
        assert.deepEqual({ driver: counters[4], rxEnd: counters[last] }, { driver: SENT, rxEnd: SENT }, step.method);
      } finally {
        o.close();
      }
    }
  });

  it('drops of one key wait in the CPU\'s pending count (no hash lookup); a new key moves them to the drops hash; the reader adds both', async (t) => {
    const pair = await quietPair(t);
    const o = BpfObject.open(bpfObjectPath('perf.host-latency'), { globals: { targ_saddr: ipv4Bytes(pair.peerIp)! }, maxEntries: { cpus: possibleCpus() } });
    t.after(() => o.close());
    const step = attachPlan(KERNEL_HOOKS)[0]!;
    for (const p of o.programs()) p.autoload = step.programs.includes(p.name);
    o.load();
    step.attach(o);
    const inHash = () => countsOf(o.map('drops'), (k: { reason: number }) => k).reduce((n, d) => n + d.count, 0);
    // Nobody listens on the port: every datagram is dropped (NO_SOCKET) on the sender's CPU, one key.
    await udpFromNs(pair, SENT, PAYLOAD, { cpu: 0 });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(inHash(), 0, 'one key: nothing in the hash yet');
    assert.deepEqual(readCpuTotals(o).drops.map((d) => d.count), [SENT]);
    // A qdisc that drops most of a burst at the sender: QDISC_DROP and NO_SOCKET interleave.
    await run(['tc', '-n', pair.ns, 'qdisc', 'add', 'dev', pair.peerDev, 'root', 'tbf', 'rate', String(RATE_BPS), 'burst', String(BURST), 'limit', '3000']);
    await udpFromNs(pair, SENT, PAYLOAD, { cpu: 0 });
    await new Promise((r) => setTimeout(r, 500));
    const tcDrops = (await nsQdiscStats(pair, pair.peerDev))[0]!.drops;
    assert.ok(tcDrops > 0 && tcDrops < SENT, `tc dropped ${tcDrops}`);
    assert.ok(inHash() > 0, 'a new key moved the pending count to the hash');
    const byReason = Object.fromEntries(readCpuTotals(o).drops.map((d) => [d.reason, d.count]));
    assert.equal(Object.values(byReason).reduce((a, b) => a + b, 0), 2 * SENT);
    assert.deepEqual(Object.values(byReason).sort((a, b) => a - b), [tcDrops, 2 * SENT - tcDrops].sort((a, b) => a - b));
  });

  it('a 250 kbit/s tbf on the sender: every stage counts the datagrams, the qdisc holds them as long as the rate implies; and replays', async (t) => {
    const pair = await quietPair(t);
    await run(['tc', '-n', pair.ns, 'qdisc', 'add', 'dev', pair.peerDev, 'root', 'tbf', 'rate', String(RATE_BPS), 'burst', String(BURST), 'limit', '100000']);
    const sink = await receiver(t, pair);
    const b = await tempBundle(t, 'ebpfnet-hostlat-tbf-');
    const params = { src_ip: pair.peerIp, dst_ip: pair.hostIp, protocol: 'udp', dst_port: PORT, latency_us: LATENCY_US, duration: '3s' };
    const f = await measure(b, 'tbf', pair, params);
    const d = f.data as HostLatencyData;
    assert.equal(sink.received(), SENT);
    t.diagnostic(f.summary);
    t.diagnostic(JSON.stringify(Object.values(d.stages).map((s) => [s.stage, s.packets, s.p50, s.p99, s.max])));

    assert.deepEqual(counts(d, TX_STAGES), every(TX_STAGES, SENT));
    assert.deepEqual(counts(d, RX_STAGES), every(RX_STAGES, SENT));
    // The shaper's waits: the i-th frame leaves when the bucket has refilled for it.
    const frame = udpFrameBytes(PAYLOAD);
    const waits = Array.from({ length: SENT }, (_, i) => shaperWaitUs(i, frame));
    // The seed's threshold: the TX totals at least LATENCY_US are the frames that wait that long (none is within 3 ms of it).
    const slow = waits.filter((w) => w >= LATENCY_US).length;
    assert.ok(waits.every((w) => Math.abs(w - LATENCY_US) > 3000));
    assert.deepEqual(d.packets.tx, { started: SENT, completed: SENT, dropped: 0, ended: 0, inFlight: 0, evicted: 0, slow });
    assert.deepEqual(d.packets.rx, { started: SENT, completed: SENT, dropped: 0, ended: 0, inFlight: 0, evicted: 0, slow: 0 });
    assert.equal(d.lostEvents, 0);

    const p50 = waits[Math.ceil(0.5 * SENT) - 1]!;
    const p99 = waits[SENT - 1]!;
    const q = d.stages.qdisc!;
    assert.equal(q.count, SENT);
    assert.ok(Math.abs(q.p50 - p50) <= 0.3 * p50, `qdisc P50 ${q.p50} µs, the shaper implies ${p50}`);
    assert.ok(Math.abs(q.p99 - p99) <= 0.3 * p99, `qdisc P99 ${q.p99} µs, the shaper implies ${p99}`);
    assert.ok(q.max >= p99 * 0.9 && q.max <= p99 * 1.3, `qdisc max ${q.max} µs, the last frame waits ${p99}`);
    for (const s of [...TX_STAGES, ...RX_STAGES].filter((x) => x !== 'qdisc' && x !== 'queue' && x !== 'rx_entry')) {
      assert.ok(d.stages[s]!.p99 < q.p50 / 10, `${s} P99 ${d.stages[s]!.p99} µs is far below the qdisc's`);
    }
    assert.deepEqual(d.slowest && { direction: d.slowest.direction, stage: d.slowest.stage, p99: d.slowest.p99 }, { direction: 'tx', stage: 'qdisc', p99: q.p99 });
    assert.ok(d.totals.tx!.max >= q.max);
    assert.equal(f.severity, 'critical'); // a P99 above 10 ms
    assert.match(f.summary, /^slowest stage TX qdisc \(p99 6\d\d ms\); TX \(20 packets\): /);
    await assertReplaysWithoutBpf(perfHostLatency, params, b, 'tbf', f);
  });

  it('drops by reason: a tbf too short for the burst drops at the sender (QDISC_DROP), a port nobody listens on at the receiver (NO_SOCKET)', async (t) => {
    const pair = await quietPair(t);
    await run(['tc', '-n', pair.ns, 'qdisc', 'add', 'dev', pair.peerDev, 'root', 'tbf', 'rate', String(RATE_BPS), 'burst', String(BURST), 'limit', '3000']);
    const b = await tempBundle(t, 'ebpfnet-hostlat-drops-');
    const f = await measure(b, 'drops', pair, { src_ip: pair.peerIp, protocol: 'udp', duration: '1500ms' });
    const d = f.data as HostLatencyData;
    t.diagnostic(f.summary);
    const tcDrops = (await nsQdiscStats(pair, pair.peerDev))[0]!.drops;
    assert.ok(tcDrops > 0 && tcDrops < SENT, `tc dropped ${tcDrops}`);
    const sent = SENT - tcDrops;
    assert.deepEqual(d.packets.tx, { started: SENT, completed: sent, dropped: tcDrops, ended: 0, inFlight: 0, evicted: 0, slow: 0 });
    const qdiscDrop = { direction: 'tx', stage: 'queue', reason: 'QDISC_DROP', count: tcDrops };
    if (SOCKET_STAGE) {
      assert.deepEqual(d.packets.rx, { started: sent, completed: 0, dropped: sent, ended: 0, inFlight: 0, evicted: 0, slow: 0 });
      assert.deepEqual([...d.drops].sort((a, b) => a.direction.localeCompare(b.direction)), [{ direction: 'rx', stage: 'backlog', reason: 'NO_SOCKET', count: sent }, qdiscDrop]);
      assert.equal(d.stages.socket!.packets, 0);
    } else {
      // The RX path ended at netif_receive_skb, before the stack found no socket: not the probe's drop.
      assert.deepEqual(d.packets.rx, { started: sent, completed: sent, dropped: 0, ended: 0, inFlight: 0, evicted: 0, slow: 0 });
      assert.deepEqual(d.drops, [qdiscDrop]);
      assert.equal(d.stages.socket, undefined);
      assert.ok(d.notes.some((n) => /no sock:sk_data_ready/.test(n)), d.notes.join(' / '));
    }
    assert.notEqual(f.severity, 'info');
    await assertReplaysWithoutBpf(perfHostLatency, { src_ip: pair.peerIp, protocol: 'udp', duration: '1500ms' }, b, 'drops', f);
  });

  it('a tbf that does not shape: the qdisc stage stays small', async (t) => {
    const pair = await quietPair(t);
    await run(['tc', '-n', pair.ns, 'qdisc', 'add', 'dev', pair.peerDev, 'root', 'tbf', 'rate', '10gbit', 'burst', '5mb', 'limit', '10mb']);
    await receiver(t, pair);
    const b = await tempBundle(t, 'ebpfnet-hostlat-fast-');
    const f = await measure(b, 'fast', pair, { src_ip: pair.peerIp, protocol: 'udp', duration: '1s' });
    const d = f.data as HostLatencyData;
    t.diagnostic(f.summary);
    assert.deepEqual(counts(d, TX_STAGES), every(TX_STAGES, SENT));
    assert.deepEqual(counts(d, RX_STAGES), every(RX_STAGES, SENT));
    assert.ok(d.stages.qdisc!.p99 < 2000, `qdisc P99 ${d.stages.qdisc!.p99} µs`);
  });

  it('device and direction filters: TX on the sender\'s device, RX on the receiver\'s; a port or an address that does not match sees nothing', async (t) => {
    const pair = await quietPair(t);
    await receiver(t, pair);
    const b = await tempBundle(t, 'ebpfnet-hostlat-filter-');
    const runs: Array<[string, Record<string, unknown>]> = [
      ['tx-dev', { dev: pair.peerDev, netns: pair.ns, direction: 'tx', duration: '1500ms' }],
      ['rx-dev', { dev: pair.hostDev, direction: 'rx', protocol: 'udp', duration: '1500ms' }],
      ['other-port', { src_ip: pair.peerIp, dst_port: PORT + 1, duration: '1500ms' }],
      ['other-ip', { dst_ip: pair.peerIp, protocol: 'udp', duration: '1500ms' }],
    ];
    // One window for all four: the datagrams are sent once, when every run's programs are attached.
    const base = liveHandles().links;
    const links = runs.reduce((n, [, p]) => n + hooksFor(String(p.direction ?? 'both')).filter((h) => KERNEL_HOOKS.includes(h)).length, 0);
    const allAttached = async () => {
      const started = Date.now();
      while (liveHandles().links < base + links) {
        if (Date.now() - started > 60_000) throw new Error('the four runs did not attach within 60 s');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const findings = await Promise.all(
      runs.map(([name, params], i) => {
        const traffic = i === 0 ? () => allAttached().then(() => udpFromNs(pair, SENT, PAYLOAD)) : async () => undefined;
        return runProbe(withTrafficInWindow(perfHostLatency, traffic), request('perf.host-latency', params), b.opts(name));
      }),
    );
    for (const f of findings) assert.equal(f.status, 'ok', f.reason);
    const [tx, rx, otherPort, otherIp] = findings.map((f) => f.data as HostLatencyData);
    // veth has no qdisc of its own: enqueue and qdisc are skipped, start_xmit is timed from queue.
    assert.deepEqual(counts(tx!, TX_STAGES), { queue: SENT, enqueue: 0, qdisc: 0, start_xmit: SENT, driver: SENT });
    assert.equal(tx!.stages.rx_entry, undefined);
    assert.deepEqual(tx!.packets.tx, { started: SENT, completed: SENT, dropped: 0, ended: 0, inFlight: 0, evicted: 0, slow: 0 });
    assert.deepEqual(counts(rx!, RX_STAGES), every(RX_STAGES, SENT));
    assert.equal(rx!.stages.queue, undefined);
    for (const d of [otherPort!, otherIp!]) {
      assert.deepEqual({ ...counts(d, TX_STAGES), ...counts(d, RX_STAGES) }, { ...every(TX_STAGES, 0), ...every(RX_STAGES, 0) });
      assert.equal(d.slowest, null);
    }
    // In the window it was attached: the 1.5 s asked, longer on a slow machine.
    const window = /^no IPv4 packet matched in (\d+\.\d)s$/.exec(findings[2]!.summary);
    assert.ok(window && Number(window[1]) >= 1.5, findings[2]!.summary);
    await assertReplaysWithoutBpf(perfHostLatency, runs[0]![1], b, 'tx-dev', findings[0]!);
  });
});
