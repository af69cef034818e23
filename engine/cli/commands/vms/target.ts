// From `--vm NAME` to a run target, with the errors a user can fix made CLI
// errors: an unknown VM (the message lists the VMs found) and a broken inventory
// (every problem printed as file:line:column first). `diagnose --vm` uses this too.
import { formatProblem } from '../../../yaml/problems.js';
import type { Target } from '../../../target/types.js';
import { InventoryError, VmNotFoundError, resolveVm, vmTarget, type ResolveOptions } from '../../../target/index.js';
import { CliError } from '../../../exit-codes.js';

/** Runs `fn`, turning discovery's user errors into CliErrors (exit 2). */
export async function withTargetErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof InventoryError) {
      for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
      const files = [...new Set(err.problems.map((p) => p.file))].join(', ');
      throw new CliError(`invalid inventory ${files}: ${err.problems.length} problem(s)`);
    }
    if (err instanceof VmNotFoundError) throw new CliError(err.message);
    throw err;
  }
}

/** The target of `--vm NAME`: the VM's facts under `kind: 'vm'`. */
export function resolveVmTarget(name: string, opts: ResolveOptions = {}): Promise<Target> {
  return withTargetErrors(async () => vmTarget(await resolveVm(name, opts)));
}
