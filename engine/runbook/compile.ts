// Compiles a validated runbook to an XState v5 machine.
//
// Shape: every probe step is a parallel state with one region per probe, each
// region invoking the probe's named actor (`probe:<id>`) and ending final; the
// step's `onDone` picks the next state with named guards. Ask steps invoke the
// `ask` actor, which answers with a choice id. Conclusions are final states.
// Timeouts are named delays; when one fires the running probe actors are
// stopped, which aborts their AbortSignal.
import {
  assign,
  fromPromise,
  setup,
  type AnyEventObject,
  type AnyStateMachine,
  type DoneActorEvent,
  type ErrorActorEvent,
} from 'xstate';
import type { Finding, Params } from '../probe/types.js';
import {
  compileExpression,
  compileTemplate,
  evaluateCondition,
  type CompiledExpression,
  type CompiledTemplate,
  type Scope,
} from './expressions.js';
import type { AskStep, Branch, ProbeCall, ProbeStep, Runbook } from './model.js';
import { failedFinding, scopeOf, type RunContext, type RunInput, type TrailEntry } from './run-model.js';

export interface ProbeInvocation {
  step: string;
  visit: number;
  alias: string;
  probe: string;
  params: Params;
  /** Set when the params' templates could not be evaluated; the probe then does not run. */
  paramError?: string;
}

export interface AskInvocation {
  step: AskStep;
  visit: number;
  scope: Scope;
}

export interface MachineDeps {
  runProbe(invocation: ProbeInvocation, signal: AbortSignal): Promise<Finding>;
  ask(invocation: AskInvocation, signal: AbortSignal): Promise<string>;
  /** A condition that could not be evaluated counts as false; this hears why. */
  onConditionError?(step: string, condition: string, error: Error): void;
  /**
   * What a finding teaches about the target (a probe that watched the VM's own frames learned
   * its addresses): the target later steps and the conclusion see, or null when nothing new.
   * A replay gets the same findings, so it learns the same.
   */
  learn?(target: Record<string, unknown>, finding: Finding): Record<string, unknown> | null;
}

export function invokeId(step: string, alias: string): string {
  return `${step}.${alias}`;
}

export function timeoutDelay(step: string): string {
  return `timeout:${step}`;
}

interface CompiledParams {
  call: ProbeCall;
  params: Array<[string, CompiledTemplate | unknown]>;
}

function compileParams(call: ProbeCall): CompiledParams {
  const compileValue = (value: unknown): unknown => {
    if (typeof value === 'string') return value.includes('${') ? compileTemplate(value) : value;
    if (Array.isArray(value)) return value.map(compileValue);
    return value;
  };
  return { call, params: Object.entries(call.params).map(([name, value]) => [name, compileValue(value)]) };
}

function renderParams(compiled: CompiledParams, scope: Scope): Params {
  const render = (value: unknown): unknown => {
    if (value && typeof value === 'object' && 'render' in value) return (value as CompiledTemplate).render(scope);
    if (Array.isArray(value)) return value.map(render);
    return value;
  };
  const out: Params = {};
  for (const [name, value] of compiled.params) out[name] = render(value) as Params[string];
  return out;
}

export interface CompileOptions {
  /**
   * A person decides before each step (guided mode): the steps' `after` timeouts would fire
   * while they read, so the machine has none. Each probe's own timeout still bounds it.
   */
  humanPaced?: boolean;
}

