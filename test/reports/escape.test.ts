// Hostile text in a bundle (VM names, inputs, probe summaries, table cells, chart labels,
// raw output, runbook and conclusion texts) must reach the report as text: visible, never
// markup. Checked three ways: the templates' unescaped outputs, the HTML text, and the page
// a browser builds from it with its Content-Security-Policy removed and JavaScript on.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { probeRegistry } from '../../probes/index.js';
import { renderBundleHtml, templatesDir } from '../../reports/html.js';
import { launchChromium, type ChromiumSession } from '../../reports/pdf.js';
import { HOSTILE, hostileBundle } from './fixtures.js';
import { openFile } from './support.js';

const root = mkdtempSync(join(tmpdir(), 'ebpfnet-report-escape-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Handlebars' escaping of text content and attribute values. */
const escaped = (s: string) =>
  s.replace(/[&<>"'`=]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;', '`': '&#x60;', '=': '&#x3D;' })[c]!);

describe('hostile text in a bundle', async () => {
  const dir = hostileBundle(root);
  const html = await renderBundleHtml(dir, { catalog: probeRegistry() });

  test('templates write unescaped only markdown rendered with HTML off (…Html) and library SVG (svg)', () => {
    const files = [join(templatesDir(), 'report.hbs'), ...readdirSync(join(templatesDir(), 'partials')).map((f) => join(templatesDir(), 'partials', f))];
    const raw = files.flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/\{\{\{\s*([^}]*?)\s*\}\}\}/g)].map((m) => m[1]!));
    assert.ok(raw.length >= 5);
    for (const name of raw) assert.match(name, /^(?:[\w.]+\.)?(?:\w+Html|svg|css)$/, `{{{${name}}}} is not a rendered-markdown or SVG field`);
  });

  test('no markup comes out of them: no script, no image, no event handler, no javascript: link', () => {
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /<img/i);
    assert.doesNotMatch(html, /<svg onload/i);
    assert.doesNotMatch(html, /<[a-z][^>]*\son[a-z]+\s*=/i, 'no tag has an on* attribute');
    assert.doesNotMatch(html, /href="javascript:/i);
    assert.doesNotMatch(html, /<b>bold<\/b>/, 'HTML in markdown is text');
    assert.doesNotMatch(html, /src="https:\/\/example\.com/, 'markdown images are not rendered');
  });

  test('they are shown as text where they came in: VM name, inputs, summaries, cells, raw output', () => {
    const text = (s: string) => assert.ok(html.includes(escaped(s)), `${s} is in the HTML, escaped`);
    text(`vm${HOSTILE.script}${HOSTILE.img}`); // VM name
    text(`in${HOSTILE.img}`); // input name
    text(`summary ${HOSTILE.script} ${HOSTILE.braces}`); // probe summary, with {{ kept as typed
    text(`reason ${HOSTILE.img}`);
    text(`table ${HOSTILE.script}`);
    text(HOSTILE.cdata); // a table cell
    text(`Verdict ${HOSTILE.script}`);
    assert.ok(html.includes(`<pre>${escaped(`${HOSTILE.script}\n${HOSTILE.img}\n${HOSTILE.cdata}\n`)}</pre>`), 'raw output');
    assert.ok(html.includes('{{constructor.constructor'), '{{ reaches the page as typed');
  });

  test('chart and graph libraries escape what they draw: labels, legends, bucket marks, node and edge labels', () => {
    const charts = [...html.matchAll(/<figure class="chart chart-[^"]*">([\s\S]*?)<\/figure>/g)].map((m) => m[1]!);
    assert.equal(charts.length, 5);
    // ECharts' own escaping of SVG text.
    const svgText = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
    assert.ok(charts[0]!.includes(`>${svgText(HOSTILE.script)}</text>`), 'a bar label');
    assert.ok(charts[1]!.includes(svgText(HOSTILE.cdata).slice(0, 20)), 'a series name in the legend');
    assert.ok(charts[2]!.includes(`>${svgText(HOSTILE.script)}</text>`), 'a percentile mark');
    assert.ok(charts[3]!.includes(`>${svgText(HOSTILE.script)}</text>`), 'a layer in the legend');
    assert.match(charts[4]!, /<p class="warn">chart kind &quot;nope&quot;&gt;&lt;img/, 'an unknown chart kind is named, escaped');
    const graph = /<svg class="decision-graph"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? '';
    assert.ok(graph.includes('>&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;'), 'a step title in the graph');
    assert.ok(graph.includes('&#45;&#45;&gt;'), 'a comment breakout in a node label is text');
    assert.doesNotMatch(graph, /<!--/);
  });

  describe('in a browser, with the Content-Security-Policy removed and JavaScript on', () => {
    let chromium: ChromiumSession;
    before(async () => {
      chromium = await launchChromium();
    });
    after(async () => {
      await chromium?.close();
    });

    test('nothing runs, no element or handler is injected, and every hostile string reads as typed', async () => {
      const file = join(root, 'hostile-no-csp.html');
      writeFileSync(file, html.replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/, ''));
      const { page, requests, pageErrors } = await openFile(chromium.browser, file, { javascript: true });
      try {
        // A string: this project's TypeScript has no DOM types.
        const dom = (await page.evaluate(`({
          title: document.title,
          active: document.querySelectorAll('script, img, iframe, object, embed, link, form, input').length,
          handlers: [...document.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => /^on/i.test(a.name))).length,
          jsLinks: [...document.querySelectorAll('a')].filter((a) => /^\\s*javascript:/i.test(a.getAttribute('href') ?? '')).length,
          text: document.body.innerText,
        })`)) as { title: string; active: number; handlers: number; jsLinks: number; text: string };
        assert.notEqual(dom.title, 'PWNED', 'no payload ran');
        assert.ok(dom.title.startsWith(`Title ${HOSTILE.script}`), 'the title shows the runbook title as typed');
        assert.equal(dom.active, 0, 'no script, image, frame, link or form element');
        assert.equal(dom.handlers, 0, 'no on* attribute');
        assert.equal(dom.jsLinks, 0);
        assert.deepEqual(requests, [], 'nothing was fetched');
        assert.deepEqual(pageErrors, []);
        for (const s of [`vm${HOSTILE.script}${HOSTILE.img}`, `summary ${HOSTILE.script} ${HOSTILE.braces}`, HOSTILE.cdata, HOSTILE.js]) {
          assert.ok(dom.text.includes(s), `visible as text: ${s}`);
        }
      } finally {
        await page.close();
      }
    });
  });
});
