// Runs one probe, live or from a recording, and always returns a Finding:
// params → requirements (live only) → collect → evidence (always written) → parse.
import { performance } from 'node:perf_hooks';
import { checkDeclaredData, strictData } from './data-schema.js';
import { readEvidence, writeEvidence, type Evidence, type EvidenceOutcome } from './evidence.js';
import { LiveIO } from './live-io.js';
import { effectiveBudget, type OverheadBudget } from './overhead.js';
import { formatMs } from '../duration.js';
import { ParamError, resolveParams } from './params.js';
import { ReplayIO, ReplayMismatchError } from './replay-io.js';
import { checkRequirements } from './requirements.js';
import type { Finding, FindingStatus, Params, ProbeDefinition, ProbeRequest, ProbeResult, RawRecord } from './types.js';

export interface RunProbeOptions {
  /** Absolute folder for this run's evidence, inside bundleRoot (created if needed). */
  rawDir: string;
  /** Absolute root of the run bundle: evidence paths in the finding are relative to it. */
  bundleRoot: string;
  /** Aborting it stops the probe: the finding says `interrupted`. */
  signal: AbortSignal;
  /** A recorded rawDir to answer the probe from instead of observing this host. */
  replayFrom?: string;
  /** The probe's own time limit: past it the probe is stopped and the finding says `timeout`. */
  timeoutMs?: number;
  /** `--budget`: overrides the probe's declared overhead budget. */
  budget?: Partial<OverheadBudget>;
}

/** How long a probe that ignores its abort signal is waited for before giving up on it. */
const ABANDON_AFTER_MS = 3000;

type CollectState = { kind: 'running' } | { kind: 'done' } | { kind: 'failed'; error: unknown; stopped: boolean };

type Ended = { status: Exclude<FindingStatus, 'ok'>; reason: string } | { status: 'ok'; result: ProbeResult; notes?: string[] };

/** Runs `def` as `request` asks. Never throws for a probe's problems: they become the finding's status. */
export async function runProbe(def: ProbeDefinition, request: ProbeRequest, opts: RunProbeOptions): Promise<Finding> {
  if (request.probe !== def.id) throw new TypeError(`runProbe: request is for ${request.probe} but the definition is ${def.id}`);
  const startedAt = new Date();
  const started = performance.now();
  const given = (request.params ?? {}) as Record<string, unknown>;

  let params: Params;
  try {
    params = resolveParams(def, given);
  } catch (err) {
    const reason = err instanceof ParamError ? err.message : `probe ${def.id}: bad params: ${messageOf(err)}`;
    return finish({ status: 'error', reason }, given as Params, []);
  }

  let records: RawRecord[] = [];
  let ended: Ended;
  try {
    if (opts.signal.aborted) {
      ended = { status: 'interrupted', reason: interruptedReason(opts.signal, 0) };
    } else if (opts.replayFrom !== undefined) {
      ({ ended, records } = await replay(def, params, opts.replayFrom, opts));
    } else {
      const unmet = await checkRequirements(def.requirements);
      if (unmet !== null) ended = { status: 'skipped', reason: unmet };
      else ({ ended, records } = await collectAndParse(def, params, opts, (signal) => new LiveIO(signal, def.budget ? effectiveBudget(def.budget, opts.budget) : null)));
    }
  } catch (err) {
    ended = { status: 'error', reason: messageOf(err) };
  }
  return finish(ended, params, records);

  async function finish(end: Ended, usedParams: Params, observed: RawRecord[]): Promise<Finding> {
    const outcome: EvidenceOutcome = end.status === 'ok' ? { status: 'ok' } : { status: end.status, reason: end.reason };
    let raw: string[] = [];
    try {
      raw = await writeEvidence(opts.rawDir, opts.bundleRoot, { probe: def.id, params: usedParams, outcome, records: observed });
    } catch (err) {
      if (err instanceof TypeError) throw err; // a rawDir outside the bundle is the caller's bug
      const why = `could not write evidence to ${opts.rawDir}: ${messageOf(err)}`;
      end = end.status === 'ok' ? { status: 'error', reason: why } : { ...end, reason: `${end.reason}; ${why}` };
    }
    const endedAt = new Date();
    const base = {
      probe: def.id,
      alias: request.alias,
      step: request.step,
      params: usedParams,
      raw,
      driver: opts.replayFrom !== undefined ? ('replay' as const) : def.driver,
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      durationMs: Math.round(performance.now() - started),
    };
    if (end.status === 'ok') {
      const r = end.result;
      const notes = end.notes ? { notes: end.notes } : {};
      return { ...base, status: 'ok', summary: r.summary, severity: r.severity, ...notes, data: r.data, charts: r.charts ?? [], tables: r.tables ?? [] };
    }
    return {
      ...base,
      status: end.status,
      summary: summaryFor(end.status, end.reason),
      severity: 'warning',
      reason: end.reason,
      data: {},
      charts: [],
      tables: [],
    };
  }
}

