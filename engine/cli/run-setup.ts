// Turns the flags `diagnose` and `guide` share into the runner's options: the runbook, its
// inputs, the VM's facts as the target, a replayed bundle, the overhead budget.
import { resolve as resolvePath } from 'node:path';
import type { ProbeCatalog } from '../probe/types.js';
import type { DiagnoseOptions } from '../run/runner.js';
import { CliError } from '../exit-codes.js';
import { budgetFlag, parseAssignments } from './options.js';
import { openRunbook } from '../runbook/catalog.js';
import { resolveVmTarget } from './commands/vms/target.js';
import type { Finding } from '../probe/types.js';
import type { Target } from '../target/types.js';
import { withLearnedAddresses } from '../target/index.js';

export interface RunFlags {
  vm?: string;
  input: string[];
  out: string;
  replay?: string;
  budget?: string;
  inventory?: string;
}

export async function runOptionsFrom(
  runbookArg: string,
  flags: RunFlags,
  catalog: ProbeCatalog,
): Promise<Omit<DiagnoseOptions, 'signal' | 'progress' | 'ask' | 'confirmStep'>> {
  const budget = budgetFlag(flags.budget);
  // The VM's facts (taps, bridge, threads, addresses) become the run's target; a replay
  // takes the recorded ones instead, so it runs on a host where the VM is gone. Discovery
  // waits on commands and sockets: it starts first and goes on while the runbook is read.
  const resolving =
    flags.vm !== undefined && !flags.replay
      ? resolveVmTarget(flags.vm, flags.inventory ? { inventory: flags.inventory } : {})
      : undefined;
  resolving?.catch(() => undefined); // awaited below, unless the runbook fails first
  const runbook = openRunbook(runbookArg, catalog);
  const inputs: Record<string, unknown> = parseAssignments(flags.input, '--input');
  if (flags.vm !== undefined) {
    if (!('vm' in runbook.inputs)) throw new CliError(`runbook ${runbook.id} does not take --vm (it diagnoses the host)`);
    inputs.vm = flags.vm;
  }
  const target = await resolving;
  return {
    runbook,
    catalog,
    inputs,
    learnTarget: learnFromFrames,
    outDir: flags.out,
    ...(budget ? { budget } : {}),
    ...(target ? { target } : flags.vm !== undefined ? { target: { kind: 'vm' as const, name: flags.vm } } : {}),
    ...(flags.replay ? { replayFrom: flags.replay } : {}),
    ...(flags.inventory !== undefined ? { inventory: resolvePath(flags.inventory) } : {}),
  };
}

/**
 * The addresses a probe saw in the VM's own frames (`data.learnedAddresses`, vm.frames) join
 * the target's, so that later steps scope by them and the report says where each came from.
 */
export function learnFromFrames(target: Record<string, unknown>, finding: Finding): Record<string, unknown> | null {
  const learned = finding.status === 'ok' ? finding.data.learnedAddresses : undefined;
  if (target.kind !== 'vm' || !Array.isArray(learned)) return null;
  const addresses = (learned as Array<{ address?: unknown; mac?: unknown; via?: unknown }>)
    .filter((l) => typeof l.address === 'string')
    .map((l) => ({
      address: l.address as string,
      ...(typeof l.mac === 'string' ? { mac: l.mac } : {}),
      ...(Array.isArray(l.via) ? { via: l.via.join(',') } : typeof l.via === 'string' ? { via: l.via } : {}),
    }));
  const next = withLearnedAddresses(target as Target, addresses);
  return next === target ? null : next;
}
