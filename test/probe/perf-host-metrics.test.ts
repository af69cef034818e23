// perf.host-metrics for real: a UDP flood of a known count from a sender pinned to one CPU, over
// a veth pair, counted by the interface counters and per CPU in the kernel; the imbalance it
// makes; drops from an MTU mismatch; the flavours of the attach plan; replay.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding } from '../../engine/probe/types.js';
import { attachPlan, programName, TRACEPOINTS } from '../../probes/perf.host-metrics/attach.js';
import { analyse, type DumpCapture, type HostMetricsData, type SetupCapture } from '../../probes/perf.host-metrics/findings.js';
import { dumpMaps, perfHostMetrics } from '../../probes/perf.host-metrics/probe.js';
import { netdevGlobals } from '../../probes/lib/netdev.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { assertEveryFlavourAttaches, TP_BTF_FIRST } from '../helpers/attach-plan.js';
import { whenAttached } from '../helpers/bpf-links.js';
import { tempBundle } from '../helpers/bundle.js';
import { assertProbeListedAndShown, startCli } from '../helpers/cli.js';
import { canBuildTopologies } from '../helpers/netns.js';
import { quietPair, request, udpFrameBytes, udpFromNs, udpSink } from '../helpers/netdev-probes.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { assertReplaysSame } from '../helpers/replay.js';

const cannot = await canBuildTopologies();
const SENDER_CPU = 1;

function iface(f: Finding, name: string) {
  const d = (f.data as HostMetricsData).interfaces.find((x) => x.name === name);
  assert.ok(d, `${name} is in the finding`);
  return d;
}

const RUNBOOK = `id: cpu-balance
title: Is one CPU doing all the network work?
description: Watches packets per CPU on one device and concludes on an imbalance.
inputs:
  dev:
    type: string
    description: The device.
  duration:
    type: duration
    default: 2s
    description: How long to watch.
steps:
  - id: watch
    title: Watch packets per CPU
    description: Counts packets and softirq time per CPU for \${inputs.duration}.
    on_error: unknown
    probe: perf.host-metrics
    as: load
    params:
      dev: \${inputs.dev}
      duration: \${inputs.duration}
    next:
      - if: findings.load.imbalanced && findings.load.imbalance[0].metric == "rx packets"
        goto: one-cpu
        why: One CPU received most of the packets.
      - goto: balanced
conclusions:
  - id: one-cpu
    title: One CPU takes the receive work
    category: cpu-imbalance
    confidence: high
    summary: CPU \${string(findings.load.imbalance[0].cpu)} received \${string(findings.load.packets.rx)} packets
    explanation: All packets of the device were received on one CPU.
    actions:
      - Spread the receive work (RSS, RPS).
    evidence: [load]
  - id: balanced
    title: Balanced
    category: inconclusive
    confidence: low
    summary: no imbalance
    explanation: Nothing to see.
    actions: []
    evidence: [load]
  - id: unknown
    title: The probe failed
    category: inconclusive
    confidence: low
    summary: the probe failed
    explanation: It could not run.
    actions: []
    evidence: []
`;

