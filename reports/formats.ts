// The report formats the CLI writes, kept apart from the renderers so that commands can
// list and check them without loading chart and browser libraries.

export const REPORT_FORMATS = ['html', 'pdf', 'md', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** "html, pdf" → ['html', 'pdf']; throws with a one-line message on an unknown format. */
export function parseReportFormats(list: string | undefined): ReportFormat[] {
  if (!list) return [];
  const formats = list.split(',').map((f) => f.trim().toLowerCase()).filter(Boolean);
  for (const f of formats) {
    if (!(REPORT_FORMATS as readonly string[]).includes(f)) {
      throw new Error(`unknown format "${f}" (this build writes: ${REPORT_FORMATS.join(', ')})`);
    }
  }
  return [...new Set(formats)] as ReportFormat[];
}

/** The file each format is written to, in the bundle (or the folder given to `ebpfnet report`). */
export const REPORT_FILES: Record<ReportFormat, string> = {
  html: 'report.html',
  pdf: 'report.pdf',
  md: 'summary.md',
  json: 'summary.json',
};
