// ebpfnet diagnose: runs the runbook, writes the bundle and prints the result.
import { probeRegistry } from '../../../../probes/index.js';
import { conditionErrorsOf, diagnose, resume, type RunOutcome } from '../../../run/runner.js';
import { loadRunbookFile } from '../../../runbook/load.js';
import { writeReports } from '../../../../reports/render.js';
import { CliError } from '../../../exit-codes.js';
import { progressReporter } from '../../progress.js';
import { exitCodeFor, textResult } from '../../run-result.js';
import { learnFromFrames, runOptionsFrom, type RunFlags } from '../../run-setup.js';
import { abortOnSignals } from '../../signals.js';
import { budgetFlag, formatsFlag } from '../../options.js';

export interface DiagnoseFlags extends RunFlags {
  format?: string;
  json?: boolean;
  resume?: string;
}

export async function diagnoseAction(runbookArg: string | undefined, flags: DiagnoseFlags): Promise<void> {
  const formats = formatsFlag(flags.format);
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
        learnTarget: learnFromFrames,
      });
    } else {
      if (!runbookArg) throw new CliError('which runbook? `ebpfnet diagnose <runbook>` (see `ebpfnet runbooks list`)');
      outcome = await diagnose({
        ...(await runOptionsFrom(runbookArg, flags, catalog)),
        signal: signals.signal,
        ...(progress ? { progress } : {}),
      });
    }
  } finally {
    signals.dispose();
  }
  // Also for an interrupted run: its reports say so. A PDF without Chromium is a warning, not a failed run.
  const { written, problems } = await writeReports(outcome.bundle.dir, outcome.record, formats, { catalog });
  for (const p of problems) process.stderr.write(`ebpfnet: ${p}\n`);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(jsonResult(outcome, written), null, 2)}\n`);
  } else {
    process.stdout.write(textResult(outcome.record, outcome.bundle.dir, written));
  }
  process.exitCode = exitCodeFor(outcome.record, signals.received());
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
      ...(record.conclusion.declaredConfidence ? { declaredConfidence: record.conclusion.declaredConfidence } : {}),
      caveats: record.conclusion.caveats ?? [],
      summary: record.conclusion.summary,
      actions: record.conclusion.actions,
      // The findings that prove it, each with its evidence folder in the bundle.
      evidence: record.conclusion.evidence.map((e) => {
        const finding = [...record.findings].reverse().find((f) => f.alias === e.alias);
        return { ...e, ...(finding?.evidence !== undefined ? { dir: finding.evidence } : {}) };
      }),
    },
    path: record.timeline.map((t) => ({ step: t.step, status: t.status, goto: t.branch?.goto })),
    // Conditions that could not be evaluated (each counted as false and lowered the confidence).
    conditionErrors: conditionErrorsOf(record),
    skipped: record.findings.filter((f) => f.status !== 'ok').map((f) => ({ alias: f.alias, status: f.status, reason: f.reason })),
    reports: written,
    errors: record.errors,
  };
}
