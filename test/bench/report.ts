// How long the reports take for a typical bundle: the HTML render (in process, and a whole
// `ebpfnet report --format html` command), and the PDF (Chromium started, page printed,
// Chromium closed; and the print alone with Chromium running).
//   npx tsc -p tsconfig.json && node dist/test/bench/report.js [BUNDLE]
// Without BUNDLE it renders a synthetic bundle of two steps, four BPF findings and a chart
// of every kind (test/reports/fixtures.ts). Prints medians; BENCHMARKS.md keeps the figures.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLI } from '../helpers/cli.js';
import { chartsBundle, readRecord } from '../reports/fixtures.js';

const RUNS = Number(process.env.RUNS ?? 7);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const fmt = (ms: number) => `${ms < 100 ? ms.toFixed(1) : Math.round(ms)} ms`;

/** In a fresh process: import the renderer and render once (what `ebpfnet report` pays). */
async function firstRender(bundle: string): Promise<void> {
  const t0 = performance.now();
  const { loadBundle, renderHtml } = await import('../../reports/html.js');
  const catalog = (await import('../../probes/index.js')).probeRegistry();
  const loaded = loadBundle(bundle, catalog);
  const t1 = performance.now();
  await renderHtml(loaded, { catalog });
  const t2 = performance.now();
  process.stdout.write(JSON.stringify({ importAndLoad: t1 - t0, render: t2 - t1 }));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--first-render') return firstRender(process.argv[3]!);
  const scratch = mkdtempSync(join(tmpdir(), 'ebpfnet-bench-report-'));
  try {
    const bundle = process.argv[2] ?? chartsBundle(scratch);
    const record = readRecord(bundle);
    const { loadBundle, renderHtml } = await import('../../reports/html.js');
    const { launchChromium, printPdf } = await import('../../reports/pdf.js');
    const catalog = (await import('../../probes/index.js')).probeRegistry();
    const loaded = loadBundle(bundle, catalog);

    const html = await renderHtml(loaded, { catalog }); // warm: modules loaded, Graphviz instantiated
    const warm = Array.from({ length: RUNS * 3 }, () => 0);
    for (let i = 0; i < warm.length; i++) {
      const t = performance.now();
      await renderHtml(loaded, { catalog });
      warm[i] = performance.now() - t;
    }

    const first = Array.from({ length: RUNS }, () => {
      const r = spawnSync(process.execPath, [process.argv[1]!, '--first-render', bundle], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`first render failed: ${r.stderr}`);
      return JSON.parse(r.stdout) as { importAndLoad: number; render: number };
    });

    const command = (formats: string) =>
      Array.from({ length: RUNS }, () => {
        const t = performance.now();
        const r = spawnSync(process.execPath, [CLI, 'report', bundle, '--format', formats, '--out', join(scratch, 'out')], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`ebpfnet report exited ${r.status}: ${r.stderr}`);
        return performance.now() - t;
      });
    const htmlCommand = command('html');

    const title = `${record.runbook.title} — ${String(record.target.name ?? '')}`;
    const pdfFresh: number[] = [];
    let pages = 0;
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      const bytes = await printPdf(html, { runId: record.id, title });
      pdfFresh.push(performance.now() - t);
      pages = (Buffer.from(bytes).toString('latin1').match(/\/Type\s*\/Page[^s]/g) ?? []).length;
    }
    const session = await launchChromium();
    const pdfWarm: number[] = [];
    try {
      await printPdf(html, { runId: record.id, title, browser: session.browser });
      for (let i = 0; i < RUNS; i++) {
        const t = performance.now();
        await printPdf(html, { runId: record.id, title, browser: session.browser });
        pdfWarm.push(performance.now() - t);
      }
    } finally {
      await session.close();
    }
    const pdfCommand = command('pdf');

    const rows: Array<[string, string]> = [
      ['HTML render, in process (modules loaded)', fmt(median(warm))],
      ['HTML render, first in a fresh process: render', fmt(median(first.map((f) => f.render)))],
      ['HTML render, first in a fresh process: imports and bundle load', fmt(median(first.map((f) => f.importAndLoad)))],
      ['`ebpfnet report --format html` (whole command)', fmt(median(htmlCommand))],
      ['PDF: start Chromium, print, close (printPdf)', fmt(median(pdfFresh))],
      ['PDF: print alone, Chromium running', fmt(median(pdfWarm))],
      ['`ebpfnet report --format pdf` (whole command, HTML included)', fmt(median(pdfCommand))],
    ];
    process.stdout.write(`bundle: ${bundle}\n${record.findings.length} findings, ${record.findings.reduce((n, f) => n + f.charts.length, 0)} charts, ${Math.round(html.length / 1024)} KiB of HTML, ${pages} PDF pages; medians of ${RUNS} runs (${RUNS * 3} for the in-process render)\n\n`);
    const width = Math.max(...rows.map((r) => r[0].length));
    for (const [what, value] of rows) process.stdout.write(`${what.padEnd(width)}  ${value}\n`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
