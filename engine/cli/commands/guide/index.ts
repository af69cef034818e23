// ebpfnet guide <runbook>: the runbook stepped by a person at the terminal.
// The work lives in action.ts, loaded only when this command runs.
import type { Command } from 'commander';
import { REPORT_FORMATS } from '../../../../reports/formats.js';
import { runbookRunCommand } from '../../options.js';
import type { GuideFlags } from './action.js';

export function registerGuide(program: Command): void {
  runbookRunCommand(program, 'guide', 'step through a runbook at the terminal: why each step, its cost, a confirmation, the findings next to normal, the branch taken')
    .option('--format <list>', `reports to write into the bundle at the end: ${REPORT_FORMATS.join(',')}`, 'html,pdf')
    .option('-y, --yes', "ask nothing: run every step and take each question's default (needed without a terminal)")
    .option('--glossary [term]', 'print the glossary of drop reasons and terms, or one entry, and exit')
    .action(async (runbookArg: string | undefined, flags: GuideFlags) => {
      const { guideAction } = await import('./action.js');
      await guideAction(runbookArg, flags);
    });
}
