// The field paths conditions and templates read under `findings.<alias>`, checked against the
// declared data of the probe behind each alias: what is found, where it is reported, what is said.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Type from '#typebox';
import { packageRoot } from '../../engine/package-info.js';
import { probeRegistry } from '../../probes/index.js';
import type { ProbeCatalog, ProbeDefinition } from '../../engine/probe/types.js';
import { findingSchema, readFields, type AliasSource } from '../../engine/runbook/field-paths.js';
import { formatProblem, loadRunbookFile, loadRunbookText, loadShippedRunbooks, RunbookError } from '../../engine/runbook/load.js';
import { textFields } from '../../engine/runbook/references.js';
import { templateSpans } from '../../engine/runbook/expressions.js';
import { readYaml } from '../../engine/yaml/positions.js';
import type { RawRunbook } from '../../engine/runbook/raw.js';

const DATA = Type.Object(
  {
    total: Type.Integer({ unit: 'packets', description: 'Packets dropped.' }),
    byReason: Type.Record(Type.String(), Type.Integer(), { description: 'Drops by reason.' }),
    worst: Type.Union([Type.Object({ p99: Type.Number({ unit: 'µs', description: 'Its P99.' }), layer: Type.String() }), Type.Null()], { description: 'The slowest layer.' }),
    layers: Type.Array(Type.Object({ layer: Type.String(), count: Type.Integer({ description: 'Packets timed.' }) }), { description: 'Every layer.' }),
    detail: Type.Optional(Type.Object({ name: Type.String() })),
  },
  { additionalProperties: false },
);

const declared: AliasSource = { kind: 'declared', probes: ['test.drops'], schemas: [findingSchema(DATA)] };
const reads = (expression: string) => readFields(expression, (alias) => (alias === 'd' ? declared : { kind: 'unchecked' }));
const paths = (expression: string) => reads(expression).reads.map((r) => r.path);
const problems = (expression: string) => reads(expression).problems.map((p) => `${p.offset}: ${p.message}`);

describe('the fields an expression reads', () => {
  test('object fields, union branches, list items through a comprehension, map values by key', () => {
    assert.deepEqual(paths('findings.d.worst == null || findings.d.worst.p99 > 3.0'), ['worst', 'worst.p99']);
    assert.deepEqual(paths('findings.d.layers.all(l, l.count < 20)'), ['layers', 'layers[].count']);
    assert.deepEqual(paths('"NEIGH_FAILED" in findings.d.byReason || findings.d.byReason["X"] > 0'), ['byReason.NEIGH_FAILED', 'byReason.X']);
    assert.deepEqual(paths('findings.d.layers.filter(l, l.layer == "qdisc")[0].count'), ['layers', 'layers[].layer', 'layers[].count']);
    assert.deepEqual(paths('has(findings.d.detail) && "name" in findings.d.detail'), ['detail', 'detail.name']);
    assert.deepEqual(paths('findings.d.status != "ok" ? findings.d.reason : findings.d.summary'), ['status', 'reason', 'summary']);
  });

  test('a read that stands alone keeps its text (to show the value the run saw); one through a comprehension variable does not', () => {
    const byPath = new Map(reads('findings.d.layers.filter(l, l.count > 0)[0].count > findings.d.total').reads.map((r) => [r.path, r.source]));
    assert.equal(byPath.get('layers[].count'), 'findings.d.layers.filter(l, l.count > 0)[0].count');
    assert.equal(byPath.get('total'), 'findings.d.total');
    assert.equal(reads('findings.d.layers.exists(l, l.count > 0)').reads.find((r) => r.path === 'layers[].count')?.source, undefined);
  });

  test('a map is keyed by anything; its keys in a comprehension are strings', () => {
    assert.deepEqual(problems('findings.d.byReason.anything > 0 && findings.d.byReason.exists(r, r.startsWith("NEIGH_"))'), []);
    assert.deepEqual(problems('findings.d.byReason.exists(r, r.name == "x")'), [
      '32: reads findings.d.byReason[].name, but findings.d.byReason[] is string: it has no fields',
    ]);
  });

  test('a name no branch declares is reported at the name, with the closest ones', () => {
    assert.deepEqual(problems('findings.d.worst.p99us > 1.0'), [
      '17: reads findings.d.worst.p99us, but test.drops declares no field "p99us" under worst (closest fields there: p99, layer)',
    ]);
    assert.deepEqual(problems('findings.d.layers.all(l, l.cont > 0)'), [
      '27: reads findings.d.layers[].cont, but test.drops declares no field "cont" under layers[]; did you mean "count"? (closest fields there: count, layer)',
    ]);
    assert.deepEqual(problems('"wrst" in findings.d'), [
      '1: reads findings.d.wrst, but test.drops declares no field "wrst"; did you mean "worst"? (closest fields there: worst, layers, reason, status, total)',
    ]);
    assert.deepEqual(problems('findings.d.total.count > 0'), ['17: reads findings.d.total.count, but findings.d.total is integer: it has no fields']);
  });

  test('aliases whose probes declare nothing, and scopes other than findings, are not checked', () => {
    assert.deepEqual(problems('findings.other.anything.at.all > 0 && inputs.x.y == target.z'), []);
  });
});

