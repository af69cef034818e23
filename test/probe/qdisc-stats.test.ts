import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params, RawRecord } from '../../engine/probe/types.js';
import { parseTcJson } from '../../probes/lib/qdiscs.js';
import { qdiscStats, type QdiscData } from '../../probes/qdisc.stats/probe.js';
import { createVethPair, run, cannotBuildWith } from '../helpers/netns.js';
import { tempBundle } from '../helpers/bundle.js';

function qdisc(params: Record<string, unknown>) {
  return { step: 'sample', alias: 'qdisc', probe: 'qdisc.stats', params: params as Params };
}

const cannot = await cannotBuildWith([['tc', '-V'], 'iproute2']);

describe('qdisc.stats on a shaped veth', () => {
  // CI runs as root with iproute2 and ping installed: a missing tool is a failure, not a skip.
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));
  it('sees a tiny tbf drop a ping flood, points top at it, and replays identically', async (t) => {
    const pair = await createVethPair(t);
    await run(['tc', 'qdisc', 'add', 'dev', pair.hostDev, 'root', 'handle', '8:', 'tbf', 'rate', '8kbit', 'burst', '1600', 'limit', '3000']);
    const b = await tempBundle(t, 'ebpfnet-qdisc-');
    const probe = runProbe(qdiscStats, qdisc({ devices: [pair.hostDev], duration: '2s' }), b.opts('tbf'));
    await delay(200);
    await pair.ping({ flood: true, count: 100_000, size: 1000, deadline: 1, wait: 1 });
    const f = await probe;
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as QdiscData;
    assert.equal(data.cumulative, false);
    assert.ok(Math.abs(data.durationMs - 2000) < 500, `durationMs ${data.durationMs}`);
    const tbf = data.qdiscs.find((q) => q.kind === 'tbf');
    assert.ok(tbf, JSON.stringify(data.qdiscs));
    assert.equal(tbf.dev, pair.hostDev);
    assert.equal(tbf.handle, '8:');
    assert.equal(tbf.parent, 'root');
    assert.equal(tbf.root, true);
    assert.ok(tbf.drops > 0, 'the tbf dropped');
    assert.ok(tbf.overlimits > 0);
    assert.ok(tbf.packets > 0);
    assert.deepEqual(data.top, { dev: pair.hostDev, kind: 'tbf', handle: '8:', drops: tbf.drops, overlimits: tbf.overlimits });
    assert.deepEqual(data.dropping, [{ dev: pair.hostDev, kind: 'tbf', handle: '8:', drops: tbf.drops }]);
    assert.equal(data.totals.drops, tbf.drops);
    assert.equal(f.severity, 'critical');
    assert.match(f.summary, new RegExp(`^tbf 8: on ${pair.hostDev} dropped ${tbf.drops} packets in 2s`));
    const bars = f.charts.find((c) => c.kind === 'bar');
    assert.ok(bars && bars.kind === 'bar');
    assert.deepEqual(bars.bars, [{ label: `${pair.hostDev} tbf 8:`, value: tbf.drops }]);
    assert.equal(f.tables[0]!.rows.length, data.qdiscs.length);

    // The window's drops are part of what tc has counted since the qdisc was created.
    const [now] = JSON.parse((await run(['tc', '-s', '-j', 'qdisc', 'show', 'dev', pair.hostDev])).stdout) as Array<{ drops: number }>;
    assert.ok(now!.drops >= tbf.drops);

    const replay = await runProbe(qdiscStats, qdisc({ devices: [pair.hostDev], duration: '2s' }), b.opts('tbf-replay', { replayFrom: b.dir('tbf') }));
    assert.equal(replay.status, 'ok', replay.reason);
    assert.equal(replay.driver, 'replay');
    assert.deepEqual(replay.data, f.data);
    assert.equal(replay.summary, f.summary);
    assert.deepEqual(replay.charts, f.charts);

    // duration 0: one read of every device, counters since creation.
    const once = await runProbe(qdiscStats, qdisc({ duration: 0 }), b.opts('once'));
    assert.equal(once.status, 'ok', once.reason);
    const onceData = once.data as QdiscData;
    assert.equal(onceData.cumulative, true);
    assert.equal(onceData.durationMs, 0);
    const cumulative = onceData.qdiscs.find((q) => q.dev === pair.hostDev && q.kind === 'tbf');
    assert.ok(cumulative && cumulative.drops >= now!.drops);
    assert.ok(onceData.qdiscs.some((q) => q.dev === 'lo'), 'all devices are read');
    assert.equal(once.raw.length, 2, 'one tc read and the index');
  });

  it('reports no drops on an idle device', async (t) => {
    const pair = await createVethPair(t);
    const b = await tempBundle(t, 'ebpfnet-qdisc-');
    const f: Finding = await runProbe(qdiscStats, qdisc({ devices: pair.hostDev, duration: '300ms' }), b.opts('idle'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as QdiscData;
    assert.deepEqual(data.qdiscs.map((q) => [q.dev, q.kind]), [[pair.hostDev, 'noqueue']]);
    assert.equal(data.totals.drops, 0);
    assert.deepEqual(data.dropping, []);
    assert.equal(data.top, undefined);
    assert.equal(f.severity, 'info');
    assert.equal(f.summary, 'no qdisc dropped in 300ms; 1 qdisc on 1 device');
  });
});

function tcRecord(seq: number, name: string, at: number, qdiscs: unknown[], dev?: string): RawRecord {
  const argv = ['tc', '-s', '-j', 'qdisc', 'show', ...(dev ? ['dev', dev] : [])];
  return { seq, op: 'exec', name, argv, at, durationMs: 1, stdout: JSON.stringify(qdiscs), stderr: '', exitCode: 0 };
}

