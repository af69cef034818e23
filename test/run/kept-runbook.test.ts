// A bundle keeps the runbook it ran (runbook.yaml, named in run.json): --resume and the report
// read it from there, whatever became of the runbook file after the run. Bundles written
// before copies were kept still read the file, as they did.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { ProbeRegistry } from '../../engine/probe/registry.js';
import type { RunRecord } from '../../engine/run/record.js';
import { diagnose, resume, type RunOutcome } from '../../engine/run/runner.js';
import { loadRunbookFile } from '../../engine/runbook/load.js';
import { loadBundle, renderHtml } from '../../reports/html.js';
import { fileProbeCatalog as catalog } from '../helpers/file-probe.js';

const work = mkdtempSync(join(tmpdir(), 'ebpfnet-kept-runbook-'));
after(() => rmSync(work, { recursive: true, force: true }));

const ORIGINAL = readFileSync(join(packageRoot(), 'test', 'runbooks', 'valid', 'runner-test.yaml'), 'utf8');
const SUMMARY = 'summary: value ${findings.first.value} > ${inputs.threshold}';
/** The runbook as someone edits it after the run: the `high` conclusion says something else. */
const EDITED = ORIGINAL.replace(SUMMARY, 'summary: edited after the run');
assert.notEqual(EDITED, ORIGINAL);

const readRun = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunRecord;
const loadFrom = (file: string) => loadRunbookFile(file, catalog);

let n = 0;
/** A run interrupted inside its first step, of a runbook in a file of its own. */
async function interruptedRun(): Promise<{ file: string; run: RunOutcome }> {
  const file = join(work, `runbook-${++n}.yaml`);
  writeFileSync(file, ORIGINAL);
  const path = join(work, `value-${n}`);
  writeFileSync(path, '42\n');
  const controller = new AbortController();
  setTimeout(() => controller.abort('received SIGINT'), 300);
  const run = await diagnose({ runbook: loadFrom(file), catalog, inputs: { path, delay: '1s' }, outDir: join(work, 'runs'), signal: controller.signal });
  assert.equal(run.record.status, 'interrupted');
  return { file, run };
}

/** Makes `dir` look like a bundle of an older version: no copy, and run.json names none. */
function forgetCopy(dir: string): void {
  const record = readRun(dir);
  rmSync(join(dir, record.runbook.copy!));
  delete record.runbook.copy;
  writeFileSync(join(dir, 'run.json'), JSON.stringify(record));
}

describe('the runbook a bundle keeps', () => {
  test('is the exact text of the runbook file, named in run.json with its sha256', async () => {
    const { run } = await interruptedRun();
    const { runbook } = readRun(run.bundle.dir);
    assert.equal(runbook.copy, 'runbook.yaml');
    const kept = readFileSync(join(run.bundle.dir, 'runbook.yaml'), 'utf8');
    assert.equal(kept, ORIGINAL);
    assert.equal(runbook.sha256, createHash('sha256').update(kept).digest('hex'));
  });

  test('--resume runs it though the runbook file changed since the run', async () => {
    const { file, run } = await interruptedRun();
    writeFileSync(file, EDITED);
    const resumed = await resume({ bundleDir: run.bundle.dir, catalog, loadRunbook: loadFrom });
    assert.equal(resumed.record.status, 'completed');
    assert.equal(resumed.record.conclusion?.id, 'high');
    assert.equal(resumed.record.conclusion?.summary, 'value 42 > 10', 'the conclusion as the runbook the run ran words it');
    assert.deepEqual(resumed.record.errors, []);
  });

  test('--resume runs it though the runbook file is gone', async () => {
    const { file, run } = await interruptedRun();
    rmSync(file);
    const resumed = await resume({ bundleDir: run.bundle.dir, catalog, loadRunbook: loadFrom });
    assert.equal(resumed.record.status, 'completed');
    assert.equal(resumed.record.conclusion?.summary, 'value 42 > 10');
  });

  test('the report draws it though the runbook file changed, then is gone', async () => {
    const { file, run } = await interruptedRun();
    await resume({ bundleDir: run.bundle.dir, catalog, loadRunbook: loadFrom });
    for (const change of [() => writeFileSync(file, EDITED), () => rmSync(file)]) {
      change();
      const loaded = loadBundle(run.bundle.dir, catalog);
      assert.equal(loaded.runbookNote, undefined, loaded.runbookNote);
      assert.equal(loaded.runbook?.conclusions.find((c) => c.id === 'high')?.summary, 'value ${findings.first.value} > ${inputs.threshold}');
      const html = await renderHtml(loaded, { catalog });
      // Only the runbook draws the conclusions the run did not reach.
      assert.match(html, /class="node gnode conclusion"[\s\S]*?>changed<\/text>/);
      assert.doesNotMatch(html, /could not be read here|changed since the run/);
    }
    assert.equal(existsSync(file), false);
  });

  test('that this version cannot load (its probe is gone): the report says why and falls back to the file', async () => {
    const { run } = await interruptedRun();
    const loaded = loadBundle(run.bundle.dir, new ProbeRegistry([]));
    assert.equal(loaded.runbook, null, 'the file names the same missing probe');
    assert.match(loaded.runbookNote ?? '', /^the copy of the runbook kept in the bundle does not load here \(\S+\/runbook\.yaml:\d+:\d+: .*test\.file.*\); the runbook \S+ could not be read here/);
  });
});

describe('a bundle written before copies were kept', () => {
  test('--resume reads the runbook file, and says when it changed since the run', async () => {
    const { file, run } = await interruptedRun();
    forgetCopy(run.bundle.dir);
    writeFileSync(file, EDITED);
    const resumed = await resume({ bundleDir: run.bundle.dir, catalog, loadRunbook: loadFrom });
    assert.equal(resumed.record.conclusion?.summary, 'edited after the run');
    assert.deepEqual(resumed.record.errors, [`runbook ${file} changed since the run started; resuming with the new version`]);
  });

  test('the report reads the runbook file, and says when it changed or is gone', async () => {
    const { file, run } = await interruptedRun();
    forgetCopy(run.bundle.dir);
    assert.equal(loadBundle(run.bundle.dir, catalog).runbookNote, undefined, 'the file as the run read it');
    writeFileSync(file, EDITED);
    assert.match(loadBundle(run.bundle.dir, catalog).runbookNote ?? '', /changed since the run \(its sha256 differs\)/);
    rmSync(file);
    const gone = loadBundle(run.bundle.dir, catalog);
    assert.equal(gone.runbook, null);
    assert.match(gone.runbookNote ?? '', /could not be read here: the graph shows only the path taken/);
  });
});
