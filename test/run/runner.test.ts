// The runner end to end, in-process: real files read through the probe runtime,
// real timers for timeouts, real bundles on disk, replays and resumes.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import type { RunRecord } from '../../engine/run/record.js';
import { diagnose, resume } from '../../engine/run/runner.js';
import { loadRunbookFile } from '../../engine/runbook/load.js';
import { fileProbeCatalog } from '../helpers/file-probe.js';

const catalog = fileProbeCatalog;
const runbookFile = join(packageRoot(), 'test', 'runbooks', 'valid', 'runner-test.yaml');
const runbook = loadRunbookFile(runbookFile, catalog);
const work = mkdtempSync(join(tmpdir(), 'ebpfnet-runner-'));
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
function valueFile(value: string): string {
  const path = join(work, `value-${n++}`);
  writeFileSync(path, value);
  return path;
}

const outDir = join(work, 'runs');
const readRun = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunRecord;

describe('runner', () => {
  test('concurrent probes, a condition, a second step and a conclusion with rendered templates', async () => {
    const path = valueFile('42\n');
    const { bundle, record } = await diagnose({ runbook, catalog, inputs: { path }, outDir });
    assert.equal(record.status, 'completed');
    assert.equal(record.conclusion?.id, 'high');
    assert.equal(record.conclusion?.summary, 'value 42 > 10');
    assert.deepEqual(record.conclusion?.actions, ['Lower it below 10.']);
    assert.deepEqual(record.timeline.map((t) => [t.step, t.status, t.branch?.goto]), [
      ['read', 'done', 'confirm'],
      ['confirm', 'done', 'high'],
    ]);
    assert.equal(record.timeline[0]!.branch?.why, 'The value 42 is above 10.');
    assert.equal(record.timeline[0]!.branch?.condition, 'findings.first.value > inputs.threshold');
    assert.deepEqual(record.findings.map((f) => f.alias).sort(), ['again', 'first', 'second']);
    for (const f of record.findings) {
      assert.equal(f.status, 'ok');
      assert.deepEqual(f.data, { value: 42 });
      assert.ok(f.evidence && existsSync(bundle.resolve(f.evidence)), `evidence folder of ${f.alias}`);
    }
    assert.ok(existsSync(join(bundle.dir, 'snapshot.json')));
    assert.deepEqual(readRun(bundle.dir), record, 'run.json on disk is the final record');
    assert.match(record.command, /^ebpfnet diagnose runner-test --input path=\S+ --input delay=0ms --input threshold=10$/);
  });

  test('a replay answers from the recorded evidence, not the host, and reaches the same conclusion', async () => {
    const path = valueFile('42\n');
    const live = await diagnose({ runbook, catalog, inputs: { path }, outDir });
    writeFileSync(path, '1\n'); // the host changed: a replay must not notice
    const replay = await diagnose({ runbook, catalog, inputs: { path }, outDir, replayFrom: live.bundle.dir });
    assert.equal(replay.record.mode, 'replay');
    assert.equal(replay.record.conclusion?.id, live.record.conclusion?.id);
    assert.deepEqual(replay.record.findings.map((f) => [f.alias, f.data]).sort(), live.record.findings.map((f) => [f.alias, f.data]).sort());
    assert.ok(replay.record.findings.every((f) => f.driver === 'replay'));
  });

  test('a condition that cannot be evaluated counts as false and is recorded; the ask step takes its default', async () => {
    const { record } = await diagnose({ runbook, catalog, inputs: { path: valueFile('5') }, outDir });
    assert.equal(record.conclusion?.id, 'low');
    const read = record.timeline[0]!;
    assert.equal(read.branch?.goto, 'question');
    assert.equal(read.conditionErrors?.length, 1);
    assert.match(read.conditionErrors![0]!, /missing_field/);
    assert.equal(record.timeline[1]!.answer, 'low');
    // A branch may have been missed: the verdict says so and is less certain than declared.
    assert.equal(record.conclusion?.declaredConfidence, 'medium');
    assert.equal(record.conclusion?.confidence, 'low');
    assert.equal(record.conclusion?.caveats?.length, 1);
    assert.match(record.conclusion!.caveats![0]!, /^a condition could not be evaluated and counted as false: read: findings\.first\.missing_field > 1: .*missing_field/);
  });

  test('a finding can teach the run about its target: later steps, run.json and a replay see it', async () => {
    const learnTarget = (target: Record<string, unknown>, f: { alias: string; data: Record<string, unknown> }) =>
      f.alias === 'first' ? { ...target, learned: [...((target.learned as number[] | undefined) ?? []), f.data.value as number] } : null;
    const live = await diagnose({ runbook, catalog, inputs: { path: valueFile('42') }, outDir, learnTarget });
    assert.deepEqual(live.record.target.learned, [42]);
    assert.deepEqual(readRun(live.bundle.dir).target.learned, [42]);
    const replay = await diagnose({ runbook, catalog, inputs: {}, outDir, replayFrom: live.bundle.dir, learnTarget });
    // The replay starts from the target as the live run first knew it, and learns the same.
    assert.equal(live.record.initialTarget?.learned, undefined);
    assert.deepEqual(replay.record.target.learned, [42]);
  });

  test('a caveat of the runbook or of the conclusion that holds lowers the confidence a level and is listed with the verdict', async () => {
    const doubted = await diagnose({ runbook, catalog, inputs: { path: valueFile('43') }, outDir });
    assert.equal(doubted.record.conclusion?.id, 'high');
    assert.equal(doubted.record.conclusion?.confidence, 'medium');
    assert.equal(doubted.record.conclusion?.declaredConfidence, 'high');
    assert.deepEqual(doubted.record.conclusion?.caveats, ['The value 43 is one this runbook doubts.']);
    const own = await diagnose({ runbook, catalog, inputs: { path: valueFile('44') }, outDir });
    assert.equal(own.record.conclusion?.id, 'high');
    assert.deepEqual(own.record.conclusion?.caveats, ['This conclusion doubts 44 on its own.']);
    assert.equal(own.record.conclusion?.confidence, 'medium');
    const plain = await diagnose({ runbook, catalog, inputs: { path: valueFile('42') }, outDir });
    assert.equal(plain.record.conclusion?.confidence, 'high');
    assert.equal(plain.record.conclusion?.declaredConfidence, undefined);
    assert.deepEqual(plain.record.conclusion?.caveats, []);
  });

  test('an answer loops back: the step runs a second visit with its own evidence', async () => {
    const path = valueFile('5');
    let asked = 0;
    const { bundle, record } = await diagnose({
      runbook,
      catalog,
      inputs: { path },
      outDir,
      ask: async () => {
        asked++;
        if (asked === 1) return 'retry';
        writeFileSync(path, '50');
        return 'low';
      },
    });
    assert.equal(asked, 2);
    assert.deepEqual(record.timeline.map((t) => `${t.step}#${t.visit}`), ['read#1', 'question#1', 'read#2', 'question#2']);
    assert.equal(record.conclusion?.id, 'low');
    const firsts = record.findings.filter((f) => f.alias === 'first');
    assert.deepEqual(firsts.map((f) => f.visit), [1, 2]);
    assert.notEqual(firsts[0]!.evidence, firsts[1]!.evidence);
    assert.ok(existsSync(bundle.resolve(firsts[1]!.evidence!)));
  });

  test('a step that outlives its timeout stops its probes and takes on_error', async () => {
    const started = Date.now();
    const { record } = await diagnose({ runbook, catalog, inputs: { path: valueFile('42'), delay: '5s' }, outDir });
    assert.ok(Date.now() - started < 4800, 'the 5s probe was cut at the 3s step timeout');
    assert.equal(record.conclusion?.id, 'broken');
    assert.equal(record.conclusion?.summary, 'first: timeout');
    assert.equal(record.timeline[0]!.branch?.kind, 'timeout');
    const first = record.findings.find((f) => f.alias === 'first');
    assert.equal(first?.status, 'timeout');
    // Evidence the verdict cites but could not gather is named with it.
    assert.ok(record.conclusion?.caveats?.some((c) => /^first \(test\.file\) timeout: /.test(c)), JSON.stringify(record.conclusion?.caveats));
    assert.equal(record.conclusion?.confidence, 'low');
  });

  test('a failing probe is a finding, and on_error routes the run', async () => {
    const { record } = await diagnose({ runbook, catalog, inputs: { path: join(work, 'does-not-exist') }, outDir });
    assert.equal(record.status, 'completed');
    assert.equal(record.conclusion?.id, 'broken');
    assert.equal(record.timeline[0]!.branch?.kind, 'on_error');
    const first = record.findings.find((f) => f.alias === 'first')!;
    assert.equal(first.status, 'error');
    assert.match(first.reason ?? '', /ENOENT|no such file/i);
  });

  test('bad inputs are refused before anything runs', async () => {
    await assert.rejects(diagnose({ runbook, catalog, inputs: {}, outDir }), /input "path" is required/);
    await assert.rejects(diagnose({ runbook, catalog, inputs: { path: 'x', threshold: 'ten' } , outDir }), /input "threshold": expected an integer/);
    await assert.rejects(diagnose({ runbook, catalog, inputs: { path: 'x', nope: '1' }, outDir }), /unknown input "nope"/);
  });

  test('an interrupted run keeps a bundle marked interrupted, and --resume finishes it', async () => {
    const path = valueFile('42');
    const controller = new AbortController();
    setTimeout(() => controller.abort('received SIGINT'), 300);
    const first = await diagnose({ runbook, catalog, inputs: { path, delay: '1s' }, outDir, signal: controller.signal });
    assert.equal(first.record.status, 'interrupted');
    assert.equal(first.record.conclusion, null);
    assert.equal(first.record.interruptions[0]?.reason, 'received SIGINT');
    assert.equal(first.record.timeline[0]?.status, 'interrupted');
    const onDisk = readRun(first.bundle.dir);
    assert.equal(onDisk.status, 'interrupted');
    // The probe that finished before the interruption kept its finding and evidence.
    assert.ok(onDisk.findings.some((f) => f.alias === 'second' && f.status === 'ok'));
    assert.ok(onDisk.findings.some((f) => f.alias === 'first' && f.status === 'interrupted'));

    const resumed = await resume({ bundleDir: first.bundle.dir, catalog, loadRunbook: (file) => loadRunbookFile(file, catalog) });
    assert.equal(resumed.bundle.dir, first.bundle.dir);
    assert.equal(resumed.record.status, 'completed');
    assert.equal(resumed.record.conclusion?.id, 'high');
    assert.equal(resumed.record.resumes.length, 1);
    assert.ok(resumed.record.timeline.some((t) => t.step === 'read' && t.resumed === true && t.status === 'done'));
    await assert.rejects(resume({ bundleDir: first.bundle.dir, catalog, loadRunbook: (file) => loadRunbookFile(file, catalog) }), /already completed/);
  });
});
