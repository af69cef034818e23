// The runner's confirmStep hook (guided mode), in-process with the file probe: one decision
// per step visit, skip and quit, and steps without a machine timeout while a person decides.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { diagnose, resume, QUIT_BY_OPERATOR, SKIPPED_BY_OPERATOR, type StepConfirmation, type StepDecision } from '../../engine/run/runner.js';
import { loadRunbookFile } from '../../engine/runbook/load.js';
import { fileProbeCatalog as catalog } from '../helpers/file-probe.js';

const runbook = loadRunbookFile(join(packageRoot(), 'test', 'runbooks', 'valid', 'runner-test.yaml'), catalog);
const work = mkdtempSync(join(tmpdir(), 'ebpfnet-confirm-'));
after(() => rmSync(work, { recursive: true, force: true }));
const outDir = join(work, 'runs');

let n = 0;
function valueFile(value: string): string {
  const path = join(work, `value-${n++}`);
  writeFileSync(path, value);
  return path;
}

/** A confirmStep answering `decide(step)` and remembering what it was asked. */
function confirmer(decide: (request: StepConfirmation) => StepDecision | Promise<StepDecision>) {
  const asked: StepConfirmation[] = [];
  return {
    asked,
    confirmStep: async (request: StepConfirmation) => {
      asked.push(request);
      return decide(request);
    },
  };
}

describe('the confirmStep hook', () => {
  test('asked once per step visit with every probe of the step, its params rendered; "run" runs them', async () => {
    const path = valueFile('42');
    const c = confirmer(() => 'run');
    const { record } = await diagnose({ runbook, catalog, inputs: { path }, outDir, confirmStep: c.confirmStep });
    assert.equal(record.conclusion?.id, 'high');
    assert.deepEqual(c.asked.map((r) => `${r.step.id}#${r.visit}`), ['read#1', 'confirm#1']);
    const read = c.asked[0]!;
    assert.deepEqual(read.invocations.map((i) => i.alias).sort(), ['first', 'second']);
    assert.equal(read.invocations.find((i) => i.alias === 'first')!.params.path, path);
    assert.equal(read.scope.inputs.path, path);
    // The second step's scope sees the first step's findings.
    assert.equal((c.asked[1]!.scope.findings.first as { value: number }).value, 42);
  });

  test('"skip" records each probe as skipped by the operator, and on_error routes the run', async () => {
    const c = confirmer((r) => (r.step.id === 'read' ? 'skip' : 'run'));
    const { record } = await diagnose({ runbook, catalog, inputs: { path: valueFile('42') }, outDir, confirmStep: c.confirmStep });
    assert.equal(record.status, 'completed');
    assert.equal(record.conclusion?.id, 'broken');
    assert.equal(record.timeline[0]!.branch?.kind, 'on_error');
    assert.deepEqual(
      record.findings.map((f) => [f.alias, f.status, f.reason]).sort(),
      [['first', 'skipped', SKIPPED_BY_OPERATOR], ['second', 'skipped', SKIPPED_BY_OPERATOR]],
    );
  });

  test('"quit" interrupts the run before its probes run; resume finishes it', async () => {
    const c = confirmer(() => 'quit');
    const first = await diagnose({ runbook, catalog, inputs: { path: valueFile('42') }, outDir, confirmStep: c.confirmStep });
    assert.equal(first.record.status, 'interrupted');
    assert.equal(first.record.interruptions[0]?.reason, QUIT_BY_OPERATOR);
    assert.equal(first.record.interruptions[0]?.step, 'read');
    assert.ok(first.record.findings.every((f) => f.status === 'interrupted' && f.driver === 'command' && f.durationMs === 0), 'no probe ran');
    const resumed = await resume({ bundleDir: first.bundle.dir, catalog, loadRunbook: (file) => loadRunbookFile(file, catalog) });
    assert.equal(resumed.record.status, 'completed');
    assert.equal(resumed.record.conclusion?.id, 'high');
  });

  test('a decision slower than the step timeout does not time the step out', async () => {
    const c = confirmer(() => new Promise((resolve) => setTimeout(() => resolve('run'), 3500)));
    const { record } = await diagnose({ runbook, catalog, inputs: { path: valueFile('42') }, outDir, confirmStep: c.confirmStep });
    assert.equal(record.conclusion?.id, 'high', 'the 3s step timeout did not fire while the decision waited 3.5s');
    assert.equal(record.timeline[0]!.branch?.kind, 'next');
  });

  test('each probe keeps its own timeout when the step has none', async () => {
    const started = Date.now();
    const c = confirmer(() => 'run');
    const { record } = await diagnose({ runbook, catalog, inputs: { path: valueFile('42'), delay: '5s' }, outDir, confirmStep: c.confirmStep });
    assert.ok(Date.now() - started < 4800, 'the 5s probe was cut at its 3s timeout');
    assert.equal(record.conclusion?.id, 'broken');
    assert.equal(record.findings.find((f) => f.alias === 'first')?.status, 'timeout');
  });
});
