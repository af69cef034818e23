// ebpfnet diagnose <runbook>: run a runbook and write a bundle.
// The work lives in action.ts, loaded only when this command runs.
import type { Command } from 'commander';
import { REPORT_FORMATS } from '../../../../reports/formats.js';
import { runbookRunCommand } from '../../options.js';
import type { DiagnoseFlags } from './action.js';

export function registerDiagnose(program: Command): void {
  runbookRunCommand(program, 'diagnose', 'run a runbook against this host (or a VM on it) and write a run bundle')
    .option('--format <list>', `reports to write into the bundle at the end (also of an interrupted run): ${REPORT_FORMATS.join(',')}`)
    .option('--json', 'print one JSON document (conclusion and bundle path) instead of text')
    .option('--resume <bundle>', 'continue an interrupted run')
    .action(async (runbookArg: string | undefined, flags: DiagnoseFlags) => {
      const { diagnoseAction } = await import('./action.js');
      await diagnoseAction(runbookArg, flags);
    });
}
