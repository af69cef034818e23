// ebpfnet guide: runs the runbook with the guide's hooks, then prints the verdict and
// writes the reports into the bundle.
import { probeRegistry } from '../../../../probes/index.js';
import { diagnose } from '../../../run/runner.js';
import { promptingAnswerer, unattendedAnswerer } from '../../../guide/answers.js';
import { closeMatches, glossary, lookUp } from '../../../guide/glossary.js';
import { terminalMarkdown, type RenderMarkdown } from '../../../guide/markdown.js';
import { glossaryText, runIntro } from '../../../guide/screen.js';
import { guideSession } from '../../../guide/session.js';
import { writeReports } from '../../../../reports/render.js';
import { CliError } from '../../../exit-codes.js';
import { formatsFlag } from '../../options.js';
import { exitCodeFor, textResult } from '../../run-result.js';
import { runOptionsFrom, type RunFlags } from '../../run-setup.js';
import { abortOnSignals } from '../../signals.js';

export interface GuideFlags extends RunFlags {
  format: string;
  yes?: boolean;
  glossary?: string | true;
}

export const NEEDS_A_TERMINAL =
  'guide needs a terminal to ask before each step; add --yes to run every step unattended, or use `ebpfnet diagnose`';

const write = (text: string) => process.stdout.write(`${text}\n`);

export async function guideAction(runbookArg: string | undefined, flags: GuideFlags): Promise<void> {
  const markdown = terminalMarkdown(process.stdout.columns || 100);
  if (flags.glossary !== undefined) {
    printGlossary(flags.glossary === true ? undefined : flags.glossary, markdown);
    return;
  }
  if (!flags.yes && !(process.stdin.isTTY && process.stdout.isTTY)) throw new CliError(NEEDS_A_TERMINAL);
  if (!runbookArg) throw new CliError('which runbook? `ebpfnet guide <runbook>` (see `ebpfnet runbooks list`)');
  const formats = formatsFlag(flags.format);
  const catalog = probeRegistry();
  const options = await runOptionsFrom(runbookArg, flags, catalog);

  // Ctrl-C while probes run arrives as a signal; at a prompt it is a keypress the prompt
  // turns into "quit". Either way the run ends interrupted, its bundle kept.
  const signals = abortOnSignals();
  const quitting = new AbortController();
  const hooks = guideSession({
    catalog,
    markdown,
    write,
    answerer: flags.yes ? unattendedAnswerer(write) : promptingAnswerer(write, markdown),
    quit: (reason) => quitting.abort(reason),
    ...(options.budget ? { budget: options.budget } : {}),
  });
  write(runIntro(options.runbook, options.target, markdown));
  let outcome;
  try {
    outcome = await diagnose({ ...options, ...hooks, signal: AbortSignal.any([signals.signal, quitting.signal]) });
  } finally {
    signals.dispose();
  }
  write('');
  const { written, problems } = await writeReports(outcome.bundle.dir, outcome.record, formats, { catalog });
  process.stdout.write(textResult(outcome.record, outcome.bundle.dir, written));
  for (const p of problems) write(`Note: ${p}`);
  process.exitCode = exitCodeFor(outcome.record, signals.received());
}

function printGlossary(term: string | undefined, markdown: RenderMarkdown): void {
  if (term === undefined) {
    write(glossary().map((e) => glossaryText(e, markdown)).join('\n\n'));
    return;
  }
  const entry = lookUp(term);
  if (entry) {
    write(glossaryText(entry, markdown));
    return;
  }
  const near = closeMatches(term);
  const hint = near.length ? `; close: ${near.slice(0, 8).join(', ')}` : '';
  throw new CliError(`no glossary entry "${term}"${hint} (\`ebpfnet guide --glossary\` lists them all)`);
}
