// Probe definitions looked up by id. The engine never lists the probes itself: the commands
// (engine/cli, which wires serve and guide too) build the registry of the shipped ones from
// probes/index.ts and hand it down as a ProbeCatalog.
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
