// ebpfnet diagnose: runs the runbook, writes the bundle and prints the result.
import { resolve as resolvePath } from 'node:path';
import { probeRegistry } from '../../../probe/registry.js';
import type { RunRecord } from '../../../run/record.js';
import { diagnose, resume, type RunOutcome } from '../../../run/runner.js';
import { loadRunbookFile } from '../../../runbook/load.js';
import { parseReportFormats, type ReportFormat } from '../../../../reports/formats.js';
import { writeReports } from '../../../../reports/render.js';
import { CliError, EXIT } from '../../errors.js';
import { progressReporter } from '../../progress.js';
import { openRunbook } from '../../runbook-source.js';
import { abortOnSignals } from '../../signals.js';
import { budgetFlag, parseAssignments } from '../../options.js';

export interface DiagnoseFlags {
  vm?: string;
  input: string[];
  out: string;
  format?: string;
  json?: boolean;
  replay?: string;
  resume?: string;
  budget?: string;
  inventory?: string;
}

export async function diagnoseAction(runbookArg: string | undefined, flags: DiagnoseFlags): Promise<void> {
  const formats = parseFormats(flags.format);
  const budget = budgetFlag(flags.budget);
  const catalog = probeRegistry();
  const signals = abortOnSignals();
  const progress = await progressReporter(!flags.json && process.stderr.isTTY === true);
  let outcome: RunOutcome;
  try {
    if (flags.resume) {
      if (runbookArg || flags.replay || flags.vm || flags.input.length) {
        throw new CliError('--resume takes no runbook, --vm, --input or --replay: they come from the bundle');
      }
      outcome = await resume({
        bundleDir: flags.resume,
        catalog,
        signal: signals.signal,
        ...(progress ? { progress } : {}),
        ...(budget ? { budget } : {}),
        loadRunbook: (file) => loadRunbookFile(file, catalog),
      });
    } else {
      if (!runbookArg) throw new CliError('which runbook? `ebpfnet diagnose <runbook>` (see `ebpfnet runbooks list`)');
      const runbook = openRunbook(runbookArg, catalog);
      const inputs: Record<string, unknown> = parseAssignments(flags.input, '--input');
      if (flags.vm !== undefined) {
        if (!('vm' in runbook.inputs)) throw new CliError(`runbook ${runbook.id} does not take --vm (it diagnoses the host)`);
        inputs.vm = flags.vm;
      }
      // The VM's facts (taps, bridge, threads, addresses) become the run's target; a replay
      // takes the recorded ones instead, so it runs on a host where the VM is gone.
      const target =
        flags.vm !== undefined && !flags.replay
          ? await (await import('../vms/target.js')).resolveVmTarget(flags.vm, flags.inventory ? { inventory: flags.inventory } : {})
          : undefined;
      outcome = await diagnose({
        runbook,
        catalog,
        inputs,
        outDir: flags.out,
        signal: signals.signal,
        ...(budget ? { budget } : {}),
        ...(progress ? { progress } : {}),
        ...(target ? { target } : flags.vm !== undefined ? { target: { kind: 'vm' as const, name: flags.vm } } : {}),
        ...(flags.replay ? { replayFrom: flags.replay } : {}),
        ...(flags.inventory !== undefined ? { inventory: resolvePath(flags.inventory) } : {}),
      });
    }
  } finally {
    signals.dispose();
  }
  // Also for an interrupted run: its reports say so. A PDF without Chromium is a warning, not a failed run.
  const { written, problems } = await writeReports(outcome.bundle.dir, outcome.record, formats);
  for (const p of problems) process.stderr.write(`ebpfnet: ${p}\n`);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(jsonResult(outcome, written), null, 2)}\n`);
  } else {
    process.stdout.write(textResult(outcome.record, outcome.bundle.dir, written));
  }
  process.exitCode = exitCodeFor(outcome.record, signals.received());
}

function parseFormats(list: string | undefined): ReportFormat[] {
  try {
    return parseReportFormats(list);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

function exitCodeFor(record: RunRecord, signal: NodeJS.Signals | undefined): number {
  if (record.status === 'interrupted') return signal === 'SIGTERM' ? EXIT.sigterm : EXIT.sigint;
  if (record.status === 'failed') return EXIT.failure;
  return EXIT.ok;
}

function jsonResult(outcome: RunOutcome, written: string[]) {
  const { record } = outcome;
  return {
    status: record.status,
    runbook: record.runbook.id,
    target: record.target,
    bundle: outcome.bundle.dir,
    conclusion: record.conclusion && {
      id: record.conclusion.id,
      title: record.conclusion.title,
      category: record.conclusion.category,
      confidence: record.conclusion.confidence,
      summary: record.conclusion.summary,
      actions: record.conclusion.actions,
      // The findings that prove it, each with its evidence folder in the bundle.
      evidence: record.conclusion.evidence.map((e) => {
        const finding = [...record.findings].reverse().find((f) => f.alias === e.alias);
        return { ...e, ...(finding?.evidence !== undefined ? { dir: finding.evidence } : {}) };
      }),
    },
    path: record.timeline.map((t) => ({ step: t.step, status: t.status, goto: t.branch?.goto })),
    skipped: record.findings.filter((f) => f.status !== 'ok').map((f) => ({ alias: f.alias, status: f.status, reason: f.reason })),
    reports: written,
    errors: record.errors,
  };
}

function textResult(record: RunRecord, dir: string, written: string[]): string {
  const lines: string[] = [];
  if (record.conclusion) {
    const c = record.conclusion;
    lines.push(`Verdict: ${c.title} [${c.id}, ${c.category}, confidence ${c.confidence}]`, `  ${c.summary}`);
    if (c.actions.length) lines.push('Next:', ...c.actions.map((a) => `  - ${a}`));
  } else if (record.status === 'interrupted') {
    lines.push(`Interrupted (${record.interruptions.at(-1)?.reason ?? ''}); continue with: ebpfnet diagnose --resume ${dir}`);
  } else {
    lines.push(`The run failed: ${record.errors.join('; ')}`);
  }
  const problems = record.findings.filter((f) => f.status !== 'ok');
  if (problems.length) lines.push('Not checked:', ...problems.map((f) => `  - ${f.step}/${f.alias}: ${f.status}: ${f.reason ?? ''}`));
  lines.push(`Bundle: ${dir}`, ...written.map((w) => `Report: ${w}`));
  return `${lines.join('\n')}\n`;
}
