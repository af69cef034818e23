// Which flavour of udppath.bpf.c's eight handlers to load and attach: tp_btf (the skb's fields
// are plain loads there: they run several times per packet), raw_tp with a cached minimal BTF,
// or the classic tracepoints, tried in that order (engine/native/attach-plan.ts). Every handler
// of one flavour attaches together.
import { loadFirstWorking, tracepointPlan, type PlanLoaded, type PlanStep, type TracepointMethod } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { possibleCpus } from '../../engine/native/features.js';
import { bpfObjectPath } from '../../engine/native/object.js';

export type UdpPathMethod = TracepointMethod;

/** The hooks in the order of probes/other.udp-path/other.udp-path.h's enum udppath_hook: its value indexes this list. */
export const HOOKS = [
  { stem: 'queue', category: 'net', tracepoint: 'net_dev_queue', direction: 'tx' },
  { stem: 'dequeue', category: 'qdisc', tracepoint: 'qdisc_dequeue', direction: 'tx' },
  { stem: 'xmit', category: 'net', tracepoint: 'net_dev_start_xmit', direction: 'tx' },
  { stem: 'receive', category: 'net', tracepoint: 'netif_receive_skb', direction: 'rx' },
  { stem: 'enqueue', category: 'sock', tracepoint: 'sk_data_ready', direction: 'socket' },
  { stem: 'read', category: 'sock', tracepoint: 'sock_recv_length', direction: 'socket' },
  { stem: 'drop', category: 'skb', tracepoint: 'kfree_skb', direction: 'free' },
  { stem: 'consume', category: 'skb', tracepoint: 'consume_skb', direction: 'free' },
] as const;
export type Hook = (typeof HOOKS)[number];
export type Tracepoint = Hook['tracepoint'];

/** The socket hooks (sk_data_ready, 6.3+; sock_recv_length, 6.0+): a read is paired with the datagram queued, so both or neither. */
export const SOCKET_TRACEPOINTS = HOOKS.filter((h) => h.direction === 'socket').map((h) => `${h.category}:${h.tracepoint}`);
const SUFFIX: Record<UdpPathMethod, string> = { raw_tracepoint: 'raw', tp_btf: 'btf', tracepoint: 'tp' };
const hookOf = (tp: Tracepoint): Hook => HOOKS.find((h) => h.tracepoint === tp)!;

/** `udppath_<stem>_<flavour>`: `netif_receive_skb` → `udppath_receive_raw`. */
export function programName(tp: Tracepoint, method: UdpPathMethod): string {
  return `udppath_${hookOf(tp).stem}_${SUFFIX[method]}`;
}

/** The hooks a session loads: all, or without the socket's where the kernel lacks its tracepoints (the path then ends at the receiver's netif_receive_skb). */
export function hooksLoaded(socketStage: boolean): Hook[] {
  return HOOKS.filter((h) => socketStage || h.direction !== 'socket');
}

export function attachPlan(socketStage = true): Array<PlanStep<UdpPathMethod>> {
  return tracepointPlan((tp) => hookOf(tp).category, hooksLoaded(socketStage).map((h) => h.tracepoint), programName, { prefer: 'tp_btf' });
}

/** Entries of `recent` per CPU (UDPPATH_RECENT, other.udp-path.h). */
const RECENT_PER_CPU = 16;
/** CPUs given entries at most (the maps' bound in the README); CPUs past them count straight in `pairs` and `drops`. */
const RECENT_CPUS = 256;

/** Loads and attaches the first flavour that works; throws with every reason when none does. */
export async function loadUdpPath(globals: Record<string, GlobalValue>, socketStage: boolean): Promise<PlanLoaded<UdpPathMethod>> {
  return loadFirstWorking(bpfObjectPath('other.udp-path'), attachPlan(socketStage), { what: 'other.udp-path', open: { globals, maxEntries: recentEntries() } });
}

/** `recent` and `recent_drops` sized to `cpus` (every possible CPU, up to RECENT_CPUS): a CPU past their end counts straight in `pairs` and `drops`. */
export function recentEntries(cpus = Math.min(possibleCpus(), RECENT_CPUS)): { recent: number; recent_drops: number } {
  return { recent: cpus * RECENT_PER_CPU, recent_drops: cpus };
}

/** The most entries recentEntries gives. */
export const RECENT_MAX_ENTRIES = recentEntries(RECENT_CPUS);
