// The verifier check of a native probe's object: every program of every flavour of its attach
// plan loads at once (so each passes the verifier), and the object holds no other program.
import assert from 'node:assert/strict';
import type { PlanStep } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';

/**
 * Loads every program of `plan` from build/bpf/`name`.bpf.o with `globals`; `use` runs on the
 * loaded object (attach checks) before it closes. Returns the programs' names.
 */
export function loadEveryProgram(name: string, plan: Array<PlanStep<string>>, globals: Record<string, GlobalValue>, use?: (o: BpfObject) => void): string[] {
  const all = plan.flatMap((s) => s.programs);
  const o = BpfObject.open(bpfObjectPath(name), { autoload: Object.fromEntries(all.map((p) => [p, true])), globals });
  try {
    o.load();
    assert.deepEqual(o.programs().map((p) => p.name).sort(), [...all].sort());
    use?.(o);
  } finally {
    o.close();
  }
  return all;
}
