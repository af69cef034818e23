// What a probe of CO-RE BPF programs declares about running: what it needs of the host (root,
// BTF, the tracepoints its programs attach to), how it runs (in-process, within a budget), and
// the tables its finding ends with.
import { attachTable, type LoadedRecord } from '../../engine/native/attach-plan.js';
import type { OverheadBudget } from '../../engine/probe/budget.js';
import { overheadTable, type OverheadReport } from '../../engine/probe/overhead.js';
import type { ProbeDefinition, Requirement, TableSpec } from '../../engine/probe/types.js';

/** Root, a kernel with BTF (for CO-RE), each tracepoint (`category:name`) the programs attach to, then `more`. */
export function tracepointRequirements(tracepoints: readonly string[], ...more: Requirement[]): Requirement[] {
  return [{ kind: 'root' }, { kind: 'kernel', feature: 'btf' }, ...tracepoints.map((name) => ({ kind: 'tracepoint' as const, name })), ...more];
}

/** The driver, overhead class and budget of a probe running BPF programs in-process, for its definition to spread. */
export function nativeRun(budget: OverheadBudget, overhead: ProbeDefinition['overhead'] = 'low') {
  return { driver: 'native', overhead, budget } as const satisfies Partial<ProbeDefinition>;
}

/** How a probe of BPF programs at `tracepoints` runs and what it needs: root, BTF, those tracepoints and `more`. */
export function tracepointRun(tracepoints: readonly string[], budget: OverheadBudget, options: { overhead?: ProbeDefinition['overhead']; more?: Requirement[] } = {}) {
  return { requirements: tracepointRequirements(tracepoints, ...(options.more ?? [])), ...nativeRun(budget, options.overhead) };
}

/** The tables a finding ends with: how its programs loaded and attached, and what they cost when the guard ran. */
export function loadedTables(record: LoadedRecord<string>, overhead: OverheadReport | null | undefined): TableSpec[] {
  return [attachTable(record), ...(overhead ? [overheadTable(overhead)] : [])];
}
