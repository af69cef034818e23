import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { bpftraceArgv, histPercentile, loadBpftraceScript, parseBpftraceJson, runBpftrace } from '../../engine/probe/bpftrace.js';
import { LiveIO } from '../../engine/probe/live-io.js';

// Real output of bpftrace 0.17 on this host (`-f json`), kept small: see the files' scripts in
// the comments of each test.
const fixture = (name: string) => readFileSync(join(packageRoot(), 'test', 'fixtures', 'bpftrace', name), 'utf8');

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
    const script = loadBpftraceScript('qdisc-latency.bt');
    assert.match(script, /interval:ms:\$1/);
    const argv = bpftraceArgv(script, { durationMs: 1500, vars: [7, 'eth0; rm -rf /'] });
    assert.deepEqual(argv, ['bpftrace', '-f', 'json', '-e', script, '1500', '7', 'eth0; rm -rf /']);
    assert.throws(() => bpftraceArgv(script, { durationMs: 0 }), /duration/);
    assert.throws(() => bpftraceArgv(script, { durationMs: 10, vars: [1.5] }), /not an integer/);
    assert.throws(() => loadBpftraceScript('../etc/passwd'), /file name in bpf\//);
  });

  it('runs a real script for its window and parses what it printed', async () => {
    assert.equal(process.geteuid?.(), 0, 'bpftrace needs root: CI runs the tests as root');
    const io = new LiveIO(new AbortController().signal);
    const started = Date.now();
    const rec = await runBpftrace(io, 'bt', join(packageRoot(), 'test', 'fixtures', 'bpftrace', 'window.bt'), { durationMs: 300, vars: ['x y', 42] });
    const took = Date.now() - started;
    assert.equal(rec.exitCode, 0, rec.stderr);
    const out = parseBpftraceJson(rec.stdout);
    assert.equal(out.attachedProbes, 2);
    assert.deepEqual(out.printf, ['args x y 42\n']);
    assert.equal(out.maps['@ticks'], 1, 'the window ended on the first interval tick');
    assert.ok(took >= 300 && took < 10_000, `bpftrace took ${took} ms for a 300 ms window`);
  });
});
