// The HTML report of synthetic bundles, read as text: sections in order (verdict first),
// every chart kind drawn by ECharts, the decision graph with the path taken, what could not
// be checked, the environment, raw evidence, a long run, an interrupted run, and the
// Markdown / JSON summaries that point at the report.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { renderChart } from '../../reports/charts.js';
import { renderBundleHtml } from '../../reports/html.js';
import { writeReports } from '../../reports/render.js';
import { chartsBundle, interruptedBundle, longBundle, readRecord, writeBundle } from './fixtures.js';
import { probeRegistry } from '../../probes/index.js';

const root = mkdtempSync(join(tmpdir(), 'ebpfnet-report-html-'));
const catalog = probeRegistry();
after(() => rmSync(root, { recursive: true, force: true }));

/** The HTML between an element's opening tag with `id` and the next section of the same kind. */
function section(html: string, id: string): string {
  const start = html.indexOf(`id="${id}"`);
  assert.ok(start >= 0, `no element with id="${id}"`);
  const next = html.indexOf('<section id=', start + 1);
  return html.slice(start, next < 0 ? undefined : next);
}

/** Every <figure class="chart chart-KIND"> ... </figure>. */
function figures(html: string, kind: string): string[] {
  return [...html.matchAll(new RegExp(`<figure class="chart chart-${kind}">([\\s\\S]*?)</figure>`, 'g'))].map((m) => m[1]!);
}

