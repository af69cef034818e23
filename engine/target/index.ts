// VM target discovery: what `--vm NAME` means on this host. See README.md.
import type { Target } from '../run/runner.js';
import type { VmFacts } from './types.js';

export { resolveVm, discoverVms, VmNotFoundError, type Discovery, type ResolveOptions, type SourceStatus } from './resolve.js';
export { InventoryError, inventoryLocation, loadInventory, DEFAULT_INVENTORY, type Inventory, type InventoryVm } from './inventory.js';
export type * from './types.js';
export { vmPath, type VmPath } from './path.js';
import { vmPath } from './path.js';

/** A run's target for a resolved VM: its facts under `kind: 'vm'`, and `path` for runbooks. */
export function vmTarget(facts: VmFacts): Target {
  return { kind: 'vm', ...facts, path: vmPath(facts) };
}
