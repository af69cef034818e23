// The run model: the data a run of a runbook carries from step to step (inputs, target, the
// latest finding of each alias, answers, the decision trail) and what conditions and templates
// see of it. The compiled machine keeps it as its context; the runner, run.json and the
// report read it.
import type { Finding, Params } from '../probe/types.js';
import { unchangingForCel, type Scope } from './expressions.js';
import type { ProbeCall } from './model.js';

/** The machine's context; plain JSON so it persists with the snapshot. Conditions see its Scope part. */
export interface RunContext extends Omit<Scope, 'findings'> {
  /** Latest finding per alias. */
  findings: Record<string, Finding>;
  /** Every branch taken, in order: the decision path. */
  trail: TrailEntry[];
  /** How many times each step has been entered (names evidence folders). */
  visits: Record<string, number>;
}

export type BranchKind = 'next' | 'on_error' | 'timeout' | 'choice';

export interface TrailEntry {
  step: string;
  visit: number;
  kind: BranchKind;
  /** Index in `next`, or the choice id. */
  index: number | string;
  goto: string;
  condition?: string;
  why?: string;
}

export interface RunInput {
  inputs: Record<string, unknown>;
  target: Record<string, unknown>;
  host: Record<string, unknown>;
}

/** What conditions see of a finding: its data plus status, summary, severity and reason. */
export function findingView(finding: Finding): Record<string, unknown> {
  let view = views.get(finding);
  if (!view) {
    view = unchangingForCel({ ...finding.data, status: finding.status, summary: finding.summary, severity: finding.severity, reason: finding.reason ?? '' });
    views.set(finding, view);
  }
  return view;
}

/** One view per finding (findings are not changed once recorded), its CEL form made once (expressions.ts). */
const views = new WeakMap<Finding, Record<string, unknown>>();

/** What conditions and templates see of a run: inputs, findings (by alias), answers, target, host. */
export function scopeOf(context: RunContext): Scope {
  const findings: Record<string, unknown> = {};
  for (const [alias, finding] of Object.entries(context.findings)) findings[alias] = findingView(finding);
  return { inputs: context.inputs, findings, answers: context.answers, target: context.target, host: context.host };
}

/** A finding for a probe that never produced one (it failed before running, or its step timed out). */
export function failedFinding(
  step: string,
  visit: number,
  call: ProbeCall,
  status: Finding['status'],
  reason: string,
  params: Params = {},
): Finding {
  const now = new Date().toISOString();
  return {
    probe: call.probe,
    alias: call.as,
    step,
    visit,
    status,
    summary: `${status}: ${reason}`,
    severity: 'warning',
    reason,
    data: {},
    params,
    charts: [],
    tables: [],
    raw: [],
    driver: 'command',
    startedAt: now,
    endedAt: now,
    durationMs: 0,
  };
}
