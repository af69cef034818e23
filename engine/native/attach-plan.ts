// Loads one flavour of a BPF object's programs. A probe's plan lists the flavours in order of
// preference (e.g. raw_tp with a cached minimal BTF → tp_btf → classic tracepoint → kprobe),
// each with the programs it loads and how they attach; the first flavour that loads and
// attaches wins. Every failed attempt is kept as one line (`fallbacks`) so a finding says why.
import { ensureMinimalBtf } from './btf-cache.js';
import type { TableSpec } from '../probe/types.js';
import type { BpfLink } from './link.js';
import { BpfObject, type OpenOptions } from './object.js';

export interface PlanStep<M extends string> {
  method: M;
  /** The programs this flavour loads; every other program of the object stays unloaded. */
  programs: string[];
  /** Relocate CO-RE reads against a minimal BTF made (and cached) for the object. */
  minimalBtf?: boolean;
  /** Attaches the loaded programs; throwing moves on to the next flavour. */
  attach: (obj: BpfObject) => BpfLink[];
  /**
   * A faster variant of the next step, of the same method, that some verifiers refuse (plain
   * loads of packet data): its failure is no fallback of method, so it is not among `fallbacks`
   * (only in the error when no step works).
   */
  variant?: boolean;
}

export interface PlanLoaded<M extends string> {
  obj: BpfObject;
  links: BpfLink[];
  method: M;
  /** Which BTF the CO-RE reads were relocated against. */
  btf: 'minimal (cached)' | 'vmlinux';
  loadMs: number;
  /** Attempts that failed before this one, one line each (`method: why`). */
  fallbacks: string[];
}

export interface PlanOptions {
  /** What is being attached, for the error when nothing works (`drops.kernel`). */
  what: string;
  /** Globals and map sizes, as BpfObject.open takes them. */
  open?: Omit<OpenOptions, 'autoload' | 'btfPath'>;
  /** Runs between load and attach (fill maps the programs read from the start). */
  afterLoad?: (obj: BpfObject) => void;
}

/** The first line of an error's message: one line per failed attempt. */
export function errorLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** Loads and attaches the first flavour of `plan` that works; throws with every reason when none does. */
export async function loadFirstWorking<M extends string>(path: string, plan: Array<PlanStep<M>>, opts: PlanOptions): Promise<PlanLoaded<M>> {
  const fallbacks: string[] = [];
  const failures: string[] = [];
  const failed = (step: PlanStep<M>, err: unknown) => {
    const line = `${step.method}: ${errorLine(err)}`;
    failures.push(line);
    if (!step.variant) fallbacks.push(line);
  };
  for (const step of plan) {
    let btfPath: string | undefined;
    if (step.minimalBtf) {
      try {
        btfPath = await ensureMinimalBtf(path);
      } catch (err) {
        failed(step, err);
        continue;
      }
    }
    let obj: BpfObject | undefined;
    try {
      obj = BpfObject.open(path, { ...opts.open, ...(btfPath ? { btfPath } : {}) });
      const programs = obj.programs();
      const unknown = step.programs.filter((name) => !programs.some((p) => p.name === name));
      if (unknown.length > 0) throw new Error(`no program ${unknown.join(', ')} in ${path}`);
      for (const p of programs) p.autoload = step.programs.includes(p.name);
      obj.load();
      opts.afterLoad?.(obj);
      const links = step.attach(obj);
      return { obj, links, method: step.method, btf: btfPath ? 'minimal (cached)' : 'vmlinux', loadMs: obj.loadMs ?? 0, fallbacks };
    } catch (err) {
      obj?.close();
      failed(step, err);
    }
  }
  throw new Error(`no way to attach ${opts.what} on this kernel: ${failures.join('; ')}`);
}

/** The flavours of a set of tracepoint handlers, in order of preference. */
export type TracepointMethod = 'raw_tracepoint' | 'tp_btf' | 'tracepoint';

/**
 * The usual plan for handlers of tracepoints of one `category` (or of each tracepoint's, when
 * it is a function): raw_tp with a cached minimal BTF (fastest load), tp_btf, then the classic
 * tracepoints. `prefer: 'tp_btf'` puts tp_btf first, for handlers that run per packet: their
 * fields are plain loads there (`direct` in bpf/include/hooks.h), for ~8 ms more load while
 * libbpf parses vmlinux BTF. `program` names the handler of each tracepoint in each flavour;
 * every handler of a flavour attaches together, in `tracepoints` order.
 */
export function tracepointPlan<T extends string>(
  category: string | ((tp: T) => string),
  tracepoints: readonly T[],
  program: (tp: T, method: TracepointMethod) => string,
  opts: { prefer?: 'raw_tracepoint' | 'tp_btf' } = {},
): Array<PlanStep<TracepointMethod>> {
  const categoryOf = typeof category === 'string' ? () => category : category;
  const step = (method: TracepointMethod, attach: (o: BpfObject, tp: T, prog: string) => BpfLink): PlanStep<TracepointMethod> => ({
    method,
    programs: tracepoints.map((tp) => program(tp, method)),
    ...(method === 'raw_tracepoint' ? { minimalBtf: true } : {}),
    attach: (o: BpfObject) => tracepoints.map((tp) => attach(o, tp, program(tp, method))),
  });
  const raw = step('raw_tracepoint', (o, tp, prog) => o.program(prog).attachRawTracepoint(tp));
  const btf = step('tp_btf', (o, _tp, prog) => o.program(prog).attachTrace());
  return [...(opts.prefer === 'tp_btf' ? [btf, raw] : [raw, btf]), step('tracepoint', (o, tp, prog) => o.program(prog).attachTracepoint(categoryOf(tp), tp))];
}

/** What a probe records of a loaded plan (times in ms, to the µs). */
export interface LoadedRecord<M extends string> {
  method: M;
  btf: PlanLoaded<M>['btf'];
  loadMs: number;
  attach: Array<{ program: string; target: string; attachMs: number }>;
  /** Why the preferred flavours were not used, when another one was. */
  fallback?: string;
}

export function loadedRecord<M extends string>(loaded: PlanLoaded<M>): LoadedRecord<M> {
  const us = (ms: number) => Math.round(ms * 1000) / 1000;
  return {
    method: loaded.method,
    btf: loaded.btf,
    loadMs: us(loaded.loadMs),
    attach: loaded.links.map((l) => ({ program: l.program, target: l.target, attachMs: us(l.attachMs) })),
    ...(loaded.fallbacks.length > 0 ? { fallback: loaded.fallbacks.join('; ') } : {}),
  };
}

/** A recorded load's fields as a finding's data repeats them (a copy: the attach capture may hold more). */
export function loadedFields<M extends string>(r: LoadedRecord<M>): LoadedRecord<M> {
  return { method: r.method, btf: r.btf, loadMs: r.loadMs, attach: r.attach, ...(r.fallback !== undefined ? { fallback: r.fallback } : {}) };
}

/** The Attach table of a probe whose programs all loaded and attached one way (one BTF, one load). */
export function attachTable(record: Omit<LoadedRecord<string>, 'btf'> & { btf: string }): TableSpec {
  return {
    title: 'Attach',
    columns: ['program', 'method', 'target', 'BTF', 'load ms', 'attach ms'],
    rows: record.attach.map((a) => [a.program, record.method, a.target, record.btf, record.loadMs, a.attachMs]),
  };
}
