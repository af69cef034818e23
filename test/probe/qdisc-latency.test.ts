import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { packageRoot } from '../../engine/package-info.js';
import type { BpftraceRunRecord } from '../../engine/probe/bpftrace.js';
import { readEvidence } from '../../engine/probe/evidence.js';
import type { OverheadReport } from '../../engine/probe/overhead.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params, ProbeDefinition, RawRecord } from '../../engine/probe/types.js';
import { QDISC_LATENCY_BUDGET, fmtNs, qdiscLatency, type QdiscLatencyData } from '../../probes/qdisc.latency/probe.js';
import { tempBundle, type TempBundle } from '../helpers/bundle.js';
import { cannotBuildWith, createVethPair, run, type VethPair } from '../helpers/netns.js';
import { perfAttached, whenPerfAttached } from '../helpers/bpf-links.js';
import { loadedPrograms } from '../native/support.js';

function latency(params: Record<string, unknown>) {
  return { step: 'sample', alias: 'lat', probe: 'qdisc.latency', params: params as Params };
}

const cannot = await cannotBuildWith([['tc', '-V'], 'iproute2'], [['bpftrace', '--version'], 'bpftrace'], [['bpftool', 'version'], 'bpftool']);

/** What the bpftrace run of a finding's evidence recorded (pid, programs, exit). */
async function bpftraceRun(rawDir: string): Promise<BpftraceRunRecord> {
  const rec = (await readEvidence(rawDir)).records.find((r) => r.name === 'bpftrace-attach');
  assert.ok(rec, 'no bpftrace-attach record');
  return JSON.parse(rec.stdout) as BpftraceRunRecord;
}

/** The bpftrace of `run` is gone and so are its programs. */
async function assertGone(ran: BpftraceRunRecord): Promise<void> {
  assert.ok(ran.pid !== null);
  assert.equal(existsSync(`/proc/${ran.pid}`), false, `bpftrace ${ran.pid} still runs`);
  const loaded = new Set(loadedPrograms().map((p) => p.id));
  assert.deepEqual(
    ran.programs.filter((p) => loaded.has(p.progId)),
    [],
    'its programs are unloaded',
  );
}

