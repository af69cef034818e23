// Imports point one way (DESIGN.md, Layout): dependency-cruiser reads every TypeScript source
// the way tsc does (type-only imports and dynamic import() included) and checks the rules of
// .dependency-cruiser.cjs. One test per rule, so a broken rule names itself and each import
// that breaks it.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { cruise, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { packageRoot } from '../../engine/package-info.js';

const root = packageRoot();
const CONFIG = join(root, '.dependency-cruiser.cjs');
const SOURCES = ['engine', 'probes', 'reports', 'test'];

interface Rule {
  name: string;
  comment: string;
}
const rules = (createRequire(import.meta.url)(CONFIG) as { forbidden: Rule[] }).forbidden;

function describeViolation(v: IViolation): string {
  const path = v.cycle?.length ? [v.from, ...v.cycle.map((step) => step.name)] : [v.from, v.to];
  return path.join(' → ');
}

describe('layering', () => {
  let result: ICruiseResult;

  before(async () => {
    const tsConfigFile = join(root, 'tsconfig.json');
    const options = await extractDepcruiseOptions(CONFIG);
    const output = await cruise(
      SOURCES,
      { ...options, baseDir: root, tsConfig: { fileName: tsConfigFile } },
      undefined,
      { tsConfig: extractTSConfig(tsConfigFile) },
    );
    result = output.output as ICruiseResult;
  });

  test('the cruise reads the sources and their imports', () => {
    const modules = result.modules.map((m) => m.source);
    for (const folder of SOURCES) assert.ok(modules.some((m) => m.startsWith(`${folder}/`)), `no module of ${folder}/ was read`);
    // A type-only import and a dynamic import() are seen, or the rules would miss them.
    const types = result.modules.find((m) => m.source === 'engine/probe/types.ts');
    assert.ok(types?.dependencies.some((d) => d.resolved === 'engine/probe/budget.ts' && d.dependencyTypes.includes('type-only')));
    const features = result.modules.find((m) => m.source === 'engine/host/features.ts');
    assert.ok(features?.dependencies.some((d) => d.resolved === 'engine/native/features.ts' && d.dependencyTypes.includes('dynamic-import')));
  });

  for (const rule of rules) {
    test(`${rule.name}: ${rule.comment}`, () => {
      const broken = result.summary.violations.filter((v) => v.rule.name === rule.name).map(describeViolation);
      assert.deepEqual(broken, [], `${broken.length} import(s) break ${rule.name}:\n${broken.join('\n')}`);
    });
  }
});
