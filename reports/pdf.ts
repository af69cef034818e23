// The PDF report: the HTML report printed by the system's headless Chromium, driven by
// puppeteer-core (which never downloads a browser). The page runs with JavaScript off and
// every request refused: the HTML is self-contained, and printing must not reach out.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';

export type Paper = 'a4' | 'letter';
export const PAPERS: readonly Paper[] = ['a4', 'letter'];

/** Where Chromium is looked for when neither an option nor the environment names one. */
export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome-stable', '/usr/bin/google-chrome'];

/**
 * Flags for a closed network and a fresh profile: without the background-networking ones
 * Chromium keeps trying to reach Google's services, and a closed network refuses them.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider',
];

/** No Chromium to print with: the message says where it looked and how to get one. */
export class ChromiumMissingError extends Error {}

/**
 * The Chromium to use: `explicit` (an option), then $EBPFNET_CHROMIUM, then
 * $PUPPETEER_EXECUTABLE_PATH, then the usual system paths. A path named explicitly must exist.
 */
export function findChromium(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const named: Array<[string | undefined, string]> = [
    [explicit, '--chromium'],
    [env.EBPFNET_CHROMIUM, 'EBPFNET_CHROMIUM'],
    [env.PUPPETEER_EXECUTABLE_PATH, 'PUPPETEER_EXECUTABLE_PATH'],
  ];
  for (const [path, from] of named) {
    if (!path) continue;
    if (existsSync(path)) return path;
    throw new ChromiumMissingError(`no Chromium at ${path} (from ${from})`);
  }
  const found = CHROMIUM_CANDIDATES.find((p) => existsSync(p));
  if (found) return found;
  throw new ChromiumMissingError(
    `no Chromium found (looked for ${CHROMIUM_CANDIDATES.join(', ')}): install the Debian package chromium, or set PUPPETEER_EXECUTABLE_PATH`,
  );
}

export interface ChromiumSession {
  browser: Browser;
  executable: string;
  close(): Promise<void>;
}

/** Starts headless Chromium with a fresh profile that `close()` removes. */
export async function launchChromium(opts: { chromium?: string; timeoutMs?: number } = {}): Promise<ChromiumSession> {
  const executable = findChromium(opts.chromium);
  const { default: puppeteer } = await import('puppeteer-core');
  const profile = mkdtempSync(join(tmpdir(), 'ebpfnet-chromium-'));
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: executable,
      headless: 'shell', // plain --headless
      pipe: true, // DevTools over a pipe: no debugging port is opened
      userDataDir: profile,
      args: CHROMIUM_ARGS,
      timeout: opts.timeoutMs ?? 30_000,
      protocolTimeout: opts.timeoutMs ?? 60_000,
      // The CLI handles its own signals; a report being printed is closed in `finally`.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw new ChromiumMissingError(`Chromium (${executable}) did not start: ${String((err as Error).message).split('\n')[0]}`);
  }
  return {
    browser,
    executable,
    async close() {
      try {
        await browser.close();
      } catch {
        browser.process()?.kill('SIGKILL');
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"'`=]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;', '=': '&#61;' })[c]!);

/** A page that runs no script and makes no request, showing `html`. */
export async function openReportPage(browser: Browser, html: string, opts: { javascript?: boolean; timeoutMs?: number } = {}): Promise<Page> {
  const page = await browser.newPage();
  await page.setJavaScriptEnabled(opts.javascript ?? false);
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    if (request.isInterceptResolutionHandled()) return;
    void (request.url().startsWith('data:') ? request.continue() : request.abort('blockedbyclient'));
  });
  await page.setContent(html, { waitUntil: 'load', timeout: opts.timeoutMs ?? 30_000 });
  return page;
}

export interface PdfOptions {
  paper?: Paper;
  /** Printed in every page's header. */
  runId: string;
  /** Printed in every page's header: what the report is about. */
  title: string;
  /** Printed in every page's footer: completed, interrupted... */
  status?: string;
  /** A running browser to print with (tests and benchmarks reuse one); else one is started. */
  browser?: Browser;
  chromium?: string;
  timeoutMs?: number;
}

/** Prints the HTML report to PDF bytes: A4 or Letter, run id and page numbers on every page. */
export async function printPdf(html: string, opts: PdfOptions): Promise<Uint8Array> {
  const session = opts.browser ? null : await launchChromium({ ...(opts.chromium ? { chromium: opts.chromium } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
  const browser = opts.browser ?? session!.browser;
  let page: Page | undefined;
  try {
    page = await openReportPage(browser, html, { ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
    const style = 'font-family: "Liberation Sans", Arial, sans-serif; font-size: 7.5pt; color: #4b5563; width: 100%; margin: 0 12mm; display: flex; justify-content: space-between;';
    return await page.pdf({
      format: (opts.paper ?? 'a4') === 'letter' ? 'Letter' : 'A4',
      printBackground: true,
      displayHeaderFooter: true,
      headerTemplate: `<div style='${style}'><span>ebpfnet · ${escapeHtml(opts.title)}</span><span>run ${escapeHtml(opts.runId)}</span></div>`,
      footerTemplate: `<div style='${style}'><span>${escapeHtml(opts.status ?? '')}</span><span>page <span class="pageNumber"></span> of <span class="totalPages"></span></span></div>`,
      margin: { top: '15mm', bottom: '14mm', left: '12mm', right: '12mm' },
      outline: true,
      tagged: true,
      timeout: opts.timeoutMs ?? 60_000,
    });
  } finally {
    await page?.close().catch(() => undefined);
    await session?.close();
  }
}