describe('the HTML report of a run with every chart kind', async () => {
  const dir = chartsBundle(root);
  const html = await renderBundleHtml(dir, { catalog });

  test('is one self-contained file: no script, no external reference, a CSP that forbids both', () => {
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /<(img|iframe|object|embed|link)\b/i);
    const refs = [...html.matchAll(/\s(?:src|href|xlink:href|action)="([^"]*)"/g)].map((m) => m[1]!);
    assert.ok(refs.length > 5, 'in-page links are there');
    assert.deepEqual(refs.filter((r) => !r.startsWith('#')), [], 'every link stays in the page');
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:/);
    assert.match(html, /<style>[\s\S]*@media print[\s\S]*<\/style>/, 'inline CSS with print rules');
    assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
  });

  test('puts the verdict first: cause, category, confidence, actions, links to the proof', () => {
    const order = ['verdict', 'path', 'evidence', 'not-checked', 'environment', 'reproduce'].map((id) => html.indexOf(`id="${id}"`));
    assert.ok(order.every((pos) => pos > 0), `all sections present: ${order}`);
    assert.deepEqual([...order].sort((a, b) => a - b), order, 'verdict, path, evidence, not checked, environment, reproduce');
    const verdict = section(html, 'verdict');
    assert.match(verdict, /<p class="verdict-title">A netfilter rule drops the VM&#x27;s packets<\/p>/);
    assert.match(verdict, /<p class="verdict-summary">nftables dropped 2150 packets of vm1 on tap0 in 2s<\/p>/);
    assert.match(verdict, /<span class="pill category">netfilter<\/span>/);
    assert.match(verdict, /<span class="pill confidence high">high<\/span>/);
    assert.match(verdict, /<li>List the rules with <code>nft list ruleset<\/code> and find the one that drops traffic to 10\.0\.0\.2\.<\/li>/, 'actions are markdown');
    assert.match(verdict, /The kernel counted <strong>2150<\/strong> drops/, 'the explanation is markdown');
    const proof = [...verdict.matchAll(/<a href="#(finding-\d+)">(\w+) /g)].map((m) => [m[1], m[2]]);
    assert.deepEqual(proof, [['finding-1', 'kdrops'], ['finding-3', 'qlat']]);
    assert.match(html, /<section class="finding severity-critical proves" id="finding-1">/, 'the proof links land on the findings');
    assert.match(html, /<section class="finding severity-warning proves" id="finding-3">/);
  });

  test('draws each chart kind as an ECharts SVG: bars, a time series, a log2 histogram with P50/P95/P99, a per-layer breakdown', () => {
    const bar = figures(html, 'bar');
    assert.equal(bar.length, 1);
    assert.match(bar[0]!, /<svg [^>]*viewBox="0 0 680 \d+"/);
    for (const label of ['NETFILTER_DROP', 'NO_SOCKET', 'QDISC_DROP', 'NOT_SPECIFIED', '2150']) assert.match(bar[0]!, new RegExp(`>${label}</text>`));

    const series = figures(html, 'timeseries');
    assert.equal(series.length, 1);
    assert.match(series[0]!, /<path d="M[\d.]+ [\d.]+L/, 'lines are drawn');
    assert.match(series[0]!, />NETFILTER_DROP<\/text>/, 'the legend names the series');
    assert.match(series[0]!, />09:00:05<\/text>/, 'time axis in UTC');

    const hist = figures(html, 'histogram');
    assert.equal(hist.length, 1);
    for (const mark of ['P50', 'P95', 'P99']) assert.match(hist[0]!, new RegExp(`>${mark}</text>`), `${mark} is marked`);
    assert.match(hist[0]!, />4–8 µs<\/text>/, 'log2 bucket labels');
    assert.match(hist[0]!, /P50 8 µs, P95 32 µs, P99 64 µs, max 97\.3 µs/, 'the caption gives the values');

    const layers = figures(html, 'layers');
    assert.equal(layers.length, 1);
    for (const layer of ['virtio', 'vhost', 'tap', 'bridge', 'qdisc', 'NIC']) assert.match(layers[0]!, new RegExp(`>${layer}</text>`));
    assert.match(layers[0]!, /P50: 33 µs in all; P99: 145 µs in all/);
    assert.doesNotMatch(html, /could not be drawn|not one this report draws/);
  });

  test('shows the decision path: the graph with the steps taken, the verdict and the conditions that fired', () => {
    const path = section(html, 'path');
    assert.match(path, /<strong>drops<\/strong><\/a> — Count kernel drops with their reasons[\s\S]*?<strong>latency<\/strong><\/a>[\s\S]*?because <code class="cond">findings\.kdrops\.total &gt; 100<\/code>/);
    const svg = /<svg class="decision-graph"[\s\S]*?<\/svg>/.exec(path)?.[0];
    assert.ok(svg, 'a Graphviz SVG');
    assert.equal((svg.match(/class="node gnode probe visited"/g) ?? []).length, 2, 'drops and latency were visited');
    assert.equal((svg.match(/class="node gnode conclusion verdict"/g) ?? []).length, 1, 'one verdict');
    assert.match(svg, /class="node gnode conclusion"[\s\S]*?>healthy<\/text>/, 'the conclusion not reached is drawn, not highlighted');
    assert.match(svg, />\(1\) findings\.kdrops\.total &gt; 100<\/text>/, 'the first branch taken, numbered, with its condition');
    assert.match(svg, />\(2\) findings\.qlat\.totalPackets &gt; 0<\/text>/);
    assert.equal((svg.match(/class="edge gedge taken"/g) ?? []).length, 2);
    assert.match(svg, /xlink:href="#step-1"/, 'nodes link to their evidence');
    assert.match(path, /<summary>What this runbook does<\/summary>[\s\S]*<strong>reasons<\/strong>/, 'the runbook description, markdown');
  });

  test('lists the fields a branch condition read: the value the run saw, its unit, what the probe declares it means', () => {
    const step1 = section(html, 'step-1');
    assert.match(
      step1,
      /<ul class="fields">\s*<li><code>findings\.kdrops\.total<\/code> = <strong>2626<\/strong> packets <span class="muted">— Packets the kernel freed as drops \(of the VM, when scoped\), host copies and other taps apart\.<\/span><\/li>\s*<\/ul>/,
    );
  });

  test('shows each step: its filled-in description, the probe\'s note on what normal looks like, tables, raw output', () => {
    const step1 = section(html, 'step-1');
    assert.match(step1, /Counts every <code>kfree_skb<\/code> for <code>2s<\/code>/, 'templates in the step description are filled from the inputs');
    assert.match(step1, /<p class="normal-title">What normal looks like<\/p>[\s\S]*NETFILTER_DROP/);
    assert.match(step1, /<th scope="col">location<\/th>[\s\S]*<td>nft_do_chain\+0x3a4<\/td>/);
    assert.match(step1, /<details class="raw">\s*<summary>Raw evidence \(1 file\)<\/summary>/);
    assert.match(html, /<summary><code>bpftrace -f json probes\/qdisc\.latency\/qdisc\.latency\.bt<\/code>[\s\S]*?<pre>@us\[tap0\]: \[4, 8\) 1200/, 'raw output labelled with the command that made it');
    assert.match(step1, /stacks symbolised from \/proc\/kallsyms/, 'the probe\'s notes');
  });

  test('says what could not be checked: the skipped probe and why, lost events, a guard stop, an attach fallback', () => {
    const gaps = section(html, 'not-checked');
    assert.match(gaps, /iface \(net\.iface\) at step latency<\/a>: skipped: kernel feature missing: kprobes \(CONFIG_KPROBES is not set\)/);
    assert.match(gaps, /kdrops \(drops\.kernel\) at step drops<\/a>: 17 events were lost/);
    assert.match(gaps, /qlat \(qdisc\.latency\) at step latency<\/a>: 3 events were lost/);
    assert.match(gaps, /monitor \(drops\.monitor\) at step drops<\/a>: the overhead guard stopped the probe early: overhead budget exceeded at 4\.6% CPU/);
    assert.match(gaps, /attached by a fallback method: fentry unavailable/);
  });

  test('gives the environment: host, kernel, VM facts, the attach method of each BPF probe, versions; and the command to reproduce', () => {
    const env = section(html, 'environment');
    assert.match(env, /<th scope="row">kernel<\/th><td>6\.18\.44-fc-v782<\/td>/);
    assert.match(env, /<th scope="row">uuid<\/th><td>4c4c4544-0042-3510-8050-b4c04f4d4e31<\/td>/, 'VM facts from record.target');
    assert.match(env, /<th scope="row">taps<\/th><td>tap0<\/td>/);
    assert.match(env, /<th scope="row">ips<\/th><td>10\.0\.0\.2 \(frames on tap0\), fd00::2\/64 \(libvirt-agent\)<\/td>/, 'each address with where it came from');
    assert.match(env, /<th scope="row">vcpuThreads<\/th><td>vCPU 0: tid 4243 \(qmp\)<\/td>/);
    assert.match(env, /<a href="#finding-1">kdrops<\/a>[\s\S]*?<td>tp_btf \(fallback: fentry unavailable[^<]*\)<\/td>[\s\S]*?<td class="num">1\.1 ms<\/td><td class="num">12\.5 ms<\/td>/);
    assert.match(env, /<a href="#finding-3">qlat<\/a>[\s\S]*?<td>tracepoint<\/td>[\s\S]*?tracepoint:qdisc:qdisc_enqueue[\s\S]*?<td class="num">1130 ms<\/td>/);
    assert.match(env, /STOPPED: overhead budget exceeded/);
    assert.match(env, /Apache ECharts \d+\.\d+\.\d+/);
    assert.match(env, /Graphviz \d+\.\d+/);
    const repro = section(html, 'reproduce');
    assert.match(repro, /<code>ebpfnet diagnose vm-path-demo --vm vm1 --input duration&#x3D;2s<\/code>/);
    assert.match(repro, new RegExp(`<code>ebpfnet report ${dir.replace(/[.]/g, '\\.')} --format html,pdf</code>`));
  });
});

describe('the HTML report of other runs', () => {
  test('a 50-step run: every step has its section, the graph is drawn in readable parts along the path', async () => {
    const html = await renderBundleHtml(longBundle(root), { catalog });
    for (let i = 1; i <= 50; i++) assert.match(html, new RegExp(`<article class="step done" id="step-${i}">`));
    assert.equal((html.match(/<svg class="decision-graph"/g) ?? []).length, 5, '50 steps in parts of 10');
    assert.match(html, /<figcaption class="part">Steps 41–50 of 50<\/figcaption>/);
    assert.match(html, /drawn in parts along the path taken/);
    assert.equal((html.match(/<p class="normal-title">/g) ?? []).length, 1, 'the note on normal is shown once per probe');
    assert.equal((html.match(/class="normal-ref muted"/g) ?? []).length, 49);
    assert.equal(figures(html, 'timeseries').length, 50);
    assert.match(section(html, 'verdict'), /No interface dropped in 50 looks/);
  });

  test('an interrupted run says so, has no verdict, and tells how to continue', async () => {
    const dir = interruptedBundle(root);
    const html = await renderBundleHtml(dir, { catalog });
    assert.match(html, /<body class="status-interrupted">/);
    assert.match(html, /<strong>Interrupted run\.<\/strong>/);
    const verdict = section(html, 'verdict');
    assert.match(verdict, /No verdict: the run was interrupted/);
    assert.match(verdict, /It stopped in step latency \(received SIGINT\)/);
    assert.match(verdict, new RegExp(`ebpfnet diagnose --resume ${dir.replace(/[.]/g, '\\.')}`));
    assert.match(html, /class="node gnode probe visited stopped"[\s\S]*?>latency<\/text>/, 'the graph marks where it stopped');
    assert.match(section(html, 'not-checked'), /qlat \(qdisc\.latency\) at step latency<\/a>: interrupted: received SIGINT/);
  });

  test('a bundle whose runbook is gone: the path alone is drawn, and the report says why', async () => {
    const dir = writeBundle(root, {
      id: 'no-runbook',
      runbookId: 'gone',
      runbookTitle: 'A runbook no longer here',
      timeline: [{ step: 'look', visit: 1, title: 'Look', kind: 'probe', startedAt: '2026-11-20T09:00:00Z', endedAt: '2026-11-20T09:00:01Z', status: 'done', probes: [], branch: { kind: 'next', index: 0, goto: 'fine', condition: 'true' } }],
      findings: [],
      conclusion: { id: 'fine', title: 'Fine', category: 'none', confidence: 'low', summary: 'fine', explanation: '', actions: [], evidence: [] },
    });
    const html = await renderBundleHtml(dir, { catalog });
    assert.match(html, /could not be read here: the graph shows only the path taken/);
    const svg = /<svg class="decision-graph"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? '';
    assert.match(svg, />look<\/text>[\s\S]*>fine<\/text>/);
    assert.match(svg, />\(1\) true<\/text>/);
  });

  test('a verdict made less certain shows why, in the HTML and the Markdown summary', async () => {
    const dir = writeBundle(root, {
      id: 'caveats',
      runbookId: 'gone',
      runbookTitle: 'Caveats',
      timeline: [],
      findings: [],
      conclusion: {
        id: 'fine', title: 'Fine', category: 'no-host-drop', confidence: 'low', declaredConfidence: 'medium', summary: 'fine', explanation: '', actions: [], evidence: [],
        caveats: ['a condition could not be evaluated and counted as false: watch: findings.x.y > 0: no such key: y', 'The <VM>\'s addresses are not known'],
      },
    });
    const verdict = section(await renderBundleHtml(dir, { catalog }), 'verdict');
    assert.match(verdict, /<span class="pill confidence low">low<\/span> <span class="muted">\(lowered from medium\)<\/span>/);
    assert.match(verdict, /<h3>Less certain because<\/h3>\s*<ul class="caveats">\s*<li>a condition could not be evaluated and counted as false: watch: findings\.x\.y &gt; 0: no such key: y<\/li><li>The &lt;VM&gt;(&#x27;|')s addresses are not known<\/li>/);
    const { written } = await writeReports(dir, readRecord(dir), ['md'], { catalog, outDir: join(root, 'caveats-out') });
    const md = readFileSync(written[0]!, 'utf8');
    assert.match(md, /confidence low, lowered from medium/);
    assert.match(md, /\*\*Less certain because\*\*\n\n- a condition could not be evaluated/);
  });

  test('raw evidence is read only inside the bundle', async () => {
    const dir = writeBundle(root, {
      id: 'escape-path',
      runbookId: 'x',
      runbookTitle: 'x',
      timeline: [],
      findings: [{ probe: 'net.iface', alias: 'i', step: 's', raw: ['../../../../../../etc/passwd', '/etc/passwd', 'raw/missing.out', 'raw'] }],
    });
    mkdirSync(join(dir, 'raw'), { recursive: true });
    const html = await renderBundleHtml(dir, { catalog });
    assert.match(html, /the path leads outside the bundle: not read/);
    assert.equal((html.match(/the path leads outside the bundle: not read/g) ?? []).length, 2);
    assert.match(html, /the file is missing from the bundle/);
    assert.match(html, /not a file: not read/);
    assert.doesNotMatch(html, /root:x:0:0/);
  });

  test('a malformed chart is a note in the report, not a crash', () => {
    assert.match(renderChart({ kind: 'pie', title: 'x' }).problem ?? '', /chart kind "pie" is not one this report draws/);
    assert.match(renderChart({ kind: 'bar', title: 'x', bars: 'nope' }).problem ?? '', /no bars to draw/);
    assert.match(renderChart({ kind: 'histogram', title: 'x', buckets: [{ low: 'a' }] }).problem ?? '', /no buckets/);
    assert.match(renderChart(null).problem ?? '', /not one this report draws/);
  });

  test('the Markdown and JSON summaries point at the full report', async () => {
    const dir = chartsBundle(root, 'summaries');
    const out = join(root, 'summaries-out');
    const { written, problems } = await writeReports(dir, readRecord(dir), ['html', 'md', 'json'], { catalog, outDir: out });
    assert.deepEqual(problems, []);
    assert.deepEqual(written, [join(out, 'report.html'), join(out, 'summary.md'), join(out, 'summary.json')]);
    const md = readFileSync(join(out, 'summary.md'), 'utf8');
    assert.match(md, /\*\*Verdict:\*\* A netfilter rule drops the VM's packets \(category `netfilter`, confidence high, conclusion `netfilter-drops`\)/);
    assert.match(md, new RegExp(`Full report \\(graph, charts, raw evidence\\): HTML \`${join(out, 'report.html')}\``));
    const json = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { reports: { html?: string; pdf?: string }; conclusion: { id: string } };
    assert.deepEqual(json.reports, { html: join(out, 'report.html') });
    assert.equal(json.conclusion.id, 'netfilter-drops');
  });
});