export function compileRunbook(runbook: Runbook, deps: MachineDeps, options: CompileOptions = {}): AnyStateMachine {
  const conditions = new Map<string, CompiledExpression>();
  const branchKey = (step: string, index: number) => `${step}#${index}`;
  const paramsByInvoke = new Map<string, CompiledParams>();
  const delays: Record<string, number> = {};
  const actors: Record<string, ReturnType<typeof fromPromise<Finding, ProbeInvocation>>> = {};
  const states: Record<string, unknown> = {};

  const probeActor = fromPromise<Finding, ProbeInvocation>(({ input, signal }) => deps.runProbe(input, signal));
  const askActor = fromPromise<string, AskInvocation>(({ input, signal }) => deps.ask(input, signal));

  const trailAction = (entry: Omit<TrailEntry, 'visit'>) =>
    assign({
      trail: ({ context }: { context: RunContext }) => [
        ...context.trail,
        { ...entry, visit: context.visits[entry.step] ?? 1 },
      ],
    });

  const countVisit = (step: string) =>
    assign({ visits: ({ context }: { context: RunContext }) => ({ ...context.visits, [step]: (context.visits[step] ?? 0) + 1 }) });

  const branchTransition = (step: string, branch: Branch, index: number) => ({
    target: branch.goto,
    ...(branch.if !== undefined ? { guard: { type: 'branch', params: { key: branchKey(step, index) } } } : {}),
    actions: trailAction({ step, kind: 'next', index, goto: branch.goto, condition: branch.if, why: branch.why }),
  });

  for (const step of runbook.steps) {
    if (step.kind === 'probe') {
      states[step.id] = probeStepState(step);
    } else {
      states[step.id] = askStepState(step);
    }
  }

  function probeStepState(step: ProbeStep) {
    step.next.forEach((branch, index) => {
      if (branch.if !== undefined) conditions.set(branchKey(step.id, index), compileExpression(branch.if));
    });
    if (!options.humanPaced) delays[timeoutDelay(step.id)] = step.timeout;
    const regions: Record<string, unknown> = {};
    for (const call of step.probes) {
      const id = invokeId(step.id, call.as);
      paramsByInvoke.set(id, compileParams(call));
      actors[`probe:${call.probe}`] = probeActor;
      const recordFinding = assign({
        findings: ({ context, event }: { context: RunContext; event: AnyEventObject }) => ({
          ...context.findings,
          [call.as]: (event as DoneActorEvent<Finding>).output,
        }),
        target: ({ context, event }: { context: RunContext; event: AnyEventObject }) =>
          deps.learn?.(context.target, (event as DoneActorEvent<Finding>).output) ?? context.target,
      });
      const recordFailure = assign({
        findings: ({ context, event }: { context: RunContext; event: AnyEventObject }) => ({
          ...context.findings,
          [call.as]: failedFinding(step.id, context.visits[step.id] ?? 1, call, 'error', errorText((event as ErrorActorEvent).error)),
        }),
      });
      regions[call.as] = {
        initial: 'running',
        states: {
          running: {
            invoke: {
              id,
              src: `probe:${call.probe}`,
              input: ({ context }: { context: RunContext }) => invocationFor(step, call, context),
              onDone: { target: 'done', actions: recordFinding },
              onError: { target: 'done', actions: recordFailure },
            },
          },
          done: { type: 'final' },
        },
      };
    }
    const onDone: unknown[] = [];
    if (step.on_error) {
      onDone.push({
        target: step.on_error,
        guard: { type: 'stepFailed', params: { step: step.id } },
        actions: trailAction({ step: step.id, kind: 'on_error', index: -1, goto: step.on_error, why: 'a probe failed, timed out or was skipped' }),
      });
    }
    step.next.forEach((branch, index) => onDone.push(branchTransition(step.id, branch, index)));
    const fallback = step.on_error ?? step.next[step.next.length - 1]!.goto;
    const markTimeout = assign({
      findings: ({ context }: { context: RunContext }) => {
        const out = { ...context.findings };
        for (const call of step.probes) {
          const visit = context.visits[step.id] ?? 1;
          const existing = out[call.as];
          if (existing?.step !== step.id || existing.visit !== visit) {
            out[call.as] = failedFinding(step.id, visit, call, 'timeout', `step "${step.id}" timed out after ${step.timeout / 1000}s`);
          }
        }
        return out;
      },
    });
    const state: Record<string, unknown> = { type: 'parallel', entry: countVisit(step.id), states: regions, onDone };
    if (!options.humanPaced) {
      state.after = {
        [timeoutDelay(step.id)]: {
          target: fallback,
          actions: [markTimeout, trailAction({ step: step.id, kind: 'timeout', index: -1, goto: fallback, why: `timed out after ${step.timeout / 1000}s` })],
        },
      };
    }
    return state;
  }

  function askStepState(step: AskStep) {
    const choose = step.choices.map((choice) => ({
      target: choice.goto,
      guard: { type: 'choice', params: { choice: choice.id } },
      actions: [
        assign({ answers: ({ context }: { context: RunContext }) => ({ ...context.answers, [step.id]: choice.id }) }),
        trailAction({ step: step.id, kind: 'choice', index: choice.id, goto: choice.goto, why: choice.label }),
      ],
    }));
    const fallback = step.choices.find((c) => c.id === step.default)!;
    const takeDefault = [
      assign({ answers: ({ context }: { context: RunContext }) => ({ ...context.answers, [step.id]: fallback.id }) }),
      trailAction({ step: step.id, kind: 'choice', index: fallback.id, goto: fallback.goto, why: `no answer: default "${fallback.label}"` }),
    ];
    actors['ask'] = askActor as never;
    const state: Record<string, unknown> = {
      entry: countVisit(step.id),
      invoke: {
        id: invokeId(step.id, 'ask'),
        src: 'ask',
        input: ({ context }: { context: RunContext }) => ({ step, visit: (context.visits[step.id] ?? 0), scope: scopeOf(context) }),
        onDone: [...choose, { target: fallback.goto, actions: takeDefault }],
        onError: { target: fallback.goto, actions: takeDefault },
      },
    };
    // The person at the terminal is the one who answers: no default stands in for them.
    if (step.timeout !== undefined && !options.humanPaced) {
      delays[timeoutDelay(step.id)] = step.timeout;
      state.after = { [timeoutDelay(step.id)]: { target: fallback.goto, actions: takeDefault } };
    }
    return state;
  }

  function invocationFor(step: ProbeStep, call: ProbeCall, context: RunContext): ProbeInvocation {
    const visit = context.visits[step.id] ?? 1;
    const compiled = paramsByInvoke.get(invokeId(step.id, call.as))!;
    try {
      return { step: step.id, visit, alias: call.as, probe: call.probe, params: renderParams(compiled, scopeOf(context)) };
    } catch (err) {
      // Rendering happens inside a transition: never throw here; the actor reports it.
      return { step: step.id, visit, alias: call.as, probe: call.probe, params: {}, paramError: errorText(err) };
    }
  }

  for (const conclusion of runbook.conclusions) {
    states[conclusion.id] = { type: 'final' };
  }

  const machine = setup({
    types: {} as { context: RunContext; input: RunInput },
    actors: actors as never,
    delays,
    guards: {
      branch: ({ context }: { context: RunContext }, params: { key: string }) => {
        const expr = conditions.get(params.key)!;
        try {
          return evaluateCondition(expr, scopeOf(context));
        } catch (err) {
          deps.onConditionError?.(params.key.split('#')[0]!, expr.source, err as Error);
          return false;
        }
      },
      stepFailed: ({ context }: { context: RunContext }, params: { step: string }) => {
        const step = runbook.steps.find((s) => s.id === params.step) as ProbeStep;
        return step.probes.some((call) => context.findings[call.as]?.status !== 'ok');
      },
      choice: ({ event }: { event: AnyEventObject }, params: { choice: string }) =>
        (event as DoneActorEvent<string>).output === params.choice,
    },
  }).createMachine({
    id: runbook.id,
    initial: runbook.steps[0]!.id,
    context: ({ input }: { input: RunInput }) => ({
      inputs: input.inputs,
      target: input.target,
      host: input.host,
      findings: {},
      answers: {},
      trail: [],
      visits: {},
    }),
    states: states as never,
  } as never);
  return machine as unknown as AnyStateMachine;
}

export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0] ?? text;
}