/** Replays a recording: a recorded skip, timeout or interruption is reproduced as it was. */
async function replay(
  def: ProbeDefinition,
  params: Params,
  dir: string,
  opts: RunProbeOptions,
): Promise<{ ended: Ended; records: RawRecord[] }> {
  const recorded: Evidence = await readEvidence(dir);
  if (recorded.probe !== def.id) {
    return { ended: { status: 'error', reason: `replay mismatch in ${dir}: it holds evidence of ${recorded.probe}, not ${def.id}` }, records: [] };
  }
  const { status, reason } = recorded.outcome;
  if (status === 'skipped' || status === 'timeout' || status === 'interrupted') {
    return { ended: { status, reason: reason ?? status }, records: recorded.records };
  }
  let replayIO: ReplayIO | undefined;
  const run = await collectAndParse(def, params, opts, (signal) => (replayIO = new ReplayIO(recorded.records, dir, signal)), () => {
    const left = replayIO?.remaining() ?? [];
    if (status === 'ok' && left.length > 0) {
      throw new ReplayMismatchError(
        `replay mismatch in ${dir}: the probe finished but ${left.length} recorded observation(s) were not asked for (next: ${ReplayIO.describe(left[0]!)})`,
      );
    }
  });
  // A recorded failure that happened outside any observation (the replay then runs out of
  // records where the live run stopped) is reproduced with its recorded reason.
  if (status === 'error' && run.ended.status === 'error' && /^replay mismatch in .*: the recording has no more observations/.test(run.ended.reason)) {
    run.ended = { status: 'error', reason: reason ?? run.ended.reason };
  }
  return run;
}

/** Runs collect under the caller's signal and the probe's own timeout, then parse. */
async function collectAndParse(
  def: ProbeDefinition,
  params: Params,
  opts: RunProbeOptions,
  makeIO: (signal: AbortSignal) => LiveIO | ReplayIO,
  afterCollect?: () => void,
): Promise<{ ended: Ended; records: RawRecord[] }> {
  const started = performance.now();
  const limit = new AbortController();
  const signal = AbortSignal.any([opts.signal, limit.signal]);
  const io = makeIO(signal);
  let timedOut = false;
  const timer =
    opts.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          limit.abort(new Error(`timed out after ${formatMs(opts.timeoutMs!)}`));
        }, opts.timeoutMs)
      : undefined;

  // What collect did, and whether it failed before or after the probe was stopped.
  let state: CollectState = { kind: 'running' };
  const collecting = Promise.resolve()
    .then(() => def.collect(params, io))
    .then(
      () => void (state = { kind: 'done' }),
      (error: unknown) => void (state = { kind: 'failed', error, stopped: signal.aborted }),
    );
  try {
    await Promise.race([collecting, whenAborted(signal)]);
    // Give a stopped probe a moment to unwind so its last observations are recorded;
    // one that ignores its signal is abandoned.
    if (state.kind === 'running') await settleWithin(collecting, ABANDON_AFTER_MS);
  } finally {
    if (timer) clearTimeout(timer);
  }
  if (io instanceof LiveIO) await io.settled();
  const records = io instanceof LiveIO ? io.records() : io.served();
  const end = state as CollectState; // set by the callbacks above, which TypeScript does not follow

  if (end.kind === 'running' || (end.kind === 'failed' && end.stopped)) {
    if (opts.signal.aborted) {
      return { ended: { status: 'interrupted', reason: interruptedReason(opts.signal, performance.now() - started) }, records };
    }
    if (timedOut) return { ended: { status: 'timeout', reason: `timed out after ${formatMs(opts.timeoutMs!)}` }, records };
  }
  if (end.kind === 'failed') return { ended: { status: 'error', reason: messageOf(end.error) }, records };
  if (end.kind === 'running') return { ended: { status: 'error', reason: 'the probe neither finished nor stopped' }, records };
  try {
    afterCollect?.();
  } catch (err) {
    return { ended: { status: 'error', reason: messageOf(err) }, records };
  }
  let result: ProbeResult;
  try {
    result = def.parse(records, params);
    checkResult(result);
  } catch (err) {
    return { ended: { status: 'error', reason: `parse failed: ${messageOf(err)}` }, records };
  }
  // Output that departs from the probe's declared data fails the probe in tests; in production
  // the finding keeps it as a note, so neither the finding nor the mismatch is lost.
  const mismatch = checkDeclaredData(def, result.data);
  if (mismatch !== undefined && strictData()) return { ended: { status: 'error', reason: mismatch }, records };
  return { ended: { status: 'ok', result, ...(mismatch !== undefined ? { notes: [mismatch] } : {}) }, records };
}

function checkResult(result: ProbeResult): void {
  if (!result || typeof result !== 'object') throw new Error('parse returned no result');
  if (!result.data || typeof result.data !== 'object' || Array.isArray(result.data)) throw new Error('parse returned no data object');
  if (typeof result.summary !== 'string' || result.summary === '') throw new Error('parse returned no summary');
  if (!['info', 'warning', 'critical'].includes(result.severity)) throw new Error(`parse returned severity ${String(result.severity)}`);
}

function summaryFor(status: Exclude<FindingStatus, 'ok'>, reason: string): string {
  switch (status) {
    case 'skipped':
      return `skipped: ${reason}`;
    case 'error':
      return `failed: ${reason}`;
    case 'timeout':
      return `timeout: ${reason}`;
    case 'interrupted':
      return `interrupted: ${reason}`;
  }
}

function interruptedReason(signal: AbortSignal, elapsedMs: number): string {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error && reason.name !== 'AbortError' ? `: ${oneLine(reason.message)}` : typeof reason === 'string' ? `: ${oneLine(reason)}` : '';
  return `stopped after ${formatMs(elapsedMs)}${why}`;
}

function whenAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Waits for `promise` (which never rejects) at most `ms`; the timer keeps the process alive meanwhile. */
async function settleWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function messageOf(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}

function oneLine(text: string): string {
  const line = text.replace(/\s*\n\s*/g, ' ').trim();
  return line.length > 500 ? `${line.slice(0, 497)}...` : line || 'unknown error';
}
