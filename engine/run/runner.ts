// Runs a compiled runbook: starts the machine, executes probes through the probe
// runtime, keeps the bundle (run.json, snapshot, evidence) current after every
// change, and closes it properly when the run ends, fails or is interrupted.
import { readFileSync } from 'node:fs';
import { createActor, type AnyActorRef, type AnyMachineSnapshot } from 'xstate';
import { hostFacts } from '../host/facts.js';
import { runProbe } from '../probe/runtime.js';
import type { Finding, ProbeCatalog } from '../probe/types.js';
import { compileRunbook, errorText, type AskInvocation, type ProbeInvocation } from '../runbook/compile.js';
import { compileExpression, compileTemplate, evaluateCondition, renderText, type Scope } from '../runbook/expressions.js';
import { resolveInputs } from '../runbook/inputs.js';
import type { Conclusion, Confidence, ProbeStep, Runbook } from '../runbook/model.js';
import { failedFinding, scopeOf, type RunContext } from '../runbook/run-model.js';
import { RunBundle } from './bundle.js';
import { keepRunbook, keptRunbook, sha256Of } from './kept-runbook.js';
import { RUN_SCHEMA, type ConclusionRecord, type RunRecord, type TimelineEntry } from './record.js';
import { ReplaySource } from './replay.js';
import { reproduceCommand } from './reproduce.js';
import type { OverheadBudget } from '../probe/budget.js';
import { toolInfo } from './tool.js';
import type { Target } from '../target/types.js';

export type ProgressEvent =
  | { type: 'step'; entry: TimelineEntry }
  | { type: 'finding'; finding: Finding }
  | { type: 'step-end'; entry: TimelineEntry }
  | { type: 'conclusion'; conclusion: ConclusionRecord }
  | { type: 'interrupted'; reason: string };

/** What a person decides before a step's probes run (guided mode). */
export type StepDecision = 'run' | 'skip' | 'quit';

/** A probe step about to run, with its probes' params rendered for this visit. */
export interface StepConfirmation {
  step: ProbeStep;
  visit: number;
  scope: Scope;
  invocations: ProbeInvocation[];
}

/** Reasons recorded when the person at the terminal declines a step or stops the run. */
export const SKIPPED_BY_OPERATOR = 'skipped by the operator';
export const QUIT_BY_OPERATOR = 'quit by the operator';

interface CommonOptions {
  catalog: ProbeCatalog;
  /** Aborting it interrupts the run; the bundle is kept, marked interrupted. */
  signal?: AbortSignal;
  /** Answers ask steps; unattended runs take each question's default. */
  ask?: (invocation: AskInvocation, signal: AbortSignal) => Promise<string>;
  progress?: (event: ProgressEvent) => void;
  /**
   * Asked once per visit of a probe step, before its probes run. 'skip' gives each probe a
   * skipped finding (runbooks route those through on_error); 'quit' interrupts the run,
   * which `resume` continues. Given this, steps have no machine timeout: a person is
   * reading, and each probe's own timeout still bounds it.
   */
  confirmStep?: (request: StepConfirmation, signal: AbortSignal) => Promise<StepDecision>;
  /** `--budget`: overrides every probe's overhead budget. */
  budget?: Partial<OverheadBudget>;
  /** What a finding teaches about the target (see MachineDeps.learn); run.json keeps the target as learned. */
  learnTarget?: (target: Record<string, unknown>, finding: Finding) => Record<string, unknown> | null;
}

export interface DiagnoseOptions extends CommonOptions {
  runbook: Runbook;
  inputs: Record<string, unknown>;
  target?: Target;
  /** Folder holding bundles (runs/). */
  outDir: string;
  /** Answer every probe from this recorded bundle instead of the host. */
  replayFrom?: string;
  /** The `--inventory` file the VM was resolved with: the reproduce command names it too. */
  inventory?: string;
}

export interface ResumeOptions extends CommonOptions {
  bundleDir: string;
  /** Loads the runbook a bundle of an older version ran (it keeps no copy): by its recorded file. */
  loadRunbook: (file: string, id: string) => Runbook;
}

export interface RunOutcome {
  bundle: RunBundle;
  record: RunRecord;
}

