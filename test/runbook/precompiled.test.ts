// The runbook schema compiled ahead of time (scripts/build-validators.mjs, part of the build)
// must judge every document exactly as Ajv compiling the schema at run time does: the same
// verdict and the same errors, for the shipped runbooks and the whole broken corpus.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from '#yaml';
import { packageRoot } from '../../engine/package-info.js';
import { buildValidator, RUNBOOK_SCHEMA_BUILD } from '../../engine/runbook/schema.js';
import { buildValidator as buildInventoryValidator, INVENTORY_SCHEMA_BUILD } from '../../engine/target/inventory-schema.js';

const root = packageRoot();
const files = [
  ...readdirSync(join(root, 'runbooks')).filter((f) => f.endsWith('.yaml')).map((f) => join(root, 'runbooks', f)),
  ...readdirSync(join(root, 'test', 'runbooks', 'broken')).filter((f) => f.endsWith('.yaml')).map((f) => join(root, 'test', 'runbooks', 'broken', f)),
];

test('the build wrote the precompiled validators', () => {
  for (const build of [RUNBOOK_SCHEMA_BUILD, INVENTORY_SCHEMA_BUILD]) assert.ok(existsSync(build.precompiled), `${build.precompiled} missing: npm run build writes it`);
});

test('the precompiled inventory validator agrees with Ajv compiling the schema', () => {
  const precompiled = buildInventoryValidator();
  const compiled = buildInventoryValidator({ precompiled: false });
  assert.notEqual(precompiled, compiled);
  const docs: unknown[] = [
    { vms: { web1: { pid: 42, taps: [{ name: 'tap0', mac: '52:54:00:12:34:56' }], ips: ['10.0.0.2', 'fd00::2'] } } },
    { vms: { web1: { ips: ['10.0.0.300', 'not-an-ip', 7] } } },
    { vms: { 'bad name!': { pid: 0, taps: [{ name: 'a/b', vhost: 'yes' }], extra: 1 } } },
    { vms: [] },
    null,
  ];
  const verdicts = docs.map((doc) => {
    const a = precompiled(doc);
    const b = compiled(doc);
    assert.equal(a, b, JSON.stringify(doc));
    assert.deepEqual(precompiled.errors ?? null, compiled.errors ?? null, JSON.stringify(doc));
    return a;
  });
  assert.deepEqual(verdicts, [true, false, false, false, false]);
  compiled(docs[1]);
  assert.equal(compiled.errors?.filter((e) => e.keyword === 'ipAddress').length, 2, 'two of the three are bad addresses (7 is not text)');
});

test('the precompiled validator agrees with Ajv compiling the schema, document by document', () => {
  const precompiled = buildValidator();
  const compiled = buildValidator({ precompiled: false });
  assert.notEqual(precompiled, compiled);
  let invalid = 0;
  for (const file of files) {
    let doc: unknown;
    try {
      doc = parse(readFileSync(file, 'utf8'));
    } catch {
      continue; // not YAML at all: the schema never sees it
    }
    const a = precompiled(doc);
    const b = compiled(doc);
    assert.equal(a, b, file);
    if (!a) invalid++;
    assert.deepEqual(precompiled.errors ?? null, compiled.errors ?? null, file);
  }
  assert.ok(invalid > 10, `only ${invalid} documents were invalid: the corpus was not read`);
});
