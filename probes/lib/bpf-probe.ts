// What a probe of CO-RE BPF programs declares about running: what it needs of the host (root,
// BTF, the tracepoints its programs attach to) and how it runs (in-process, within a budget).
import type { OverheadBudget } from '../../engine/probe/budget.js';
import type { ProbeDefinition, Requirement } from '../../engine/probe/types.js';

/** Root, a kernel with BTF (for CO-RE), each tracepoint (`category:name`) the programs attach to, then `more`. */
export function tracepointRequirements(tracepoints: readonly string[], ...more: Requirement[]): Requirement[] {
  return [{ kind: 'root' }, { kind: 'kernel', feature: 'btf' }, ...tracepoints.map((name) => ({ kind: 'tracepoint' as const, name })), ...more];
}

/** The driver, overhead class and budget of a probe running BPF programs in-process, for its definition to spread. */
export function nativeRun(budget: OverheadBudget, overhead: ProbeDefinition['overhead'] = 'low') {
  return { driver: 'native', overhead, budget } as const satisfies Partial<ProbeDefinition>;
}
