import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params, RawRecord } from '../../engine/probe/types.js';
import { COUNTERS, sampleOffsets, type Counter } from '../../probes/lib/iface-counters.js';
import { netIface, type IfaceData } from '../../probes/net.iface/probe.js';
import { parseQueueStat } from '../../probes/lib/iface-queues.js';
import { canBuildTopologies, createVethPair, run, type VethPair } from '../helpers/netns.js';
import { tempBundle } from '../helpers/bundle.js';
import { quietPair, udpFrameBytes, udpFromNs, udpSink } from '../helpers/netdev-probes.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { availableParallelism } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';

function iface(params: Record<string, unknown>) {
  return { step: 'sample', alias: 'iface', probe: 'net.iface', params: params as Params };
}

function device(f: Finding, name: string) {
  const d = (f.data as IfaceData).devices.find((x) => x.name === name);
  assert.ok(d, `${name} is in the finding`);
  return d;
}

const cannot = await canBuildTopologies();

describe('net.iface on a veth pair', () => {
  // CI runs as root with iproute2 and ping installed: a missing tool is a failure, not a skip.
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));
  it('counts the pings sent through the host side, with rates over time', async (t) => {
    const pair = await createVethPair(t);
    const b = await tempBundle(t, 'ebpfnet-iface-');
    const probe = runProbe(netIface, iface({ devices: [pair.hostDev], duration: '2s', interval: '500ms' }), b.opts('ping'));
    await delay(300);
    const ping = await pair.ping({ count: 20, interval: 0.02 });
    const f = await probe;
    assert.equal(ping.received, 20);
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as IfaceData;
    assert.equal(data.samples, 5);
    assert.equal(data.intervalMs, 500);
    assert.ok(Math.abs(data.durationMs - 2000) < 300, `durationMs ${data.durationMs}`);
    const d = device(f, pair.hostDev);
    assert.ok(d.deltas.tx_packets >= 20, `tx_packets ${d.deltas.tx_packets}`);
    assert.ok(d.deltas.rx_packets >= 20, `rx_packets ${d.deltas.rx_packets}`);
    assert.ok(d.deltas.tx_bytes >= 20 * (56 + 8 + 20 + 14));
    assert.equal(d.drops, 0);
    assert.equal(d.errors, 0);
    assert.ok(d.rates.tx_pps >= 20 / 2.3 && d.rates.tx_pps <= 40, `tx_pps ${d.rates.tx_pps}`);
    assert.ok(d.rates.rx_bps > 0);
    assert.deepEqual(data.dropping, []);
    assert.equal(data.worst, undefined);
    assert.equal(f.severity, 'info');
    assert.equal(data.totals.tx_packets, d.deltas.tx_packets);
    assert.match(f.summary, /^no drops or errors on 1 device in 2s; busiest /);
    // Attributes match what ip says about the device.
    const [link] = JSON.parse((await run(['ip', '-j', 'link', 'show', 'dev', pair.hostDev])).stdout) as Array<{ ifindex: number; mtu: number; address: string }>;
    assert.equal(d.ifindex, link!.ifindex);
    assert.equal(d.mtu, link!.mtu);
    assert.equal(d.address, link!.address);
    assert.equal(d.operstate, 'up');
    assert.equal(d.carrier, true);
    // A time series of packet rates: one point per interval for each direction.
    const pps = f.charts.find((c) => c.kind === 'timeseries' && c.title.startsWith('Packets per second'));
    assert.ok(pps && pps.kind === 'timeseries');
    const tx = pps.series.find((s) => s.name === `${pair.hostDev} tx`);
    assert.equal(tx?.points.length, 4);
    assert.ok(tx!.points.some(([, v]) => v > 0));
    assert.ok(f.tables[0]!.rows.some((r) => r[0] === pair.hostDev));
  });

  it('shows an MTU mismatch as tx drops on the side that sends too-big packets', async (t) => {
    // The peer (the "VM") has a lower MTU than the host side (the "tap"): the veth refuses
    // packets bigger than the peer's MTU. The kernel counts them as tx_dropped on the host
    // side (veth_xmit) and rx_dropped on the peer (__dev_forward_skb), nothing as errors.
    const pair = await createVethPair(t, { hostMtu: 1500, peerMtu: 1000 });
    const b = await tempBundle(t, 'ebpfnet-iface-');
    const peerRxDroppedBefore = await pair.peerCounter('rx_dropped');
    const probe = runProbe(netIface, iface({ devices: [pair.hostDev], duration: '3s', interval: '500ms' }), b.opts('mtu'));
    await delay(300);
    const ping = await pair.ping({ count: 10, size: 1200, interval: 0.05, wait: 0.2, deadline: 2 });
    const f = await probe;
    const peerRxDropped = (await pair.peerCounter('rx_dropped')) - peerRxDroppedBefore;
    assert.equal(ping.received, 0, 'no big ping gets through');
    assert.ok(ping.transmitted >= 1);
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as IfaceData;
    const d = device(f, pair.hostDev);
    // ping retries a packet the device refused (ENOBUFS), so drops >= pings sent.
    assert.ok(d.deltas.tx_dropped >= ping.transmitted, `tx_dropped ${d.deltas.tx_dropped} < ${ping.transmitted} pings`);
    assert.equal(d.deltas.rx_dropped, 0);
    assert.equal(d.deltas.tx_errors, 0);
    assert.equal(d.deltas.rx_errors, 0);
    assert.equal(peerRxDropped, d.deltas.tx_dropped, 'the peer counts the same packets as rx_dropped');
    assert.equal(d.drops, d.deltas.tx_dropped);
    assert.deepEqual(data.dropping, [pair.hostDev]);
    assert.deepEqual(data.worst, { name: pair.hostDev, drops: d.drops, errors: 0, direction: 'tx' });
    assert.equal(data.totals.drops, d.drops);
    assert.equal(data.totals.tx_dropped, d.drops);
    assert.equal(f.severity, 'critical');
    assert.equal(f.summary, `${pair.hostDev} dropped ${d.drops} packets (tx) in 3s; 1 device watched`);
    const bars = f.charts.find((c) => c.kind === 'bar');
    assert.ok(bars && bars.kind === 'bar');
    assert.deepEqual(bars.bars, [{ label: pair.hostDev, value: d.drops }]);
    const drops = f.charts.find((c) => c.kind === 'timeseries' && c.title.startsWith('Drops'));
    assert.ok(drops && drops.kind === 'timeseries');
    assert.equal(drops.series[0]!.name, pair.hostDev);
    assert.ok(drops.series[0]!.points.some(([, v]) => v > 0));
  });

  it('replays its own recording into identical data', async (t) => {
    const pair = await createVethPair(t);
    const b = await tempBundle(t, 'ebpfnet-iface-');
    const params = { devices: [pair.hostDev, 'lo'], duration: '1s', interval: '250ms' };
    const probe = runProbe(netIface, iface(params), b.opts('live'));
    await delay(200);
    await pair.ping({ count: 10, interval: 0.02 });
    const live = await probe;
    assert.equal(live.status, 'ok', live.reason);
    assert.ok(device(live, pair.hostDev).deltas.tx_packets >= 10, 'the recording has traffic');
    const replay = await assertReplaysSame(netIface, params, b, 'live', live);
    assert.equal(replay.raw.length, live.raw.length);
    assert.ok(replay.durationMs < 1000, 'a replay does not wait');
  });

  it('watches every device when none is named, the host side included', async (t) => {
    const pair = await createVethPair(t);
    const b = await tempBundle(t, 'ebpfnet-iface-');
    const f = await runProbe(netIface, iface({ duration: '200ms', interval: '100ms' }), b.opts('all'));
    assert.equal(f.status, 'ok', f.reason);
    const names = (f.data as IfaceData).devices.map((d) => d.name);
    assert.ok(names.includes('lo'));
    assert.ok(names.includes(pair.hostDev));
    assert.ok(!names.includes(pair.peerDev), 'the peer lives in another namespace');
  });

  it('notes a device that vanishes mid-sample and keeps its counts before', async (t) => {
    const pair = await createVethPair(t);
    const b = await tempBundle(t, 'ebpfnet-iface-');
    const probe = runProbe(netIface, iface({ devices: [pair.hostDev, 'lo'], duration: '2s', interval: '250ms' }), b.opts('vanish'));
    await delay(150);
    await pair.ping({ count: 5, interval: 0.02 });
    await delay(300);
    await pair.teardown();
    const f = await probe;
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as IfaceData;
    const d = device(f, pair.hostDev);
    assert.equal(d.vanished, true);
    assert.ok(d.deltas.tx_packets >= 5, 'counts before it vanished are kept');
    assert.equal(device(f, 'lo').vanished, false);
    assert.equal(data.samples, 9);
    assert.ok(
      data.notes.some((n) => n.startsWith(`${pair.hostDev} vanished after sample `)),
      JSON.stringify(data.notes),
    );
    assert.match(f.summary, /; 1 vanished$/);
  });

  it('fails with the list of devices when a named one does not exist', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-iface-');
    const f = await runProbe(netIface, iface({ devices: 'ebtnosuch0', duration: '1s' }), b.opts('nosuch'));
    assert.equal(f.status, 'error');
    assert.match(f.reason!, /^no device ebtnosuch0 on this host; devices here: .*\blo\b/);
  });
});

