// A native probe's attach plan checked for real: every program of its object loads with the
// probe's filters set, and each flavour attaches to its tracepoints, in order.
import assert from 'node:assert/strict';
import type { PlanStep } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';

/** Loads every program of `<object>.bpf.o` at once, then attaches each step of `plan`; each step's targets, without `category:` or `tp_btf/`, must be `tracepoints`. */
export function assertEveryFlavourAttaches(object: string, plan: Array<PlanStep<string>>, globals: Record<string, GlobalValue>, tracepoints: readonly string[]): void {
  assert.deepEqual(
    plan.map((s) => s.method),
    ['raw_tracepoint', 'tp_btf', 'tracepoint'],
  );
  const all = plan.flatMap((s) => s.programs);
  const o = BpfObject.open(bpfObjectPath(object), { autoload: Object.fromEntries(all.map((p) => [p, true])), globals });
  try {
    o.load();
    assert.deepEqual(o.programs().map((p) => p.name).sort(), [...all].sort());
    for (const step of plan) {
      const links = step.attach(o);
      assert.deepEqual(
        links.map((l) => l.target.replace(/^([a-z_]+:|tp_btf\/)/, '')),
        [...tracepoints],
        step.method,
      );
    }
  } finally {
    o.close();
  }
}
