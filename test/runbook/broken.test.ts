// The broken-runbook corpus (test/runbooks/broken/*.yaml): each file holds one
// realistic mistake, and its first line says where and what the loader reports:
//
//     # expect: LINE:COLUMN substring of the message
//
// The FIRST problem (problems are sorted by position) must sit exactly at
// LINE:COLUMN and contain the substring. Files are loaded with the real probe
// registry, as `ebpfnet runbooks validate` loads them.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { probeRegistry } from '../../probes/index.js';
import { formatProblem, loadRunbookFile, RunbookError } from '../../engine/runbook/load.js';

const dir = join(packageRoot(), 'test', 'runbooks', 'broken');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const EXPECT = /^# expect: (\d+):(\d+) (\S.*)$/;

function rejection(file: string): RunbookError {
  try {
    loadRunbookFile(file, probeRegistry());
  } catch (err) {
    if (err instanceof RunbookError) return err;
    throw new Error(`${file}: threw ${String(err)} instead of a RunbookError`);
  }
  throw new Error(`${file} was accepted`);
}

describe('broken runbooks', () => {
  test('the corpus has at least 30 files, each starting with an expectation', () => {
    assert.ok(files.length >= 30, `only ${files.length} broken runbooks`);
    for (const name of files) {
      const first = readFileSync(join(dir, name), 'utf8').split('\n')[0] ?? '';
      assert.match(first, EXPECT, `${name}: the first line must be "# expect: LINE:COLUMN message"`);
    }
  });

  test('the net.iface and qdisc.stats probes the corpus uses are registered', () => {
    for (const id of ['net.iface', 'qdisc.stats']) assert.ok(probeRegistry().get(id), `probe ${id} is not registered`);
  });

  for (const name of files) {
    test(`${name} is rejected at its expected place`, () => {
      const file = join(dir, name);
      const expect = EXPECT.exec(readFileSync(file, 'utf8').split('\n')[0] ?? '');
      assert.ok(expect, `${name} has no expectation line`);
      const err = rejection(file);
      assert.ok(err.problems.length > 0);
      const first = err.problems[0]!;
      const shown = err.problems.map(formatProblem).join('\n');
      assert.equal(`${first.line}:${first.column}`, `${expect[1]}:${expect[2]}`, `${name}: first problem is\n${shown}`);
      assert.ok(first.message.includes(expect[3]!), `${name}: "${expect[3]}" not in\n${shown}`);
      assert.equal(first.file, file);
      for (const p of err.problems) {
        assert.doesNotMatch(p.message, /\n\s+at /, 'no stack frames');
        assert.ok(!p.message.includes('    at '), 'no stack frames');
        assert.ok(p.line >= 1 && p.column >= 1);
      }
      assert.ok(!err.message.includes('    at '));
    });
  }
});
