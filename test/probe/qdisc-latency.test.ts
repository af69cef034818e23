import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { execa } from 'execa';
import { packageRoot } from '../../engine/package-info.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params, ProbeDefinition, RawRecord } from '../../engine/probe/types.js';
import { fmtNs, qdiscLatency, type QdiscLatencyData } from '../../probes/qdisc.latency/probe.js';
import { tempBundle } from '../helpers/bundle.js';
import { canBuildTopologies, createVethPair, run, type VethPair } from '../helpers/netns.js';

function latency(params: Record<string, unknown>) {
  return { step: 'sample', alias: 'lat', probe: 'qdisc.latency', params: params as Params };
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cannot =
  (await canBuildTopologies()) ??
  (await run(['tc', '-V']).then(
    () => null,
    () => 'needs tc (apt-get install iproute2)',
  )) ??
  (await run(['bpftrace', '--version']).then(
    () => null,
    () => 'needs bpftrace (apt-get install bpftrace)',
  ));

/** Ids of loaded BPF programs of type tracepoint named `name` (bpftool), or null without bpftool. */
async function tracepointProgs(name: string): Promise<number[] | null> {
  const r = await execa('bpftool', ['-j', 'prog', 'show'], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) return null;
  const progs = JSON.parse(String(r.stdout) || '[]') as Array<{ id: number; type: string; name?: string }>;
  return progs.filter((p) => p.type === 'tracepoint' && p.name === name).map((p) => p.id);
}

/** Waits until `count` new qdisc_dequeue programs are loaded (bpftrace attaches right after loading). */
async function waitForAttach(before: number[] | null, count: number): Promise<void> {
  if (before === null) return void (await delay(3000));
  for (let i = 0; i < 150; i++) {
    const now = (await tracepointProgs('qdisc_dequeue')) ?? [];
    if (now.filter((id) => !before.includes(id)).length >= count) return void (await delay(300));
    await delay(50);
  }
  throw new Error('bpftrace did not load its programs within 7.5s');
}

/** Sends `n` UDP datagrams of `payload` bytes to the peer at once, from the host side. */
async function udpBurst(pair: VethPair, n: number, payload: number): Promise<void> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind({ address: pair.hostIp, port: 0 }, resolve));
  const buf = Buffer.alloc(payload, 0x61);
  await Promise.all(
    Array.from({ length: n }, () => new Promise<void>((resolve, reject) => sock.send(buf, 9, pair.peerIp, (err) => (err ? reject(err) : resolve())))),
  );
  sock.close();
}

/**
 * When each of `n` back-to-back packets of `frame` bytes leaves a tbf of `rateBps` bytes/s
 * whose bucket starts full with `burst` bytes: packet k waits until (k+1)·frame bytes of
 * tokens exist.
 */
function tbfSojournsNs(n: number, frame: number, rateBps: number, burst: number): number[] {
  return Array.from({ length: n }, (_, k) => Math.max(0, (((k + 1) * frame - burst) / rateBps) * 1e9));
}