const defaultAsk = async (invocation: AskInvocation) => invocation.step.default;

export async function diagnose(opts: DiagnoseOptions): Promise<RunOutcome> {
  const replay = opts.replayFrom ? new ReplaySource(opts.replayFrom) : undefined;
  // A replay asks the same questions as the recorded run unless told otherwise.
  const given = replay && replay.record.runbook.id === opts.runbook.id ? { ...replay.record.inputs, ...opts.inputs } : opts.inputs;
  const inputs = resolveInputs(opts.runbook, given);
  const host = replay ? replay.record.host : ((await hostFacts()) as unknown as Record<string, unknown>);
  const target: Target = replay
    ? ((replay.record.initialTarget ?? replay.record.target) as Target)
    : (opts.target ?? { kind: 'host', name: String(host.hostname ?? 'localhost') });
  const bundle = RunBundle.create(opts.outDir, opts.runbook.id, target.name);
  const record: RunRecord = {
    schema: RUN_SCHEMA,
    id: bundle.id,
    status: 'running',
    mode: replay ? 'replay' : 'live',
    ...(replay ? { replayOf: replay.dir } : {}),
    runbook: keepRunbook(bundle, opts.runbook),
    inputs,
    target,
    host,
    tool: toolInfo(),
    command: reproduceCommand(opts.runbook.id, inputs, target, opts.budget, opts.inventory),
    startedAt: new Date().toISOString(),
    timeline: [],
    findings: [],
    conclusion: null,
    interruptions: [],
    resumes: [],
    errors: [],
  };
  bundle.writeRecord(record);
  return execute({ ...opts, bundle, record, replay, input: { inputs, target, host } });
}

export async function resume(opts: ResumeOptions): Promise<RunOutcome> {
  const bundle = RunBundle.open(opts.bundleDir);
  const record = bundle.readRecord();
  if (record.schema !== RUN_SCHEMA) throw new Error(`${bundle.dir}: unsupported run schema ${record.schema}`);
  if (record.status === 'completed') throw new Error(`${bundle.dir}: this run already completed (${record.conclusion?.id}); nothing to resume`);
  const snapshot = bundle.readSnapshot();
  if (!snapshot) throw new Error(`${bundle.dir}: no snapshot.json to resume from`);
  // The runbook the run ran, as the bundle keeps it; a bundle of an older version keeps none.
  const kept = keptRunbook(bundle, record, opts.catalog);
  const runbook = kept ?? opts.loadRunbook(record.runbook.file, record.runbook.id);
  if (!kept && sha256Of(readFileSync(runbook.file)) !== record.runbook.sha256) {
    record.errors.push(`runbook ${runbook.file} changed since the run started; resuming with the new version`);
  }
  const replay = record.mode === 'replay' && record.replayOf ? new ReplaySource(record.replayOf) : undefined;
  record.status = 'running';
  record.resumes.push({ at: new Date().toISOString() });
  delete record.endedAt;
  bundle.writeRecord(record);
  const input = { inputs: record.inputs, target: record.target, host: record.host };
  return execute({ ...opts, runbook, bundle, record, replay, input, snapshot });
}

interface ExecuteArgs extends CommonOptions {
  runbook: Runbook;
  bundle: RunBundle;
  record: RunRecord;
  replay: ReplaySource | undefined;
  input: { inputs: Record<string, unknown>; target: Record<string, unknown>; host: Record<string, unknown> };
  snapshot?: unknown;
}

