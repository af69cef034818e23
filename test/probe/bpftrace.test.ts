import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { programRunStats } from '../../engine/native/stats.js';
import { packageRoot } from '../../engine/package-info.js';
import {
  BPFTRACE_KILL_GRACE_MS,
  bpftraceArgv,
  bpftraceError,
  histPercentile,
  loadBpftraceScript,
  parseBpftraceJson,
  progTypeName,
  readBpftrace,
  runBpftrace,
  scriptProbes,
  type BpftraceRunRecord,
} from '../../engine/probe/bpftrace.js';
import { LiveIO } from '../../engine/probe/live-io.js';
import { ReplayIO } from '../../engine/probe/replay-io.js';
import type { RawRecord } from '../../engine/probe/types.js';

// Real output of bpftrace 0.17 on this host (`-f json`), kept small: see the files' scripts in
// the comments of each test.
const fixturePath = (name: string) => join(packageRoot(), 'test', 'fixtures', 'bpftrace', name);
const fixture = (name: string) => readFileSync(fixturePath(name), 'utf8');

/** bpftrace processes this test process started (other sessions may run their own). */
function ourBpftraces(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      if (m && m[1] === 'bpftrace' && Number(m[2]) === process.pid) pids.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

/** Ids of every loaded BPF program (bpftool). */
async function loadedProgramIds(): Promise<Set<number>> {
  const r = await execa('bpftool', ['-j', 'prog', 'show'], { stdin: 'ignore' });
  return new Set((JSON.parse(String(r.stdout) || '[]') as Array<{ id: number }>).map((p) => p.id));
}

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function runRecord(records: RawRecord[], name: string): BpftraceRunRecord {
  const rec = records.find((r) => r.op === 'capture' && r.name === `${name}-attach`);
  assert.ok(rec, `no ${name}-attach record`);
  return JSON.parse(rec.stdout) as BpftraceRunRecord;
}

describe('parseBpftraceJson on bpftrace 0.17 output', () => {
  it('reads scalar, keyed and multi-key maps, hist/lhist incl. the negative and zero buckets, stats, blank lines', () => {
    // BEGIN { @z = hist(0); @z = hist(0); @n = hist(-5); @n = hist(1); @big = hist(3000000000);
    //   @k[1, "a"] = count(); @k[2, "b"] = count(); @s = count(); @str["x y"] = sum(5);
    //   @lh = lhist(5, 0, 10, 2); @st = stats(7); @avg = avg(3); exit(); }
    const text = fixture('edge-cases.jsonl');
    assert.ok(text.includes('\n\n'), 'the fixture keeps the blank lines bpftrace prints');
    const out = parseBpftraceJson(text);
    assert.equal(out.attachedProbes, 1, 'one BEGIN probe');
    assert.deepEqual(out.maps, { '@k': { '1,a': 1, '2,b': 1 }, '@s': 1, '@str': { 'x y': 5 } });
    assert.deepEqual(out.hists['@z'], { '': [{ low: 0, high: 0, count: 2 }] });
    assert.deepEqual(out.hists['@n'], {
      '': [
        { low: -Infinity, high: -1, count: 1 },
        { low: 0, high: 0, count: 0 },
        { low: 1, high: 1, count: 1 },
      ],
    });
    assert.deepEqual(out.hists['@lh'], { '': [{ low: 4, high: 5, count: 1 }] });
    assert.deepEqual(out.stats, { '@avg': 3, '@st': { count: 1, average: 7, total: 7 } });
    assert.deepEqual(out.printf, []);
    assert.equal(out.lostEvents, 0);
    assert.deepEqual(out.other, []);
  });

  it('reads keyed histograms (per ifindex) and printf lines', () => {
    const out = parseBpftraceJson(fixture('keyed-hist.jsonl'));
    assert.equal(out.attachedProbes, 5);
    assert.deepEqual(out.printf, ['hello 0\n']);
    assert.deepEqual(out.maps['@enq'], { '538': 52 });
    const h = out.hists['@us']!['538']!;
    assert.equal(h.length, 14);
    assert.deepEqual(h[0], { low: 1, high: 1, count: 1 });
    assert.deepEqual(h[13], { low: 8192, high: 16383, count: 35 });
    assert.equal(h.reduce((s, b) => s + b.count, 0), 51);
    assert.deepEqual(out.hists['@h2'], { '': [{ low: 4, high: 7, count: 51 }] });

    const p = parseBpftraceJson(fixture('printf.jsonl'));
    assert.deepEqual(p.printf, ['start a b 100\n', 'tick\n'], 'a positional string with a space arrives whole');
  });

  it('sums lost events, keeps unknown types, and refuses a line that is not JSON', () => {
    const out = parseBpftraceJson('{"type": "lost_events", "data": {"events": 3}}\n{"type": "lost_events", "data": {"events": 4}}\n{"type": "time", "data": "12:00:00\\n"}\n');
    assert.equal(out.lostEvents, 7);
    assert.deepEqual(out.other, [{ type: 'time', data: '12:00:00\n' }]);
    assert.equal(out.attachedProbes, null);
    assert.throws(() => parseBpftraceJson('{"type": "map"}\nAttaching 2 probes...\n'), /line 2 is not JSON/);
    assert.throws(() => parseBpftraceJson('{"type": "hist", "data": {"@h": [{"min": 1}]}}'), /bucket without max\/count/);
  });

  it('estimates percentiles as the upper bound of the bucket holding them', () => {
    const b = [
      { low: 0, high: 0, count: 0 },
      { low: 1, high: 1, count: 50 },
      { low: 2, high: 3, count: 45 },
      { low: 4, high: 7, count: 5 },
    ];
    assert.equal(histPercentile(b, 50), 1);
    assert.equal(histPercentile(b, 51), 3);
    assert.equal(histPercentile(b, 95), 3);
    assert.equal(histPercentile(b, 96), 7);
    assert.equal(histPercentile(b, 100), 7);
    assert.equal(histPercentile([], 50), null);
  });
});

describe('the bpftrace driver', () => {
  it('passes the duration and vars as positional arguments, never in the script text', () => {
    const script = loadBpftraceScript('qdisc.latency.bt');
    assert.match(script, /interval:ms:\$1/);
    const argv = bpftraceArgv(script, { durationMs: 1500, vars: [7, 'eth0; rm -rf /'] });
    assert.deepEqual(argv, ['bpftrace', '-f', 'json', '-e', script, '1500', '7', 'eth0; rm -rf /']);
    assert.throws(() => bpftraceArgv(script, { durationMs: 0 }), /duration/);
    assert.throws(() => bpftraceArgv(script, { durationMs: 10, vars: [1.5] }), /not an integer/);
    assert.throws(() => loadBpftraceScript('../etc/passwd'), /<probe id>\.bt/);
  });

  it('lists a script\'s attach points, skipping comments, strings, predicates, includes and structs', () => {
    assert.deepEqual(scriptProbes(loadBpftraceScript('qdisc.latency.bt')), ['tracepoint:qdisc:qdisc_enqueue', 'tracepoint:qdisc:qdisc_dequeue', 'interval:ms:$1', 'END']);
    assert.deepEqual(scriptProbes(fixture('window.bt')), ['BEGIN', 'interval:ms:$1']);
    const tricky = [
      '#include <linux/skbuff.h>',
      'struct pair { int a; int b; };',
      '/* kprobe:commented_out { } */',
      'uprobe:/bin/bash:readline, kretprobe:tcp_sendmsg',
      '/pid == 1 && comm != "a{b}"/ { printf("} // not a comment {\\n"); if (1) { @x = 1; } }',
      'k:vfs_read // a comment { with a brace',
      '{ @y = count(); }',
    ].join('\n');
    assert.deepEqual(scriptProbes(tricky), ['uprobe:/bin/bash:readline', 'kretprobe:tcp_sendmsg', 'k:vfs_read']);
    assert.equal(progTypeName(5), 'tracepoint');
    assert.equal(progTypeName(7), 'perf_event');
    assert.equal(progTypeName(2), 'kprobe');
    assert.equal(progTypeName(17), 'raw_tracepoint');
    assert.equal(progTypeName(26), 'tracing');
    assert.equal(progTypeName(99), 'prog_type 99');
  });

  it('says in one line why bpftrace failed, past the RLIMIT_MEMLOCK notice', () => {
    const notice = 'ERROR: Unknown error -1: couldn\'t set RLIMIT_MEMLOCK for bpftrace. If your program is not loading, you can try "ulimit -l 8192" to fix the problem\n';
    // Real stderr of bpftrace 0.17 on this host.
    assert.equal(
      bpftraceError(`${notice}stdin:1:1-24: ERROR: tracepoint not found: qdisc:nosuch\ntracepoint:qdisc:nosuch { @x = count(); }\n~~~~~~~~~~~~~~~~~~~~~~~\n`, 'x.bt'),
      'x.bt:1:1-24: tracepoint not found: qdisc:nosuch',
    );
    assert.equal(
      bpftraceError(
        `${notice}stdin:1:1-20: WARNING: nosuchfn_xyz is not traceable (either non-existing, inlined, or marked as "notrace"); attaching to it will likely fail\nkprobe:nosuchfn_xyz { }\n~~~\ncreate_probe_event: open(/sys/kernel/tracing/kprobe_events): No such file or directory\nERROR: Error attaching probe: 'kprobe:nosuchfn_xyz'\n`,
        'y.bt',
      ),
      "Error attaching probe: 'kprobe:nosuchfn_xyz'",
    );
    assert.equal(bpftraceError(notice, 'z.bt'), '');
  });

  it('runs a real script for its window, records how it attached, and replays it', async () => {
    assert.equal(process.geteuid?.(), 0, 'bpftrace needs root: CI runs the tests as root');
    const signal = new AbortController().signal;
    const io = new LiveIO(signal);
    const opts = { durationMs: 300, vars: ['x y', 42] };
    const started = Date.now();
    const rec = await runBpftrace(io, 'bt', fixturePath('window.bt'), opts);
    const took = Date.now() - started;
    const out = parseBpftraceJson(rec.stdout);
    assert.equal(out.attachedProbes, 2);
    assert.deepEqual(out.printf, ['args x y 42\n']);
    assert.equal(out.maps['@ticks'], 1, 'the window ended on the first interval tick');
    assert.ok(took >= 300 && took < 20_000, `bpftrace took ${took} ms for a 300 ms window`);

    const records = io.records();
    assert.deepEqual(
      records.map((r) => [r.op, r.name]),
      [
        ['capture', 'bt'],
        ['capture', 'bt-attach'],
        ['capture', 'bt-overhead'],
      ],
    );
    const ran = runRecord(records, 'bt');
    assert.deepEqual(ran.argv, bpftraceArgv(fixture('window.bt'), opts), 'the exact script text and arguments');
    assert.equal(ran.exitCode, 0);
    assert.equal(ran.error, undefined);
    assert.ok(ran.pid !== null && ran.pid > 0);
    const r = readBpftrace(records, 'bt');
    assert.ok(r.attach.attachMs !== null && r.attach.attachMs > 0 && r.attach.attachMs < took, `attachMs ${r.attach.attachMs}`);
    assert.ok(r.attach.loadedMs !== null && r.attach.loadedMs >= r.attach.attachMs);
    assert.deepEqual(r.attach.probes, ['BEGIN', 'interval:ms:300']);
    // BEGIN ran once at start: the interval is the only program held while tracing.
    assert.equal(r.attach.attachedProbes, 2);
    assert.equal(r.attach.programCount, 1);
    assert.deepEqual(
      r.attach.programs.map((p) => [p.progType, p.method, p.target]),
      [[7, 'perf_event', 'interval:ms:300']],
    );
    assert.ok(r.windowMs !== null && r.windowMs > 0 && r.windowMs <= 300, `window ${r.windowMs} ms`);
    assert.equal(r.overhead, null, 'no budget, no guard');
    assert.equal(r.stopped, undefined);

    // A replay answers the three captures from the recording: no bpftrace runs.
    const replayIO = new ReplayIO(records, 'recording', signal);
    const t0 = Date.now();
    const again = await runBpftrace(replayIO, 'bt', fixturePath('window.bt'), opts);
    assert.ok(Date.now() - t0 < 200);
    assert.equal(again.stdout, rec.stdout);
    assert.deepEqual(readBpftrace(replayIO.served(), 'bt'), r);
    // A replay running another script text is refused.
    await assert.rejects(
      runBpftrace(new ReplayIO(records, 'recording', signal), 'bt', fixturePath('window.bt'), { ...opts, vars: ['x y', 43] }),
      /^Error: replay mismatch: bt was recorded running window\.bt with arguments \["300","x y","42"\], not \["300","x y","43"\]$/,
    );
  });

  it('fails in one line naming the script and the missing tracepoint, and replays the failure', async () => {
    assert.equal(process.geteuid?.(), 0, 'bpftrace needs root: CI runs the tests as root');
    const signal = new AbortController().signal;
    const io = new LiveIO(signal);
    const expected = /^bpftrace \(missing-tracepoint\.bt\) exited with code 1: missing-tracepoint\.bt:[\d:-]+: tracepoint not found: qdisc:ebpfnet_no_such_tracepoint$/;
    await assert.rejects(runBpftrace(io, 'bt', fixturePath('missing-tracepoint.bt'), { durationMs: 100 }), (err: Error) => {
      assert.match(err.message, expected);
      return true;
    });
    const ran = runRecord(io.records(), 'bt');
    assert.equal(ran.exitCode, 1);
    assert.match(ran.stderr, /ERROR: tracepoint not found/, 'stderr is kept whole in the evidence');
    assert.equal(ran.attachMs, null);
    assert.deepEqual(ran.programs, []);
    await assert.rejects(runBpftrace(new ReplayIO(io.records(), 'recording', signal), 'bt', fixturePath('missing-tracepoint.bt'), { durationMs: 100 }), (err: Error) => {
      assert.match(err.message, expected);
      return true;
    });
  });

  it('says in one line that bpftrace could not start when it is not installed', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent-ebpfnet-test';
    const io = new LiveIO(new AbortController().signal);
    try {
      await assert.rejects(runBpftrace(io, 'bt', fixturePath('window.bt'), { durationMs: 100 }), /^Error: bpftrace could not start: spawn bpftrace ENOENT$/);
    } finally {
      process.env.PATH = path;
    }
    const ran = runRecord(io.records(), 'bt');
    assert.equal(ran.exitCode, 127);
    assert.equal(ran.pid, null);
  });

  // bpftrace 0.17 ignores a SIGINT that arrives outside its epoll_wait (while it attaches, say):
  // the driver repeats it. Both moments must end bpftrace within the grace, by SIGINT.
  for (const moment of ['while its programs are being attached', 'once it traces'] as const) {
    it(`stops bpftrace on abort ${moment}: no process and no program left`, async () => {
      assert.equal(process.geteuid?.(), 0, 'bpftrace needs root: CI runs the tests as root');
      await execa('bpftool', ['version'], { stdin: 'ignore' }).catch(() => assert.fail('needs bpftool (apt-get install bpftool)'));
      const abort = new AbortController();
      const io = new LiveIO(abort.signal);
      const running = runBpftrace(io, 'bt', 'qdisc.latency.bt', { durationMs: 60_000, vars: [0] }).then(
        () => null,
        (err: Error) => err,
      );
      const want = moment === 'once it traces' ? 3 : 1;
      const pid = await waitFor(`bpftrace to load ${want} program(s)`, 30_000, async () => {
        const [p] = ourBpftraces();
        return p !== undefined && (await programRunStats(p)).length >= want ? p : undefined;
      });
      if (moment === 'once it traces') await new Promise((resolve) => setTimeout(resolve, 300));
      const t0 = Date.now();
      abort.abort(new Error('test abort'));
      const err = await running;
      const took = Date.now() - t0;
      assert.equal(err?.message, 'bpftrace (qdisc.latency.bt) was stopped: the probe was aborted');
      assert.ok(took < BPFTRACE_KILL_GRACE_MS, `bpftrace took ${took} ms to exit after the abort`);

      const records = io.records();
      const ran = runRecord(records, 'bt');
      assert.equal(ran.pid, pid);
      assert.equal(ran.stopped, 'abort');
      assert.equal(ran.signal, null, 'it exited by itself on SIGINT, not by SIGKILL');
      assert.equal(ran.exitCode, 0);
      assert.equal(ran.programs.length, 3, JSON.stringify(ran.programs));
      const stdout = records.find((r) => r.name === 'bt')!.stdout;
      assert.equal(parseBpftraceJson(stdout).attachedProbes, 4, 'the partial stdout is kept');

      assert.equal(existsSync(`/proc/${pid}`), false, `bpftrace ${pid} still runs`);
      assert.deepEqual(ourBpftraces(), []);
      const loaded = await loadedProgramIds();
      assert.deepEqual(
        ran.programs.filter((p) => loaded.has(p.progId)),
        [],
        'its programs are unloaded',
      );
    });
  }
});
