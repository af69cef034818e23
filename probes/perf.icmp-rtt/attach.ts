// Which flavour of icmprtt.bpf.c's two handlers to load and attach: tp_btf (the skb's fields
// are plain loads there: they run for every packet), raw_tp with a cached minimal BTF, the
// classic tracepoints, tried in that order (engine/native/attach-plan.ts). Both programs of one
// flavour attach together.
import { loadFirstWorking, type PlanLoaded, type PlanStep } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import type { BpfLink } from '../../engine/native/link.js';
import { bpfObjectPath, type BpfObject } from '../../engine/native/object.js';

export type IcmpRttMethod = 'raw_tracepoint' | 'tp_btf' | 'tracepoint';

/** The hooks, receive first: a reply must never be seen leaving before its request could be. */
export const HOOKS = [
  { stem: 'rx', name: 'netif_receive_skb' },
  { stem: 'tx', name: 'net_dev_start_xmit' },
] as const;

const SUFFIX: Record<IcmpRttMethod, string> = { raw_tracepoint: 'raw', tp_btf: 'btf', tracepoint: 'tp' };

export function programName(stem: (typeof HOOKS)[number]['stem'], method: IcmpRttMethod): string {
  return `icmprtt_${stem}_${SUFFIX[method]}`;
}

export function attachPlan(): Array<PlanStep<IcmpRttMethod>> {
  const step = (method: IcmpRttMethod, attach: (o: BpfObject, tracepoint: string, prog: string) => BpfLink): PlanStep<IcmpRttMethod> => ({
    method,
    programs: HOOKS.map((h) => programName(h.stem, method)),
    ...(method === 'raw_tracepoint' ? { minimalBtf: true } : {}),
    attach: (o: BpfObject) => HOOKS.map((h) => attach(o, h.name, programName(h.stem, method))),
  });
  return [
    step('tp_btf', (o, _tp, prog) => o.program(prog).attachTrace()),
    step('raw_tracepoint', (o, tp, prog) => o.program(prog).attachRawTracepoint(tp)),
    step('tracepoint', (o, tp, prog) => o.program(prog).attachTracepoint('net', tp)),
  ];
}

/** Loads and attaches the first flavour that works; throws with every reason when none does. */
export async function loadIcmpRtt(globals: Record<string, GlobalValue>): Promise<PlanLoaded<IcmpRttMethod>> {
  return loadFirstWorking(bpfObjectPath('perf.icmp-rtt'), attachPlan(), { what: 'perf.icmp-rtt', open: { globals } });
}
