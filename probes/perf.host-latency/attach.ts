// Which flavour of perf.host-latency.bpf.c's handlers to load and attach: tp_btf (the skb's fields
// are plain loads there: the handlers run several times a packet), raw_tp with a cached minimal
// BTF, the classic tracepoints, tried in that order (engine/native/attach-plan.ts). Every handler
// of one flavour attaches together; a direction not asked for leaves its hooks out.
import { loadFirstWorking, tracepointPlan, type PlanLoaded, type PlanStep, type TracepointMethod } from '../../engine/native/attach-plan.js';
import { possibleCpus } from '../../engine/native/features.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { bpfObjectPath } from '../../engine/native/object.js';

export type HostLatMethod = TracepointMethod;

/** A tracepoint hostlat.bpf.c hooks, the stem of its handler's name, and which way it serves. */
export interface HostLatHook {
  stem: string;
  category: 'net' | 'qdisc' | 'skb' | 'sock';
  name: string;
  dir: 'tx' | 'rx' | 'both';
  /** Left out where the kernel lacks it (sk_data_ready: the RX path then ends at netif_receive_skb). */
  optional?: true;
}

/** In attach order: each path's later stages first, so no packet is stamped before its end can be seen. */
export const HOOKS: readonly HostLatHook[] = [
  { stem: 'consume', category: 'skb', name: 'consume_skb', dir: 'both' },
  { stem: 'kfree', category: 'skb', name: 'kfree_skb', dir: 'both' },
  { stem: 'xmit', category: 'net', name: 'net_dev_xmit', dir: 'tx' },
  { stem: 'start', category: 'net', name: 'net_dev_start_xmit', dir: 'tx' },
  { stem: 'dequeue', category: 'qdisc', name: 'qdisc_dequeue', dir: 'tx' },
  { stem: 'enqueue', category: 'qdisc', name: 'qdisc_enqueue', dir: 'tx' },
  { stem: 'queue', category: 'net', name: 'net_dev_queue', dir: 'tx' },
  { stem: 'ready', category: 'sock', name: 'sk_data_ready', dir: 'rx', optional: true },
  { stem: 'receive', category: 'net', name: 'netif_receive_skb', dir: 'rx' },
  { stem: 'gro', category: 'net', name: 'napi_gro_receive_entry', dir: 'rx' },
  { stem: 'rcventry', category: 'net', name: 'netif_receive_skb_entry', dir: 'rx' },
  { stem: 'rxentry', category: 'net', name: 'netif_rx_entry', dir: 'rx' },
];

const SUFFIX: Record<HostLatMethod, string> = { raw_tracepoint: 'raw', tp_btf: 'btf', tracepoint: 'tp' };

/** The hooks a direction (`tx`, `rx`, `both`) needs. */
export function hooksFor(direction: string): HostLatHook[] {
  return HOOKS.filter((h) => direction === 'both' || h.dir === 'both' || h.dir === direction);
}

export function attachPlan(hooks: readonly HostLatHook[] = HOOKS): Array<PlanStep<HostLatMethod>> {
  const byName = new Map(hooks.map((h) => [h.name, h]));
  return tracepointPlan(
    (tp) => byName.get(tp)!.category,
    hooks.map((h) => h.name),
    (tp, method) => `hostlat_${byName.get(tp)!.stem}_${SUFFIX[method]}`,
    { prefer: 'tp_btf' },
  );
}

/** Loads and attaches the first flavour that works; throws with every reason when none does. */
export async function loadHostLat(globals: Record<string, GlobalValue>, hooks: readonly HostLatHook[]): Promise<PlanLoaded<HostLatMethod>> {
  // `cpus` has an entry per possible CPU.
  const open = { globals, maxEntries: { cpus: possibleCpus() } };
  return loadFirstWorking(bpfObjectPath('perf.host-latency'), attachPlan(hooks), { what: 'perf.host-latency', open });
}
