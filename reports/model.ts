// What the HTML report shows, gathered from a bundle: the record, the runbook it ran (for
// the graph and the step notes), the probe catalog (for "what normal looks like") and the
// raw evidence files. Every value here is plain text or numbers; the templates escape them.
// Only markdown (rendered with HTML off) and library SVG reach the page unescaped.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { formatMs } from '../engine/duration.js';
import type { OverheadReport } from '../engine/probe/overhead.js';
import type { Finding, ProbeCatalog, TableSpec } from '../engine/probe/types.js';
import type { RunRecord, TimelineEntry } from '../engine/run/record.js';
import { compileTemplate, renderText, type Scope } from '../engine/runbook/expressions.js';
import { findingView } from '../engine/runbook/run-model.js';
import { conditionFields, type ConditionField } from '../engine/runbook/condition-fields.js';
import { shellWord } from '../engine/run/reproduce.js';
import { runbookGraph, type RunbookGraph } from '../engine/runbook/graph.js';
import type { Runbook, Step } from '../engine/runbook/model.js';
import { formatNumber, renderChart, type RenderedChart } from './charts.js';
import { markdownBlock, markdownInline } from './markdown.js';

export interface KeyValue {
  key: string;
  value: string;
}

export interface RawView {
  path: string;
  /** What produced it: the command run or the file read. */
  label: string;
  bytes: number;
  content?: string;
  truncated: boolean;
  /** Why the content is not shown. */
  missing?: string;
  exitCode?: number;
  error?: string;
}

export interface TableView {
  title: string;
  columns: string[];
  rows: string[][];
  /** Numeric columns are right-aligned. */
  numeric: boolean[];
  more?: string;
}

export interface FindingViewModel {
  anchor: string;
  index: number;
  alias: string;
  probe: string;
  probeTitle: string;
  driver: string;
  status: string;
  ok: boolean;
  severity: string;
  summary: string;
  reason?: string;
  duration: string;
  params: KeyValue[];
  normalHtml?: string;
  /** The finding that shows this probe's "what normal looks like" note, when an earlier one does. */
  normalRef?: string;
  charts: RenderedChart[];
  tables: TableView[];
  notes: string[];
  raw: RawView[];
  proves: boolean;
}

export interface StepView {
  anchor: string;
  order: number;
  step: string;
  visit: number;
  title: string;
  kind: string;
  descriptionHtml?: string;
  question?: string;
  answer?: string;
  status: string;
  resumed: boolean;
  started: string;
  duration: string;
  goto?: string;
  gotoAnchor?: string;
  branchKind?: string;
  /** How the step was left when no condition fired: "no other condition held", "a probe failed"... */
  branchNote?: string;
  condition?: string;
  /** The finding fields the condition read: their values, units and declared descriptions. */
  conditionFields: ConditionField[];
  why?: string;
  conditionErrors: string[];
  findings: FindingViewModel[];
}

export interface NotCheckedItem {
  what: string;
  why: string;
  anchor?: string;
}

export interface AttachRow {
  anchor: string;
  step: string;
  alias: string;
  probe: string;
  driver: string;
  method: string;
  programs: string;
  attachMs: string;
  loadMs: string;
  btf: string;
  overhead: string;
}

export interface ReportModel {
  runId: string;
  bundle: string;
  title: string;
  runbookId: string;
  target: string;
  status: string;
  interrupted: boolean;
  failed: boolean;
  running: boolean;
  mode: string;
  replayOf?: string;
  started: string;
  ended: string;
  duration: string;
  generatedAt: string;
  verdict: null | {
    id: string;
    title: string;
    summary: string;
    category: string;
    confidence: string;
    /** The runbook's confidence when caveats lowered it. */
    declaredConfidence?: string;
    caveats: string[];
    explanationHtml: string;
    actions: Array<{ actionHtml: string }>;
    evidence: Array<{ alias: string; probe: string; step: string; status: string; summary: string; anchor?: string }>;
  };
  noVerdict: null | { headline: string; detail: string; resume?: string };
  runbookDescriptionHtml?: string;
  graphNote?: string;
  path: StepView[];
  steps: StepView[];
  /** Findings that belong to no step of the timeline. */
  orphans: FindingViewModel[];
  notChecked: NotCheckedItem[];
  host: KeyValue[];
  targetFacts: KeyValue[];
  inputs: KeyValue[];
  attach: AttachRow[];
  versions: KeyValue[];
  reproduce: { command: string; replay: string; report: string };
  stats: { steps: number; findings: number; charts: number };
}

