// Which of drops.bpf.c's programs to load and attach on this kernel, tried in order until one
// attaches (engine/native/attach-plan.ts). Each failed attempt is kept (`fallbacks`) so the
// finding says why.
import { bpfObjectPath, type BpfObject } from '../../../engine/native/object.js';
import type { BpfLink } from '../../../engine/native/link.js';
import type { GlobalValue } from '../../../engine/native/globals.js';
import { loadFirstWorking } from '../../../engine/native/attach-plan.js';

export type DropsMethod = 'raw_tracepoint' | 'tp_btf' | 'tracepoint' | 'kprobe';

export interface DropsLoaded {
  obj: BpfObject;
  link: BpfLink;
  method: DropsMethod;
  /** Which BTF the CO-RE reads were relocated against. */
  btf: 'minimal (cached)' | 'vmlinux';
  loadMs: number;
  /** Attempts that failed before this one, one line each. */
  fallbacks: string[];
}

type ProgramName = 'drops_raw_tp' | 'drops_tp_btf' | 'drops_tp_btf_hdr' | 'drops_tracepoint' | 'drops_kprobe' | 'drops_kprobe_legacy';

interface Attempt {
  program: ProgramName;
  method: DropsMethod;
  /** Minimal BTF to relocate against (raw_tp only: tp_btf parses vmlinux BTF anyway). */
  minimalBtf?: boolean;
  /** A variant of the next attempt (engine/native/attach-plan.ts, PlanStep.variant). */
  variant?: boolean;
  attach: (obj: BpfObject) => BpfLink;
}

/**
 * The plan for a kernel whose kfree_skb tracepoint has (or lacks) the drop reason: tp_btf
 * (plain loads of the skb's fields: the cheapest handler, ~100 ns a drop against ~140 ns with
 * probe reads, for ~10 ms more load while libbpf parses vmlinux BTF), raw_tp + minimal BTF, the
 * classic tracepoint; before 5.17 the kprobe on kfree_skb, whose every call is a drop. When the
 * filters read the packet (`readsPacket`), first the tp_btf program that reads its headers with
 * plain loads too, which older verifiers refuse.
 */
export function attachPlan(tracepointHasReason: boolean, readsPacket = false): Attempt[] {
  if (!tracepointHasReason) {
    return [{ program: 'drops_kprobe_legacy', method: 'kprobe', attach: (o) => o.program('drops_kprobe_legacy').attachKprobe('kfree_skb') }];
  }
  return [
    ...(readsPacket ? [{ program: 'drops_tp_btf_hdr' as const, method: 'tp_btf' as const, variant: true, attach: (o: BpfObject) => o.program('drops_tp_btf_hdr').attachTrace() }] : []),
    { program: 'drops_tp_btf', method: 'tp_btf', attach: (o) => o.program('drops_tp_btf').attachTrace() },
    { program: 'drops_raw_tp', method: 'raw_tracepoint', minimalBtf: true, attach: (o) => o.program('drops_raw_tp').attachRawTracepoint('kfree_skb') },
    { program: 'drops_tracepoint', method: 'tracepoint', attach: (o) => o.program('drops_tracepoint').attachTracepoint('skb', 'kfree_skb') },
    { program: 'drops_kprobe', method: 'kprobe', attach: (o) => o.program('drops_kprobe').attachKprobe('kfree_skb_reason') },
  ];
}

/** Whether the filters these globals set read the packet's headers (the VM's MACs or addresses, an address filter). */
export function readsPacket(globals: Record<string, GlobalValue>): boolean {
  return ['n_vm_macs', 'n_vm_ip4', 'n_vm_ip6', 'targ_family'].some((g) => Number(globals[g] ?? 0) > 0);
}

/** Loads and attaches the first program of the plan that works; throws with every reason when none does. */
export async function loadDrops(
  globals: Record<string, GlobalValue>,
  tracepointHasReason: boolean,
  attempts = attachPlan(tracepointHasReason, readsPacket(globals)),
): Promise<DropsLoaded> {
  const plan = attempts.map((a) => ({
    method: a.method,
    programs: [a.program],
    ...(a.minimalBtf ? { minimalBtf: true } : {}),
    ...(a.variant ? { variant: true } : {}),
    attach: (o: BpfObject) => [a.attach(o)],
  }));
  const loaded = await loadFirstWorking(bpfObjectPath('drops.kernel'), plan, { what: 'drops.kernel', open: { globals } });
  return { obj: loaded.obj, link: loaded.links[0]!, method: loaded.method, btf: loaded.btf, loadMs: loaded.loadMs, fallbacks: loaded.fallbacks };
}
