// scopeRefs (expressions.ts): which inputs, findings and answers an expression reads, and where.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ExpressionError, scopeRefs } from '../../engine/runbook/expressions.js';

describe('scopeRefs', () => {
  test('finds dotted and bracketed reads with the offset of the name', () => {
    const source = 'inputs.a + inputs["b"] > size(findings.x.y) && answers["wait-more"] == "go" && target.name != host.kernel';
    assert.deepEqual(scopeRefs(source), [
      { scope: 'inputs', name: 'a', offset: source.indexOf('a +') },
      { scope: 'inputs', name: 'b', offset: source.indexOf('b"]') },
      { scope: 'findings', name: 'x', offset: source.indexOf('x.y') },
      { scope: 'answers', name: 'wait-more', offset: source.indexOf('wait-more') },
      { scope: 'target', name: 'name', offset: source.indexOf('name !=') },
      { scope: 'host', name: 'kernel', offset: source.indexOf('kernel') },
    ]);
  });

  test('looks inside macros and has()', () => {
    const refs = scopeRefs('has(findings.q.top) && findings.q.qdiscs.exists(d, d.drops > inputs.limit)');
    assert.deepEqual(
      refs.map((r) => `${r.scope}.${r.name}`),
      ['findings.q', 'findings.q', 'inputs.limit'],
    );
  });

  test('a dynamic key is not a reference by name', () => {
    assert.deepEqual(scopeRefs('findings[inputs.alias]'), [{ scope: 'inputs', name: 'alias', offset: 16 }]);
  });

  test('an expression that does not parse throws ExpressionError with its offset', () => {
    assert.throws(
      () => scopeRefs('inputs.a >'),
      (err: unknown) => err instanceof ExpressionError && err.offset === 10,
    );
  });
});