async function execute(args: ExecuteArgs): Promise<RunOutcome> {
  const { runbook, bundle, record, replay, catalog, progress } = args;
  const runAbort = new AbortController();
  const onOuterAbort = () => runAbort.abort(args.signal?.reason);
  if (args.signal?.aborted) onOuterAbort();
  args.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const inflight = new Set<Promise<unknown>>();
  const stepOf = new Map(runbook.steps.map((s) => [s.id, s]));
  let current: TimelineEntry | undefined;
  let stopped = false;

  const save = () => bundle.writeRecord(record);

  // One decision per step visit, shared by its probes. The probe regions of a step all start
  // in the same turn of the event loop, so asking on the next turn sees every one of them.
  const decisions = new Map<string, { invocations: ProbeInvocation[]; decision: Promise<StepDecision> }>();
  const decide = (invocation: ProbeInvocation): Promise<StepDecision> => {
    const confirm = args.confirmStep;
    if (!confirm) return Promise.resolve('run');
    const key = `${invocation.step}#${invocation.visit}`;
    const pending = decisions.get(key);
    if (pending) {
      pending.invocations.push(invocation);
      return pending.decision;
    }
    const invocations = [invocation];
    const decision = new Promise((nextTurn) => setImmediate(nextTurn))
      .then(() => {
        const step = stepOf.get(invocation.step) as ProbeStep;
        const scope = scopeOf(actor.getSnapshot().context as RunContext);
        return confirm({ step, visit: invocation.visit, scope, invocations }, runAbort.signal);
      })
      .catch((err: unknown): StepDecision => {
        runAbort.abort(`the step confirmation failed: ${errorText(err)}`);
        return 'quit';
      });
    decisions.set(key, { invocations, decision });
    return decision;
  };

  const runOne = async (invocation: ProbeInvocation, signal: AbortSignal): Promise<Finding> => {
    const def = catalog.get(invocation.probe);
    const visit = invocation.visit;
    const call = { probe: invocation.probe, as: invocation.alias, params: {} };
    const decision = await decide(invocation);
    if (decision === 'quit') {
      runAbort.abort(QUIT_BY_OPERATOR);
      // A finding returned now would let the machine leave the step (by on_error) before the
      // run stops it: wait until stopping the machine aborts this probe.
      if (!signal.aborted) await new Promise((stopped) => signal.addEventListener('abort', stopped, { once: true }));
    }
    let finding: Finding;
    if (decision === 'skip') {
      finding = failedFinding(invocation.step, visit, call, 'skipped', SKIPPED_BY_OPERATOR, invocation.params);
    } else if (decision === 'quit') {
      finding = failedFinding(invocation.step, visit, call, 'interrupted', describeAbort(runAbort.signal.reason), invocation.params);
    } else if (!def) {
      finding = failedFinding(invocation.step, visit, call, 'error', `unknown probe ${invocation.probe}`);
    } else if (invocation.paramError) {
      finding = failedFinding(invocation.step, visit, call, 'error', `params: ${invocation.paramError}`);
    } else {
      const rawDir = bundle.evidenceDir(invocation.step, visit, invocation.alias);
      const replayFrom = replay?.evidenceFor(invocation.step, visit, invocation.alias);
      if (replay && !replayFrom) {
        finding = failedFinding(invocation.step, visit, call, 'error', `the replayed bundle has no evidence for ${invocation.step} #${visit} ${invocation.alias}`);
      } else {
        const step = stepOf.get(invocation.step);
        finding = await runProbe(
          def,
          { step: invocation.step, alias: invocation.alias, probe: invocation.probe, params: invocation.params },
          {
            rawDir,
            bundleRoot: bundle.dir,
            signal,
            ...(replayFrom ? { replayFrom } : {}),
            ...(step?.kind === 'probe' ? { timeoutMs: step.timeout } : {}),
            ...(args.budget ? { budget: args.budget } : {}),
          },
        );
        finding.evidence = bundle.relative(rawDir);
      }
    }
    finding.visit = visit;
    // The machine stops a step's probes when the step times out: say so, rather than "interrupted".
    if (finding.status === 'interrupted' && !runAbort.signal.aborted) {
      finding.status = 'timeout';
      finding.reason = `step "${invocation.step}" timed out`;
      finding.summary = `timeout: ${finding.reason}`;
    }
    record.findings.push(finding);
    save();
    progress?.({ type: 'finding', finding });
    return finding;
  };

  const deps = {
    runProbe: (invocation: ProbeInvocation, signal: AbortSignal) => track(runOne(invocation, signal)),
    ask: async (invocation: AskInvocation, signal: AbortSignal) => {
      const recorded = replay?.answerFor(invocation.step.id, invocation.visit);
      const answer = recorded ?? (await (args.ask ?? defaultAsk)(invocation, signal));
      if (current && current.step === invocation.step.id) current.answer = answer;
      return answer;
    },
    learn: (target: Record<string, unknown>, finding: Finding) => {
      const learned = args.learnTarget?.(target, finding) ?? null;
      if (learned) {
        // What the run learned shows in run.json; replays start from what it knew at first.
        record.initialTarget ??= record.target;
        record.target = learned;
      }
      return learned;
    },
    onConditionError: (step: string, condition: string, error: Error) => {
      const entry = [...record.timeline].reverse().find((t) => t.step === step);
      if (entry) (entry.conditionErrors ??= []).push(`${condition}: ${error.message}`);
    },
  };
  function track<T>(promise: Promise<T>): Promise<T> {
    inflight.add(promise);
    void promise.finally(() => inflight.delete(promise)).catch(() => undefined);
    return promise;
  }

  const machine = compileRunbook(runbook, deps, { humanPaced: args.confirmStep !== undefined });
  const actor: AnyActorRef = args.snapshot
    ? createActor(machine, { snapshot: args.snapshot as never, input: args.input })
    : createActor(machine, { input: args.input });

  const onSnapshot = (snapshot: AnyMachineSnapshot) => {
    if (stopped) return;
    const context = snapshot.context as RunContext;
    const stepId = topState(snapshot);
    if (current && current.step !== stepId) closeStep(current, context);
    if (stepId && stepOf.has(stepId) && current?.step !== stepId) openStep(stepId, context, false);
    bundle.writeSnapshot(actor.getPersistedSnapshot());
    save();
  };

  function openStep(stepId: string, context: RunContext, resumed: boolean) {
    const step = stepOf.get(stepId)!;
    current = {
      step: stepId,
      visit: context.visits[stepId] ?? 1,
      title: renderText(compileTemplate(step.title), scopeOf(context)),
      kind: step.kind,
      startedAt: new Date().toISOString(),
      status: 'running',
      probes: step.kind === 'probe' ? step.probes.map((p) => ({ alias: p.as, probe: p.probe })) : [],
      ...(resumed ? { resumed: true } : {}),
    };
    record.timeline.push(current);
    progress?.({ type: 'step', entry: current });
  }

  if (args.snapshot) {
    // The restored step continues: its unfinished probes run again.
    const restored = actor.getSnapshot() as AnyMachineSnapshot;
    const stepId = topState(restored);
    if (stepId && stepOf.has(stepId)) openStep(stepId, restored.context as RunContext, true);
  }

  function closeStep(entry: TimelineEntry, context: RunContext) {
    entry.status = 'done';
    entry.endedAt = new Date().toISOString();
    const taken = [...context.trail].reverse().find((t) => t.step === entry.step && t.visit === entry.visit);
    if (taken) {
      entry.branch = {
        kind: taken.kind,
        index: taken.index,
        goto: taken.goto,
        ...(taken.condition !== undefined ? { condition: taken.condition } : {}),
        ...(taken.why !== undefined ? { why: renderText(compileTemplate(taken.why), scopeOf(context)) } : {}),
      };
      if (taken.kind === 'choice') entry.answer = String(taken.index);
    }
    progress?.({ type: 'step-end', entry });
    current = undefined;
  }

  const finished = new Promise<'done' | 'error'>((resolveDone) => {
    actor.subscribe({
      next: (snapshot: AnyMachineSnapshot) => {
        onSnapshot(snapshot);
        if (snapshot.status === 'done') resolveDone('done');
      },
      error: (err: unknown) => {
        record.errors.push(errorText(err));
        resolveDone('error');
      },
    });
  });
  const interrupted = new Promise<'interrupted'>((resolveInterrupt) => {
    if (runAbort.signal.aborted) resolveInterrupt('interrupted');
    runAbort.signal.addEventListener('abort', () => resolveInterrupt('interrupted'), { once: true });
  });

  actor.start();
  const how = await Promise.race([finished, interrupted]);
  args.signal?.removeEventListener('abort', onOuterAbort);
  const snapshot = actor.getSnapshot() as AnyMachineSnapshot;

  if (how === 'interrupted') {
    // Keep the snapshot of the last completed change: that is what --resume continues from.
    stopped = true;
    actor.stop();
    await Promise.allSettled([...inflight]);
    const reason = describeAbort(runAbort.signal.reason);
    record.status = 'interrupted';
    record.interruptions.push({ at: new Date().toISOString(), reason, ...(current ? { step: current.step } : {}) });
    if (current) {
      current.status = 'interrupted';
      current.endedAt = new Date().toISOString();
    }
    progress?.({ type: 'interrupted', reason });
  } else if (how === 'error') {
    stopped = true;
    actor.stop();
    await Promise.allSettled([...inflight]);
    record.status = 'failed';
  } else {
    // Probes cut by a step timeout are still writing their partial evidence.
    await Promise.allSettled([...inflight]);
    const context = snapshot.context as RunContext;
    if (current) closeStep(current, context);
    record.conclusion = concludeFrom(runbook, topState(snapshot)!, context, conditionErrorsOf(record));
    record.status = 'completed';
    progress?.({ type: 'conclusion', conclusion: record.conclusion });
  }
  record.endedAt = new Date().toISOString();
  save();
  return { bundle, record };
}