describe('perf.host-metrics', () => {
  before(() => assert.equal(cannot, null, `cannot run: ${cannot}`));

  it('is listed by the CLI, and `probes show` names the seed tool it replaces', () => {
    const shown = assertProbeListedAndShown('perf.host-metrics');
    assert.match(shown, /system_network_perfomance_metrics\.py/);
    assert.match(shown, /softirq_pct/);
  });

  it('loads every program of perf.host-metrics.bpf.o with its filters set, and each flavour attaches here', () => {
    const plan = attachPlan();
    assert.equal(plan.flatMap((s) => s.programs).length, 12);
    assertEveryFlavourAttaches('perf.host-metrics', plan, { targ_dev: Buffer.from('eth0\0\0\0\0\0\0\0\0\0\0\0\0'), targ_netns: 1, targ_dirs: 1 }, TRACEPOINTS, TP_BTF_FIRST);
    assert.equal(programName('netif_receive_skb', 'raw_tracepoint'), 'hm_receive_raw_tp');
  });

  it(`a UDP flood from a sender pinned to CPU ${SENDER_CPU}: exact counts per CPU and on the interface, NET_RX time, the imbalance on that CPU; replays the same`, async (t) => {
    const pair = await quietPair(t);
    await udpSink(t, pair);
    const n = 3000;
    const payload = 200;
    const frame = udpFrameBytes(payload);
    const b = await tempBundle(t, 'ebpfnet-hostm-');
    const params = { dev: pair.hostDev, duration: '2s', interval: '500ms' };
    const probe = withTrafficInWindow(perfHostMetrics, () => udpFromNs(pair, n, payload, { cpu: SENDER_CPU }));
    const f = await runProbe(probe, request(perfHostMetrics.id, params), b.opts('flood'));
    assert.equal(f.status, 'ok', f.reason);
    assert.equal(f.driver, 'native');
    t.diagnostic(f.summary);
    const data = f.data as HostMetricsData;
    t.diagnostic(`attach: ${data.method}, load ${data.loadMs} ms, attach ${data.attach.map((a) => `${a.target} ${a.attachMs} ms`).join(', ')}`);
    assert.equal(data.method, 'tp_btf');
    // The sink only keeps the host from answering with ICMP: its socket buffer may overflow (its
    // reader is this busy process), which is past the device and counted nowhere here.

    // The kernel's per-CPU counts: every packet received on the host end, all on the sender's CPU
    // (a veth hands its packets to the backlog of the CPU that sent them, no RPS).
    assert.equal(data.packets.rx, n);
    assert.equal(data.cpus.reduce((s, c) => s + c.rxPackets, 0), n, 'per-CPU RX counts sum to the count on the device');
    assert.equal(data.cpus.find((c) => c.cpu === SENDER_CPU)?.rxPackets, n);
    // At netif_receive_skb the link-layer header is pulled: skb->len is the IP datagram.
    assert.equal(data.packets.rxBytes, n * (frame - 14));
    assert.equal(data.packets.tx, 0, 'the sink answers nothing');

    // NET_RX ran on the sender's CPU and took time.
    const netRx = data.softirqs.NET_RX;
    assert.ok(netRx && netRx.count > 0 && netRx.totalMs > 0, JSON.stringify(netRx));
    const cpuRx = data.cpus.find((c) => c.cpu === SENDER_CPU)?.softirqs.NET_RX;
    assert.ok(cpuRx && cpuRx.count > 0 && cpuRx.totalMs > 0);
    assert.ok(netRx.buckets.reduce((s, bk) => s + bk.count, 0) === netRx.count, 'the histogram holds every run');

    // The imbalance names the sender's CPU: it took every packet.
    const rx = data.imbalance.find((i) => i.metric === 'rx packets');
    assert.deepEqual(rx, { metric: 'rx packets', cpu: SENDER_CPU, share: 1, total: n });
    assert.equal(data.imbalanced, true);
    assert.equal(f.severity, 'warning');
    assert.match(f.summary, new RegExp(`CPU ${SENDER_CPU} took 100% of the rx packets`));

    // The interface counters agree: exactly n frames in, and the rates over the sampled span.
    const d = iface(f, pair.hostDev);
    assert.equal(data.interfaces.length, 1, 'only the filtered device is sampled');
    assert.equal(d.deltas.rx_packets, n);
    assert.equal(d.deltas.rx_bytes, n * frame);
    assert.equal(d.drops + d.errors, 0);
    assert.equal(data.samples, 5);
    // The rates are the counts over the sampled span (first to last read): at least the 2 s asked
    // for (the reads keep to their schedule, late on a starved machine, never early), and within
    // the window the programs counted in, since the samples are read during it.
    const spanS = n / d.rates.rx_pps;
    assert.ok(spanS >= 1.99 && spanS <= data.windowMs / 1000 + 0.01, `rates over ${spanS} s, window ${data.windowMs} ms`);
    // Throughput is the frames' bits over the same span (both rates rounded to 0.01/s).
    assert.ok(Math.abs(d.rates.rx_bps / (d.rates.rx_pps * frame * 8) - 1) < 1e-4, `rx_bps ${d.rates.rx_bps}, rx_pps ${d.rates.rx_pps}`);
    const pps = f.charts.find((c) => c.kind === 'timeseries' && c.title.startsWith('Packets per second'));
    assert.ok(pps && pps.kind === 'timeseries');
    const series = pps.series.find((s) => s.name === `${pair.hostDev} rx`)!;
    assert.equal(series.points.length, 4);
    assert.ok(series.points.some(([, v]) => v > 0));

    await assertReplaysSame(perfHostMetrics, params, b, 'flood', f);
  });

  it('the fallback flavours (raw_tp, classic tracepoints), each loaded alone, count the same packets on the same CPU', async (t) => {
    const pair = await quietPair(t);
    await udpSink(t, pair);
    const n = 200;
    for (const method of ['raw_tracepoint', 'tracepoint'] as const) {
      const step = attachPlan().find((s) => s.method === method)!;
      const o = BpfObject.open(bpfObjectPath('perf.host-metrics'), { globals: { ...netdevGlobals({ dev: pair.hostDev, netns: null, netnsInode: 0 }), targ_dirs: 3 } });
      try {
        for (const p of o.programs()) p.autoload = step.programs.includes(p.name);
        o.load();
        step.attach(o);
        await udpFromNs(pair, n, 100, { cpu: SENDER_CPU });
        o.detach();
        const dump = dumpMaps(o, 1);
        assert.deepEqual(dump.packets.map((p) => [p.cpu, p.dir, p.packets]), [[SENDER_CPU, 'rx', n]], method);
        const netRx = dump.softirqs.filter((s) => s.vector === 3 && s.cpu === SENDER_CPU);
        assert.ok(netRx.length === 1 && netRx[0]!.count > 0 && netRx[0]!.totalNs > 0, method);
      } finally {
        o.close();
      }
    }
  });

  it('without a device filter (no device read at all) counts at least what the filtered programs beside it count, on the same CPU', async (t) => {
    const pair = await quietPair(t);
    await udpSink(t, pair);
    const n = 300;
    const step = attachPlan()[0]!;
    const open = (globals: Record<string, GlobalValue>) => {
      const o = BpfObject.open(bpfObjectPath('perf.host-metrics'), { globals: { targ_dirs: 3, ...globals } });
      for (const p of o.programs()) p.autoload = step.programs.includes(p.name);
      o.load();
      return o;
    };
    const all = open({});
    const one = open(netdevGlobals({ dev: pair.hostDev, netns: null, netnsInode: 0 }));
    try {
      step.attach(all);
      step.attach(one);
      await udpFromNs(pair, n, 100, { cpu: SENDER_CPU });
      one.detach();
      all.detach();
      const rxOn = (o: BpfObject) => dumpMaps(o, 1).packets.filter((p) => p.dir === 'rx' && p.cpu === SENDER_CPU).reduce((s, p) => s + p.packets, 0);
      assert.equal(rxOn(one), n, 'the filtered programs count the sent packets');
      assert.ok(rxOn(all) >= n, `unfiltered ${rxOn(all)} >= ${n}`);
    } finally {
      one.close();
      all.close();
    }
  });

  it('shows drops rising on an interface (an MTU mismatch) as critical', async (t) => {
    const pair = await quietPair(t, { peerMtu: 1000 });
    const b = await tempBundle(t, 'ebpfnet-hostm-');
    const params = { dev: pair.hostDev, duration: '1500ms', interval: '500ms' };
    const probe = withTrafficInWindow(perfHostMetrics, async () => void (await pair.ping({ count: 5, size: 1200, interval: 0.05, wait: 0.2, deadline: 1 })));
    const f = await runProbe(probe, request(perfHostMetrics.id, params), b.opts('drops'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as HostMetricsData;
    const d = iface(f, pair.hostDev);
    assert.ok(d.deltas.tx_dropped >= 1, `tx_dropped ${d.deltas.tx_dropped}`);
    assert.deepEqual(data.dropping, [pair.hostDev]);
    assert.deepEqual(data.worst, { name: pair.hostDev, drops: d.drops, errors: 0, direction: 'tx' });
    // The driver refused them: none is counted as sent.
    assert.equal(data.packets.tx, 0);
    assert.equal(f.severity, 'critical');
    await assertReplaysSame(perfHostMetrics, params, b, 'drops', f);
  });

  it('calls a CPU spending most of its time in network softirqs hot, and a NET_RX time imbalance', () => {
    const setup: SetupCapture = {
      filter: { dev: null, netns: null, netnsInode: 0 },
      direction: 'both',
      onlineCpus: 4,
      devices: [],
      ifaceSkipped: null,
      durationMs: 1000,
      intervalMs: 1000,
      imbalanceShare: 0.8,
      softirqShare: 0.5,
      minPackets: 100,
    };
    const slots = (k: number, n: number) => Array.from({ length: 27 }, (_, i) => (i === k ? n : 0));
    const dump: DumpCapture = {
      windowMs: 1000,
      possibleCpus: 4,
      softirqs: [
        { cpu: 2, vector: 3, count: 1000, totalNs: 600e6, maxNs: 2e6, slots: slots(10, 1000) },
        { cpu: 0, vector: 3, count: 10, totalNs: 10e6, maxNs: 1.5e6, slots: slots(11, 10) },
        { cpu: 0, vector: 1, count: 250, totalNs: 1e6, maxNs: 20e3, slots: slots(3, 250) },
      ],
      packets: [
        { cpu: 2, dir: 'rx', packets: 60, bytes: 6000, failed: 0 },
        { cpu: 0, dir: 'rx', packets: 60, bytes: 6000, failed: 0 },
      ],
      unpaired: 2,
    };
    const att = { method: 'raw_tracepoint' as const, btf: 'minimal (cached)' as const, loadMs: 1, attach: [] };
    const readings = { durationMs: 1000, samples: 0, devices: [], pointsOf: new Map(), notes: [] };
    const r = analyse(setup, att, dump, readings, null);
    assert.deepEqual(r.data.softirqHot, [{ cpu: 2, share: 0.6 }]);
    // 120 packets split evenly: no packet imbalance; CPU 2 took 600 of the 610 ms of NET_RX.
    assert.deepEqual(r.data.imbalance, [{ metric: 'NET_RX time', cpu: 2, share: 0.9836, total: 610 }]);
    assert.equal(r.data.softirqs.TIMER?.count, 250);
    assert.equal(r.data.softirqs.NET_RX?.p50Us, 1024);
    assert.equal(r.data.cpus.find((c) => c.cpu === 2)?.netSoftirqShare, 0.6);
    assert.equal(r.severity, 'warning');
    assert.match(r.summary, /CPU 2 spent 60% in network softirqs/);
    assert.ok(r.data.notes.some((n) => n.startsWith('2 softirq runs were already running')));
    // One CPU: nothing to balance.
    assert.deepEqual(analyse({ ...setup, onlineCpus: 1 }, att, dump, readings, null).data.imbalance, []);
  });

  it('is a runbook step: a runbook branches on its imbalance to a conclusion naming the CPU', async (t) => {
    const pair = await quietPair(t);
    await udpSink(t, pair);
    const b = await tempBundle(t, 'ebpfnet-hostm-runbook-');
    const file = join(b.root, 'cpu-balance.yaml');
    writeFileSync(file, RUNBOOK);
    const { done } = startCli(['diagnose', file, '--input', `dev=${pair.hostDev}`, '--input', 'duration=4s', '--out', join(b.root, 'runs'), '--json']);
    // The sender floods once the CLI's programs are attached, inside its window.
    await whenAttached('hm_', TRACEPOINTS.length);
    await udpFromNs(pair, 2000, 100, { cpu: SENDER_CPU });
    const r = await done;
    assert.equal(r.status, 0, `${r.stderr}\n${r.stdout}`);
    const result = JSON.parse(r.stdout) as { conclusion: { id: string; summary: string } | null };
    assert.equal(result.conclusion?.id, 'one-cpu', r.stdout);
    assert.match(result.conclusion?.summary ?? '', new RegExp(`^CPU ${SENDER_CPU} received \\d+ packets$`));
  });
});