export interface ModelInput {
  record: RunRecord;
  bundleDir: string;
  /** The runbook the run followed, when it could be read. */
  runbook: Runbook | null;
  /** Why the runbook could not be read or differs from the one that ran. */
  runbookNote?: string;
  catalog: ProbeCatalog;
  /** Library versions for the environment section. */
  versions?: KeyValue[];
  /** Cap on the raw output inlined into the report, bytes. */
  rawBudget?: number;
  now?: Date;
}

const BRANCH_NOTES: Record<string, string> = {
  next: 'no other condition held',
  choice: 'the answer chosen',
  on_error: 'a probe failed',
  timeout: 'the step timed out',
};

const RAW_PER_FILE = 16 * 1024;
const RAW_BUDGET = 1024 * 1024;
const MAX_ROWS = 200;

const text = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const ms = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? `${+v.toFixed(v < 10 ? 2 : 1)} ms` : '');
const pct = (share: unknown) => (typeof share === 'number' && Number.isFinite(share) ? `${+(share * 100).toPrecision(2)}%` : '?');

function when(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} UTC`;
}

function between(start: string | undefined, end: string | undefined): string {
  if (!start || !end) return '';
  const d = Date.parse(end) - Date.parse(start);
  return Number.isFinite(d) && d >= 0 ? formatMs(d) : '';
}

/** Flattens facts into rows: nested objects become `a.b`, lists are joined. */
export function factRows(facts: Record<string, unknown>, prefix = ''): KeyValue[] {
  const rows: KeyValue[] = [];
  for (const [key, value] of Object.entries(facts ?? {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (isObject(value) && prefix.split('.').length < 3) rows.push(...factRows(value, name));
    else if (Array.isArray(value) && value.every((v) => !isObject(v) && !Array.isArray(v))) rows.push({ key: name, value: value.map(text).join(', ') });
    else if (Array.isArray(value) && value.every(isObject)) rows.push({ key: name, value: value.map(itemText).join(', ') });
    else rows.push({ key: name, value: text(value) });
  }
  return rows;
}

/**
 * One item of a list of facts, in words: an address with where it came from (`10.0.0.2/24
 * (frames on tap0)`), a thread with its index and how it was identified (`vCPU 0: tid 4243
 * (qmp)`); anything else as JSON.
 */
function itemText(item: Record<string, unknown>): string {
  const from = (extra: string) => (item.source !== undefined ? ` (${text(item.source)}${extra})` : '');
  if (typeof item.address === 'string') {
    return `${item.address}${item.prefix !== undefined ? `/${text(item.prefix)}` : ''}${from(item.dev !== undefined ? ` on ${text(item.dev)}` : '')}`;
  }
  if (typeof item.tid === 'number' && typeof item.index === 'number') return `vCPU ${item.index}: tid ${item.tid}${from('')}`;
  return text(item);
}

const HOST_KEYS: Array<[string, string, (v: unknown) => string]> = [
  ['hostname', 'host', text],
  ['kernelRelease', 'kernel', text],
  ['kernelVersion', 'kernel build', text],
  ['os', 'OS', text],
  ['arch', 'architecture', text],
  ['cpus', 'CPUs', text],
  ['memoryBytes', 'memory', (v) => (typeof v === 'number' ? `${(v / 2 ** 30).toFixed(1)} GiB` : text(v))],
  ['bootTime', 'booted', (v) => when(text(v))],
  ['root', 'ran as root', text],
  ['collectedAt', 'facts collected', (v) => when(text(v))],
];

function hostRows(host: Record<string, unknown>): KeyValue[] {
  const rows: KeyValue[] = [];
  const seen = new Set<string>();
  for (const [key, label, format] of HOST_KEYS) {
    if (host[key] === undefined) continue;
    seen.add(key);
    rows.push({ key: label, value: format(host[key]) });
  }
  const rest = Object.fromEntries(Object.entries(host).filter(([k]) => !seen.has(k) && k !== 'nodeVersion' && k !== 'ebpfnetVersion' && k !== 'uid'));
  return [...rows, ...factRows(rest)];
}

/** A template in runbook text (`${inputs.duration}`), filled the way the run saw it; unknown parts stay visible. */
function fill(textWithTemplates: string, scope: Scope): string {
  if (!textWithTemplates.includes('${')) return textWithTemplates;
  try {
    return renderText(compileTemplate(textWithTemplates), scope);
  } catch {
    return textWithTemplates;
  }
}

function tableView(spec: TableSpec): TableView {
  const columns = (Array.isArray(spec?.columns) ? spec.columns : []).map(text);
  const all = Array.isArray(spec?.rows) ? spec.rows.filter(Array.isArray) : [];
  const rows = all.slice(0, MAX_ROWS).map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : text(c))));
  const numeric = columns.map((_, i) => all.length > 0 && all.every((r) => typeof r[i] === 'number' || r[i] === '' || r[i] === undefined));
  return { title: text(spec?.title), columns, rows, numeric, ...(all.length > rows.length ? { more: `${all.length - rows.length} more rows are in run.json.` } : {}) };
}

/** What a probe's `attach` data says about how its programs were attached. */
export function attachFacts(data: Record<string, unknown>): { method: string; programs: string; attachMs: string; loadMs: string; btf: string; fallback?: string } | null {
  const holder = isObject(data.attach) || Array.isArray(data.attach) ? data : isObject(data.kernel) && data.kernel.attach !== undefined ? data.kernel : null;
  if (!holder) return null;
  const attach = holder.attach;
  const fallback = typeof data.fallback === 'string' && data.fallback ? data.fallback : undefined;
  if (Array.isArray(attach)) {
    const entries = attach.filter(isObject);
    const methods = [...new Set(entries.map((a) => text(a.method)).filter(Boolean))];
    return {
      method: methods.join(', ') || text(holder.method) || '—',
      programs: entries.map((a) => [text(a.program), a.target ? `→ ${text(a.target)}` : ''].filter(Boolean).join(' ')).join('; '),
      attachMs: entries.map((a) => ms(a.attachMs)).filter(Boolean).join(', '),
      loadMs: [...new Set(entries.map((a) => ms(a.loadMs)).filter(Boolean))].join(', '),
      btf: [...new Set(entries.map((a) => text(a.btf)).filter(Boolean))].join(', '),
      ...(fallback ? { fallback } : {}),
    };
  }
  if (isObject(attach)) {
    const programs = Array.isArray(attach.programs) ? attach.programs.filter(isObject) : [];
    const methods = [...new Set(programs.map((p) => text(p.method)).filter(Boolean))];
    return {
      method: methods.join(', ') || text(attach.method) || '—',
      programs: programs.length
        ? programs.map((p) => [text(p.target) || `prog ${text(p.progId)}`, p.method ? `(${text(p.method)})` : ''].filter(Boolean).join(' ')).join('; ')
        : (Array.isArray(attach.probes) ? attach.probes.map(text).join('; ') : ''),
      attachMs: ms(attach.attachMs),
      loadMs: ms(attach.loadedMs ?? attach.loadMs),
      btf: text(attach.btf),
      ...(fallback ? { fallback } : {}),
    };
  }
  return null;
}

function overheadText(o: OverheadReport | undefined): string {
  if (!isObject(o)) return '';
  const parts = [`${pct(o.cpu)} CPU avg, ${pct(o.peakCpu)} peak`, `${formatNumber(Math.round(Number(o.eventsPerSec) || 0))} events/s`];
  if (typeof o.nsPerEvent === 'number') parts.push(`${Math.round(o.nsPerEvent)} ns/event`);
  if (isObject(o.budget)) parts.push(`budget ${pct(o.budget.cpu)} CPU, ${formatNumber(Number(o.budget.eventsPerSec) || 0)} events/s`);
  if (o.stopped) parts.push(`STOPPED: ${text(o.stopped)}`);
  return parts.join('; ');
}

/** Problems a finding reports about its own completeness: lost events, a guard stop, a fallback. */
function findingGaps(f: Finding): string[] {
  const d = isObject(f.data) ? f.data : {};
  const gaps: string[] = [];
  const lost = [d.lost, d.lostEvents, isObject(d.kernel) ? d.kernel.lost : undefined].find((v) => typeof v === 'number' && v > 0) as number | undefined;
  if (lost) gaps.push(`${formatNumber(lost)} events were lost (not counted in the figures)`);
  const stopped = isObject(d.overhead) && d.overhead.stopped ? text(d.overhead.stopped) : typeof d.stopped === 'string' ? d.stopped : '';
  if (stopped) gaps.push(`the overhead guard stopped the probe early: ${stopped}`);
  if (typeof d.fallback === 'string' && d.fallback) gaps.push(`attached by a fallback method: ${d.fallback}`);
  return gaps;
}

interface EvidenceIndexLike {
  records?: Array<{ file?: string; stderrFile?: string; op?: string; argv?: string[]; path?: string; paths?: string[]; exitCode?: number; error?: string; name?: string }>;
}

/** A bundle-relative path resolved inside the bundle, or null if it leads out of it. */
function inside(bundleDir: string, rel: string): string | null {
  if (typeof rel !== 'string' || rel === '' || rel.includes('\0')) return null;
  const root = resolve(bundleDir);
  const abs = resolve(root, rel);
  if (!abs.startsWith(root + sep)) return null;
  try {
    const real = realpathSync(abs);
    const realRoot = realpathSync(root);
    return real.startsWith(realRoot + sep) ? real : null;
  } catch {
    return abs; // missing: the caller says so
  }
}

function readHead(path: string, limit: number): { content: string; bytes: number; truncated: boolean; binary: boolean } {
  const bytes = statSync(path).size;
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(bytes, limit));
    const n = readSync(fd, buf, 0, buf.length, 0);
    const head = buf.subarray(0, n);
    return { content: head.toString('utf8'), bytes, truncated: bytes > n, binary: head.includes(0) };
  } finally {
    closeSync(fd);
  }
}

class RawReader {
  private spent = 0;
  constructor(private readonly bundleDir: string, private readonly budget: number) {}

  read(f: Finding): RawView[] {
    const index = this.index(f);
    const byFile = new Map<string, NonNullable<EvidenceIndexLike['records']>[number] & { stderr?: boolean }>();
    for (const r of index?.records ?? []) {
      if (r.file) byFile.set(r.file, r);
      if (r.stderrFile) byFile.set(r.stderrFile, { ...r, stderr: true });
    }
    const files = (Array.isArray(f.raw) ? f.raw : []).filter((p) => typeof p === 'string' && !p.endsWith('/records.json') && p !== 'records.json');
    return files.map((path) => {
      const rec = byFile.get(path);
      const what = rec
        ? rec.argv?.length
          ? rec.argv.join(' ')
          : rec.paths?.length
            ? `${rec.op ?? 'read'} ${rec.paths.length} files (${rec.paths[0]}${rec.paths.length > 1 ? ', …' : ''})`
            : `${rec.op ?? ''} ${rec.path ?? rec.name ?? ''}`.trim()
        : '';
      const label = `${rec?.stderr ? 'stderr of ' : ''}${what || path}`;
      const view: RawView = { path, label, bytes: 0, truncated: false, ...(rec?.exitCode ? { exitCode: rec.exitCode } : {}), ...(rec?.error ? { error: rec.error } : {}) };
      const abs = inside(this.bundleDir, path);
      if (!abs) return { ...view, missing: 'the path leads outside the bundle: not read' };
      if (!existsSync(abs)) return { ...view, missing: 'the file is missing from the bundle' };
      if (!statSync(abs).isFile()) return { ...view, missing: 'not a file: not read' };
      if (this.spent >= this.budget) {
        return { ...view, bytes: statSync(abs).size, missing: "not inlined: the report's raw-output budget is spent (the file is in the bundle)" };
      }
      const head = readHead(abs, Math.min(RAW_PER_FILE, this.budget - this.spent));
      this.spent += head.content.length;
      if (head.binary) return { ...view, bytes: head.bytes, missing: 'binary output: not inlined' };
      return { ...view, bytes: head.bytes, content: head.content, truncated: head.truncated };
    });
  }

  private index(f: Finding): EvidenceIndexLike | null {
    const dir = typeof f.evidence === 'string' ? inside(this.bundleDir, f.evidence) : null;
    if (!dir) return null;
    try {
      return JSON.parse(readFileSync(join(dir, 'records.json'), 'utf8')) as EvidenceIndexLike;
    } catch {
      return null;
    }
  }
}

function stepOf(runbook: Runbook | null, id: string): Step | undefined {
  return runbook?.steps.find((s) => s.id === id);
}

export function sha256File(path: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return null;
  }
}

export function buildModel(input: ModelInput): { model: ReportModel; graph: RunbookGraph | null; anchors: Map<string, string> } {
  const { record, runbook, catalog } = input;
  const raw = new RawReader(input.bundleDir, input.rawBudget ?? RAW_BUDGET);
  const timeline: TimelineEntry[] = Array.isArray(record.timeline) ? record.timeline : [];
  const findings: Finding[] = Array.isArray(record.findings) ? record.findings : [];
  const conclusionIds = new Set(runbook?.conclusions.map((c) => c.id) ?? (record.conclusion ? [record.conclusion.id] : []));

  // Which finding proves the verdict: the last one of each evidence alias at its step.
  const proving = new Set<number>();
  const evidenceAnchor = (alias: string, step: string): string | undefined => {
    for (let i = findings.length - 1; i >= 0; i--) {
      const f = findings[i]!;
      if (f.alias === alias && f.step === step) {
        proving.add(i);
        return `finding-${i + 1}`;
      }
    }
    return undefined;
  };
  const c = record.conclusion;
  const verdict = c
    ? {
        id: text(c.id),
        title: text(c.title),
        summary: text(c.summary),
        category: text(c.category),
        confidence: text(c.confidence),
        ...(c.declaredConfidence ? { declaredConfidence: text(c.declaredConfidence) } : {}),
        caveats: (Array.isArray(c.caveats) ? c.caveats : []).map(text),
        explanationHtml: markdownBlock(text(c.explanation)),
        actions: (Array.isArray(c.actions) ? c.actions : []).map((a) => ({ actionHtml: markdownInline(text(a)) })),
        evidence: (Array.isArray(c.evidence) ? c.evidence : []).map((e) => {
          const anchor = evidenceAnchor(text(e.alias), text(e.step));
          return { alias: text(e.alias), probe: text(e.probe), step: text(e.step), status: text(e.status), summary: text(e.summary), ...(anchor ? { anchor } : {}) };
        }),
      }
    : null;

  const anchors = new Map<string, string>();
  timeline.forEach((t, i) => {
    if (!anchors.has(t.step)) anchors.set(t.step, `step-${i + 1}`);
  });
  if (c) anchors.set(c.id, 'verdict');

  // The scope step texts are filled from: inputs, target, host, and findings so far.
  const scope: Scope = { inputs: record.inputs ?? {}, findings: {}, answers: {}, target: record.target ?? {}, host: record.host ?? {} };
  const latest: Record<string, Finding> = {};
  const normalShown = new Map<string, string>();
  const findingModel = (f: Finding, i: number): FindingViewModel => {
    const def = catalog.get(f.probe);
    const normalRef = normalShown.get(f.probe);
    if (def?.normal && !normalRef) normalShown.set(f.probe, `finding-${i + 1}`);
    const data = isObject(f.data) ? f.data : {};
    return {
      anchor: `finding-${i + 1}`,
      index: i + 1,
      alias: text(f.alias),
      probe: text(f.probe),
      probeTitle: def?.title ?? '',
      driver: text(f.driver),
      status: text(f.status),
      ok: f.status === 'ok',
      severity: text(f.severity),
      summary: text(f.summary),
      ...(f.reason ? { reason: text(f.reason) } : {}),
      duration: typeof f.durationMs === 'number' ? formatMs(f.durationMs) : '',
      params: factRows(isObject(f.params) ? f.params : {}),
      ...(def?.normal ? (normalRef ? { normalRef } : { normalHtml: markdownBlock(def.normal) }) : {}),
      charts: (Array.isArray(f.charts) ? f.charts : []).map((chart) => renderChart(chart)),
      tables: (Array.isArray(f.tables) ? f.tables : []).map(tableView),
      notes: [...(Array.isArray(f.notes) ? f.notes : []), ...(Array.isArray(data.notes) ? data.notes : [])].map(text),
      raw: raw.read(f),
      proves: proving.has(i),
    };
  };

  const used = new Set<number>();
  const steps: StepView[] = timeline.map((t, i) => {
    const step = stepOf(runbook, t.step);
    const own = findings
      .map((f, fi) => ({ f, fi }))
      .filter(({ f, fi }) => !used.has(fi) && f.step === t.step && (f.visit ?? 1) === (t.visit ?? 1));
    own.forEach(({ fi }) => used.add(fi));
    const description = step?.description ? fill(step.description, scope) : '';
    const view: StepView = {
      anchor: `step-${i + 1}`,
      order: i + 1,
      step: text(t.step),
      visit: t.visit ?? 1,
      title: text(t.title),
      kind: text(t.kind),
      ...(description.trim() ? { descriptionHtml: markdownBlock(description) } : {}),
      ...(step?.kind === 'ask' ? { question: fill(step.question, scope) } : {}),
      ...(t.answer !== undefined ? { answer: text(t.answer) } : {}),
      status: text(t.status),
      resumed: t.resumed === true,
      started: when(t.startedAt),
      duration: between(t.startedAt, t.endedAt),
      ...(t.branch
        ? {
            goto: text(t.branch.goto),
            gotoAnchor: conclusionIds.has(t.branch.goto) || t.branch.goto === c?.id ? 'verdict' : anchors.get(t.branch.goto) ?? '',
            branchKind: text(t.branch.kind),
            ...(t.branch.condition === undefined ? { branchNote: BRANCH_NOTES[t.branch.kind] ?? text(t.branch.kind) } : {}),
            ...(t.branch.condition !== undefined ? { condition: text(t.branch.condition) } : {}),
            ...(t.branch.why !== undefined ? { why: text(t.branch.why) } : {}),
          }
        : {}),
      conditionFields: [],
      conditionErrors: Array.isArray(t.conditionErrors) ? t.conditionErrors.map(text) : [],
      findings: own.map(({ f, fi }) => findingModel(f, fi)),
    };
    for (const { f } of own) {
      (scope.findings as Record<string, unknown>)[f.alias] = findingView(f);
      latest[f.alias] = f;
    }
    // The condition was read once the step's findings were in.
    if (typeof t.branch?.condition === 'string') view.conditionFields = conditionFields(t.branch.condition, latest, catalog, scope);
    if (t.answer !== undefined) scope.answers[t.step] = t.answer;
    return view;
  });
  const orphans = findings.map((f, fi) => ({ f, fi })).filter(({ fi }) => !used.has(fi)).map(({ f, fi }) => findingModel(f, fi));

  // What could not be checked, and why.
  const notChecked: NotCheckedItem[] = [];
  findings.forEach((f, i) => {
    const anchor = `finding-${i + 1}`;
    const what = `${text(f.alias)} (${text(f.probe)}) at step ${text(f.step)}`;
    if (f.status !== 'ok') notChecked.push({ what, why: `${text(f.status)}: ${text(f.reason) || 'no reason recorded'}`, anchor });
    for (const gap of findingGaps(f)) notChecked.push({ what, why: gap, anchor });
  });
  timeline.forEach((t, i) => {
    for (const e of t.conditionErrors ?? []) notChecked.push({ what: `a condition of step ${text(t.step)}`, why: `could not be evaluated (counted as false): ${text(e)}`, anchor: `step-${i + 1}` });
  });
  for (const it of Array.isArray(record.interruptions) ? record.interruptions : []) {
    notChecked.push({ what: it.step ? `step ${text(it.step)}` : 'the run', why: `interrupted at ${when(it.at)}: ${text(it.reason)}` });
  }
  for (const e of Array.isArray(record.errors) ? record.errors : []) notChecked.push({ what: 'the run', why: text(e) });
  if (input.runbookNote) notChecked.push({ what: 'the decision graph', why: input.runbookNote });

  // How each BPF probe attached, and what it cost.
  const attach: AttachRow[] = [];
  findings.forEach((f, i) => {
    const data = isObject(f.data) ? f.data : {};
    const facts = attachFacts(data);
    const overhead = overheadText(data.overhead as OverheadReport | undefined);
    if (!facts && !overhead) return;
    attach.push({
      anchor: `finding-${i + 1}`,
      step: text(f.step),
      alias: text(f.alias),
      probe: text(f.probe),
      driver: text(f.driver),
      method: facts ? facts.method + (facts.fallback ? ` (fallback: ${facts.fallback})` : '') : '—',
      programs: facts?.programs ?? '',
      attachMs: facts?.attachMs ?? '',
      loadMs: facts?.loadMs ?? '',
      btf: facts?.btf ?? '',
      overhead,
    });
  });

  const status = text(record.status);
  const lastInterruption = Array.isArray(record.interruptions) ? record.interruptions.at(-1) : undefined;
  const noVerdict = c
    ? null
    : status === 'interrupted'
      ? {
          headline: 'No verdict: the run was interrupted',
          detail: `It stopped${lastInterruption?.step ? ` in step ${text(lastInterruption.step)}` : ''}${lastInterruption ? ` (${text(lastInterruption.reason)})` : ''}. The evidence below is what it gathered before it stopped.`,
          resume: `ebpfnet diagnose --resume ${shellWord(input.bundleDir)}`,
        }
      : status === 'running'
        ? { headline: 'No verdict: the run did not finish', detail: 'The bundle was written by a run that was still going (or was killed). The evidence below is what it had gathered.', resume: `ebpfnet diagnose --resume ${shellWord(input.bundleDir)}` }
        : { headline: 'No verdict: the run failed', detail: (Array.isArray(record.errors) && record.errors.length ? record.errors.map(text).join('; ') : 'no error was recorded') };

  const versions: KeyValue[] = [
    { key: 'ebpfnet', value: text(record.tool?.version) },
    { key: 'Node.js', value: text(record.tool?.node) },
    { key: 'runbook', value: `${text(record.runbook?.id)} (${text(record.runbook?.file)})` },
    { key: 'runbook sha256', value: text(record.runbook?.sha256) },
    ...(input.versions ?? []),
  ];

  const bundleArg = shellWord(input.bundleDir);
  const model: ReportModel = {
    runId: text(record.id),
    bundle: input.bundleDir,
    title: text(record.runbook?.title) || text(record.runbook?.id),
    runbookId: text(record.runbook?.id),
    target: text(record.target?.name) || text(record.target?.kind),
    status,
    interrupted: status === 'interrupted',
    failed: status === 'failed',
    running: status === 'running',
    mode: text(record.mode),
    ...(record.replayOf ? { replayOf: text(record.replayOf) } : {}),
    started: when(record.startedAt),
    ended: when(record.endedAt),
    duration: between(record.startedAt, record.endedAt),
    generatedAt: when((input.now ?? new Date()).toISOString()),
    verdict,
    noVerdict,
    ...(runbook?.description ? { runbookDescriptionHtml: markdownBlock(runbook.description) } : {}),
    path: steps,
    steps,
    orphans,
    notChecked,
    host: hostRows(isObject(record.host) ? record.host : {}),
    targetFacts: factRows(isObject(record.target) ? record.target : {}),
    inputs: factRows(isObject(record.inputs) ? record.inputs : {}),
    attach,
    versions,
    reproduce: {
      command: text(record.command),
      replay: `ebpfnet diagnose ${shellWord(text(record.runbook?.id))} --replay ${bundleArg}`,
      report: `ebpfnet report ${bundleArg} --format html,pdf`,
    },
    stats: { steps: steps.length, findings: findings.length, charts: findings.reduce((n, f) => n + (Array.isArray(f.charts) ? f.charts.length : 0), 0) },
  };
  return { model, graph: runbook ? runbookGraph(runbook) : null, anchors };
}
