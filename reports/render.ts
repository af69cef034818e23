// Writes the reports of a run: report.html, report.pdf, summary.md, summary.json, into the
// bundle or another folder. Used by `ebpfnet report` (any bundle, offline) and by
// `ebpfnet diagnose --format` at the end of a run. The HTML and PDF renderers, and the
// libraries under them, load only when one of them is asked for.
import { renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeDirs, writeFileAtomic } from '../engine/fs.js';
import type { ProbeCatalog } from '../engine/probe/types.js';
import type { RunRecord } from '../engine/run/record.js';
import type { ReportFormat } from './formats.js';
import type { Paper } from './pdf.js';
import { writeSummaries, type ReportLinks, type SummaryFormat } from './summary.js';

export const HTML_FILE = 'report.html';
export const PDF_FILE = 'report.pdf';

export interface WriteReportsOptions {
  /** The probes of this build, for the HTML (and so the PDF): the command that writes reports hands them in. */
  catalog: ProbeCatalog;
  /** Folder for the files; the bundle itself by default. */
  outDir?: string;
  paper?: Paper;
  /** Chromium to print with (else $EBPFNET_CHROMIUM, $PUPPETEER_EXECUTABLE_PATH, /usr/bin/chromium). */
  chromium?: string;
}

export interface WrittenReports {
  written: string[];
  /** One-line messages for what could not be written (the PDF without a Chromium). */
  problems: string[];
  /** Set when the PDF could not be printed because no Chromium could run. */
  noChromium?: boolean;
}

/**
 * Writes `formats` for the bundle in `bundleDir`. `record` is the run as the caller has it
 * (diagnose passes the record it just finished); the HTML reads the rest from the bundle.
 * Asking for the PDF writes the HTML too: it is what gets printed, and what is left when
 * no Chromium can print it.
 */
export async function writeReports(bundleDir: string, record: RunRecord, formats: ReportFormat[], opts: WriteReportsOptions): Promise<WrittenReports> {
  const outDir = resolve(opts.outDir ?? bundleDir);
  makeDirs(outDir);
  const written: string[] = [];
  const problems: string[] = [];
  const links: ReportLinks = {};
  let noChromium = false;
  if (formats.includes('html') || formats.includes('pdf')) {
    // Chromium starts while the HTML renders: most of a PDF's time is Chromium starting.
    const pdfModule = formats.includes('pdf') ? await import('./pdf.js') : null;
    const starting = pdfModule?.launchChromium(opts.chromium ? { chromium: opts.chromium } : {}).then(
      (session) => ({ session }),
      (error: unknown) => ({ error }),
    );
    let html: string;
    let htmlPath: string;
    try {
      const { loadBundle, renderHtml } = await import('./html.js');
      html = await renderHtml({ ...loadBundle(bundleDir, opts.catalog), record }, { catalog: opts.catalog });
      htmlPath = join(outDir, HTML_FILE);
      writeFileAtomic(htmlPath, html);
    } catch (err) {
      const started = await starting;
      if (started && 'session' in started) await started.session.close();
      throw err;
    }
    written.push(htmlPath);
    links.html = htmlPath;
    if (pdfModule && starting) {
      const started = await starting;
      try {
        if ('error' in started) throw started.error;
        const pdf = await pdfModule.printPdf(html, {
          browser: started.session.browser,
          runId: record.id,
          title: `${record.runbook?.title ?? ''} — ${String(record.target?.name ?? '')}`,
          status: record.status === 'completed' ? '' : `${record.status} run`,
          ...(opts.paper ? { paper: opts.paper } : {}),
        });
        const pdfPath = join(outDir, PDF_FILE);
        writeFileSync(`${pdfPath}.tmp-${process.pid}`, pdf);
        renameSync(`${pdfPath}.tmp-${process.pid}`, pdfPath);
        written.push(pdfPath);
        links.pdf = pdfPath;
      } catch (err) {
        if (err instanceof pdfModule.ChromiumMissingError) noChromium = true;
        problems.push(`PDF not written: ${String((err as Error).message).split('\n')[0]}; the HTML report is ${htmlPath}`);
      } finally {
        if ('session' in started) await started.session.close();
      }
    }
  }
  const summaries = formats.filter((f): f is SummaryFormat => f === 'md' || f === 'json');
  written.push(...writeSummaries(bundleDir, record, summaries, { outDir, reports: links }));
  return { written, problems, ...(noChromium ? { noChromium } : {}) };
}