const QUEUES = 4;

/**
 * A 4-queue veth pair whose host end counts per RX queue: GRO on the host end gives its queues
 * NAPI (veth counts rx_queue_N_xdp_packets there), and the namespace end sends without TSO/GSO
 * so that its UDP is eligible for that path. The host end's RX queue is the sender's TX queue.
 */
async function queuedPair(t: Parameters<typeof quietPair>[0]): Promise<VethPair> {
  const pair = await quietPair(t, { queues: QUEUES });
  await run(['ethtool', '-K', pair.hostDev, 'gro', 'on']);
  await pair.inNs(['ethtool', '-K', pair.peerDev, 'tso', 'off', 'gso', 'off']);
  return pair;
}

/** XPS on the namespace end: every CPU sends through TX queue `queue` only. */
async function steerTo(pair: VethPair, queue: number): Promise<void> {
  const all = ((1 << availableParallelism()) - 1).toString(16);
  for (let q = 0; q < QUEUES; q++) {
    await pair.inNs(['sh', '-c', `echo ${q === queue ? all : 0} > /sys/class/net/${pair.peerDev}/queues/tx-${q}/xps_cpus`]);
  }
}

function rxQueues(f: Finding, dev: string) {
  const d = device(f, dev);
  assert.ok(d.queues, `${dev} has queues`);
  return d.queues.queues.filter((q) => q.direction === 'rx');
}

