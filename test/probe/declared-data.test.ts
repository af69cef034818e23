// Declared data: every probe says what its findings' data holds (probes/<id>/data.ts), parser
// output is checked against it (a failed probe in tests, a note in production), and its fields
// read as rows with types, units and descriptions.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import Type from '#typebox';
import { checkDeclaredData, dataFields, dataMismatches } from '../../engine/probe/data-schema.js';
import { packageRoot } from '../../engine/package-info.js';
import { probeRegistry } from '../../probes/index.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { ProbeDefinition } from '../../engine/probe/types.js';
import { tempBundle } from '../helpers/bundle.js';

const DATA = Type.Object(
  {
    total: Type.Integer({ unit: 'packets', description: 'Packets dropped.' }),
    byReason: Type.Record(Type.String(), Type.Integer(), { description: 'Drops by reason.' }),
    worst: Type.Union([Type.Object({ p99: Type.Number({ unit: 'µs', description: 'Its P99.' }) }, { additionalProperties: false }), Type.Null()], {
      description: 'The slowest layer; null without packets.',
    }),
    layers: Type.Array(Type.Object({ name: Type.Union([Type.Literal('qdisc'), Type.Literal('bridge')], { description: 'The layer.' }) }), { description: 'Every layer.' }),
    lost: Type.Optional(Type.Integer({ description: 'Events lost.' })),
  },
  { additionalProperties: false },
);

describe('declared data', () => {
  // The type requires `data`; what it cannot require is a closed top level (a runbook's typo is
  // caught) and a description on every field (the report and guided mode print it).
  test('every registered probe declares a closed object whose fields all say what they mean', () => {
    for (const def of probeRegistry().all()) {
      const schema = def.data as { type?: string; additionalProperties?: unknown };
      assert.equal(schema.type, 'object', `${def.id}: data is an object`);
      assert.equal(schema.additionalProperties, false, `${def.id}: data's top level is closed`);
      const undescribed = dataFields(def.data).filter((row) => !row.description).map((row) => row.path);
      assert.deepEqual(undescribed, [], `${def.id}: fields without a description`);
    }
  });

  // Recorded real runs feed the runbook path tests: they must be what the probes declare today.
  // These were recorded before the probes gained the fields named (the runnable time at the
  // window's end, the queue counters); anything else missing or wrong fails.
  const RECORDED_BEFORE: Record<string, string[]> = {
    'cpu.runqlat': ['classes.vcpu.waitingAtEnd', 'classes.vhost.waitingAtEnd', 'classes.other.waitingAtEnd', 'threads[].waitingAtEndUs'],
    'net.iface': ['queueSkew', 'queueDrops', 'txTimeouts'],
  };
  test('every recorded finding matches its probe\'s declared data', () => {
    const registry = probeRegistry();
    const root = join(packageRoot(), 'test', 'fixtures', 'findings');
    let checked = 0;
    for (const probe of readdirSync(root)) {
      const def = registry.get(probe);
      assert.ok(def, `test/fixtures/findings/${probe}: no such probe`);
      for (const file of readdirSync(join(root, probe)).filter((f) => f.endsWith('.json'))) {
        const finding = JSON.parse(readFileSync(join(root, probe, file), 'utf8')) as { status: string; data: unknown };
        // A probe that ended in error parsed nothing: its data is empty and declares nothing.
        if (finding.status === 'error') continue;
        const older = new Set((RECORDED_BEFORE[probe] ?? []).map((path) => `${path}: missing`));
        const unexpected: string[] = dataMismatches(def.data, finding.data).filter((m: string) => !older.has(m.replace(/\[\d+\]/g, '[]')));
        assert.deepEqual(unexpected, [], `test/fixtures/findings/${probe}/${file}`);
        checked += 1;
      }
    }
    assert.ok(checked >= 40, `recorded findings checked: ${checked}`);
  });

  test('its fields read as rows: path, type, unit, description, optional', () => {
    assert.deepEqual(dataFields(DATA), [
      { path: 'total', type: 'integer', optional: false, unit: 'packets', description: 'Packets dropped.' },
      { path: 'byReason', type: 'map of integer', optional: false, description: 'Drops by reason.' },
      { path: 'worst', type: 'object | null', optional: false, description: 'The slowest layer; null without packets.' },
      { path: 'worst.p99', type: 'number', optional: false, unit: 'µs', description: 'Its P99.' },
      { path: 'layers', type: 'object[]', optional: false, description: 'Every layer.' },
      { path: 'layers[].name', type: '"qdisc" | "bridge"', optional: false, description: 'The layer.' },
      { path: 'lost', type: 'integer', optional: true, description: 'Events lost.' },
    ]);
  });

  test('a mismatch names the path and what was expected, through unions and lists', () => {
    const good = { total: 3, byReason: { X: 3 }, worst: { p99: 1.5 }, layers: [{ name: 'qdisc' }] };
    assert.deepEqual(dataMismatches(DATA, good), []);
    assert.deepEqual(dataMismatches(DATA, { ...good, worst: null, lost: 0 }), []);
    assert.deepEqual(dataMismatches(DATA, { ...good, total: 2.5, worst: { p99: '1' }, layers: [{ name: 'nic' }], extra: 1 }), [
      'extra: not declared',
      'total: expected integer, got number 2.5',
      'worst.p99: expected number, got string "1"',
      'layers[0].name: expected "qdisc" | "bridge", got string "nic"',
    ]);
    assert.deepEqual(dataMismatches(DATA, { byReason: { X: 'a' }, worst: 7, layers: [] }), [
      'total: missing',
      'byReason.X: expected integer, got string "a"',
      'worst: expected object | null, got number 7',
    ]);
    assert.equal(
      checkDeclaredData({ id: 'test.drops', data: DATA }, { ...good, total: -0.5 }),
      'test.drops: data does not match its declaration (probes/test.drops/data.ts): total: expected integer, got number -0.5',
    );
    assert.equal(checkDeclaredData({ id: 'test.free', data: Type.Object({}) }, { anything: 1 }), undefined);
  });
});

