// Which flavour of arp.bpf.c's two programs to load and attach: tp_btf (the skb's fields are
// plain loads there: they run for every frame), raw_tp with a cached minimal BTF, or the
// classic tracepoints, tried in that order (engine/native/attach-plan.ts). Both programs of
// one flavour attach together.
import { loadFirstWorking, tracepointPlan, type PlanLoaded, type PlanStep, type TracepointMethod } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { u32Key } from '../../engine/native/map.js';
import { bpfObjectPath } from '../../engine/native/object.js';

export type ArpMethod = TracepointMethod;

/** The net tracepoints, in attach order: requests sent first, so that replies find them. */
export const TRACEPOINTS = ['net_dev_start_xmit', 'netif_receive_skb'] as const;
export type Tracepoint = (typeof TRACEPOINTS)[number];

const HANDLER: Record<Tracepoint, string> = { net_dev_start_xmit: 'xmit', netif_receive_skb: 'receive' };
const SUFFIX: Record<ArpMethod, string> = { raw_tracepoint: 'raw_tp', tp_btf: 'tp_btf', tracepoint: 'tracepoint' };

/** `arp_<handler>_<flavour>`: `netif_receive_skb` → `arp_receive_raw_tp`. */
export function programName(tracepoint: Tracepoint, method: ArpMethod): string {
  return `arp_${HANDLER[tracepoint]}_${SUFFIX[method]}`;
}

export function attachPlan(): Array<PlanStep<ArpMethod>> {
  return tracepointPlan('net', TRACEPOINTS, programName, { prefer: 'tp_btf' });
}

/** CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns (libuv's hrtime reads it too). */
function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

/** Loads and attaches the first flavour that works; throws with every reason when none does. */
export async function loadArp(globals: Record<string, GlobalValue>): Promise<PlanLoaded<ArpMethod>> {
  return loadFirstWorking(bpfObjectPath('other.arp'), attachPlan(), {
    what: 'other.arp',
    open: { globals },
    afterLoad: (obj) => {
      const start = Buffer.alloc(8);
      start.writeBigUInt64LE(monotonicNs());
      obj.map('session').update(u32Key(0), start);
    },
  });
}
