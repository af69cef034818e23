// The HTML report: one self-contained file (inline CSS and SVG, no script, no request)
// rendered by Handlebars from reports/templates/. `{{x}}` escapes; `{{{x}}}` is used only for
// fields named `...Html` (markdown rendered with HTML off) and `svg` (ECharts / Graphviz
// output, which escapes its text) — test/reports/escape.test.ts holds the templates to that.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { packageRoot } from '../engine/package-info.js';
import type { ProbeCatalog } from '../engine/probe/types.js';
import { RunBundle } from '../engine/run/bundle.js';
import { keptRunbook } from '../engine/run/kept-runbook.js';
import type { RunRecord } from '../engine/run/record.js';
import { runbookDirs } from '../engine/runbook/catalog.js';
import { RunbookError } from '../engine/runbook/errors.js';
import { loadRunbookFile } from '../engine/runbook/load.js';
import type { Runbook } from '../engine/runbook/model.js';
import { formatProblem } from '../engine/yaml/problems.js';
import { echartsVersion } from './charts.js';
import { graphvizVersion, renderDecisionGraph } from './graph.js';
import { buildModel, sha256File, type KeyValue, type ModelInput } from './model.js';

export function templatesDir(): string {
  return join(packageRoot(), 'reports', 'templates');
}

let compiled: Handlebars.TemplateDelegate | undefined;

function template(): Handlebars.TemplateDelegate {
  if (compiled) return compiled;
  const hbs = Handlebars.create();
  const dir = templatesDir();
  for (const file of readdirSync(join(dir, 'partials')).filter((f) => f.endsWith('.hbs'))) {
    hbs.registerPartial(file.replace(/\.hbs$/, ''), readFileSync(join(dir, 'partials', file), 'utf8'));
  }
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hbs.registerHelper('plural', (n: unknown, one: string, many: string) => (n === 1 ? one : many));
  const css = readFileSync(join(dir, 'report.css'), 'utf8');
  const main = hbs.compile(readFileSync(join(dir, 'report.hbs'), 'utf8'), { preventIndent: true });
  compiled = (context: unknown) => main({ ...(context as object), css });
  return compiled;
}

export interface LoadedBundle {
  bundleDir: string;
  record: RunRecord;
  runbook: Runbook | null;
  runbookNote?: string;
}

/**
 * Reads a bundle and the runbook it ran: the copy the bundle keeps; for a bundle of an older
 * version (or a copy this version cannot load), the recorded file when it is still there and
 * unchanged, else a runbook of the same id on this machine (said so in the report), else none.
 */
export function loadBundle(dir: string, catalog: ProbeCatalog): LoadedBundle {
  const bundle = RunBundle.open(dir);
  const record = bundle.readRecord();
  let keptProblem: string | undefined;
  try {
    const kept = keptRunbook(bundle, record, catalog);
    if (kept) return { bundleDir: bundle.dir, record, runbook: kept };
  } catch (err) {
    if (!(err instanceof RunbookError)) throw err;
    keptProblem = `the copy of the runbook kept in the bundle does not load here (${err.problems[0] ? formatProblem(err.problems[0]) : err.message})`;
  }
  const found = runbookOnThisMachine(record, catalog);
  const runbookNote = [keptProblem, found.note].filter(Boolean).join('; ');
  return { bundleDir: bundle.dir, record, runbook: found.runbook, ...(runbookNote ? { runbookNote } : {}) };
}

/** The runbook a run ran, looked for by its recorded file, then by its id among this machine's runbooks. */
function runbookOnThisMachine(record: RunRecord, catalog: ProbeCatalog): { runbook: Runbook | null; note?: string } {
  const recorded = record.runbook ?? { id: '', file: '', sha256: '', title: '' };
  const candidates = [recorded.file, ...runbookDirs().flatMap((d) => [join(d, `${recorded.id}.yaml`), join(d, `${recorded.id}.yml`)])].filter(Boolean);
  let exact: Runbook | null = null;
  let changed: { runbook: Runbook; file: string } | null = null;
  for (const file of candidates) {
    const sha = sha256File(file);
    if (!sha) continue;
    try {
      const loaded = loadRunbookFile(file, catalog);
      if (loaded.id !== recorded.id) continue;
      if (sha === recorded.sha256) {
        exact = loaded;
        break;
      }
      changed ??= { runbook: loaded, file };
    } catch {
      // not a valid runbook (any more): try the next candidate
    }
  }
  if (exact) return { runbook: exact };
  if (changed) {
    return { runbook: changed.runbook, note: `the runbook ${changed.file} changed since the run (its sha256 differs): the graph and step notes come from the current version` };
  }
  return { runbook: null, note: `the runbook ${recorded.file || recorded.id} could not be read here: the graph shows only the path taken` };
}

async function libraryVersions(): Promise<KeyValue[]> {
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(packageRoot(), 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  return [
    { key: 'report: charts', value: `Apache ECharts ${echartsVersion()} (server-side SVG)` },
    { key: 'report: graph layout', value: `Graphviz ${await graphvizVersion()} (@viz-js/viz ${pkg('@viz-js/viz')})` },
    { key: 'report: templates', value: `Handlebars ${Handlebars.VERSION}, markdown-it ${pkg('markdown-it')}` },
  ];
}

export interface HtmlOptions extends Partial<Pick<ModelInput, 'rawBudget' | 'now'>> {
  /** The probes of this build: the runbook is checked against them, the report says what normal looks like. */
  catalog: ProbeCatalog;
}

/** Renders the report of a loaded bundle to one HTML string. */
export async function renderHtml(loaded: LoadedBundle, opts: HtmlOptions): Promise<string> {
  const { catalog } = opts;
  const { model, graph, anchors } = buildModel({
    record: loaded.record,
    bundleDir: loaded.bundleDir,
    runbook: loaded.runbook,
    ...(loaded.runbookNote ? { runbookNote: loaded.runbookNote } : {}),
    catalog,
    versions: await libraryVersions(),
    ...(opts.rawBudget !== undefined ? { rawBudget: opts.rawBudget } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  const decision = await renderDecisionGraph({ record: loaded.record, graph, anchors });
  return template()({ ...model, graph: decision });
}

/** Renders the report of the bundle in `dir`. */
export async function renderBundleHtml(dir: string, opts: HtmlOptions): Promise<string> {
  return renderHtml(loadBundle(dir, opts.catalog), opts);
}