/** One probe with declared fields, one whose data is open: the loader checks the first's fields only. */
function catalogWith(data: ProbeDefinition['data']): ProbeCatalog {
  const probe = (id: string, withData: boolean): ProbeDefinition => ({
    id,
    title: id,
    description: id,
    normal: 'n/a',
    params: { duration: { type: 'duration', description: 'Window', default: '5s' } },
    requirements: [],
    overhead: 'none',
    driver: 'command',
    data: withData ? data : Type.Record(Type.String(), Type.Unknown()),
    async collect() {},
    parse() {
      throw new Error('not run');
    },
  });
  const defs = [probe('test.drops', true), probe('test.free', false)];
  return { get: (id) => defs.find((d) => d.id === id), ids: () => defs.map((d) => d.id) };
}

const RUNBOOK = `id: demo
title: Demo
description: A small runbook.
steps:
  - id: first
    title: First look
    description: Looks at the host.
    probe: test.drops
    as: d
    next:
      - if: findings.d.total > 0
        goto: second
        why: \${string(findings.d.total)} drops.
      - goto: clean
  - id: second
    title: Second look, after \${string(findings.d.total)} drops
    probe: test.free
    as: f
    next:
      - if: findings.f.whatever > 0 && findings.d.worst.layer == "qdisc"
        goto: dropping
      - goto: clean
conclusions:
  - id: dropping
    title: Drops
    category: device
    confidence: high
    summary: \${string(findings.d.total)} drops, \${string(findings.f.whatever)} anything
    explanation: Dropping.
  - id: clean
    title: Clean
    category: none
    confidence: low
    summary: Nothing dropped
    explanation: Nothing.
`;

function said(text: string): string[] {
  try {
    loadRunbookText(text, 'demo.yaml', catalogWith(DATA));
  } catch (err) {
    assert.ok(err instanceof RunbookError, String(err));
    return err.problems.map((p) => `${p.line}:${p.column}: ${p.message}`);
  }
  return [];
}

describe('runbooks validate the field paths they read', () => {
  test('a runbook whose reads are all declared loads', () => {
    assert.deepEqual(said(RUNBOOK), []);
  });

  test('a typo in a template is reported inside the YAML string', () => {
    assert.deepEqual(said(RUNBOOK.replace('why: ${string(findings.d.total)} drops.', 'why: ${string(findings.d.totl)} drops.')), [
      '13:34: steps[0].next[0].why: reads findings.d.totl, but test.drops declares no field "totl"; did you mean "total"? (closest fields there: total, detail, status, worst, layers)',
    ]);
  });

  test('a step reads the findings of steps before it; its own only in its branches', () => {
    assert.deepEqual(said(RUNBOOK.replace('description: Looks at the host.', 'description: Looks again (${string(findings.d.total)}).')), [
      '7:49: steps[0].description: reads findings.d, but step "first" produces it itself, and its title, description and params are read before its probes run',
    ]);
    assert.deepEqual(said(RUNBOOK.replace('why: ${string(findings.d.total)} drops.', 'why: ${string(findings.f.whatever)} drops.')), [
      '13:32: steps[0].next[0].why: reads findings.f, but only step "second" produces it, and it never runs before step "first"',
    ]);
  });

  test('the broken-runbook fixture with a typo is rejected at the typo, with the closest names', () => {
    const file = join(packageRoot(), 'test', 'runbooks', 'broken', 'field-path-typo.yaml');
    let error: unknown;
    try {
      loadRunbookFile(file, probeRegistry());
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof RunbookError, 'the typo was accepted');
    assert.deepEqual(error.problems.map(formatProblem), [
      `${file}:48:36: steps[1].next[0].if: reads findings.detail.totals.drps, but net.iface declares no field "drps" under totals; did you mean "drops"? (closest fields there: drops, errors, rx_bytes, rx_dropped, rx_errors)`,
    ]);
  });
});

describe('the shipped runbooks', () => {
  test('read only fields their probes declare, and every probe they read declares its data', () => {
    const registry = probeRegistry();
    const runbooks = loadShippedRunbooks(registry);
    assert.deepEqual(runbooks.map((r) => r.id).sort(), ['host-drops', 'vm-latency', 'vm-loss']);
    for (const runbook of runbooks) {
      const raw = readYaml(readFileSync(runbook.file, 'utf8'), runbook.file).value as RawRunbook;
      const probeOf = new Map(runbook.steps.flatMap((s) => (s.kind === 'probe' ? s.probes.map((c) => [c.as, c.probe] as const) : [])));
      const undeclared = new Set<string>();
      const source = (alias: string): AliasSource => {
        const probe = probeOf.get(alias) ?? '';
        const data = registry.get(probe)?.data;
        if (data) return { kind: 'declared', probes: [probe], schemas: [findingSchema(data)] };
        undeclared.add(probe);
        return { kind: 'unchecked' };
      };
      let count = 0;
      for (const field of textFields(raw)) {
        const expressions = field.kind === 'condition' ? [field.text] : templateSpans(field.text).map((s) => s.expr);
        for (const expression of expressions) {
          const found = readFields(expression, source);
          assert.deepEqual(found.problems, [], `${runbook.id}: ${expression}`);
          count += found.reads.length;
        }
      }
      assert.deepEqual([...undeclared], [], `${runbook.id} reads probes that declare no data`);
      assert.ok(count >= 10, `${runbook.id} reads only ${count} finding fields`);
    }
  });
});