describe('net.iface per queue on a 4-queue veth', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('counts traffic steered to one queue by XPS on that queue only, names it as a skew, and replays the same', async (t) => {
    const pair = await queuedPair(t);
    await steerTo(pair, 2);
    await udpSink(t, pair);
    const n = 500;
    const payload = 100;
    const b = await tempBundle(t, 'ebpfnet-iface-q-');
    const params = { devices: [pair.hostDev], duration: '1500ms', interval: '500ms' };
    const probe = withTrafficInWindow(netIface, () => udpFromNs(pair, n, payload));
    const f = await runProbe(probe, iface(params), b.opts('steered'));
    assert.equal(f.status, 'ok', f.reason);
    t.diagnostic(f.summary);
    const data = f.data as IfaceData;
    const d = device(f, pair.hostDev);
    assert.equal(d.deltas.rx_packets, n);
    assert.deepEqual({ rx: d.queues!.rx, tx: d.queues!.tx, counted: d.queues!.counted }, { rx: QUEUES, tx: QUEUES, counted: true });
    const rx = rxQueues(f, pair.hostDev);
    assert.deepEqual(rx.map((q) => [q.queue, q.packets]), [[0, 0], [1, 0], [2, n], [3, 0]]);
    // The NAPI path counts skb->len, the link-layer header pulled.
    assert.equal(rx[2]!.bytes, n * (udpFrameBytes(payload) - 14));
    assert.equal(rx.reduce((s, q) => s + q.packets!, 0), d.deltas.rx_packets, 'the queues add up to the device');
    assert.deepEqual(rx.map((q) => q.drops), [0, 0, 0, 0]);
    // veth's TX queues count only XDP transmits (no packets counter); their watchdog stayed quiet.
    // veth does no BQL: newer kernels hide its byte_queue_limits, older ones (6.1) show them idle.
    const tx = d.queues!.queues.filter((q) => q.direction === 'tx');
    const bqlShown = (i: number) => existsSync(`/sys/class/net/${pair.hostDev}/queues/tx-${i}/byte_queue_limits`);
    assert.deepEqual(tx.map((q) => [q.packets, q.txTimeouts, q.bql]), Array.from({ length: QUEUES }, (_, i) => [null, 0, bqlShown(i) ? { inflight: 0, limit: 0 } : undefined]));
    assert.deepEqual(data.queueSkew, [{ device: pair.hostDev, direction: 'rx', queue: 2, share: 1, packets: n, queues: QUEUES }]);
    assert.deepEqual(data.queueDrops, []);
    assert.deepEqual(data.txTimeouts, []);
    assert.equal(f.severity, 'warning');
    assert.match(f.summary, new RegExp(`; ${pair.hostDev} rx queue 2 took 100% of ${n} packets \\(4 queues\\)$`));
    const bars = f.charts.find((c) => c.kind === 'bar' && c.title.startsWith(`${pair.hostDev}: packets per queue`));
    assert.ok(bars && bars.kind === 'bar');
    assert.deepEqual(bars.bars.filter((x) => x.label.startsWith('rx')), [0, 1, 2, 3].map((q) => ({ label: `rx-${q}`, value: q === 2 ? n : 0 })));
    assert.ok(f.tables.some((tb) => tb.title.startsWith('Queues') && tb.rows.some((r) => r[0] === pair.hostDev && r[1] === 'rx-2' && r[2] === n)));
    await assertReplaysSame(netIface, params, b, 'steered', f);
  });

  it('spreads many flows over the queues without a skew; the queues add up to the device', async (t) => {
    const pair = await queuedPair(t);
    await udpSink(t, pair);
    const senders = 8;
    const each = 50;
    const b = await tempBundle(t, 'ebpfnet-iface-q-');
    // Each sender is its own socket, so its own flow hash: the namespace end picks a TX queue per flow.
    const probe = withTrafficInWindow(netIface, async () => void (await Promise.all(Array.from({ length: senders }, () => udpFromNs(pair, each, 64)))));
    const f = await runProbe(probe, iface({ devices: [pair.hostDev], duration: '2s', interval: '1s' }), b.opts('spread'));
    assert.equal(f.status, 'ok', f.reason);
    t.diagnostic(f.summary);
    const rx = rxQueues(f, pair.hostDev);
    assert.equal(rx.reduce((s, q) => s + q.packets!, 0), senders * each);
    assert.equal(device(f, pair.hostDev).deltas.rx_packets, senders * each);
    assert.ok(rx.filter((q) => q.packets! > 0).length >= 2, JSON.stringify(rx.map((q) => q.packets)));
    assert.deepEqual((f.data as IfaceData).queueSkew, []);
    assert.equal(f.severity, 'info');
  });
});

