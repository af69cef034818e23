// A native probe's programs checked for real: every program of its object loads with the
// probe's filters set, each flavour attaches to its tracepoints in order, and kprobe programs
// pass the verifier.
import assert from 'node:assert/strict';
import type { PlanStep } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';

/**
 * Opens `<object>.bpf.o` with exactly `programs` to load and `globals` set, loads it, asserts
 * those are all its programs, and runs `use` on the loaded object before closing it.
 */
export function withAllLoaded(
  object: string,
  programs: readonly string[],
  globals: Record<string, GlobalValue> = {},
  use: (o: BpfObject) => void = () => {},
  /** Programs the object has but this kernel's verifier may refuse: listed, not loaded (their own tests load them). */
  notLoaded: readonly string[] = [],
): void {
  const autoload = Object.fromEntries([...notLoaded.map((p) => [p, false] as const), ...programs.map((p) => [p, true] as const)]);
  const o = BpfObject.open(bpfObjectPath(object), { autoload, globals });
  try {
    o.load();
    assert.deepEqual(o.programs().map((p) => p.name).sort(), [...programs, ...notLoaded].sort());
    use(o);
  } finally {
    o.close();
  }
}

/** Each step of `plan` attaches to `tracepoints` (its targets without `category:` or `tp_btf/`), in order; with `category`, only that category may be stripped. */
export function assertStepsAttach(o: BpfObject, plan: Array<PlanStep<string>>, tracepoints: readonly string[], category = '[a-z_]+'): void {
  const prefix = new RegExp(`^(${category}:|tp_btf/)`);
  for (const step of plan) {
    const links = step.attach(o);
    assert.deepEqual(
      links.map((l) => l.target.replace(prefix, '')),
      [...tracepoints],
      step.method,
    );
  }
}

/** The flavours of a per-packet probe's plan: tp_btf first (tracepointPlan's prefer: 'tp_btf'). */
export const TP_BTF_FIRST = ['tp_btf', 'raw_tracepoint', 'tracepoint'];

/** The programs of `plan`, whose flavours must be `order` (raw_tracepoint, tp_btf and tracepoint unless told). */
export function flavoursInOrder(plan: Array<PlanStep<string>>, order: string[] = ['raw_tracepoint', 'tp_btf', 'tracepoint']): string[] {
  assert.deepEqual(
    plan.map((s) => s.method),
    order,
  );
  return plan.flatMap((s) => s.programs);
}

/** Loads every program of `<object>.bpf.o` at once, then attaches each step of `plan` (flavours in `order`, as flavoursInOrder); each step's targets, without `category:` or `tp_btf/`, must be `tracepoints`. */
export function assertEveryFlavourAttaches(object: string, plan: Array<PlanStep<string>>, globals: Record<string, GlobalValue>, tracepoints: readonly string[], order?: string[]): void {
  withAllLoaded(object, flavoursInOrder(plan, order), globals, (o) => assertStepsAttach(o, plan, tracepoints));
}

/** Each of `programs` of the loaded `o` was accepted by the verifier, as a program of the type `typeOf` gives (kprobe unless told). */
export function assertVerified(o: BpfObject, programs: ReadonlyArray<{ program: string; kind: string; target: string }>, typeOf: (p: { kind: string }) => string = () => 'kprobe'): void {
  for (const p of programs) {
    const prog = o.program(p.program);
    assert.notEqual(prog.info.fd, null, `${p.program} (${p.kind} ${p.target}) was accepted by the verifier`);
    assert.equal(prog.type, typeOf(p));
  }
}
