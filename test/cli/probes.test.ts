// `ebpfnet probes show` through the real CLI: the declared fields of a probe's data.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli } from '../helpers/cli.js';

describe('probes show', () => {
  test("prints the fields of the probe's data as a table: path, type, unit, description", () => {
    const r = runCli(['probes', 'show', 'qdisc.stats']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const header = lines.findIndex((l) => l.startsWith('Data ('));
    assert.ok(header > 0, r.stdout);
    assert.match(lines[header + 1]!, /^ {2}FIELD +TYPE +UNIT +DESCRIPTION$/);
    assert.match(r.stdout, /\n {2}totals\.drops +integer +packets +Drops of the top-level qdiscs\.\n/);
    assert.match(r.stdout, /\n {2}qdiscs\[\]\.backlog_bytes +integer +bytes +Bytes queued at the end of the window\.\n/);
    assert.match(r.stdout, /\n {2}top +object \(optional\) +The qdisc with the most drops/);
  });

  test('--json includes the schema and the fields', () => {
    const r = runCli(['probes', 'show', 'qdisc.stats', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as { data: { type: string; properties: Record<string, { unit?: string }> }; fields: Array<{ path: string; unit?: string }> };
    assert.equal(shown.data.type, 'object');
    assert.equal(shown.data.properties.durationMs?.unit, 'ms');
    assert.deepEqual(shown.fields.find((f) => f.path === 'totals.drops'), { path: 'totals.drops', type: 'integer', optional: false, unit: 'packets', description: 'Drops of the top-level qdiscs.' });
  });
});