/** Synthetic sysfs reads of one device: values per sample (undefined = the device is gone). */
function recordsFor(dev: string, samples: Array<{ at: number; values?: Partial<Record<Counter, number>>; carrier?: string }>): RawRecord[] {
  const out: RawRecord[] = [{ seq: 1, op: 'readdir', name: 'devices', path: '/sys/class/net', at: 0, durationMs: 0, stdout: `${dev}\n`, stderr: '', exitCode: 0 }];
  samples.forEach((s, k) => {
    for (const c of COUNTERS) {
      const path = `/sys/class/net/${dev}/statistics/${c}`;
      const base = { seq: out.length + 1, op: 'read' as const, name: `s${k}-${dev}-${c}`, path, at: s.at, durationMs: 0 };
      out.push(
        s.values
          ? { ...base, stdout: `${s.values[c] ?? 0}\n`, stderr: '', exitCode: 0 }
          : { ...base, stdout: '', stderr: 'ENOENT: no such file or directory', exitCode: 2, error: `cannot read ${path}: ENOENT` },
      );
    }
    if (k === 0 && s.carrier !== undefined) {
      const path = `/sys/class/net/${dev}/carrier`;
      const failed = s.carrier === 'EINVAL';
      out.push({
        seq: out.length + 1,
        op: 'read',
        name: `s0-${dev}-carrier`,
        path,
        at: s.at,
        durationMs: 0,
        stdout: failed ? '' : `${s.carrier}\n`,
        stderr: failed ? 'EINVAL: invalid argument' : '',
        exitCode: failed ? 22 : 0,
        ...(failed ? { error: `cannot read ${path}: EINVAL: invalid argument` } : {}),
      });
    }
  });
  return out;
}

