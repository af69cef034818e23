// Helpers for the report tests: poppler's pdftotext / pdfinfo / pdftoppm, Chromium pages that
// log every request and console error, and the artifacts folder the PNGs are kept in.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { packageRoot } from '../../engine/package-info.js';

/** test-artifacts/reports/: one PNG per report kind, kept after the run (gitignored). */
export function artifactsDir(): string {
  const dir = join(packageRoot(), 'test-artifacts', 'reports');
  mkdirSync(dir, { recursive: true });
  return dir;
}

function tool(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`${argv[0]} could not run (${r.error.message}): install poppler-utils (scripts/setup.sh)`);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The text of a PDF, page by page (pdftotext separates pages with form feeds). */
export function pdfPages(pdf: string): string[] {
  return tool(['pdftotext', '-layout', pdf, '-']).split('\f').filter((p, i, all) => i < all.length - 1 || p.trim() !== '');
}

export function pdfInfo(pdf: string): { pages: number; width: number; height: number } {
  const text = tool(['pdfinfo', pdf]);
  const pages = Number(/Pages:\s+(\d+)/.exec(text)?.[1]);
  const size = /Page size:\s+([\d.]+) x ([\d.]+) pts/.exec(text);
  return { pages, width: Number(size?.[1]), height: Number(size?.[2]) };
}

/** Page 1 of a PDF as a PNG in the artifacts folder; returns its path. */
export function firstPagePng(pdf: string, name: string, dpi = 80): string {
  const dir = artifactsDir();
  const stem = join(dir, `${name}.tmp`);
  tool(['pdftoppm', '-png', '-r', String(dpi), '-f', '1', '-l', '1', '-singlefile', pdf, stem]);
  const out = join(dir, `${name}.png`);
  copyFileSync(`${stem}.png`, out);
  rmSync(`${stem}.png`, { force: true });
  return out;
}

export interface LoadedPage {
  page: Page;
  /** Every request the page made, except the report file itself. */
  requests: string[];
  consoleErrors: string[];
  pageErrors: string[];
}

/**
 * Opens the report file in Chromium as a reader would (file://), with request interception
 * recording, and refusing, everything but the file itself.
 */
export async function openFile(browser: Browser, file: string, opts: { javascript?: boolean; width?: number; height?: number } = {}): Promise<LoadedPage> {
  const page = await browser.newPage();
  const url = pathToFileURL(file).href;
  const requests: string[] = [];
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warn') consoleErrors.push(`${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  await page.setJavaScriptEnabled(opts.javascript ?? true);
  await page.setViewport({ width: opts.width ?? 1100, height: opts.height ?? 900 });
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    if (request.url() === url) return void request.continue();
    requests.push(request.url());
    void request.abort('blockedbyclient');
  });
  await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  return { page, requests, consoleErrors, pageErrors };
}

/** Whether poppler-utils is installed (the PDF tests need it). */
export function havePoppler(): boolean {
  return ['pdftotext', 'pdfinfo', 'pdftoppm'].every((t) => spawnSync(t, ['-v']).error === undefined);
}

/** Removes stale temporary PNGs a killed run may have left. */
export function cleanArtifacts(): void {
  const dir = artifactsDir();
  for (const f of readdirSync(dir)) if (f.includes('.tmp')) rmSync(join(dir, f), { force: true });
}
