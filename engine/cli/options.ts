// Small helpers for repeatable and key=value options.
import type { Command } from 'commander';
import { CliError } from '../exit-codes.js';
import { parseBudget, type OverheadBudget } from '../probe/overhead.js';
import { parseReportFormats, type ReportFormat } from '../../reports/formats.js';

/** commander accumulator for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** ["a=1", "b=x,y"] → { a: "1", b: "x,y" }; values stay strings, typed later by their spec. */
export function parseAssignments(list: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CliError(`${flag} ${item}: expected name=value`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1);
  }
  return out;
}

/** `--budget cpu=5%,events=200k` → a partial budget; a bad value is a usage error. */
export function budgetFlag(text: string | undefined): Partial<OverheadBudget> | undefined {
  if (text === undefined) return undefined;
  try {
    return parseBudget(text);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

/** `--format html,pdf` → the report formats; an unknown one is a usage error. */
export function formatsFlag(list: string | undefined): ReportFormat[] {
  try {
    return parseReportFormats(list);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** A command that runs a runbook (`diagnose`, `guide`): its [runbook] argument and the options they share (read by run-setup.ts's runOptionsFrom). */
export function runbookRunCommand(program: Command, name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .argument('[runbook]', 'runbook id (`ebpfnet runbooks list`) or path to a runbook YAML')
    .option('--vm <name>', 'the VM to diagnose (sets the runbook input "vm"; found through libvirt, QEMU processes or --inventory)')
    .option('--inventory <file>', 'YAML inventory of VMs for hosts without libvirt (default $EBPFNET_INVENTORY or /etc/ebpfnet/inventory.yaml)')
    .option('--input <name=value>', 'set a runbook input (repeatable; lists are comma-separated)', collect, [])
    .option('--out <dir>', 'folder for run bundles', process.env.EBPFNET_RUNS ?? 'runs')
    .option('--replay <bundle>', 'answer every probe from a recorded bundle instead of the host')
    .option('--budget <limits>', 'overhead budget of every BPF probe, overriding theirs: cpu=5%,events=200k');
}

/** A subcommand of `parent` that prints JSON with --json, text otherwise. */
export function jsonSubcommand(parent: Command, name: string, description: string): Command {
  return parent.command(name).description(description).option('--json', 'print JSON');
}