describe('net.iface parser', () => {
  const params: Params = { devices: [], duration: 2000, interval: 1000 };

  it('takes rates from the records timestamps and treats a decrease as a reset', () => {
    const recs = recordsFor('tap0', [
      { at: 10_000, values: { rx_packets: 100, tx_packets: 5, rx_bytes: 1000 }, carrier: 'EINVAL' },
      { at: 11_000, values: { rx_packets: 150, tx_packets: 5, rx_bytes: 6000 } },
      { at: 12_000, values: { rx_packets: 20, tx_packets: 5, rx_bytes: 2000 } },
    ]);
    const r = netIface.parse(recs, params);
    const data = r.data as IfaceData;
    const d = data.devices[0]!;
    assert.equal(d.deltas.rx_packets, 50 + 20);
    assert.equal(d.deltas.rx_bytes, 5000 + 2000);
    assert.equal(d.rates.rx_pps, 35);
    assert.equal(d.rates.rx_bps, (7000 * 8) / 2);
    assert.equal(d.carrier, null, 'an unreadable carrier (device down) is null');
    assert.equal(data.durationMs, 2000);
    assert.ok(data.notes.some((n) => n.includes('tap0: rx_packets, rx_bytes went down during the sample (counter reset)')));
    const pps = r.charts!.find((c) => c.kind === 'timeseries' && c.title.startsWith('Packets'));
    assert.ok(pps && pps.kind === 'timeseries');
    assert.deepEqual(pps.series[0]!.points, [
      [11_000, 50],
      [12_000, 20],
    ]);
  });

  it('keeps 64-bit counters exact', () => {
    const big = 2 ** 60;
    const recs = recordsFor('eth9', [
      { at: 0, values: { tx_bytes: big } },
      { at: 1000, values: { tx_bytes: big + 1234 } },
    ]);
    // Counters are parsed as BigInt: the text is what sysfs printed.
    for (const r of recs) if (r.path?.endsWith('/tx_bytes')) r.stdout = r.name.startsWith('s0') ? '1152921504606846976\n' : '1152921504606848210\n';
    const d = (netIface.parse(recs, params).data as IfaceData).devices[0]!;
    assert.equal(d.deltas.tx_bytes, 1234);
  });

  it('sums errors and drops, picks the worst device and its direction', () => {
    const a = recordsFor('a0', [
      { at: 0, values: {} },
      { at: 1000, values: { rx_dropped: 3, rx_errors: 1 } },
    ]);
    const bRecs = recordsFor('b0', [
      { at: 0, values: {} },
      { at: 1000, values: { tx_dropped: 2, rx_dropped: 9 } },
    ]).slice(1);
    const r = netIface.parse([...a, ...bRecs], params);
    const data = r.data as IfaceData;
    assert.deepEqual(data.dropping, ['a0', 'b0']);
    assert.deepEqual(data.worst, { name: 'b0', drops: 11, errors: 0, direction: 'rx+tx' });
    assert.equal(data.totals.drops, 14);
    assert.equal(data.totals.errors, 1);
    assert.equal(r.summary, 'b0 dropped 11 packets (rx+tx) in 2s; 2 devices dropping, 2 devices watched');
  });

  it('notes a device that was gone from the start', () => {
    const recs = recordsFor('veth7', [{ at: 0 }, { at: 1000 }]);
    const r = netIface.parse(recs, params);
    const data = r.data as IfaceData;
    assert.deepEqual(r.tables, [], 'no activity, no table');
    assert.equal(data.devices[0]!.vanished, true);
    assert.deepEqual(data.notes, ['veth7 vanished before it could be read']);
  });

  it('samples at 0, every interval and the end', () => {
    assert.deepEqual(sampleOffsets(5000, 1000), [0, 1000, 2000, 3000, 4000, 5000]);
    assert.deepEqual(sampleOffsets(5000, 2000), [0, 2000, 4000, 5000]);
    assert.deepEqual(sampleOffsets(500, 1000), [0, 500]);
  });

  it('reads per-queue counters of the common drivers, queue drops and TX watchdog timeouts', () => {
    assert.deepEqual(parseQueueStat('rx_queue_3_packets'), { direction: 'rx', queue: 3, name: 'packets' });
    assert.deepEqual(parseQueueStat('rx_queue_0_xdp_packets'), { direction: 'rx', queue: 0, name: 'xdp_packets' });
    assert.deepEqual(parseQueueStat('tx-12.bytes'), { direction: 'tx', queue: 12, name: 'bytes' });
    assert.deepEqual(parseQueueStat('rx7_packets'), { direction: 'rx', queue: 7, name: 'packets' });
    assert.deepEqual(parseQueueStat('queue_1_tx_packets'), { direction: 'tx', queue: 1, name: 'packets' });
    assert.equal(parseQueueStat('rx_packets'), null);
    assert.equal(parseQueueStat('peer_ifindex'), null);

    const recs = recordsFor('eth0', [
      { at: 0, values: { rx_packets: 0 } },
      { at: 1000, values: { rx_packets: 1000 } },
    ]);
    const rec = (name: string, extra: Partial<RawRecord>): RawRecord => ({ seq: recs.length + 1, op: 'exec', name, at: 0, durationMs: 0, stdout: '', stderr: '', exitCode: 0, ...extra });
    recs.push(rec('queues-eth0', { op: 'readdir', path: '/sys/class/net/eth0/queues', stdout: 'rx-0\nrx-1\ntx-0\ntx-1\n' }));
    const virtio = (rx0: number, rx1: number, drops1: number, tx0: number) =>
      `NIC statistics:\n     rx_queue_0_packets: ${rx0}\n     rx_queue_0_bytes: ${rx0 * 100}\n     rx_queue_0_drops: 0\n     rx_queue_1_packets: ${rx1}\n     rx_queue_1_bytes: ${rx1 * 100}\n     rx_queue_1_drops: ${drops1}\n     tx_queue_0_packets: ${tx0}\n     tx_queue_1_packets: 0\n`;
    recs.push(rec('ethtool-start-eth0', { stdout: virtio(10, 5, 1, 0) }));
    recs.push(rec('ethtool-end-eth0', { stdout: virtio(20, 995, 4, 7) }));
    for (const [k, timeouts] of [[0, 1], [1, 3]] as const) {
      recs.push(rec(`s${k}-q-tx0`, { op: 'read', path: '/sys/class/net/eth0/queues/tx-0/tx_timeout', stdout: `${timeouts}\n`, at: k * 1000 }));
      recs.push(rec(`s${k}-q-tx0-inflight`, { op: 'read', path: '/sys/class/net/eth0/queues/tx-0/byte_queue_limits/inflight', stdout: `${k * 3000}\n`, at: k * 1000 }));
    }
    const r = netIface.parse(recs, params);
    const data = r.data as IfaceData;
    const q = data.devices[0]!.queues!;
    assert.deepEqual({ rx: q.rx, tx: q.tx, counted: q.counted }, { rx: 2, tx: 2, counted: true });
    assert.deepEqual(q.queues.map((x) => [x.direction, x.queue, x.packets, x.bytes, x.drops]), [
      ['rx', 0, 10, 1000, 0],
      ['rx', 1, 990, 99000, 3],
      ['tx', 0, 7, null, null],
      ['tx', 1, 0, null, null],
    ]);
    assert.equal(q.queues[2]!.txTimeouts, 2);
    assert.deepEqual(q.queues[2]!.bql, { inflight: 3000, limit: null });
    assert.equal(q.queues[3]!.txTimeouts, null, 'no tx_timeout read for tx-1');
    assert.deepEqual(data.queueSkew, [{ device: 'eth0', direction: 'rx', queue: 1, share: 0.99, packets: 1000, queues: 2 }]);
    assert.deepEqual(data.queueDrops, [{ device: 'eth0', direction: 'rx', queue: 1, count: 3 }]);
    assert.deepEqual(data.txTimeouts, [{ device: 'eth0', direction: 'tx', queue: 0, count: 2 }]);
    assert.equal(r.severity, 'critical');
    assert.match(r.summary, /; eth0 rx queue 1 dropped 3; eth0 tx queue 0 timed out 2×; eth0 rx queue 1 took 99% of 1000 packets \(2 queues\)$/);
  });
});