/** The same finding from the recorded evidence, with no bpftrace run. */
async function assertReplays(f: Finding, params: Record<string, unknown>, b: TempBundle, from: string): Promise<void> {
  const replay = await runProbe(qdiscLatency, latency(params), b.opts(`${from}-replay`, { replayFrom: b.dir(from) }));
  assert.equal(replay.status, 'ok', replay.reason);
  assert.equal(replay.driver, 'replay');
  assert.ok(replay.durationMs < 500, `replay took ${replay.durationMs} ms`);
  assert.deepEqual(replay.data, f.data);
  assert.equal(replay.summary, f.summary);
  assert.deepEqual(replay.charts, f.charts);
  assert.deepEqual(replay.tables, f.tables);
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
    // A third device with a qdisc neither run watches: its trickle runs their programs (they
    // filter inside) all through the window, so the guard's sampled time sees runs however late
    // a slow machine starts it after the burst.
    const third = await createVethPair(t);
    for (const p of [shaped, other, third]) await run(['sysctl', '-q', '-w', `net.ipv6.conf.${p.hostDev}.disable_ipv6=1`]);
    await run(['tc', 'qdisc', 'add', 'dev', third.hostDev, 'root', 'pfifo']);
    await run(['tc', 'qdisc', 'add', 'dev', shaped.hostDev, 'root', 'handle', '9:', 'tbf', 'rate', '1mbit', 'burst', '2kb', 'latency', '100ms']);
    await shaped.ping({ count: 1 }); // resolve ARP before the window
    await delay(1000); // let the tbf bucket refill

    const b = await tempBundle(t, 'ebpfnet-qlat-');
    const tracepoints = ['qdisc_enqueue', 'qdisc_dequeue'];
    const attachedBefore = new Map(tracepoints.map((n) => [n, perfAttached(n)]));
    const trickle = execa('ping', ['-n', '-q', '-i', '0.05', '-c', '600', third.peerIp], { reject: false, stdin: 'ignore' });
    t.after(() => trickle.kill());
    const onShaped = runProbe(qdiscLatency, latency({ dev: shaped.hostDev, duration: '4s' }), b.opts('shaped'));
    const onOther = runProbe(qdiscLatency, latency({ dev: other.hostDev, duration: '4s' }), b.opts('other'));
    // Both runs' programs attached, not only loaded, before the burst; bpftool names them: the
    // finding must say the same of them.
    const fresh = await whenPerfAttached(tracepoints, attachedBefore, 2);
    const enqIds = fresh.get('qdisc_enqueue')!;
    const deqIds = fresh.get('qdisc_dequeue')!;

    // 50 datagrams of 200 bytes = 242-byte frames: 12100 bytes, within the tbf's limit
    // (rate x latency + burst = 12500 + 2048), so none is dropped and all queue.
    const n = 50;
    const frame = 200 + 8 + 20 + 14;
    await udpBurst(shaped, n, 200);
    const [f, idle] = await Promise.all([onShaped, onOther]);
    trickle.kill();
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
    // A slow machine's qdisc dequeues in bulk, and only a bulk's first packet is timed: the rest are counted untimed.
    const dequeued = d.count + d.bulkUntimed;
    assert.ok(dequeued >= n && dequeued <= n + 2, `timed ${d.count} packets and ${d.bulkUntimed} untimed in bulks for ${n} sent (${d.enqueued} enqueued)`);
    // Every timed packet was enqueued; one more may have been enqueued in the window's last
    // moment and still be queued when it closed (one CI run counted 51 for 50 timed).
    assert.ok(d.enqueued >= dequeued && d.enqueued <= dequeued + 2, `enqueued ${d.enqueued}, dequeued ${dequeued}`);

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

    // Attach facts: bpftrace compiled and attached in attachMs, one program per qdisc
    // tracepoint and one for the window's interval; END holds no program while tracing.
    const a = data.attach;
    t.diagnostic(`attachMs ${a.attachMs}, loadedMs ${a.loadedMs}, ${a.programCount} programs; overhead ${JSON.stringify(data.overhead)}`);
    assert.ok(a.attachMs !== null && a.attachMs > 0 && a.attachMs < f.durationMs, `attachMs ${a.attachMs}`);
    assert.ok(a.loadedMs !== null && a.loadedMs >= a.attachMs);
    assert.equal(a.attachedProbes, 4);
    assert.deepEqual(a.probes, ['tracepoint:qdisc:qdisc_enqueue', 'tracepoint:qdisc:qdisc_dequeue', 'interval:ms:4000', 'END']);
    assert.equal(a.programCount, a.attachedProbes - 1);
    assert.deepEqual(
      a.programs.map((p) => [p.progType, p.method, p.target]),
      [
        [5, 'tracepoint', 'tracepoint:qdisc:qdisc_enqueue'],
        [5, 'tracepoint', 'tracepoint:qdisc:qdisc_dequeue'],
        [7, 'perf_event', 'interval:ms:4000'],
      ],
    );
    assert.ok(enqIds.includes(a.programs[0]!.progId), `enqueue program ${a.programs[0]!.progId} not among bpftool's ${enqIds}`);
    assert.ok(deqIds.includes(a.programs[1]!.progId), `dequeue program ${a.programs[1]!.progId} not among bpftool's ${deqIds}`);
    assert.deepEqual(f.tables[1]!.rows, a.programs.map((p) => [p.progId, p.method, p.target!, a.attachMs!]));
    assert.match(f.tables[1]!.title, /^bpftrace programs: 3, attached_probes [\d.]+ ms after start \(compile included\)$/);

    // Within the probe's own budget: watched, not stopped, the whole window.
    assert.equal(data.windowMs, 4000);
    assert.equal(data.stopped, undefined);
    const o = data.overhead as OverheadReport;
    assert.deepEqual(o.budget, QDISC_LATENCY_BUDGET);
    assert.equal(o.stopped, undefined);
    assert.equal(o.stats, 'BPF_ENABLE_STATS');
    // Sampled statistics (the first second, then one interval in four): a part of the runs, two per packet timed.
    assert.ok(o.runCnt > 0 && o.sampledMs! < o.windowMs, `${o.runCnt} program runs in ${o.sampledMs} ms sampled of ${o.windowMs}`);
    assert.ok(o.cpu < QDISC_LATENCY_BUDGET.cpu && o.nsPerEvent !== null && o.nsPerEvent > 0);
    assert.equal(f.tables[2]!.title, 'Overhead of the BPF programs');
    assert.equal(f.tables[2]!.rows[0]!.at(-1), 'within budget');
    await assertGone(await bpftraceRun(b.dir('shaped')));

    // Replay: the same finding from the recorded evidence, with no bpftrace run (which takes
    // over a second to start, let alone the 4 s window).
    await assertReplays(f, { dev: shaped.hostDev, duration: '4s' }, b, 'shaped');
  });

  it('stops early past a tiny budget, keeping what it timed, while the default budget runs its window; both replay', async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    await run(['tc', 'qdisc', 'add', 'dev', pair.hostDev, 'root', 'handle', '9:', 'tbf', 'rate', '1gbit', 'burst', '64kb', 'latency', '50ms']);
    await pair.ping({ count: 1 }); // resolve ARP first

    // 100 pings a second through the tbf from before bpftrace attaches to after both end:
    // ~200 program runs/s, far over a budget of 0.0001% of a CPU, far under the default.
    let done = false;
    let sent = 0;
    const traffic = (async () => {
      while (!done) sent += (await pair.ping({ count: 20, interval: 0.01 })).transmitted;
    })();
    const b = await tempBundle(t, 'ebpfnet-qlat-');
    const params = { dev: pair.hostDev, duration: '8s' };
    const tiny = runProbe(qdiscLatency, latency(params), b.opts('tiny', { budget: { cpu: 0.000001 } }));
    const normal = runProbe(qdiscLatency, latency(params), b.opts('normal'));
    const [f, g] = await Promise.all([tiny, normal]).finally(() => (done = true));
    await traffic;

    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as QdiscLatencyData;
    t.diagnostic(`tiny budget: ${f.summary}; window ${data.windowMs} ms of 8000, probe ${f.durationMs} ms (attach ${data.attach.attachMs} ms); default budget: window ${(g.data as QdiscLatencyData).windowMs} ms, probe ${g.durationMs} ms; ${sent} pings`);
    assert.match(data.stopped ?? '', /^overhead budget exceeded at [\d.]+% CPU \(budget [\d.]+%\) after \d/);
    assert.equal(data.overhead?.stopped, data.stopped);
    assert.ok(f.summary.endsWith(` (stopped: ${data.stopped})`), f.summary);
    assert.ok(data.notes.some((n) => n.startsWith(`stopped early: ${data.stopped}`)), JSON.stringify(data.notes));
    // Ended well before its 8 s window, yet with the packets it timed until then.
    assert.ok(data.windowMs !== null && data.windowMs < 4000, `window ${data.windowMs} ms`);
    assert.ok(f.durationMs < g.durationMs - 2000, `stopped probe ${f.durationMs} ms, full one ${g.durationMs} ms`);
    assert.equal(data.devices.length, 1);
    assert.equal(data.devices[0]!.dev, pair.hostDev);
    assert.ok(data.devices[0]!.count > 0 && data.totalPackets === data.devices[0]!.count, JSON.stringify(data.devices[0]));
    assert.equal(data.attach.programCount, 3);
    assert.equal(f.tables.at(-1)!.rows[0]!.at(-1), `stopped: ${data.stopped}`);
    const ran = await bpftraceRun(b.dir('tiny'));
    assert.equal(ran.stopped, 'overhead');
    assert.equal(ran.exitCode, 0, 'bpftrace exited by itself on SIGINT, printing its maps');
    await assertGone(ran);

    // The default budget is not reached by the same traffic: the whole window.
    assert.equal(g.status, 'ok', g.reason);
    const full = g.data as QdiscLatencyData;
    assert.equal(full.stopped, undefined);
    assert.equal(full.windowMs, 8000);
    assert.ok(full.devices[0]!.count > data.devices[0]!.count, `${full.devices[0]!.count} packets over the window, ${data.devices[0]!.count} before the stop`);
    assert.ok(!g.summary.includes('stopped'), g.summary);

    await assertReplays(f, params, b, 'tiny');
    await assertReplays(g, params, b, 'normal');
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
  // Real bpftrace 0.17 output of probes/qdisc.latency/qdisc.latency.bt for a ping through a 1mbit tbf on ifindex 538.
  const stdout = readFileSync(join(packageRoot(), 'test', 'fixtures', 'bpftrace', 'qdisc-latency.jsonl'), 'utf8');
  const rec = (seq: number, r: Partial<RawRecord> & Pick<RawRecord, 'op' | 'name'>): RawRecord => ({ seq, at: 0, durationMs: 1, stdout: '', stderr: '', exitCode: 0, ...r });
  const programs = [
    { progId: 101, progType: 5, method: 'tracepoint', target: 'tracepoint:qdisc:qdisc_enqueue' },
    { progId: 102, progType: 5, method: 'tracepoint', target: 'tracepoint:qdisc:qdisc_dequeue' },
    { progId: 103, progType: 7, method: 'perf_event', target: 'interval:ms:3000' },
  ];
  const ran: BpftraceRunRecord = {
    argv: ['bpftrace', '-f', 'json', '-e', '(script)', '3000', '538'],
    pid: 4242,
    probes: ['tracepoint:qdisc:qdisc_enqueue', 'tracepoint:qdisc:qdisc_dequeue', 'interval:ms:3000', 'END'],
    attachMs: 1234.5,
    loadedMs: 1301.2,
    programs,
    windowMs: 3000,
    exitCode: 0,
    signal: null,
    stderr: '',
  };
  const overhead: OverheadReport = {
    budget: QDISC_LATENCY_BUDGET,
    stats: 'BPF_ENABLE_STATS',
    windowMs: 2750,
    runCnt: 90,
    runTimeNs: 22_500,
    cpu: 0.0000082,
    peakCpu: 0.00002,
    eventsPerSec: 32.7,
    peakEventsPerSec: 80,
    nsPerEvent: 250,
  };
  const records: RawRecord[] = [
    rec(1, { op: 'read', name: 'ifindex', path: '/sys/class/net/tap7/ifindex', stdout: '538\n' }),
    rec(2, { op: 'capture', name: 'bpftrace', stdout }),
    rec(3, { op: 'capture', name: 'bpftrace-attach', stdout: JSON.stringify(ran) }),
    rec(4, { op: 'capture', name: 'bpftrace-overhead', stdout: JSON.stringify(overhead) }),
    rec(5, { op: 'readdir', name: 'net-devices', path: '/sys/class/net', stdout: 'lo\ntap7\n' }),
    rec(6, {
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

  it('carries the attach facts and the overhead of the bpftrace run into data and tables', () => {
    const r = qdiscLatency.parse(records, { duration: 3000, dev: 'tap7' });
    const data = r.data as QdiscLatencyData;
    assert.deepEqual(data.attach, { attachMs: 1234.5, loadedMs: 1301.2, attachedProbes: 4, probes: ran.probes, programCount: 3, programs });
    assert.equal(data.windowMs, 3000);
    assert.deepEqual(data.overhead, overhead);
    assert.equal(data.stopped, undefined);
    assert.deepEqual(r.tables!.slice(1), [
      {
        title: 'bpftrace programs: 3, attached_probes 1234.5 ms after start (compile included)',
        columns: ['prog id', 'method', 'target', 'attach ms'],
        rows: [
          [101, 'tracepoint', 'tracepoint:qdisc:qdisc_enqueue', 1234.5],
          [102, 'tracepoint', 'tracepoint:qdisc:qdisc_dequeue', 1234.5],
          [103, 'perf_event', 'interval:ms:3000', 1234.5],
        ],
      },
      {
        title: 'Overhead of the BPF programs',
        columns: ['CPU (avg)', 'CPU (peak)', 'events/s', 'ns/event', 'budget', 'statistics', 'outcome'],
        rows: [['0.00%', '0.00%', 33, 250, '5.00% CPU, 250000 events/s', 'BPF_ENABLE_STATS', 'within budget']],
      },
    ]);
  });

  it('says when the overhead guard stopped bpftrace, and over which window it counted', () => {
    const stopped = 'overhead budget exceeded at 6.8% CPU (budget 5.0%) after 521ms';
    const early = records.map((r) =>
      r.name === 'bpftrace-attach'
        ? { ...r, stdout: JSON.stringify({ ...ran, windowMs: 530, stopped: 'overhead' }) }
        : r.name === 'bpftrace-overhead'
          ? { ...r, stdout: JSON.stringify({ ...overhead, stopped }) }
          : r,
    );
    const r = qdiscLatency.parse(early, { duration: 3000, dev: 'tap7' });
    const data = r.data as QdiscLatencyData;
    assert.equal(data.stopped, stopped);
    assert.equal(data.windowMs, 530);
    assert.equal(data.totalPackets, 42, 'what was gathered until the stop is kept');
    assert.equal(r.summary, `tap7: 42 packets, P50 8.3 ms, P99 8.3 ms, max 8.3 ms (percentiles at log2 bucket resolution) (stopped: ${stopped})`);
    assert.deepEqual(data.notes, [`stopped early: ${stopped}; the counts cover the 530ms before`]);
    assert.equal(r.tables!.at(-1)!.rows[0]!.at(-1), `stopped: ${stopped}`);

    // No packet before the stop: the summary names the window it had.
    const idle = early.map((x) => (x.name === 'bpftrace' ? { ...x, stdout: '{"type": "attached_probes", "data": {"probes": 4}}\n\n\n' } : x));
    assert.equal(qdiscLatency.parse(idle, { duration: 3000, dev: 'tap7' }).summary, `no packet went through the qdisc of tap7 in 530ms (stopped: ${stopped})`);
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
    const r = qdiscLatency.parse([{ ...records[1]!, stdout: out }, records[2]!, records[3]!, records[4]!, records[5]!], { duration: 1000 });
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
