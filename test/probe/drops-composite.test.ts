import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params, ProbeDefinition } from '../../engine/probe/types.js';
import { qdiscDrops, agrees, type QdiscDropsData } from '../../probes/qdisc.drops/probe.js';
import { dropsEth, parseEthtoolStats, type DropsEthData } from '../../probes/drops.eth/probe.js';
import { dropsMonitor, windowLengths, type DropsMonitorData } from '../../probes/drops.monitor/probe.js';
import { allProbes } from '../../probes/index.js';
import { tempBundle } from '../helpers/bundle.js';
import { trafficAtSleep, withTrafficInWindow } from '../helpers/probe-window.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { createVethPair, run, dropIcmpInNs, cannotBuildWith } from '../helpers/netns.js';

const cannot = await cannotBuildWith([['tc', '-V'], 'iproute2']);

function request(probe: ProbeDefinition, params: Record<string, unknown>) {
  return { step: 's', alias: probe.id, probe: probe.id, params: params as Params };
}

describe('drops composites (qdisc.drops, drops.eth, drops.monitor)', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('are registered with the seed tools they replace', () => {
    const ids = allProbes.map((p) => p.id);
    for (const [id, seed] of [
      ['qdisc.drops', 'packet-drop/qdisc_drop_trace.py'],
      ['drops.eth', 'packet-drop/eth_drop.py'],
      ['drops.monitor', 'packet-drop/drop_monitor_controller.py'],
    ] as const) {
      assert.ok(ids.includes(id), id);
      const p = allProbes.find((x) => x.id === id)!;
      assert.ok(p.replaces?.includes(seed), id);
      assert.match(p.description, new RegExp(seed.replace(/[./]/g, '\\$&')));
      assert.ok(p.normal.length > 0);
      assert.ok(p.requirements.some((r) => r.kind === 'root'));
    }
  });

  it('qdisc.drops: a tiny tbf under a ping flood: QDISC_DROP equals tc drops, and replays', async (t) => {
    const pair = await createVethPair(t);
    await run(['tc', 'qdisc', 'add', 'dev', pair.hostDev, 'root', 'handle', '7:', 'tbf', 'rate', '8kbit', 'burst', '1600', 'limit', '1600']);
    const b = await tempBundle(t, 'ebpfnet-qdrops-');
    const params = { dev: pair.hostDev, duration: '3s' };
    // The flood starts inside the window (after the probe's first reading), however slow its start.
    const flood = withTrafficInWindow(qdiscDrops, async () => void (await pair.ping({ flood: true, count: 100_000, size: 1000, deadline: 1, wait: 1 })));
    const f = await runProbe(flood, request(qdiscDrops, params), b.opts('live'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as QdiscDropsData;
    assert.equal(data.method, 'tp_btf');
    const dev = data.devices.find((d) => d.dev === pair.hostDev);
    assert.ok(dev, JSON.stringify(data.devices));
    assert.ok(dev.tcDrops > 10, `tc drops ${dev.tcDrops}`);
    assert.deepEqual(dev.dropper, { kind: 'tbf', handle: '7:', drops: dev.tcDrops });
    // This kernel names tbf's limit drops QDISC_DROP (6.18: qdisc_drop() sets it).
    const q = dev.kernelReasons.QDISC_DROP ?? 0;
    assert.ok(Math.abs(q - dev.tcDrops) <= Math.ceil(dev.tcDrops * 0.05), `QDISC_DROP ${q} vs tc ${dev.tcDrops}: ${JSON.stringify(dev)}`);
    assert.equal(dev.agree, true);
    assert.equal(data.agree, true);
    assert.match(f.summary, new RegExp(`^tbf 7: on ${pair.hostDev}: tc counted ${dev.tcDrops} drops in 3s, the kernel ${dev.kernelDrops} \\(QDISC_DROP`));
    assert.equal(f.severity, 'critical');
    await assertReplaysSame(qdiscDrops, params, b, 'live', f);
  });

  it('agrees() allows 5% or one packet', () => {
    assert.equal(agrees(0, 0), true);
    assert.equal(agrees(0, 1), true);
    assert.equal(agrees(100, 105), true);
    assert.equal(agrees(100, 107), false);
  });

  it('drops.eth: MTU mismatch on a veth: tx_dropped on the host side, ethtool counters, and replays', async (t) => {
    const pair = await createVethPair(t, { peerMtu: 1000 });
    const b = await tempBundle(t, 'ebpfnet-eth-');
    const params = { dev: pair.hostDev, duration: '3s' };
    const N = 20;
    const { def: oversized, sent } = trafficAtSleep(dropsEth, 0, () => pair.ping({ count: N, size: 1200, interval: 0.05, wait: 0.2 }));
    const f = await runProbe(oversized, request(dropsEth, params), b.opts('live'));
    const ping = await sent;
    assert.equal(ping.received, 0);
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as DropsEthData;
    assert.equal(data.dev, pair.hostDev);
    assert.equal(data.mtu, 1500);
    // Every oversized echo request is dropped by veth_xmit (the peer cannot take it); IPv6
    // neighbour discovery of the fresh pair may add a few.
    assert.ok(data.tx_dropped >= ping.transmitted && data.tx_dropped <= ping.transmitted + 10, JSON.stringify(data.statistics));
    assert.equal(data.statistics.tx_dropped, data.tx_dropped);
    assert.equal(data.ethtool.supported, true, data.ethtool.reason);
    assert.ok('rx_queue_0_drops' in data.ethtool.deltas, JSON.stringify(data.ethtool));
    assert.equal(data.kernel.method, 'tp_btf');
    assert.match(f.summary, new RegExp(`^${pair.hostDev} in 3s: tx_dropped ${data.tx_dropped}; ethtool: `));
    assert.equal(f.severity, 'critical');
    await assertReplaysSame(dropsEth, params, b, 'live', f);
  });

  it('parses ethtool -S output', () => {
    const m = parseEthtoolStats('NIC statistics:\n     peer_ifindex: 7\n     rx_queue_0_drops: 12\n     tx_queue_0_xdp_xmit: 0\n');
    assert.deepEqual([...m], [
      ['peer_ifindex', 7n],
      ['rx_queue_0_drops', 12n],
      ['tx_queue_0_xdp_xmit', 0n],
    ]);
  });

  it('drops.monitor: drops injected in the second half appear only in later windows, and replays', async (t) => {
    const pair = await createVethPair(t);
    await dropIcmpInNs(pair);
    const b = await tempBundle(t, 'ebpfnet-monitor-');
    const params = { duration: '4s', interval: '1s', netns: pair.ns, src_ip: pair.hostIp, protocol: 'icmp' };
    // The pings start as the third window does (the probe sleeps once per window) and take ~1 s.
    const N = 20;
    const { def: inThirdWindow, sent } = trafficAtSleep(dropsMonitor, 2, () => pair.ping({ count: N, interval: 0.05, wait: 0.2 }));
    const f = await runProbe(inThirdWindow, request(dropsMonitor, params), b.opts('live'));
    const ping = await sent;
    assert.equal(ping.transmitted, N);
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as DropsMonitorData;
    assert.equal(data.windows.length, 4);
    assert.equal(data.intervalMs, 1000);
    assert.equal(data.method, 'tp_btf');
    assert.equal(data.windows[0]!.total, 0, JSON.stringify(data.windows));
    assert.equal(data.windows[1]!.total, 0, JSON.stringify(data.windows));
    const late = data.windows[2]!.total + data.windows[3]!.total;
    assert.ok(Math.abs(late - N) <= 1, `late windows ${late}, expected ${N}: ${JSON.stringify(data.windows.map((w) => [w.start, w.end, w.total]))}`);
    assert.equal(data.totals.total, late);
    assert.deepEqual(Object.keys(data.totals.byReason), ['NETFILTER_DROP']);
    assert.ok(data.windows.every((w, k) => k === 0 || w.start >= data.windows[k - 1]!.end), 'windows follow each other');
    const first = data.windows.findIndex((w) => w.total > 0);
    assert.ok(first >= 2);
    assert.deepEqual(data.changes.appeared[0], { reason: 'NETFILTER_DROP', window: first });
    assert.ok(data.changes.peak && data.changes.peak.window >= 2);
    assert.deepEqual(data.changes.steady, []);
    const ts = f.charts.find((c) => c.kind === 'timeseries');
    assert.ok(ts && ts.kind === 'timeseries');
    assert.equal(ts.series[0]!.name, 'NETFILTER_DROP');
    assert.equal(ts.series[0]!.points.length, 4);
    assert.equal(ts.series[0]!.points[0]![1], 0);
    assert.equal(f.severity, 'critical');
    await assertReplaysSame(dropsMonitor, params, b, 'live', f);
  });

  it('splits the duration into interval windows', () => {
    assert.deepEqual(windowLengths(4000, 1000), [1000, 1000, 1000, 1000]);
    assert.deepEqual(windowLengths(2500, 1000), [1000, 1000, 500]);
  });
});
