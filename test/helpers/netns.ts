// Test topologies: the shipped module engine/selftest/topology.ts, which `ebpfnet selftest`
// uses too (test/ is not shipped, so the code lives in the engine).
import assert from 'node:assert/strict';

export * from '../../engine/selftest/topology.js';

/**
 * Fails the test when the lab it needs cannot be built here (`why` from canBuildTopologies,
 * canRunOvs...): CI installs every part, so a missing one must be red, never a silent skip.
 */
export function needs(why: string | null): void {
  assert.equal(why, null, `this test needs what this host lacks: ${why}`);
}
