// Which flavour of hostmetrics.bpf.c's four handlers to load and attach: tp_btf (the skb's
// fields are plain loads there: two of them run for every packet), raw_tp with a cached minimal
// BTF, or the classic tracepoints, tried in that order (engine/native/attach-plan.ts). All four
// programs of one flavour attach together.
import { loadFirstWorking, tracepointPlan, type PlanLoaded, type PlanStep, type TracepointMethod } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { bpfObjectPath } from '../../engine/native/object.js';

export type HostMetricsMethod = TracepointMethod;

/** The tracepoints, in attach order: a softirq's exit is only timed once its entry is hooked. */
export const TRACEPOINTS = ['softirq_entry', 'softirq_exit', 'netif_receive_skb', 'net_dev_xmit'] as const;
export type Tracepoint = (typeof TRACEPOINTS)[number];

const CATEGORY: Record<Tracepoint, string> = { softirq_entry: 'irq', softirq_exit: 'irq', netif_receive_skb: 'net', net_dev_xmit: 'net' };
const HANDLER: Record<Tracepoint, string> = { softirq_entry: 'softirq_entry', softirq_exit: 'softirq_exit', netif_receive_skb: 'receive', net_dev_xmit: 'xmit' };
const SUFFIX: Record<HostMetricsMethod, string> = { raw_tracepoint: 'raw_tp', tp_btf: 'tp_btf', tracepoint: 'tracepoint' };

/** `hm_<handler>_<flavour>`: `netif_receive_skb` → `hm_receive_raw_tp`. */
export function programName(tracepoint: Tracepoint, method: HostMetricsMethod): string {
  return `hm_${HANDLER[tracepoint]}_${SUFFIX[method]}`;
}

export function attachPlan(): Array<PlanStep<HostMetricsMethod>> {
  return tracepointPlan((tp) => CATEGORY[tp], TRACEPOINTS, programName, { prefer: 'tp_btf' });
}

/** `irq:softirq_entry`, ... as the requirements name them. */
export function tracepointNames(): string[] {
  return TRACEPOINTS.map((tp) => `${CATEGORY[tp]}:${tp}`);
}

/** Loads and attaches the first flavour that works; throws with every reason when none does. */
export async function loadHostMetrics(globals: Record<string, GlobalValue>): Promise<PlanLoaded<HostMetricsMethod>> {
  return loadFirstWorking(bpfObjectPath('perf.host-metrics'), attachPlan(), { what: 'perf.host-metrics', open: { globals } });
}
