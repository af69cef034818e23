// Which flavour of perf.vm-latency.bpf.c's handlers to load and attach on this kernel, tried in
// order until every hook of one flavour attaches (engine/native/attach-plan.ts's tracepoint plan):
// tp_btf (the skb's fields are plain loads there: the handlers run on every packet), raw_tp with
// a cached minimal BTF, the classic tracepoints. Each failed
// attempt is kept (`fallbacks`) so the finding says why; a map is filled between load and attach.
import { loadFirstWorking, tracepointPlan, type PlanLoaded, type PlanStep, type TracepointMethod } from '../../engine/native/attach-plan.js';
import { possibleCpus } from '../../engine/native/features.js';
import { bpfObjectPath, type BpfObject } from '../../engine/native/object.js';
import type { GlobalValue } from '../../engine/native/globals.js';

export type VmlatMethod = TracepointMethod;

/** A tracepoint vmlat.bpf.c hooks, and the program name stem of its handler. */
export interface VmlatHook {
  stem: 'rx' | 'queue' | 'start' | 'xmit' | 'consume' | 'drop';
  category: 'net' | 'skb';
  name: string;
}

export const HOOKS: readonly VmlatHook[] = [
  { stem: 'rx', category: 'net', name: 'netif_receive_skb' },
  { stem: 'queue', category: 'net', name: 'net_dev_queue' },
  { stem: 'start', category: 'net', name: 'net_dev_start_xmit' },
  { stem: 'xmit', category: 'net', name: 'net_dev_xmit' },
  { stem: 'consume', category: 'skb', name: 'consume_skb' },
  { stem: 'drop', category: 'skb', name: 'kfree_skb' },
];

const SUFFIX: Record<VmlatMethod, string> = { raw_tracepoint: 'raw', tp_btf: 'btf', tracepoint: 'tp' };
const programName = (h: VmlatHook, method: VmlatMethod) => `vmlat_${h.stem}_${SUFFIX[method]}`;

/** Every program of the object, by flavour: what the verifier test loads. */
export function allPrograms(): string[] {
  return (Object.keys(SUFFIX) as VmlatMethod[]).flatMap((m) => HOOKS.map((h) => programName(h, m)));
}

export interface VmlatLink {
  program: string;
  method: VmlatMethod;
  /** The tracepoint, `category:name`. */
  target: string;
  attachMs: number;
}

export interface VmlatLoaded extends Omit<PlanLoaded<VmlatMethod>, 'links'> {
  links: VmlatLink[];
}

/** The plan: the flavours in the order they are tried, each with its programs for `hooks`. */
export function attachPlan(hooks: readonly VmlatHook[] = HOOKS): Array<PlanStep<VmlatMethod>> {
  const hookOf = (name: string) => hooks.find((h) => h.name === name)!;
  return tracepointPlan(
    (name) => hookOf(name).category,
    hooks.map((h) => h.name),
    (name, method) => programName(hookOf(name), method),
    { prefer: 'tp_btf' },
  );
}

/**
 * Loads and attaches `hooks` in the first flavour that works. `prepare` runs between load and
 * attach (fill maps the programs read). From open to the last attach nothing is awaited, so
 * no other code of this process runs while the object is half attached.
 */
export async function loadVmlat(
  globals: Record<string, GlobalValue>,
  hooks: readonly VmlatHook[],
  prepare: (obj: BpfObject) => void,
): Promise<VmlatLoaded> {
  // `cpus` has an entry per possible CPU.
  const open = { globals, maxEntries: { cpus: possibleCpus() } };
  const loaded = await loadFirstWorking(bpfObjectPath('perf.vm-latency'), attachPlan(hooks), { what: 'perf.vm-latency', open, afterLoad: prepare });
  // The plan attaches in `hooks` order: one link per hook.
  const links = loaded.links.map((l, i) => ({ program: l.program, method: loaded.method, target: `${hooks[i]!.category}:${hooks[i]!.name}`, attachMs: l.attachMs }));
  return { ...loaded, links };
}
