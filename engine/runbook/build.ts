// Turns a checked runbook (as written) into the Runbook model: defaults filled
// in, durations in ms, the `probe:` shorthand as a one-entry `probes:` list.
import { parseDuration } from '../duration.js';
import type { AskStep, Conclusion, InputSpec, InputValue, ProbeStep, Runbook, Step } from './model.js';
import type { SourceMap } from '../yaml/positions.js';
import { isAskStep, probeCalls, type RawRunbook, type RawStep } from './raw.js';

/** A probe step's timeout when it sets none. */
export const DEFAULT_STEP_TIMEOUT_MS = 120_000;

function durationMs(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new Error(`duration "${text}" was not checked`);
  return ms;
}

function buildStep(step: RawStep, index: number, map: SourceMap): Step {
  if (isAskStep(step)) {
    const ask: AskStep = {
      kind: 'ask',
      id: step.id,
      title: step.title,
      description: step.description ?? '',
      question: step.ask.question,
      choices: step.ask.choices.map((c) => ({ id: c.id, label: c.label, goto: c.goto })),
      default: step.ask.default,
    };
    if (step.ask.timeout !== undefined) ask.timeout = durationMs(step.ask.timeout);
    return ask;
  }
  const probe: ProbeStep = {
    kind: 'probe',
    id: step.id,
    title: step.title,
    description: step.description ?? '',
    timeout: step.timeout === undefined ? DEFAULT_STEP_TIMEOUT_MS : durationMs(step.timeout),
    probes: probeCalls(step, index).map(({ call, alias, pointer, modelPointer }) => {
      // The shorthand's keys sit on the step: let the model's pointers find them there.
      if (pointer !== modelPointer) {
        map.addAlias(modelPointer, pointer, false);
        map.addAlias(`${modelPointer}/probe`, `${pointer}/probe`);
        if (call.as !== undefined) map.addAlias(`${modelPointer}/as`, `${pointer}/as`);
        if (call.params !== undefined) map.addAlias(`${modelPointer}/params`, `${pointer}/params`);
      }
      return { probe: call.probe, as: alias, params: { ...(call.params ?? {}) } };
    }),
    next: step.next.map((b) => {
      const branch: ProbeStep['next'][number] = { goto: b.goto };
      if (b.if !== undefined) branch.if = b.if;
      if (b.why !== undefined) branch.why = b.why;
      return branch;
    }),
  };
  if (step.on_error !== undefined) probe.on_error = step.on_error;
  return probe;
}

/** The model of a runbook that passed every check; `file` should be absolute. */
export function buildRunbook(raw: RawRunbook, file: string, map: SourceMap): Runbook {
  const inputs: Record<string, InputSpec> = {};
  for (const [name, spec] of Object.entries(raw.inputs ?? {})) {
    const input: InputSpec = {
      type: spec.type,
      description: spec.description ?? '',
      required: spec.required ?? spec.default === undefined,
    };
    if (spec.default !== undefined) input.default = spec.default as InputValue;
    inputs[name] = input;
  }
  const conclusions: Conclusion[] = raw.conclusions.map((c) => ({
    id: c.id,
    title: c.title,
    category: c.category,
    confidence: c.confidence,
    summary: c.summary,
    explanation: c.explanation,
    actions: [...(c.actions ?? [])],
    evidence: [...(c.evidence ?? [])],
    caveats: (c.caveats ?? []).map((k) => ({ if: k.if, says: k.says })),
  }));
  const steps = raw.steps.map((step, i) => buildStep(step, i, map));
  return {
    id: raw.id,
    title: raw.title,
    description: raw.description,
    inputs,
    steps,
    conclusions,
    caveats: (raw.caveats ?? []).map((c) => ({ if: c.if, says: c.says })),
    file,
    positions: map.positions(),
  };
}