describe('qdisc.latency on a shaped veth', () => {
  before(() => assert.equal(cannot, null, `cannot run: ${cannot}`));

  it('times a UDP burst queued in a 1mbit tbf, only on the device asked for, and replays it without bpftrace', async (t) => {
    const shaped = await createVethPair(t);
    const other = await createVethPair(t);
    for (const p of [shaped, other]) await run(['sysctl', '-q', '-w', `net.ipv6.conf.${p.hostDev}.disable_ipv6=1`]);
    await run(['tc', 'qdisc', 'add', 'dev', shaped.hostDev, 'root', 'handle', '9:', 'tbf', 'rate', '1mbit', 'burst', '2kb', 'latency', '100ms']);
    await shaped.ping({ count: 1 }); // resolve ARP before the window
    await delay(1000); // let the tbf bucket refill

    const b = await tempBundle(t, 'ebpfnet-qlat-');
    const progs = await tracepointProgs('qdisc_dequeue');
    const onShaped = runProbe(qdiscLatency, latency({ dev: shaped.hostDev, duration: '4s' }), b.opts('shaped'));
    const onOther = runProbe(qdiscLatency, latency({ dev: other.hostDev, duration: '4s' }), b.opts('other'));
    await waitForAttach(progs, 2);

    // 50 datagrams of 200 bytes = 242-byte frames: 12100 bytes, within the tbf's limit
    // (rate x latency + burst = 12500 + 2048), so none is dropped and all queue.
    const n = 50;
    const frame = 200 + 8 + 20 + 14;
    await udpBurst(shaped, n, 200);
    const [f, idle] = await Promise.all([onShaped, onOther]);
    assert.equal(f.status, 'ok', f.reason);
    assert.equal(f.driver, 'bpftrace');
    const [tc] = JSON.parse((await run(['tc', '-s', '-j', 'qdisc', 'show', 'dev', shaped.hostDev])).stdout) as Array<{ drops: number }>;
    assert.equal(tc!.drops, 0, 'the tbf dropped nothing');

    const data = f.data as QdiscLatencyData;
    assert.equal(data.durationMs, 4000);
    assert.equal(data.filter?.dev, shaped.hostDev);
    assert.equal(data.devices.length, 1, JSON.stringify(data.devices.map((d) => d.dev)));
    const d = data.devices[0]!;
    assert.equal(d.dev, shaped.hostDev);
    assert.equal(d.ifindex, Number(readFileSync(`/sys/class/net/${shaped.hostDev}/ifindex`, 'utf8')));
    assert.ok(d.count >= n && d.count <= n + 2, `timed ${d.count} packets for ${n} sent`);
    assert.equal(d.enqueued, d.count);

    // Expected from the rate: 1 mbit = 125000 bytes/s, 2 kb = 2048 bytes of burst.
    const model = tbfSojournsNs(n, frame, 125_000, 2048);
    const modelP50 = model[Math.ceil(n * 0.5) - 1]!;
    const modelMax = model[n - 1]!;
    const ms = (ns: number) => `${(ns / 1e6).toFixed(1)} ms`;
    t.diagnostic(`sent ${n}, timed ${d.count}; P50 ${ms(d.p50Ns)} (model ${ms(modelP50)}), P95 ${ms(d.p95Ns)}, P99 ${ms(d.p99Ns)}, max ${ms(d.maxNs)} (model ${ms(modelMax)}); probe ${f.durationMs} ms for a 4 s window`);
    // P50 is a log2 bucket's upper bound: between the true value and twice it.
    assert.ok(d.p50Ns >= modelP50 * 0.7 && d.p50Ns <= modelP50 * 2.6, `P50 ${ms(d.p50Ns)}, model ${ms(modelP50)}`);
    assert.ok(d.p50Ns >= 8e6 && d.p50Ns < 134e6, `P50 ${ms(d.p50Ns)} is milliseconds`);
    assert.ok(Math.abs(d.maxNs - modelMax) < modelMax * 0.3, `max ${ms(d.maxNs)}, model ${ms(modelMax)}`);
    assert.ok(d.maxNs >= d.p99Ns && d.p99Ns >= d.p95Ns && d.p95Ns >= d.p50Ns);
    assert.equal(
      d.buckets.reduce((s, x) => s + x.count, 0),
      d.count,
    );
    assert.equal(f.severity, 'warning', 'P99 above 1 ms');
    assert.equal(
      f.summary,
      `${shaped.hostDev}: ${d.count} packets, P50 ${fmtNs(d.p50Ns)}, P99 ${fmtNs(d.p99Ns)}, max ${fmtNs(d.maxNs)} (percentiles at log2 bucket resolution)`,
    );
    const chart = f.charts[0];
    assert.ok(chart && chart.kind === 'histogram');
    assert.equal(chart.percentiles?.P50, d.p50Ns / 1000);
    assert.deepEqual(f.tables[0]!.rows[0]!.slice(0, 4), [shaped.hostDev, d.ifindex, d.count, d.enqueued]);

    // The filtered probe on the other device saw none of it.
    assert.equal(idle.status, 'ok', idle.reason);
    assert.deepEqual((idle.data as QdiscLatencyData).devices, []);
    assert.equal(idle.severity, 'info');
    assert.equal(idle.summary, `no packet went through the qdisc of ${other.hostDev} in 4s`);

    // Replay: the same finding from the recorded evidence, with no bpftrace run (which takes
    // over a second to start, let alone the 4 s window).
    const replay = await runProbe(qdiscLatency, latency({ dev: shaped.hostDev, duration: '4s' }), b.opts('replay', { replayFrom: b.dir('shaped') }));
    assert.equal(replay.status, 'ok', replay.reason);
    assert.equal(replay.driver, 'replay');
    assert.ok(replay.durationMs < 500, `replay took ${replay.durationMs} ms`);
    assert.deepEqual(replay.data, f.data);
    assert.equal(replay.summary, f.summary);
    assert.deepEqual(replay.charts, f.charts);
    assert.deepEqual(replay.tables, f.tables);
  });

  it('is skipped with a reason when its binary is missing', async (t) => {
    const variant: ProbeDefinition = {
      ...qdiscLatency,
      requirements: [...qdiscLatency.requirements, { kind: 'binary', name: 'bpftrace-not-installed-7f3a', package: 'bpftrace' }],
    };
    const b = await tempBundle(t, 'ebpfnet-qlat-');
    const f = await runProbe(variant, latency({ duration: '1s' }), b.opts('missing'));
    assert.equal(f.status, 'skipped');
    assert.match(f.reason ?? '', /^binary bpftrace-not-installed-7f3a missing/);
    assert.ok(f.durationMs < 1000);
  });

  it('refuses a device that does not exist', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-qlat-');
    const f = await runProbe(qdiscLatency, latency({ dev: 'nosuchdev0', duration: '1s' }), b.opts('nodev'));
    assert.equal(f.status, 'error');
    assert.match(f.reason ?? '', /device nosuchdev0 not found/);
  });
});

