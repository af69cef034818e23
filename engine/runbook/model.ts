// The in-memory shape of a validated runbook (see runbooks/README.md for the YAML).
import type { SourcePos } from '../yaml/positions.js';

export type InputType = 'string' | 'integer' | 'number' | 'boolean' | 'duration' | 'ip' | 'vm' | 'string[]';
export type InputValue = string | number | boolean | string[];

export interface InputSpec {
  type: InputType;
  description: string;
  default?: InputValue;
  required: boolean;
}

/**
 * A param value as written: a literal, or a string holding `${cel}` templates.
 * Templates are kept as written and evaluated when the step starts.
 */
export type ParamTemplate = string | number | boolean | Array<string | number | boolean>;

export interface ProbeCall {
  probe: string;
  as: string;
  params: Record<string, ParamTemplate>;
}

export interface Branch {
  /** CEL condition over inputs, findings, answers, target and host. Absent = always. */
  if?: string;
  goto: string;
  /** Plain-language reason shown in reports and guided mode. */
  why?: string;
}

export interface ProbeStep {
  kind: 'probe';
  id: string;
  title: string;
  description: string;
  /** ms */
  timeout: number;
  on_error?: string;
  probes: ProbeCall[];
  next: Branch[];
}

export interface AskChoice {
  id: string;
  label: string;
  goto: string;
}

export interface AskStep {
  kind: 'ask';
  id: string;
  title: string;
  description: string;
  question: string;
  choices: AskChoice[];
  default: string;
  /** ms; when set, an unanswered question takes the default after this long. */
  timeout?: number;
}

export type Step = ProbeStep | AskStep;

export type Confidence = 'low' | 'medium' | 'high';

/**
 * Cause categories that tell the reader nothing is wrong on this host: the verdicts an alert is
 * most likely to be closed on, so a failed probe must never lead to one.
 */
export const HEALTHY_CATEGORIES: ReadonlySet<string> = new Set(['no-host-drop', 'no-host-latency']);

/** What makes any conclusion of a runbook less certain: when `if` holds at the end of a run, `says` is listed with the verdict and its confidence drops a level. */
export interface Caveat {
  if: string;
  /** Template: why the verdict is less certain. */
  says: string;
}

export interface Conclusion {
  id: string;
  title: string;
  category: string;
  confidence: Confidence;
  /** One-line template. */
  summary: string;
  /** Markdown template. */
  explanation: string;
  /** Markdown templates. */
  actions: string[];
  /** Finding aliases that prove it. */
  evidence: string[];
  /** This conclusion's own caveats, beside the runbook's. */
  caveats: Caveat[];
}

export interface Runbook {
  id: string;
  title: string;
  description: string;
  inputs: Record<string, InputSpec>;
  /** Steps in file order; the first is where a run starts. */
  steps: Step[];
  conclusions: Conclusion[];
  caveats: Caveat[];
  /** Absolute path of the YAML file it came from. */
  file: string;
  /** JSON-pointer-like path ("/steps/0/next/1/if") → position, for runtime messages. */
  positions: Map<string, SourcePos>;
}
