// The bundles #typebox and #yaml load (scripts/bundle-vendor.mjs) stand in for their packages:
// the same names exported, each the same kind of thing, and the specifiers load them.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';

const require = createRequire(import.meta.url);

describe('vendored libraries (#typebox, #yaml)', () => {
  for (const name of ['typebox', 'yaml']) {
    it(`#${name} is dist/vendor/${name}.js, exporting every name ${name} does`, async () => {
      assert.equal(import.meta.resolve(`#${name}`), new URL(`dist/vendor/${name}.js`, `file://${packageRoot()}/`).href);
      const original = (await import(name)) as Record<string, unknown>;
      const bundled = (await import(`#${name}`)) as Record<string, unknown>;
      // yaml's CommonJS build adds `default` (module.exports) beside its names; the ESM one has none.
      const names = (m: Record<string, unknown>) => Object.keys(m).filter((k) => k !== 'default' || name === 'typebox').sort();
      assert.deepEqual(names(bundled), names(original));
      assert.ok(names(original).length > 20, `${name} exports ${names(original).length} names`);
      for (const key of names(original)) assert.equal(typeof bundled[key], typeof original[key], `${name}.${key}`);
    });
  }

  it('the bundles behave as the packages: a schema built and a document parsed by each agree', async () => {
    const [tb, tbv] = [(await import('typebox')).default, (await import('#typebox')).default];
    const schema = (T: typeof tb) => T.Object({ a: T.Integer({ minimum: 0 }), b: T.Optional(T.Array(T.String())) });
    assert.deepEqual(JSON.parse(JSON.stringify(schema(tbv))), JSON.parse(JSON.stringify(schema(tb))));
    const text = 'a: 1\nb: [x, "y"]\nc: {d: null}\n';
    const [yaml, yamlv] = [require('yaml') as typeof import('#yaml'), await import('#yaml')];
    assert.deepEqual(yamlv.parse(text), yaml.parse(text));
    assert.equal(yamlv.stringify({ a: [1, 'b'] }), yaml.stringify({ a: [1, 'b'] }));
  });
});
