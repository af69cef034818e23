// ebpfnet report: reads a bundle and writes the asked reports; needs no host access.
import { probeRegistry } from '../../../../probes/index.js';
import { RunBundle } from '../../../run/bundle.js';
import { parseReportFormats } from '../../../../reports/formats.js';
import { PAPERS, type Paper } from '../../../../reports/pdf.js';
import { writeReports } from '../../../../reports/render.js';
import { CliError, EXIT } from '../../../exit-codes.js';

export interface ReportFlags {
  format: string;
  out?: string;
  paper: string;
  chromium?: string;
  json?: boolean;
}

export async function reportAction(bundleArg: string, flags: ReportFlags): Promise<void> {
  let formats;
  try {
    formats = parseReportFormats(flags.format);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  if (formats.length === 0) throw new CliError('--format: name at least one of html, pdf, md, json');
  const paper = flags.paper.toLowerCase();
  if (!(PAPERS as readonly string[]).includes(paper)) throw new CliError(`--paper ${flags.paper}: expected ${PAPERS.join(' or ')}`);
  let bundle: RunBundle;
  try {
    bundle = RunBundle.open(bundleArg);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const record = bundle.readRecord();
  const result = await writeReports(bundle.dir, record, formats, {
    catalog: probeRegistry(),
    paper: paper as Paper,
    ...(flags.out ? { outDir: flags.out } : {}),
    ...(flags.chromium ? { chromium: flags.chromium } : {}),
  });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ bundle: bundle.dir, status: record.status, reports: result.written, problems: result.problems }, null, 2)}\n`);
  } else {
    process.stdout.write(result.written.map((w) => `Report: ${w}\n`).join(''));
  }
  for (const p of result.problems) process.stderr.write(`ebpfnet: ${p}\n`);
  if (result.problems.length) process.exitCode = result.noChromium ? EXIT.environment : EXIT.failure;
}
