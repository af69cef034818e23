// VM target discovery: what `--vm NAME` means on this host. See README.md.
import { canonicalAddress, mergeAddresses, normalMac } from './addresses.js';
import type { Target, VmAddress, VmFacts } from './types.js';

export { resolveVm, discoverVms, VmNotFoundError, type Discovery, type ResolveOptions, type SourceStatus } from './resolve.js';
export { InventoryError, inventoryLocation, loadInventory, DEFAULT_INVENTORY, type Inventory, type InventoryVm } from './inventory.js';
export type * from './types.js';
export { vmPath, type VmPath } from './path.js';
import { vmPath } from './path.js';

/** A run's target for a resolved VM: its facts under `kind: 'vm'`, and `path` for runbooks. */
export function vmTarget(facts: VmFacts): Target {
  return { kind: 'vm', ...facts, path: vmPath(facts) };
}

/** A learned address as a probe reports it: the address, the MAC whose frames carried it, how. */
export interface LearnedAddress {
  address: string;
  mac?: string;
  via?: string;
}

/** The facts with addresses seen in the VM's own frames added (`source: 'frames'`); null when nothing is new. */
export function learnAddresses(facts: VmFacts, learned: LearnedAddress[]): VmFacts | null {
  const known = new Set((facts.ips ?? []).map((a) => canonicalAddress(a.address)));
  const added: VmAddress[] = learned
    .filter((l) => !known.has(canonicalAddress(l.address)))
    .map((l) => ({
      address: canonicalAddress(l.address),
      source: 'frames',
      ...(l.mac ? { mac: normalMac(l.mac) } : {}),
      ...(l.via ? { via: l.via } : {}),
    }));
  return added.length === 0 ? null : { ...facts, ips: mergeAddresses(facts.ips ?? [], added) };
}

/**
 * The target with addresses seen in the VM's own frames added (`source: 'frames'`; one
 * already known keeps its entry) and `path` recomputed. Pure: no I/O. A host target, or
 * nothing new, gives the target back as it was.
 */
export function withLearnedAddresses(target: Target, learned: LearnedAddress[]): Target {
  if (target.kind !== 'vm') return target;
  const { kind: _kind, path: _path, ...rest } = target;
  const next = learnAddresses(rest as unknown as VmFacts, learned);
  return next ? vmTarget(next) : target;
}