describe('the runtime checks what a parser returns', () => {
  const probe = (data: Record<string, unknown>): ProbeDefinition => ({
    id: 'test.drops',
    title: 'test probe',
    description: 'returns what it is given',
    normal: 'anything',
    params: {},
    requirements: [],
    overhead: 'none',
    driver: 'command',
    data: DATA,
    async collect() {},
    parse: () => ({ data, summary: 'parsed', severity: 'info' }),
  });
  const request = { step: 'sample', alias: 'd', probe: 'test.drops', params: {} };
  const bad = { total: 'many', byReason: {}, worst: null, layers: [] };
  const message = 'test.drops: data does not match its declaration (probes/test.drops/data.ts): total: expected integer, got string "many"';

  /** Runs the probe that parses `bad` with EBPFNET_STRICT_DATA set to `strict` for the test, into raw/`name`. */
  async function runBad(t: TestContext, strict: '1' | '', name: string) {
    const before = process.env.EBPFNET_STRICT_DATA ?? '';
    t.after(() => void (process.env.EBPFNET_STRICT_DATA = before));
    process.env.EBPFNET_STRICT_DATA = strict;
    const b = await tempBundle(t, 'ebpfnet-data-');
    return { b, f: await runProbe(probe(bad), request, b.opts(name)) };
  }

  test('in tests (EBPFNET_STRICT_DATA=1) a mismatch fails the probe with a one-line reason', async (t) => {
    const { f } = await runBad(t, '1', 'strict');
    assert.equal(f.status, 'error');
    assert.equal(f.reason, message);
    assert.deepEqual(f.data, {});
  });

  test('in production a mismatch is kept as a note on the finding, which keeps its data', async (t) => {
    const { b, f } = await runBad(t, '', 'production');
    assert.equal(f.status, 'ok');
    assert.deepEqual(f.notes, [message]);
    assert.deepEqual(f.data, bad);
    const good = await runProbe(probe({ total: 1, byReason: {}, worst: null, layers: [] }), request, b.opts('good'));
    assert.equal(good.status, 'ok');
    assert.equal(good.notes, undefined);
  });
});
