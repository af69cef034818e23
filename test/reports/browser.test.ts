// The reports as readers get them: the HTML opened in headless Chromium (no console error,
// no request, readable with JavaScript off and on a phone), and the PDF Chromium prints
// from it, read back with poppler (pdftotext, pdfinfo) and kept as PNGs (pdftoppm) under
// test-artifacts/reports/.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { probeRegistry } from '../../probes/index.js';
import { renderBundleHtml } from '../../reports/html.js';
import { launchChromium, printPdf, type ChromiumSession, type Paper } from '../../reports/pdf.js';
import { chartsBundle, hostileBundle, interruptedBundle, longBundle, readRecord } from './fixtures.js';
import { artifactsDir, cleanArtifacts, firstPagePng, havePoppler, openFile, pdfInfo, pdfPages } from './support.js';

const root = mkdtempSync(join(tmpdir(), 'ebpfnet-report-browser-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SECTIONS = ['Verdict', 'Decision path', 'Evidence, step by step', 'What could not be checked', 'Environment', 'Reproduce'];
/** Page sizes in points; Chromium rounds A4 to whole hundredths of an inch (595.92 × 841.92). */
const SIZES: Record<Paper, [number, number]> = { a4: [595.3, 841.9], letter: [612, 792] }; // Letter: test/reports/cli.test.ts

function assertPaper(info: { width: number; height: number }, paper: Paper): void {
  const [w, h] = SIZES[paper];
  assert.ok(Math.abs(info.width - w) < 2 && Math.abs(info.height - h) < 2, `${info.width} × ${info.height} pt is not ${paper}`);
}

interface Kind {
  name: string;
  dir: string;
  /** What page 1 of the PDF must say. */
  verdict: RegExp;
}

describe('reports in headless Chromium', () => {
  let chromium: ChromiumSession;
  const kinds: Kind[] = [
    { name: 'every-chart', dir: chartsBundle(root), verdict: /A netfilter rule drops the VM's packets/ },
    { name: 'long-run', dir: longBundle(root), verdict: /No interface dropped in 50 looks/ },
    { name: 'interrupted', dir: interruptedBundle(root), verdict: /No verdict: the run was interrupted/ },
    { name: 'hostile', dir: hostileBundle(root), verdict: /Verdict <script>document\.title='PWNED'<\/script>/ },
  ];
  const htmlFiles = new Map<string, string>();

  before(async () => {
    assert.ok(havePoppler(), 'these tests read PDFs with poppler-utils (scripts/setup.sh installs it)');
    cleanArtifacts();
    chromium = await launchChromium();
  });
  after(async () => {
    await chromium?.close();
  });

  async function htmlOf(kind: Kind): Promise<string> {
    const html = await renderBundleHtml(kind.dir, { catalog: probeRegistry() });
    const file = join(root, `${kind.name}.html`);
    writeFileSync(file, html);
    htmlFiles.set(kind.name, file);
    return html;
  }

  async function pdfOf(kind: Kind, html: string, paper: Paper): Promise<string> {
    const record = readRecord(kind.dir);
    const bytes = await printPdf(html, { browser: chromium.browser, paper, runId: record.id, title: `${record.runbook.title} — ${String(record.target.name)}`, status: record.status });
    const file = join(root, `${kind.name}-${paper}.pdf`);
    writeFileSync(file, bytes);
    return file;
  }

  for (const kind of kinds) {
    test(`${kind.name}: no console error or request, readable without JavaScript, printed on A4 verdict first`, async () => {
      const html = await htmlOf(kind);
      const file = htmlFiles.get(kind.name)!;

      const live = await openFile(chromium.browser, file, { javascript: true });
      try {
        assert.deepEqual(live.requests, [], 'the report fetches nothing');
        assert.deepEqual(live.consoleErrors, [], 'no console error or warning');
        assert.deepEqual(live.pageErrors, []);
      } finally {
        await live.page.close();
      }

      const noJs = await openFile(chromium.browser, file, { javascript: false });
      try {
        const headings = await noJs.page.$$eval('h2', (els) => els.map((e) => (e.textContent ?? '').trim()));
        assert.deepEqual(headings, SECTIONS, 'every section, in order, without JavaScript');
        const verdict = await noJs.page.$eval('#verdict', (el) => (el as unknown as { innerText: string }).innerText);
        assert.match(verdict, kind.verdict);
      } finally {
        await noJs.page.close();
      }

      const pdf = await pdfOf(kind, html, 'a4');
      const info = pdfInfo(pdf);
      assertPaper(info, 'a4');
      const pages = pdfPages(pdf);
      assert.equal(pages.length, info.pages);
      const first = pages[0]!;
      assert.match(first, /VERDICT/, 'the verdict is on page 1');
      assert.match(first.replace(/\s+/g, ' '), new RegExp(kind.verdict.source.replace(/ /g, '\\s+')));
      assert.ok(first.indexOf('VERDICT') < first.indexOf('Decision path') || !first.includes('Decision path'), 'the verdict comes before the path');
      assert.match(first, new RegExp(`run ${readRecord(kind.dir).id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), 'the header names the run');
      pages.forEach((page, i) => assert.match(page, new RegExp(`page ${i + 1} of ${pages.length}`), `page ${i + 1} is numbered`));
      const all = pages.join('\n');
      for (const title of SECTIONS.slice(1)) assert.ok(all.includes(title), `the PDF has the section "${title}"`);
      firstPagePng(pdf, `${kind.name}-a4`);
    });
  }

  test('on a phone: no sideways scrolling, the verdict fills the first screen', async () => {
    const file = htmlFiles.get('every-chart') ?? join(root, 'every-chart.html');
    const phone = await openFile(chromium.browser, file, { javascript: true, width: 390, height: 844 });
    try {
      const layout = (await phone.page.evaluate(`({
        scrollWidth: document.documentElement.scrollWidth,
        verdictTop: document.querySelector('#verdict').getBoundingClientRect().top,
        fontSize: parseFloat(getComputedStyle(document.body).fontSize),
      })`)) as { scrollWidth: number; verdictTop: number; fontSize: number };
      assert.ok(layout.scrollWidth <= 390, `the page is ${layout.scrollWidth}px wide on a 390px screen`);
      assert.ok(layout.verdictTop < 400, `the verdict starts ${layout.verdictTop}px down`);
      assert.ok(layout.fontSize >= 14);
      await phone.page.screenshot({ path: join(artifactsDir(), 'every-chart-phone.png') as `${string}.png` });
    } finally {
      await phone.page.close();
    }
  });
});
