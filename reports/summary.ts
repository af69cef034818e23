// Short summaries of a run for tickets and chat: JSON and Markdown. The full HTML
// and PDF reports are rendered elsewhere; these carry the verdict and key facts.
import { join } from 'node:path';
import { writeFileAtomic } from '../engine/fs.js';
import type { RunRecord } from '../engine/run/record.js';

export const SUMMARY_FORMATS = ['json', 'md'] as const;
export type SummaryFormat = (typeof SUMMARY_FORMATS)[number];

/** Where the full reports of the run were written, for the summaries to point at. */
export interface ReportLinks {
  html?: string;
  pdf?: string;
}

export function summaryJson(record: RunRecord, bundleDir: string, reports: ReportLinks = {}): unknown {
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
    reports,
    reproduce: record.command,
  };
}

/** Escapes text for a Markdown table cell or inline position. */
function md(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[<>]/g, (c) => (c === '<' ? '&lt;' : '&gt;')).replace(/\n/g, ' ');
}

export function summaryMarkdown(record: RunRecord, bundleDir: string, reports: ReportLinks = {}): string {
  const out: string[] = [];
  const c = record.conclusion;
  out.push(`# ${md(record.runbook.title)} — ${md(String(record.target.name ?? ''))}`, '');
  if (c) {
    const lowered = c.declaredConfidence ? `, lowered from ${c.declaredConfidence}` : '';
    out.push(`**Verdict:** ${md(c.title)} (category \`${c.category}\`, confidence ${c.confidence}${lowered}, conclusion \`${c.id}\`)`, '', md(c.summary), '');
    if (c.caveats?.length) out.push('**Less certain because**', '', ...c.caveats.map((w) => `- ${md(w)}`), '');
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
  out.push('', `Bundle: \`${bundleDir}\``);
  if (reports.html || reports.pdf) {
    const full = [reports.html ? `HTML \`${reports.html}\`` : '', reports.pdf ? `PDF \`${reports.pdf}\`` : ''].filter(Boolean).join(', ');
    out.push('', `Full report (graph, charts, raw evidence): ${full}`);
  }
  out.push('', 'Reproduce:', '', '```', record.command, '```', '');
  return out.join('\n');
}

/**
 * Writes the asked formats into the bundle (or `opts.outDir`), pointing at the full reports
 * when there are some; returns the paths written.
 */
export function writeSummaries(
  bundleDir: string,
  record: RunRecord,
  formats: SummaryFormat[],
  opts: { outDir?: string; reports?: ReportLinks } = {},
): string[] {
  const reports = opts.reports ?? {};
  return formats.map((format) => {
    const path = join(opts.outDir ?? bundleDir, `summary.${format}`);
    const text = format === 'json' ? `${JSON.stringify(summaryJson(record, bundleDir, reports), null, 2)}\n` : summaryMarkdown(record, bundleDir, reports);
    writeFileAtomic(path, text);
    return path;
  });
}
