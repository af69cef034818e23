// ebpfnet report <bundle>: render a run bundle's reports again, offline.
// The work lives in action.ts, loaded only when this command runs.
import type { Command } from 'commander';
import { REPORT_FORMATS } from '../../../../reports/formats.js';
import type { ReportFlags } from './action.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('render the reports of a run bundle (HTML, PDF, Markdown, JSON), offline')
    .argument('<bundle>', 'a run bundle folder (runs/<time>-<runbook>-<target>)')
    .option('--format <list>', `formats to write: ${REPORT_FORMATS.join(',')}`, 'html')
    .option('--out <dir>', 'folder for the reports (default: the bundle)')
    .option('--paper <size>', 'PDF paper size: a4 or letter', 'a4')
    .option('--chromium <path>', 'Chromium to print the PDF with (default $EBPFNET_CHROMIUM, $PUPPETEER_EXECUTABLE_PATH, /usr/bin/chromium)')
    .option('--json', 'print the paths written as JSON')
    .action(async (bundle: string, flags: ReportFlags) => {
      const { reportAction } = await import('./action.js');
      await reportAction(bundle, flags);
    });
}
