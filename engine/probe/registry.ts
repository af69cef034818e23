// The probes this build ships, looked up by id.
import { allProbes } from '../../probes/index.js';
import type { ProbeCatalog, ProbeDefinition } from './types.js';

export class ProbeRegistry implements ProbeCatalog {
  private readonly byId = new Map<string, ProbeDefinition>();

  constructor(definitions: ProbeDefinition[]) {
    for (const def of definitions) {
      if (this.byId.has(def.id)) throw new Error(`probe id ${def.id} is defined twice`);
      this.byId.set(def.id, def);
    }
  }

  get(id: string): ProbeDefinition | undefined {
    return this.byId.get(id);
  }

  ids(): string[] {
    return [...this.byId.keys()].sort();
  }

  all(): ProbeDefinition[] {
    return this.ids().map((id) => this.byId.get(id)!);
  }
}

let shipped: ProbeRegistry | undefined;

/** The registry of every probe under probes/. */
export function probeRegistry(): ProbeRegistry {
  shipped ??= new ProbeRegistry(allProbes);
  return shipped;
}
