// The URLs of a run and its reports on this server, as answers and notifications give them.
import { REPORT_FORMATS, type ReportFormat } from '../../reports/formats.js';
import type { RunRow } from './store.js';

export interface RunLinks {
  run: string;
  reports: Partial<Record<ReportFormat, string>>;
}

/** Reports are listed once the run has a bundle: any format renders on request from it. */
export function runLinks(publicUrl: string, row: Pick<RunRow, 'id' | 'bundle'>): RunLinks {
  const run = `${publicUrl}/runs/${encodeURIComponent(row.id)}`;
  const reports: RunLinks['reports'] = {};
  if (row.bundle) for (const format of REPORT_FORMATS) reports[format] = `${run}/report.${format}`;
  return { run, reports };
}
