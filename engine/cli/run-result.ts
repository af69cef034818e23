// How a finished run reads on a terminal and which exit code it gives: shared by
// `diagnose` and `guide`.
import type { RunRecord } from '../run/record.js';
import { EXIT } from '../exit-codes.js';

export function exitCodeFor(record: RunRecord, signal: NodeJS.Signals | undefined): number {
  if (record.status === 'interrupted') return signal === 'SIGTERM' ? EXIT.sigterm : EXIT.sigint;
  if (record.status === 'failed') return EXIT.failure;
  return EXIT.ok;
}

/** The verdict, its next actions, what was not checked, and where the bundle and reports are. */
export function textResult(record: RunRecord, dir: string, written: string[]): string {
  const lines: string[] = [];
  if (record.conclusion) {
    const c = record.conclusion;
    const lowered = c.declaredConfidence ? `, lowered from ${c.declaredConfidence}` : '';
    lines.push(`Verdict: ${c.title} [${c.id}, ${c.category}, confidence ${c.confidence}${lowered}]`, `  ${c.summary}`);
    if (c.caveats?.length) lines.push('Less certain because:', ...c.caveats.map((w) => `  - ${w}`));
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
