// "Did you mean": edit distance and the closest known name.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { closest, didYouMean, editDistance, listSome } from '../../engine/yaml/suggest.js';

describe('suggestions', () => {
  test('edit distance counts an adjacent swap as one edit', () => {
    assert.equal(editDistance('probe', 'probe'), 0);
    assert.equal(editDistance('prob', 'probe'), 1);
    assert.equal(editDistance('aks', 'ask'), 1);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('kitten', 'sitting'), 3);
  });

  test('the closest candidate, only when it is plausibly a typo', () => {
    assert.equal(closest('net.ifaces', ['net.iface', 'qdisc.stats']), 'net.iface');
    assert.equal(closest('Net.Iface', ['net.iface']), 'net.iface');
    assert.equal(closest('tc.stats', ['net.iface', 'drops.kernel']), undefined);
    // On a tie, the candidate of the closest length wins (a swap over a deletion).
    assert.equal(closest('aks', ['as', 'ask']), 'ask');
    assert.equal(didYouMean('quite', ['quiet', 'sample']), '; did you mean "quiet"?');
    assert.equal(didYouMean('zzz', ['quiet']), '');
  });

  test('long lists are cut', () => {
    assert.equal(listSome([]), 'none');
    assert.equal(listSome(['a', 'b']), 'a, b');
    assert.equal(listSome(['a', 'b', 'c', 'd'], 2), 'a, b, ... (4 in all)');
  });
});
