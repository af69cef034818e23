// Which flavour of defrag.bpf.c's kfree_skb handler to load: raw_tp with a cached minimal BTF
// (fastest load), tp_btf, or the classic tracepoint, tried in that order
// (engine/native/attach-plan.ts). Every handler reads the drop reason, so kernels whose
// tracepoint has none (before 5.17) have no plan: the probe then reads the counters only.
import { loadFirstWorking, type PlanLoaded, type PlanStep } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { bpfObjectPath } from '../../engine/native/object.js';

export type DefragMethod = 'raw_tracepoint' | 'tp_btf' | 'tracepoint';

export function attachPlan(): Array<PlanStep<DefragMethod>> {
  return [
    { method: 'raw_tracepoint', programs: ['defrag_raw_tp'], minimalBtf: true, attach: (o) => [o.program('defrag_raw_tp').attachRawTracepoint('kfree_skb')] },
    { method: 'tp_btf', programs: ['defrag_tp_btf'], attach: (o) => [o.program('defrag_tp_btf').attachTrace()] },
    { method: 'tracepoint', programs: ['defrag_tracepoint'], attach: (o) => [o.program('defrag_tracepoint').attachTracepoint('skb', 'kfree_skb')] },
  ];
}

/** Loads and attaches the first flavour that works; throws with every reason when none does. */
export function loadDefrag(globals: Record<string, GlobalValue>): Promise<PlanLoaded<DefragMethod>> {
  return loadFirstWorking(bpfObjectPath('net.defrag'), attachPlan(), { what: 'net.defrag', open: { globals } });
}
