// Short summaries of a run for tickets and chat: JSON and Markdown. The full HTML
// and PDF reports are rendered elsewhere; these carry the verdict and key facts.
import { join } from 'node:path';
import { writeFileAtomic } from '../engine/run/bundle.js';
import type { RunRecord } from '../engine/run/record.js';

export const SUMMARY_FORMATS = ['json', 'md'] as const;
export type SummaryFormat = (typeof SUMMARY_FORMATS)[number];

export function summaryJson(record: RunRecord, bundleDir: string): unknown {
  return {
    schema: 'ebpfnet.summary/1',
    run: record.id,
    status: record.status,
    runbook: record.runbook.id,
    target: record.target,
    host: { hostname: record.host.hostname, kernel: record.host.kernelRelease },
    startedAt: record.startedAt,
    endedAt: record.endedAt,
    conclusion: record.conclusion,
    path: record.timeline.map((t) => ({ step: t.step, title: t.title, status: t.status, branch: t.branch })),
    findings: record.findings.map((f) => ({ step: f.step, alias: f.alias, probe: f.probe, status: f.status, severity: f.severity, summary: f.summary })),
    bundle: bundleDir,
    reproduce: record.command,
  };
}

/** Escapes text for a Markdown table cell or inline position. */
function md(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[<>]/g, (c) => (c === '<' ? '&lt;' : '&gt;')).replace(/\n/g, ' ');
}

export function summaryMarkdown(record: RunRecord, bundleDir: string): string {
  const out: string[] = [];
  const c = record.conclusion;
  out.push(`# ${md(record.runbook.title)} — ${md(String(record.target.name ?? ''))}`, '');
  if (c) {
    out.push(`**Verdict:** ${md(c.title)} (\`${c.id}\`, ${c.category}, confidence ${c.confidence})`, '', md(c.summary), '');
    if (c.actions.length) out.push('**Recommended actions**', '', ...c.actions.map((a) => `- ${a.replace(/\n/g, ' ')}`), '');
  } else {
    out.push(`**Status:** ${record.status} — no verdict${record.status === 'interrupted' ? ' (the run was interrupted)' : ''}`, '');
  }
  out.push('## Path taken', '', '| step | result | next | why |', '|---|---|---|---|');
  for (const t of record.timeline) {
    out.push(`| ${md(t.step)} | ${t.status}${t.answer ? ` (${md(t.answer)})` : ''} | ${md(t.branch?.goto ?? '')} | ${md(t.branch?.why ?? t.branch?.condition ?? '')} |`);
  }
  out.push('', '## Findings', '', '| step | probe | status | summary |', '|---|---|---|---|');
  for (const f of record.findings) out.push(`| ${md(f.step)} | ${md(f.probe)} | ${f.status} | ${md(f.summary)} |`);
  out.push('', `Host ${md(String(record.host.hostname ?? ''))}, kernel ${md(String(record.host.kernelRelease ?? ''))}; ebpfnet ${record.tool.version}.`);
  out.push('', `Bundle: \`${bundleDir}\``, '', 'Reproduce:', '', '```', record.command, '```', '');
  return out.join('\n');
}

/** Writes the asked formats into the bundle; returns the paths written. */
export function writeSummaries(bundleDir: string, record: RunRecord, formats: SummaryFormat[]): string[] {
  return formats.map((format) => {
    const path = join(bundleDir, `summary.${format}`);
    const text = format === 'json' ? `${JSON.stringify(summaryJson(record, bundleDir), null, 2)}\n` : summaryMarkdown(record, bundleDir);
    writeFileAtomic(path, text);
    return path;
  });
}
