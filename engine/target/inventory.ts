// The static inventory: VMs described by hand, for hosts where neither libvirt
// nor a recognisable QEMU command line tells ebpfnet about them, and the place to
// give any VM's IP addresses. YAML, validated; every mistake is reported as
// file:line:column. The format is in README.md beside this file.
import { readFileSync } from 'node:fs';
import { readYaml, toPointer } from '../yaml/positions.js';
import { ProblemsError, type Problem } from '../yaml/problems.js';
import { inventorySchemaProblems } from './inventory-schema.js';

export const DEFAULT_INVENTORY = '/etc/ebpfnet/inventory.yaml';

export interface InventoryTap {
  name: string;
  mac: string | null;
  model: string | null;
  vhost: boolean | null;
}

export interface InventoryVm {
  name: string;
  description: string | null;
  pid: number | null;
  pidfile: string | null;
  taps: InventoryTap[];
  ips: string[];
}

export interface Inventory {
  file: string;
  vms: Map<string, InventoryVm>;
}

/** Every problem of an inventory file, each at its file:line:column. */
export class InventoryError extends ProblemsError {
  constructor(problems: Problem[]) {
    super(problems, 'invalid inventory');
    this.name = 'InventoryError';
  }
}

export interface InventoryLocation {
  path: string;
  /** Named by --inventory or $EBPFNET_INVENTORY: then it must exist. The default may be absent. */
  explicit: boolean;
}

/** Which inventory file to read: the option, else $EBPFNET_INVENTORY, else /etc/ebpfnet/inventory.yaml. */
export function inventoryLocation(option?: string, env: NodeJS.ProcessEnv = process.env): InventoryLocation {
  if (option) return { path: option, explicit: true };
  if (env.EBPFNET_INVENTORY) return { path: env.EBPFNET_INVENTORY, explicit: true };
  return { path: DEFAULT_INVENTORY, explicit: false };
}

interface RawTap {
  name: string;
  mac?: string;
  model?: string;
  vhost?: boolean;
}
interface RawVm {
  description?: string;
  pid?: number;
  pidfile?: string;
  taps?: RawTap[];
  ips?: string[];
}

/** The YAML reader words a few messages for runbooks; the same rules hold for inventories. */
function forInventory(message: string): string {
  return message.replace(/\ba runbook file\b/g, 'an inventory file').replace(/\brunbooks\b/g, 'inventory files');
}

/** Parses and checks inventory text; `file` names it in problems. Throws InventoryError. */
export function parseInventory(text: string, file: string): Inventory {
  const read = readYaml(text, file);
  if (read.problems.length) throw new InventoryError(read.problems.map((p) => ({ ...p, message: forInventory(p.message) })));
  const shape = inventorySchemaProblems(read.value, read.map);
  if (shape.length) throw new InventoryError(shape);
  const raw = (read.value as { vms: Record<string, RawVm | null> }).vms;
  const problems: Problem[] = [];
  const vms = new Map<string, InventoryVm>();
  for (const [name, entry] of Object.entries(raw)) {
    const vm = entry ?? {};
    const at = toPointer(['vms', name]);
    if (vm.pid !== undefined && vm.pidfile !== undefined) {
      problems.push(read.map.atKey(`${at}/pidfile`, 'give "pid" or "pidfile", not both'));
    }
    const seen = new Set<string>();
    (vm.taps ?? []).forEach((tap, i) => {
      if (seen.has(tap.name)) problems.push(read.map.atValue(`${at}/taps/${i}/name`, `tap "${tap.name}" is listed twice`));
      seen.add(tap.name);
    });
    vms.set(name, {
      name,
      description: vm.description ?? null,
      pid: vm.pid ?? null,
      pidfile: vm.pidfile ?? null,
      taps: (vm.taps ?? []).map((t) => ({ name: t.name, mac: t.mac?.toLowerCase() ?? null, model: t.model ?? null, vhost: t.vhost ?? null })),
      ips: vm.ips ?? [],
    });
  }
  if (problems.length) throw new InventoryError(problems);
  return { file, vms };
}

/**
 * Reads the inventory at `location`. An absent default file means no inventory
 * (null); a file named explicitly must be there. Throws InventoryError.
 */
export function loadInventory(location: InventoryLocation): Inventory | null {
  let text: string;
  try {
    text = readFileSync(location.path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !location.explicit) return null;
    const why = code === 'ENOENT' ? 'no such file' : err instanceof Error ? err.message : String(err);
    throw new InventoryError([{ file: location.path, line: 1, column: 1, message: `cannot read the inventory: ${why}` }]);
  }
  return parseInventory(text, location.path);
}
