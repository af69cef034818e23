// Which flavour of vmlat.bpf.c's handlers to load and attach on this kernel, tried in order
// until every hook of one flavour attaches: raw_tp with a cached minimal BTF (fastest load),
// tp_btf, the classic tracepoints. Each failed attempt is kept (`fallbacks`) so the finding
// says why. Kept here rather than shared with drops.kernel's plan: the shape is the same, but
// this one attaches several hooks per flavour and fills a map between load and attach.
import { errorLine } from '../../engine/native/attach-plan.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { ensureMinimalBtf } from '../../engine/native/btf-cache.js';

export type VmlatMethod = 'raw_tracepoint' | 'tp_btf' | 'tracepoint';

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

const FLAVOURS = [
  { suffix: 'raw', method: 'raw_tracepoint', minimalBtf: true },
  { suffix: 'btf', method: 'tp_btf', minimalBtf: false },
  { suffix: 'tp', method: 'tracepoint', minimalBtf: false },
] as const;

/** Every program of the object, by flavour: what the verifier test loads. */
export function allPrograms(): string[] {
  return FLAVOURS.flatMap((f) => HOOKS.map((h) => `vmlat_${h.stem}_${f.suffix}`));
}

export interface VmlatLink {
  program: string;
  method: VmlatMethod;
  /** The tracepoint, `category:name`. */
  target: string;
  attachMs: number;
}

export interface VmlatLoaded {
  obj: BpfObject;
  method: VmlatMethod;
  links: VmlatLink[];
  /** Which BTF the CO-RE reads were relocated against. */
  btf: 'minimal (cached)' | 'vmlinux';
  loadMs: number;
  /** Attempts that failed before this one, one line each. */
  fallbacks: string[];
}

/** The plan: the flavours in the order they are tried, each with its programs for `hooks`. */
export function attachPlan(hooks: readonly VmlatHook[] = HOOKS): Array<{ method: VmlatMethod; programs: string[] }> {
  return FLAVOURS.map((f) => ({ method: f.method, programs: hooks.map((h) => `vmlat_${h.stem}_${f.suffix}`) }));
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
  const path = bpfObjectPath('perf.vm-latency');
  const fallbacks: string[] = [];
  const every = allPrograms();
  for (const f of FLAVOURS) {
    let btfPath: string | undefined;
    if (f.minimalBtf) {
      try {
        btfPath = await ensureMinimalBtf(path);
      } catch (err) {
        fallbacks.push(`${f.method}: ${errorLine(err)}`);
        continue;
      }
    }
    const wanted = new Set(hooks.map((h) => `vmlat_${h.stem}_${f.suffix}`));
    const autoload = Object.fromEntries(every.map((p) => [p, wanted.has(p)]));
    let obj: BpfObject | undefined;
    try {
      obj = BpfObject.open(path, { globals, autoload, ...(btfPath ? { btfPath } : {}) });
      obj.load();
      prepare(obj);
      const links: VmlatLink[] = [];
      for (const h of hooks) {
        const program = obj.program(`vmlat_${h.stem}_${f.suffix}`);
        const link =
          f.method === 'raw_tracepoint'
            ? program.attachRawTracepoint(h.name)
            : f.method === 'tp_btf'
              ? program.attachTrace()
              : program.attachTracepoint(h.category, h.name);
        links.push({ program: program.name, method: f.method, target: `${h.category}:${h.name}`, attachMs: link.attachMs });
      }
      return { obj, method: f.method, links, btf: btfPath ? 'minimal (cached)' : 'vmlinux', loadMs: obj.loadMs ?? 0, fallbacks };
    } catch (err) {
      obj?.close();
      fallbacks.push(`${f.method}: ${errorLine(err)}`);
    }
  }
  throw new Error(`no way to attach perf.vm-latency on this kernel: ${fallbacks.join('; ')}`);
}
