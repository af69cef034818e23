// Loading runbook files into the Runbook model: the shipped ones, the feature
// fixture, folders, and files that cannot be read.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { probeRegistry } from '../../probes/index.js';
import {
  findRunbooks,
  loadRunbookDir,
  loadRunbookFile,
  loadShippedRunbooks,
  RunbookError,
  shippedRunbooksDir,
} from '../../engine/runbook/load.js';
import type { AskStep, ProbeStep } from '../../engine/runbook/model.js';
import { testCatalog } from './catalog.js';

const root = packageRoot();

function rejection(run: () => unknown): RunbookError {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof RunbookError, `not a RunbookError: ${String(err)}`);
    return err;
  }
  return assert.fail('no error');
}

describe('host-drops.yaml', () => {
  test('loads with the real probe registry into the model', () => {
    const file = join(root, 'runbooks', 'host-drops.yaml');
    const runbook = loadRunbookFile(file, probeRegistry());
    assert.equal(runbook.id, 'host-drops');
    assert.equal(runbook.file, file);
    assert.deepEqual(Object.keys(runbook.inputs), ['devices', 'duration', 'long_duration']);
    assert.deepEqual(runbook.inputs.duration, { type: 'duration', description: 'How long each sample lasts.', default: '5s', required: false });
    assert.deepEqual(
      runbook.steps.map((s) => `${s.kind}:${s.id}`),
      ['probe:sample', 'probe:drop-detail', 'ask:intermittent', 'probe:long-sample'],
    );
    const sample = runbook.steps[0] as ProbeStep;
    assert.equal(sample.timeout, 120_000);
    assert.equal(sample.on_error, 'inconclusive');
    assert.deepEqual(
      sample.probes.map((p) => [p.probe, p.as]),
      [
        ['net.iface', 'iface'],
        ['qdisc.stats', 'qdisc'],
      ],
    );
    assert.deepEqual(sample.next[2], { goto: 'intermittent', why: 'No counter rose.' });
    // The `probe:` shorthand becomes a one-entry list.
    const detail = runbook.steps[1] as ProbeStep;
    assert.deepEqual(detail.probes, [
      { probe: 'net.iface', as: 'detail', params: { devices: '${findings.iface.dropping}', duration: '${inputs.duration}', interval: '500ms' } },
    ]);
    assert.equal((runbook.steps[3] as ProbeStep).timeout, 600_000);
    const ask = runbook.steps[2] as AskStep;
    assert.equal(ask.default, 'stop');
    assert.equal(ask.timeout, undefined);
    assert.deepEqual(
      runbook.conclusions.map((c) => `${c.id}:${c.confidence}`),
      ['qdisc-drops:high', 'device-drops:high', 'device-drops-passed:medium', 'no-host-drops:medium', 'inconclusive:low'],
    );
    assert.deepEqual(runbook.positions.get('/steps/0/next/1/if'), { line: 47, column: 13 });
    assert.deepEqual(runbook.positions.get('/steps/1/probes/0/params/interval'), { line: 65, column: 17 });
  });
});

describe('loader-features.yaml', () => {
  const file = join(root, 'test', 'runbooks', 'valid', 'loader-features.yaml');

  test('loads every feature of the format', () => {
    const runbook = loadRunbookFile(file, probeRegistry());
    assert.deepEqual(
      Object.fromEntries(Object.entries(runbook.inputs).map(([name, spec]) => [name, [spec.type, spec.required, spec.default]])),
      {
        vm: ['vm', true, undefined],
        src_ip: ['ip', false, 'fe80::1'],
        rounds: ['integer', false, 2],
        ratio: ['number', false, 0.25],
        strict: ['boolean', false, false],
        label: ['string', false, undefined],
        duration: ['duration', false, '500ms'],
        devices: ['string[]', false, ['eth0', 'tap0']],
      },
    );
    const [first, wait, second] = runbook.steps as [ProbeStep, AskStep, ProbeStep];
    assert.equal(first.timeout, 45_000);
    assert.equal(first.title, "First look at ${inputs.vm}'s interfaces");
    assert.deepEqual(first.probes, [{ probe: 'net.iface', as: 'net_iface', params: { devices: '${inputs.devices}', duration: '${inputs.duration}' } }]);
    assert.equal(wait.kind, 'ask');
    assert.equal(wait.timeout, 90_000);
    assert.deepEqual(
      wait.choices.map((c) => c.goto),
      ['second-look', 'clean'],
    );
    // The anchored params are shared; default aliases come from the probe id.
    assert.deepEqual(second.probes[0], { probe: 'qdisc.stats', as: 'qdisc_stats', params: first.probes[0]!.params });
    assert.deepEqual(second.probes[1]!.params.devices, ['eth0', '${inputs.vm}-tap']);
    assert.equal(runbook.description, 'Exercises what the loader accepts, with a folded description that reads ${inputs.duration}.');
    assert.deepEqual(runbook.conclusions[1]!.actions, []);
    assert.deepEqual(runbook.conclusions[1]!.evidence, []);
  });

  test('the shorthand is also found under the model pointers', () => {
    const runbook = loadRunbookFile(file, probeRegistry());
    const pos = runbook.positions;
    assert.deepEqual(pos.get('/steps/0/probes/0/probe'), pos.get('/steps/0/probe'));
    assert.deepEqual(pos.get('/steps/0/probes/0/params/devices'), pos.get('/steps/0/params/devices'));
    assert.deepEqual(pos.get('/steps/0/probes/0'), pos.get('/steps/0'));
    assert.equal(pos.get('/steps/0/probe')?.line, 45);
  });
});

