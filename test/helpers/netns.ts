// Test topologies: the shipped module engine/selftest/topology.ts, which `ebpfnet selftest`
// uses too (test/ is not shipped, so the code lives in the engine).
import assert from 'node:assert/strict';
import type { VethPair } from '../../engine/selftest/topology.js';

export * from '../../engine/selftest/topology.js';

/**
 * Fails the test when the lab it needs cannot be built here (`why` from canBuildTopologies,
 * canRunOvs...): CI installs every part, so a missing one must be red, never a silent skip.
 */
export function needs(why: string | null): void {
  assert.equal(why, null, `this test needs what this host lacks: ${why}`);
}

/** An nftables table in the pair's namespace that drops every ICMP packet coming in. */
export async function dropIcmpInNs(pair: VethPair): Promise<void> {
  await pair.inNs(['nft', 'add', 'table', 'inet', 'ebpfnet_test']);
  await pair.inNs(['nft', 'add', 'chain', 'inet', 'ebpfnet_test', 'input', '{ type filter hook input priority 0; policy accept; }']);
  await pair.inNs(['nft', 'add', 'rule', 'inet', 'ebpfnet_test', 'input', 'meta', 'l4proto', 'icmp', 'drop']);
}
