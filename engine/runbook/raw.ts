// The runbook as written in YAML, once it matches the schema (schema.ts): the
// input of the meaning checks (validate.ts) and of the model builder (build.ts).
import type { InputType, ParamTemplate } from './model.js';
import { toPointer } from '../yaml/positions.js';

export interface RawInput {
  type: InputType;
  default?: unknown;
  description?: string;
  required?: boolean;
}

export interface RawProbeCall {
  probe: string;
  as?: string;
  params?: Record<string, ParamTemplate>;
}

export interface RawBranch {
  if?: string;
  goto: string;
  why?: string;
}

export interface RawProbeStep {
  id: string;
  title: string;
  description?: string;
  timeout?: string;
  on_error?: string;
  probe?: string;
  as?: string;
  params?: Record<string, ParamTemplate>;
  probes?: RawProbeCall[];
  next: RawBranch[];
}

export interface RawChoice {
  id: string;
  label: string;
  goto: string;
}

export interface RawAskStep {
  id: string;
  title: string;
  description?: string;
  ask: { question: string; choices: RawChoice[]; default: string; timeout?: string };
}

export type RawStep = RawProbeStep | RawAskStep;

export interface RawConclusion {
  id: string;
  title: string;
  category: string;
  confidence: 'low' | 'medium' | 'high';
  summary: string;
  explanation: string;
  actions?: string[];
  evidence?: string[];
  caveats?: Array<{ if: string; says: string }>;
}

export interface RawRunbook {
  id: string;
  title: string;
  description: string;
  inputs?: Record<string, RawInput>;
  steps: RawStep[];
  conclusions: RawConclusion[];
  caveats?: Array<{ if: string; says: string }>;
}

export function isAskStep(step: RawStep): step is RawAskStep {
  return 'ask' in step;
}

/** The finding name of a probe call without `as:`: its id with `.` and `-` turned into `_`. */
export function defaultAlias(probe: string): string {
  return probe.replace(/[.-]/g, '_');
}

/** One probe call of a step, with the pointer its keys live under in the YAML. */
export interface LocatedCall {
  call: RawProbeCall;
  /** `/steps/0/probes/1`, or `/steps/0` for the `probe:` shorthand. */
  pointer: string;
  /** The pointer the model gives it: always `/steps/<i>/probes/<j>`. */
  modelPointer: string;
  alias: string;
}

/** A probe step's calls, the `probe:` shorthand read as a one-entry `probes:` list. */
export function probeCalls(step: RawProbeStep, index: number): LocatedCall[] {
  const base = toPointer(['steps', index]);
  if (step.probes) {
    return step.probes.map((call, j) => ({
      call,
      pointer: `${base}/probes/${j}`,
      modelPointer: `${base}/probes/${j}`,
      alias: call.as ?? defaultAlias(call.probe),
    }));
  }
  if (step.probe === undefined) return [];
  const call: RawProbeCall = { probe: step.probe, as: step.as, params: step.params };
  return [{ call, pointer: base, modelPointer: `${base}/probes/0`, alias: step.as ?? defaultAlias(step.probe) }];
}
