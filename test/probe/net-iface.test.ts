import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params, RawRecord } from '../../engine/probe/types.js';
import { COUNTERS, netIface, sampleOffsets, type Counter, type IfaceData } from '../../probes/net.iface/probe.js';
import { canBuildTopologies, createVethPair, run } from '../helpers/netns.js';
import { tempBundle } from '../helpers/bundle.js';


function iface(params: Record<string, unknown>) {
  return { step: 'sample', alias: 'iface', probe: 'net.iface', params: params as Params };
}

function device(f: Finding, name: string) {
  const d = (f.data as IfaceData).devices.find((x) => x.name === name);
  assert.ok(d, `${name} is in the finding`);
  return d;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
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
    const probe = runProbe(netIface, iface({ devices: [pair.hostDev, 'lo'], duration: '1s', interval: '250ms' }), b.opts('live'));
    await delay(200);
    await pair.ping({ count: 10, interval: 0.02 });
    const live = await probe;
    assert.equal(live.status, 'ok', live.reason);
    assert.ok(device(live, pair.hostDev).deltas.tx_packets >= 10, 'the recording has traffic');
    const replay = await runProbe(netIface, iface({ devices: [pair.hostDev, 'lo'], duration: '1s', interval: '250ms' }), b.opts('replay', { replayFrom: b.dir('live') }));
    assert.equal(replay.status, 'ok', replay.reason);
    assert.equal(replay.driver, 'replay');
    assert.deepEqual(replay.data, live.data);
    assert.equal(replay.summary, live.summary);
    assert.deepEqual(replay.charts, live.charts);
    assert.deepEqual(replay.tables, live.tables);
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
});
