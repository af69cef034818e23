// Test topologies: the shipped module engine/selftest/topology.ts, which `ebpfnet selftest`
// uses too (test/ is not shipped, so the code lives in the engine).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { canBuildTopologies, run, type VethPair } from '../../engine/selftest/topology.js';

export * from '../../engine/selftest/topology.js';

/**
 * Fails the test when the lab it needs cannot be built here (`why` from canBuildTopologies,
 * canRunOvs...): CI installs every part, so a missing one must be red, never a silent skip.
 */
export function needs(why: string | null): void {
  assert.equal(why, null, `this test needs what this host lacks: ${why}`);
}

/**
 * Null when test topologies can be built here and each tool runs (asked for its version: argv,
 * and the package that has it); else what is missing first.
 */
export async function cannotBuildWith(...tools: Array<[argv: string[], pkg: string]>): Promise<string | null> {
  const cannot = await canBuildTopologies();
  if (cannot) return cannot;
  for (const [argv, pkg] of tools) {
    const lacks = await run(argv).then(
      () => null,
      () => `needs ${argv[0]} (apt-get install ${pkg})`,
    );
    if (lacks) return lacks;
  }
  return null;
}

/** An nftables table in the pair's namespace that drops every ICMP packet coming in. */
export async function dropIcmpInNs(pair: VethPair): Promise<void> {
  await pair.inNs(['nft', 'add', 'table', 'inet', 'ebpfnet_test']);
  await pair.inNs(['nft', 'add', 'chain', 'inet', 'ebpfnet_test', 'input', '{ type filter hook input priority 0; policy accept; }']);
  await pair.inNs(['nft', 'add', 'rule', 'inet', 'ebpfnet_test', 'input', 'meta', 'l4proto', 'icmp', 'drop']);
}

/** A counter of a device in this namespace (/sys/class/net/<dev>/statistics/<name>): the kernel's own count, beside a probe's. */
export async function deviceCounter(dev: string, name: string): Promise<number> {
  return Number((await readFile(`/sys/class/net/${dev}/statistics/${name}`, 'utf8')).trim());
}
