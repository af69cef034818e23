// `ebpfnet runbooks ...` and `doctor` through the real CLI.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { runCli } from '../helpers/cli.js';
import { RUNNING_KERNEL } from '../helpers/running-kernel.js';

const root = packageRoot();
const brokenDir = join(root, 'test', 'runbooks', 'broken');
const shipped = readdirSync(join(root, 'runbooks')).filter((f) => f.endsWith('.yaml')).map((f) => join(root, 'runbooks', f));

describe('runbooks validate', () => {
  test('every shipped runbook is valid', () => {
    const r = runCli(['runbooks', 'validate', ...shipped]);
    assert.equal(r.status, 0, r.stderr);
    for (const file of shipped) assert.match(r.stdout, new RegExp(`${file}: ok`));
  });

  const broken = readdirSync(brokenDir).filter((f) => f.endsWith('.yaml')).sort();
  test('the broken corpus has at least 25 runbooks', () => assert.ok(broken.length >= 25, `${broken.length}`));

  for (const name of broken) {
    test(`rejects ${name} at the expected line:column, without a stack trace`, () => {
      const file = join(brokenDir, name);
      const expect = /^# expect: (\d+):(\d+) (.+)$/m.exec(readFileSync(file, 'utf8'));
      assert.ok(expect, `${name} has no "# expect: LINE:COL message" line`);
      const r = runCli(['runbooks', 'validate', file]);
      assert.equal(r.status, 2);
      assert.ok(r.stderr.includes(`${file}:${expect[1]}:${expect[2]}: `), `${name}: wanted ${expect[1]}:${expect[2]}, got:\n${r.stderr}`);
      assert.ok(r.stderr.includes(expect[3]!.trim()), `${name}: wanted "${expect[3]}" in:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  test('diagnose with a broken runbook refuses to start, with the same message', () => {
    const file = join(brokenDir, broken[0]!);
    const r = runCli(['diagnose', file, '--out', '/nonexistent-should-not-be-created']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${file}:\\d+:\\d+: `));
  });
});

describe('runbooks list, show, graph', () => {
  test('list names host-drops', () => {
    const r = runCli(['runbooks', 'list', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<{ id: string; valid: boolean }>;
    assert.ok(rows.some((row) => row.id === 'host-drops' && row.valid));
  });

  test('graph prints Mermaid and DOT with every step, conclusion and condition', () => {
    const mermaid = runCli(['runbooks', 'graph', 'host-drops']);
    assert.equal(mermaid.status, 0, mermaid.stderr);
    assert.match(mermaid.stdout, /^flowchart TD/);
    for (const id of ['sample', 'drop_detail', 'intermittent', 'qdisc_drops', 'no_host_drops', 'inconclusive']) {
      assert.match(mermaid.stdout, new RegExp(`\\b${id}\\b`));
    }
    assert.match(mermaid.stdout, /sample -->\|"findings.qdisc.totals.drops #gt; 0"\| qdisc_drops/);
    const dot = runCli(['runbooks', 'graph', 'host-drops', '--format', 'dot']);
    assert.match(dot.stdout, /^digraph "host-drops" \{/);
    assert.match(dot.stdout, /"sample" -> "inconclusive" \[label="probe failed", style=dashed\]/);
    const bad = runCli(['runbooks', 'graph', 'host-drops', '--format', 'png']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown graph format "png"/);
  });

  test('an unknown runbook is a one-line error listing the known ones', () => {
    const r = runCli(['runbooks', 'show', 'no-such-runbook']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^ebpfnet: unknown runbook "no-such-runbook" \(known: .*host-drops/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});

describe('doctor', () => {
  test('--json reports the running kernel truthfully', () => {
    const r = runCli(['doctor', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; features: Record<string, { present: boolean | null }> };
    assert.equal(report.ok, true);
    assert.equal(report.features.kprobes!.present, RUNNING_KERNEL.kprobesAttach);
    assert.equal(report.features.fentry!.present, RUNNING_KERNEL.fentryAttaches);
    for (const f of ['tracepoints', 'uprobes', 'btf', 'ringbuf', 'tracefs']) assert.equal(report.features[f]!.present, true, f);
  });

  test('the table names every kernel feature', () => {
    const r = runCli(['doctor']);
    for (const id of ['root', 'btf', 'tracefs', 'tracepoints', 'kprobes', 'fentry', 'uprobes', 'ringbuf']) {
      assert.match(r.stdout, new RegExp(`^${id}\\s+(ok|missing|warn)\\s`, 'm'));
    }
  });
});

describe('usage errors', () => {
  test('an unknown command exits 2', () => {
    const r = runCli(['frobnicate']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
  });
  test('an unknown probe is one line', () => {
    const r = runCli(['probe', 'run', 'no.such']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^ebpfnet: unknown probe "no.such" \(known: .*net\.iface/);
  });
});
