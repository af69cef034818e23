#!/usr/bin/env node
// ebpfnet command line. Each command lives in commands/<name>/index.ts.
import { Command, CommanderError } from 'commander';
import { packageVersion } from '../package-info.js';
import { ParamError } from '../probe/params.js';
import { UnknownRunbookError } from '../runbook/errors.js';
import { InputError } from '../runbook/inputs.js';
import { ProblemsError, formatProblem } from '../yaml/problems.js';
import { registerDiagnose } from './commands/diagnose/index.js';
import { registerDoctor } from './commands/doctor/index.js';
import { registerGuide } from './commands/guide/index.js';
import { registerProbe } from './commands/probe/index.js';
import { registerProbes } from './commands/probes/index.js';
import { registerReport } from './commands/report/index.js';
import { registerRunbooks } from './commands/runbooks/index.js';
import { registerSelftest } from './commands/selftest/index.js';
import { registerServe } from './commands/serve/index.js';
import { registerVms } from './commands/vms/index.js';
import { CliError, EXIT } from '../exit-codes.js';

function buildProgram(): Command {
  const program = new Command('ebpfnet')
    .description('Diagnose network faults of VMs on Linux/KVM hosts with eBPF runbooks')
    .version(packageVersion())
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  registerDiagnose(program);
  registerGuide(program);
  registerRunbooks(program);
  registerProbes(program);
  registerProbe(program);
  registerReport(program);
  registerDoctor(program);
  registerSelftest(program);
  registerServe(program);
  registerVms(program);
  return program;
}

/** One line for the user; a stack only with EBPFNET_DEBUG=1. */
function report(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  // Runbooks, inventories, serve configurations: every problem at its file:line:column.
  if (err instanceof ProblemsError) {
    for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
    return EXIT.usage;
  }
  const known = err instanceof CliError || err instanceof InputError || err instanceof ParamError || err instanceof UnknownRunbookError;
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`ebpfnet: ${message.split('\n')[0]}\n`);
  if (process.env.EBPFNET_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  if (err instanceof CliError) return err.exitCode;
  return known ? EXIT.usage : EXIT.failure;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  process.exitCode = report(err);
}
