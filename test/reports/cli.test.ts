// The reports of a real run: `ebpfnet diagnose host-drops --format html,pdf,md,json` through
// the CLI against a tbf qdisc that overflows on a veth pair, `ebpfnet report` re-rendering
// that bundle offline, an interrupted run's reports, and what happens without a Chromium.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, startCli, waitForRunBundle, type CliResult } from '../helpers/cli.js';
import { canBuildTopologies } from '../helpers/netns.js';
import { buildFaultLab } from '../lab/host-faults.js';
import { firstPagePng, havePoppler, pdfInfo, pdfPages } from './support.js';

const out = mkdtempSync(join(tmpdir(), 'ebpfnet-report-cli-'));
after(() => rmSync(out, { recursive: true, force: true }));

interface DiagnoseJson {
  status: string;
  bundle: string;
  conclusion: { id: string; title: string } | null;
  reports: string[];
}

function parse(r: CliResult): DiagnoseJson {
  try {
    return JSON.parse(r.stdout) as DiagnoseJson;
  } catch {
    throw new Error(`not JSON (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
}

const SECTIONS = ['Decision path', 'Evidence, step by step', 'What could not be checked', 'Environment', 'Reproduce'];

describe('reports of a real host-drops run', async () => {
  const cannot = await canBuildTopologies();
  before(() => {
    assert.equal(cannot, null, `these tests need root, ip and ping: ${cannot}`);
    assert.ok(havePoppler(), 'these tests read PDFs with poppler-utils (scripts/setup.sh installs it)');
  });

  let bundle = '';

  test('diagnose --format html,pdf,md,json writes the four reports at the end of the run', async (t) => {
    const lab = await buildFaultLab(t, 'qdisc');
    const traffic = lab.traffic(8);
    const { done } = startCli(['diagnose', 'host-drops', '--input', `devices=${lab.pair.hostDev}`, '--input', 'duration=2s', '--out', out, '--format', 'html,pdf,md,json', '--json']);
    const [r] = await Promise.all([done, traffic]);
    assert.equal(r.status, 0, r.stderr);
    const result = parse(r);
    assert.equal(result.conclusion?.id, 'qdisc-drops');
    bundle = result.bundle;
    const files = ['report.html', 'report.pdf', 'summary.md', 'summary.json'].map((f) => join(bundle, f));
    assert.deepEqual(result.reports, files);

    const html = readFileSync(files[0]!, 'utf8');
    assert.match(html, /<p class="verdict-title">A queueing discipline drops packets<\/p>/);
    assert.match(html, new RegExp(`<p class="verdict-summary">tbf qdisc 1: on ${lab.pair.hostDev} dropped \\d+ packets in 2s</p>`));
    assert.match(html, /<svg class="decision-graph"[\s\S]*?>\(1\) findings\.qdisc\.totals\.drops &gt; 0<\/text>/, 'the branch that fired, on the graph');
    assert.match(html, /<figure class="chart chart-bar">[\s\S]*?<svg /, 'the qdisc drops as bars');
    assert.match(html, /<figure class="chart chart-timeseries">[\s\S]*?<svg /, 'the interface rates as a time series');
    assert.match(html, /<p class="normal-title">What normal looks like<\/p>/);
    assert.match(html, /<summary><code>tc -s -j qdisc show dev /, 'raw output labelled with the command');

    const pages = pdfPages(files[1]!);
    assert.match(pages[0]!, /VERDICT[\s\S]*A queueing discipline drops packets/);
    assert.match(pages[0]!, new RegExp(`run ${join(bundle).split('/').pop()}`), 'the page header names the run');
    for (const s of SECTIONS) assert.ok(pages.join('\n').includes(s), `the PDF has "${s}"`);
    firstPagePng(files[1]!, 'host-drops-a4');

    const md = readFileSync(files[2]!, 'utf8');
    assert.match(md, /\*\*Verdict:\*\* A queueing discipline drops packets/);
    assert.ok(md.includes(`Full report (graph, charts, raw evidence): HTML \`${files[0]}\`, PDF \`${files[1]}\``));
    const json = JSON.parse(readFileSync(files[3]!, 'utf8')) as { reports: unknown };
    assert.deepEqual(json.reports, { html: files[0], pdf: files[1] });
  });

  test('ebpfnet report re-renders the bundle offline, into --out, on Letter paper', () => {
    assert.ok(bundle, 'needs the run above');
    const dir = join(out, 'again');
    const r = runCli(['report', bundle, '--format', 'html,pdf,md,json', '--out', dir, '--paper', 'letter']);
    assert.equal(r.status, 0, r.stderr);
    const files = ['report.html', 'report.pdf', 'summary.md', 'summary.json'].map((f) => join(dir, f));
    assert.equal(r.stdout, files.map((f) => `Report: ${f}\n`).join(''));
    const info = pdfInfo(files[1]!);
    assert.ok(Math.abs(info.width - 612) < 2 && Math.abs(info.height - 792) < 2, `Letter, not ${info.width} × ${info.height}`);
    firstPagePng(files[1]!, 'host-drops-letter');
    assert.match(readFileSync(files[0]!, 'utf8'), /<p class="verdict-title">A queueing discipline drops packets<\/p>/);
    assert.ok(!existsSync(join(bundle, 'report.html.tmp')), 'nothing left behind');
  });

  test('without a Chromium: one clear line, exit 3, and the HTML is kept', () => {
    assert.ok(bundle, 'needs the run above');
    const dir = join(out, 'no-chromium');
    const r = runCli(['report', bundle, '--format', 'html,pdf', '--out', dir], { PUPPETEER_EXECUTABLE_PATH: '/nonexistent/chromium', EBPFNET_CHROMIUM: '' });
    assert.equal(r.status, 3, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.equal(lines[0], `ebpfnet: PDF not written: no Chromium at /nonexistent/chromium (from PUPPETEER_EXECUTABLE_PATH); the HTML report is ${join(dir, 'report.html')}`);
    assert.ok(existsSync(join(dir, 'report.html')));
    assert.ok(!existsSync(join(dir, 'report.pdf')));

    // diagnose still succeeds: the diagnosis is done, only the PDF is missing.
    const replay = runCli(['diagnose', 'host-drops', '--replay', bundle, '--out', out, '--format', 'html,pdf', '--json'], { PUPPETEER_EXECUTABLE_PATH: '/nonexistent/chromium', EBPFNET_CHROMIUM: '' });
    assert.equal(replay.status, 0, replay.stderr);
    assert.match(replay.stderr, /^ebpfnet: PDF not written: no Chromium at \/nonexistent\/chromium/);
    const result = parse(replay);
    assert.deepEqual(result.reports, [join(result.bundle, 'report.html')]);
  });

  test('an interrupted run writes its reports, marked interrupted', async (t) => {
    const lab = await buildFaultLab(t, 'qdisc');
    const traffic = lab.traffic(6);
    const known = new Set(existsSync(out) ? readdirSync(out) : []);
    const { child, done } = startCli(['diagnose', 'host-drops', '--input', `devices=${lab.pair.hostDev}`, '--input', 'duration=4s', '--out', out, '--format', 'html,md', '--json']);
    // Interrupted once its run has begun (its bundle written), however long Node took to start.
    await waitForRunBundle(out, 'host-drops', known, 120_000);
    child.kill('SIGINT');
    const r = await done;
    await traffic;
    assert.equal(r.status, 130, r.stderr);
    const result = parse(r);
    assert.equal(result.status, 'interrupted');
    const html = readFileSync(join(result.bundle, 'report.html'), 'utf8');
    assert.match(html, /<strong>Interrupted run\.<\/strong>/);
    assert.match(html, /No verdict: the run was interrupted/);
    assert.match(html, /ebpfnet diagnose --resume /);
    assert.match(readFileSync(join(result.bundle, 'summary.md'), 'utf8'), /\*\*Status:\*\* interrupted — no verdict \(the run was interrupted\)/);
  });

  test('bad usage is refused before anything runs', () => {
    const unknown = runCli(['report', bundle || out, '--format', 'html,docx']);
    assert.equal(unknown.status, 2);
    assert.equal(unknown.stderr, 'ebpfnet: unknown format "docx" (this build writes: html, pdf, md, json)\n');
    const notBundle = runCli(['report', out, '--format', 'html']);
    assert.equal(notBundle.status, 2);
    assert.match(notBundle.stderr, /is not a run bundle: it has no run\.json/);
    const paper = runCli(['report', bundle || out, '--paper', 'a3']);
    assert.equal(paper.status, 2);
    assert.equal(paper.stderr, 'ebpfnet: --paper a3: expected a4 or letter\n');
    const diag = runCli(['diagnose', 'host-drops', '--format', 'pdf,xml']);
    assert.equal(diag.status, 2);
    assert.match(diag.stderr, /unknown format "xml"/);
  });
});
