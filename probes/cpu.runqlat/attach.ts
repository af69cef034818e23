// Which flavour of runqlat.bpf.c's programs to load and attach on this kernel: the three
// handlers (sched_wakeup, sched_wakeup_new, sched_switch) as raw_tp with a cached minimal BTF
// (fastest load), tp_btf, or the classic tracepoints, tried in that order
// (engine/native/attach-plan.ts). The three programs of one flavour attach together.
import { loadFirstWorking, tracepointPlan, type PlanLoaded, type PlanStep, type TracepointMethod } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { bpfObjectPath } from '../../engine/native/object.js';

export type RunqlatMethod = TracepointMethod;

/** The scheduler tracepoints, in attach order (the switch last: a wait needs its start first). */
export const TRACEPOINTS = ['sched_wakeup', 'sched_wakeup_new', 'sched_switch'] as const;
export type Tracepoint = (typeof TRACEPOINTS)[number];

const SUFFIX: Record<RunqlatMethod, string> = { raw_tracepoint: 'raw_tp', tp_btf: 'tp_btf', tracepoint: 'tracepoint' };

/** `runqlat_<handler>_<flavour>`: `sched_wakeup_new` → `runqlat_wakeup_new_raw_tp`. */
export function programName(tracepoint: Tracepoint, method: RunqlatMethod): string {
  return `runqlat_${tracepoint.replace(/^sched_/, '')}_${SUFFIX[method]}`;
}

export function attachPlan(): Array<PlanStep<RunqlatMethod>> {
  return tracepointPlan('sched', TRACEPOINTS, programName);
}

export interface RunqlatLoadOptions {
  globals: Record<string, GlobalValue>;
  maxEntries?: Record<string, number>;
  /** Thread ids written into the `targets` map before the programs attach. */
  targets: number[];
}

/** Loads and attaches the first flavour that works; throws with every reason when none does. */
export async function loadRunqlat(opts: RunqlatLoadOptions): Promise<PlanLoaded<RunqlatMethod>> {
  return loadFirstWorking(bpfObjectPath('cpu.runqlat'), attachPlan(), {
    what: 'cpu.runqlat',
    open: { globals: opts.globals, ...(opts.maxEntries ? { maxEntries: opts.maxEntries } : {}) },
    afterLoad: (obj) => {
      const map = obj.map('targets');
      const one = Buffer.from([1]);
      for (const tid of opts.targets) {
        const key = Buffer.alloc(4);
        key.writeUInt32LE(tid);
        map.update(key, one);
      }
    },
  });
}