function topState(snapshot: AnyMachineSnapshot): string | undefined {
  const value = snapshot.value as unknown;
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') return Object.keys(value)[0];
  return undefined;
}

function describeAbort(reason: unknown): string {
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error) return reason.message;
  return 'interrupted';
}

const LOWER: Record<Confidence, Confidence> = { high: 'medium', medium: 'low', low: 'low' };

/**
 * Why a verdict is less certain than its runbook says: every condition of the run that could
 * not be evaluated (it counted as false, so a branch may have been missed), every finding the
 * conclusion cites that is not ok, and every runbook caveat that holds. Each lowers the
 * confidence a level.
 */
function caveatsOf(runbook: Runbook, conclusion: Conclusion, context: RunContext, conditionErrors: string[]): string[] {
  const out = conditionErrors.map((e) => `a condition could not be evaluated and counted as false: ${e}`);
  for (const alias of conclusion.evidence) {
    const f = context.findings[alias];
    if (f && f.status !== 'ok') out.push(`${alias} (${f.probe}) ${f.status}: ${f.reason ?? f.summary}`);
  }
  const scope = scopeOf(context);
  for (const caveat of [...runbook.caveats, ...conclusion.caveats]) {
    try {
      if (evaluateCondition(compileExpression(caveat.if), scope)) out.push(renderText(compileTemplate(caveat.says), scope));
    } catch (err) {
      out.push(`a caveat could not be evaluated: ${caveat.if}: ${errorText(err)}`);
    }
  }
  return [...new Set(out)];
}