describe('files and folders', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'ebpfnet-load-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  test('an unreadable file is a problem at 1:1 naming the reason', () => {
    const missing = join(scratch, 'missing.yaml');
    const err = rejection(() => loadRunbookFile(missing, testCatalog));
    assert.equal(err.problems.length, 1);
    const p = err.problems[0]!;
    assert.deepEqual([p.file, p.line, p.column], [missing, 1, 1]);
    assert.match(p.message, /^cannot read file: ENOENT: no such file or directory/);
    assert.doesNotMatch(err.message, /\n\s+at /);
    const dir = rejection(() => loadRunbookFile(scratch, testCatalog));
    assert.match(dir.problems[0]!.message, /^cannot read file: EISDIR/);
  });

  test('findRunbooks lists the YAML files of a folder, sorted', () => {
    const dir = join(scratch, 'list');
    rejection(() => findRunbooks(dir));
    for (const name of ['b.yaml', 'a.yml', 'notes.md']) {
      writeFileSync(join(scratch, name), '');
    }
    assert.deepEqual(findRunbooks(scratch), [join(scratch, 'a.yml'), join(scratch, 'b.yaml')]);
  });

  test('a folder is loaded whole: ids match file names and are unique, problems of every file together', () => {
    const dir = mkdtempSync(join(scratch, 'dir-'));
    const body = (id: string) =>
      `id: ${id}\ntitle: T\ndescription: D\nsteps:\n  - id: s\n    title: S\n    probe: net.iface\n    next:\n      - goto: done\nconclusions:\n  - id: done\n    title: Done\n    category: none\n    confidence: low\n    summary: Done\n    explanation: Done.\n`;
    writeFileSync(join(dir, 'one.yaml'), body('one'));
    assert.deepEqual(
      loadRunbookDir(dir, testCatalog).map((r) => r.id),
      ['one'],
    );
    writeFileSync(join(dir, 'two.yaml'), body('one'));
    writeFileSync(join(dir, 'zz-broken.yaml'), body('zz-broken').replace('goto: done', 'goto: gone'));
    const err = rejection(() => loadRunbookDir(dir, testCatalog));
    assert.deepEqual(
      err.problems.map((p) => `${p.file.slice(dir.length + 1)}:${p.line}:${p.column}: ${p.message}`),
      [
        'two.yaml:1:5: id: "one" does not match the file name two.yaml: a runbook is found by id as <id>.yaml',
        `two.yaml:1:5: id: "one" is already the id of ${join(dir, 'one.yaml')}`,
        'zz-broken.yaml:9:15: steps[0].next[0].goto: no step or conclusion has id "gone"; did you mean "done"?',
      ],
    );
  });

  test('the shipped runbooks all load, from the package folder', () => {
    assert.equal(shippedRunbooksDir(), join(root, 'runbooks'));
    const runbooks = loadShippedRunbooks(probeRegistry());
    assert.ok(runbooks.some((r) => r.id === 'host-drops'));
    assert.equal(runbooks.length, findRunbooks(shippedRunbooksDir()).length);
  });
});