describe('qdisc.stats parser', () => {
  const params: Params = { devices: [], duration: 5000 };
  const mq = (drops: number, c1: number, c2: number) => [
    { kind: 'mq', handle: '0:', dev: 'eth0', root: true, bytes: 0, packets: 100, drops, overlimits: 0, requeues: 1, backlog: 0, qlen: 0 },
    { kind: 'pfifo_fast', handle: '0:', dev: 'eth0', parent: ':1', packets: 60, drops: c1, overlimits: 0, requeues: 1, backlog: 1500, qlen: 1 },
    { kind: 'pfifo_fast', handle: '0:', dev: 'eth0', parent: ':2', packets: 40, drops: c2, overlimits: 0, requeues: 0, backlog: 0, qlen: 0 },
  ];

  it('counts deltas by dev+handle+parent, totals over top-level qdiscs only, top the innermost on a tie', () => {
    const r = qdiscStats.parse([tcRecord(1, 'tc-start', 1000, mq(10, 10, 0)), tcRecord(2, 'tc-end', 6000, mq(40, 30, 0))], params);
    const data = r.data as QdiscData;
    assert.equal(data.durationMs, 5000);
    assert.deepEqual(
      data.qdiscs.map((q) => [q.kind, q.parent, q.drops, q.backlog_bytes, q.backlog_packets]),
      [
        ['mq', 'root', 30, 0, 0],
        ['pfifo_fast', ':1', 20, 1500, 1],
        ['pfifo_fast', ':2', 0, 0, 0],
      ],
    );
    assert.equal(data.totals.drops, 30, 'mq already sums its children');
    assert.deepEqual(data.top, { dev: 'eth0', kind: 'mq', handle: '0:', drops: 30, overlimits: 0 });
    assert.equal(r.summary, 'mq 0: on eth0 dropped 30 packets in 5s (30 on all qdiscs, 0 overlimits); 3 qdiscs on 1 device');

    const htb = (root: number, leaf: number) => [
      { kind: 'htb', handle: '1:', root: true, drops: root, overlimits: 7, packets: 5 },
      { kind: 'pfifo', handle: '10:', parent: '1:10', drops: leaf, packets: 5 },
      { kind: 'clsact', handle: 'ffff:', parent: 'ffff:fff1', drops: 0 },
    ];
    const h = qdiscStats.parse([tcRecord(1, 'tc-start-tap0', 0, htb(0, 0), 'tap0'), tcRecord(2, 'tc-end-tap0', 5000, htb(12, 12), 'tap0')], params)
      .data as QdiscData;
    assert.deepEqual(h.top, { dev: 'tap0', kind: 'pfifo', handle: '10:', drops: 12, overlimits: 0 }, 'the leaf that dropped, on a tie');
    assert.equal(h.totals.drops, 12, 'the leaf is not counted twice');
    assert.deepEqual(h.qdiscs.map((q) => q.dev), ['tap0', 'tap0', 'tap0'], 'the device comes from the command when tc leaves it out');
  });

  it('counts a qdisc that appeared from zero, a reset from zero, and tolerates missing fields', () => {
    const start = [{ kind: 'tbf', handle: '8001:', dev: 'veth0', root: true, drops: 500, packets: 900 }];
    const end = [
      { kind: 'tbf', handle: '8001:', dev: 'veth0', root: true, drops: 20, packets: 30 },
      { kind: 'ingress', handle: 'ffff:', dev: 'veth0', parent: 'ffff:fff1' },
      { kind: 'noqueue', handle: '0:', dev: 'lo', root: true, drops: 3 },
    ];
    const r = qdiscStats.parse([tcRecord(1, 'tc-start', 0, start), tcRecord(2, 'tc-end', 1000, end)], params);
    const data = r.data as QdiscData;
    assert.deepEqual(
      data.qdiscs.map((q) => [q.dev, q.kind, q.drops, q.packets, q.overlimits]),
      [
        ['veth0', 'tbf', 20, 30, 0],
        ['veth0', 'ingress', 0, 0, 0],
        ['lo', 'noqueue', 3, 0, 0],
      ],
    );
    assert.ok(data.notes.some((n) => n.startsWith('drops of tbf 8001: on veth0 went down (reset)')));
    assert.ok(data.notes.includes('noqueue 0: on lo appeared during the window; counted from 0'));
    assert.equal(data.totals.drops, 23);
    assert.deepEqual(
      data.dropping.map((q) => q.dev),
      ['veth0', 'lo'],
    );
  });

  it('reads a single cumulative sample', () => {
    const r = qdiscStats.parse([tcRecord(1, 'tc-start', 0, mq(7, 7, 0))], { devices: [], duration: 0 });
    const data = r.data as QdiscData;
    assert.equal(data.cumulative, true);
    assert.equal(data.totals.drops, 7);
    assert.equal(r.severity, 'warning', 'past drops, not necessarily now');
    assert.match(r.summary, /dropped 7 packets since creation/);
  });

  it('parses back-to-back JSON arrays and refuses garbage', () => {
    const two = `${JSON.stringify([{ kind: 'noqueue', handle: '0:', dev: 'lo', root: true }])}\n${JSON.stringify([{ kind: 'tbf', handle: '1:', dev: 'eth0', root: true, drops: 4 }])}`;
    assert.deepEqual(
      parseTcJson(two, undefined).map((q) => [q.dev, q.kind, q.counters.drops]),
      [
        ['lo', 'noqueue', 0],
        ['eth0', 'tbf', 4],
      ],
    );
    assert.throws(() => parseTcJson('qdisc noqueue 0: dev lo root', undefined), /tc printed something that is not JSON/);
  });
});