/**
 * Renders the conclusion's templates against what the run found, with its caveats and the
 * confidence they leave. `conditionErrors`: the run's conditions that could not be evaluated.
 */
export function concludeFrom(runbook: Runbook, id: string, context: RunContext, conditionErrors: string[] = []): ConclusionRecord {
  const conclusion = runbook.conclusions.find((c) => c.id === id);
  if (!conclusion) throw new Error(`run ended in ${id}, which is not a conclusion of ${runbook.id}`);
  const scope = scopeOf(context);
  const text = (template: string) => renderText(compileTemplate(template), scope);
  const caveats = caveatsOf(runbook, conclusion, context, conditionErrors);
  const confidence = caveats.reduce<Confidence>((c) => LOWER[c], conclusion.confidence);
  return {
    id: conclusion.id,
    title: text(conclusion.title),
    category: conclusion.category,
    confidence,
    ...(confidence !== conclusion.confidence ? { declaredConfidence: conclusion.confidence } : {}),
    caveats,
    summary: text(conclusion.summary),
    explanation: text(conclusion.explanation),
    actions: conclusion.actions.map(text),
    evidence: conclusion.evidence
      .filter((alias) => context.findings[alias])
      .map((alias) => {
        const f = context.findings[alias]!;
        return { alias, probe: f.probe, step: f.step, status: f.status, summary: f.summary };
      }),
  };
}

/** Every condition of the run that could not be evaluated, as `step: condition: error`. */
export function conditionErrorsOf(record: RunRecord): string[] {
  return record.timeline.flatMap((t) => (t.conditionErrors ?? []).map((e) => `${t.step}: ${e}`));
}