describe('qdisc.latency parser', () => {
  // Real bpftrace 0.17 output of bpf/qdisc-latency.bt for a ping through a 1mbit tbf on ifindex 538.
  const stdout = readFileSync(join(packageRoot(), 'test', 'fixtures', 'bpftrace', 'qdisc-latency.jsonl'), 'utf8');
  const rec = (seq: number, r: Partial<RawRecord> & Pick<RawRecord, 'op' | 'name'>): RawRecord => ({ seq, at: 0, durationMs: 1, stdout: '', stderr: '', exitCode: 0, ...r });
  const records: RawRecord[] = [
    rec(1, { op: 'read', name: 'ifindex', path: '/sys/class/net/tap7/ifindex', stdout: '538\n' }),
    rec(2, { op: 'exec', name: 'bpftrace', argv: ['bpftrace'], stdout }),
    rec(3, { op: 'readdir', name: 'net-devices', path: '/sys/class/net', stdout: 'lo\ntap7\n' }),
    rec(4, {
      op: 'readfiles',
      name: 'net-ifindex',
      paths: ['/sys/class/net/lo/ifindex', '/sys/class/net/tap7/ifindex'],
      stdout: JSON.stringify([
        { path: '/sys/class/net/lo/ifindex', text: '1\n' },
        { path: '/sys/class/net/tap7/ifindex', text: '538\n' },
      ]),
    }),
  ];

  it('reports per-device counts, bucket-resolution percentiles, a histogram chart and a warning', () => {
    const r = qdiscLatency.parse(records, { duration: 3000, dev: 'tap7' });
    const data = r.data as QdiscLatencyData;
    assert.deepEqual(data.filter, { dev: 'tap7', ifindex: 538 });
    assert.equal(data.totalPackets, 42);
    assert.deepEqual(data.devices, [
      {
        ifindex: 538,
        dev: 'tap7',
        count: 42,
        enqueued: 42,
        bulkUntimed: 0,
        p50Ns: 8335495,
        p95Ns: 8335495,
        p99Ns: 8335495,
        maxNs: 8335495,
        buckets: [{ lowNs: 4194304, highNs: 8388607, count: 42 }],
      },
    ]);
    assert.equal(r.summary, 'tap7: 42 packets, P50 8.3 ms, P99 8.3 ms, max 8.3 ms (percentiles at log2 bucket resolution)');
    assert.equal(r.severity, 'warning');
    assert.deepEqual(r.charts, [
      {
        kind: 'histogram',
        title: 'tap7: qdisc sojourn time (log2 buckets)',
        unit: 'µs',
        buckets: [{ low: 4194.304, high: 8388.608, count: 42 }],
        percentiles: { P50: 8335.495, P95: 8335.495, P99: 8335.495, max: 8335.495 },
      },
    ]);
    assert.deepEqual(r.tables![0]!.rows, [['tap7', 538, 42, 42, '8.3 ms', '8.3 ms', '8.3 ms', '8.3 ms']]);
  });

  it('names unknown ifindexes, notes untimed bulk dequeues, and stays info under 1 ms', () => {
    const out = [
      '{"type": "attached_probes", "data": {"probes": 4}}',
      '',
      '{"type": "map", "data": {"@bulk_untimed": {"9": 3}}}',
      '{"type": "map", "data": {"@enqueued": {"1": 10, "9": 5}}}',
      '{"type": "map", "data": {"@max_ns": {"1": 900, "9": 60000}}}',
      '{"type": "hist", "data": {"@sojourn_ns": {"1": [{"min": 256, "max": 511, "count": 9}, {"min": 512, "max": 1023, "count": 1}], "9": [{"min": 32768, "max": 65535, "count": 2}]}}}',
    ].join('\n');
    const r = qdiscLatency.parse([{ ...records[1]!, stdout: out }, records[2]!, records[3]!], { duration: 1000 });
    const data = r.data as QdiscLatencyData;
    assert.deepEqual(
      data.devices.map((d) => [d.dev, d.count, d.p50Ns, d.p99Ns, d.bulkUntimed]),
      [
        ['lo', 10, 511, 900, 0],
        ['ifindex 9', 2, 60000, 60000, 3],
      ],
    );
    assert.equal(r.severity, 'info');
    assert.deepEqual(data.notes, [
      'ifindex 9: 3 packets left in bulk dequeues and were not timed',
      'ifindex 9 has no device of that index in this namespace (a device of another namespace?)',
    ]);
    assert.equal(r.summary, 'ifindex 9: 2 packets, P50 60 µs, P99 60 µs, max 60 µs (worst P99 of 2 devices, 12 packets in all) (percentiles at log2 bucket resolution)');
  });
});
