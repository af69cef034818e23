// run.json: everything a run gathered, versioned so reports and replays can read
// bundles written by older versions.
import type { BranchKind } from '../runbook/run-model.js';
import type { Conclusion } from '../runbook/model.js';
import type { Finding } from '../probe/types.js';

export const RUN_SCHEMA = 'ebpfnet.run/1';

export type RunStatus = 'running' | 'completed' | 'interrupted' | 'failed';

export interface TimelineEntry {
  step: string;
  visit: number;
  title: string;
  kind: 'probe' | 'ask';
  startedAt: string;
  endedAt?: string;
  /** done: left through a branch; interrupted: the run stopped inside it. */
  status: 'running' | 'done' | 'interrupted';
  probes: Array<{ alias: string; probe: string }>;
  /** The choice at an ask step. */
  answer?: string;
  branch?: { kind: BranchKind; index: number | string; goto: string; condition?: string; why?: string };
  /** Conditions that could not be evaluated (counted as false). */
  conditionErrors?: string[];
  /** Set on the entry that continued a step after `--resume`. */
  resumed?: boolean;
}

/** A conclusion with its templates rendered, and the findings that prove it. */
export interface ConclusionRecord extends Omit<Conclusion, 'evidence' | 'caveats'> {
  /** The runbook's confidence when caveats lowered it (`confidence` is what holds). */
  declaredConfidence?: Conclusion['confidence'];
  /** Why the verdict is less certain: conditions that failed, evidence not gathered, runbook caveats (absent in bundles of older versions). */
  caveats?: string[];
  evidence: Array<{ alias: string; probe: string; step: string; status: string; summary: string }>;
}

export interface RunRecord {
  schema: typeof RUN_SCHEMA;
  id: string;
  status: RunStatus;
  mode: 'live' | 'replay';
  /** The bundle a replay read its evidence from. */
  replayOf?: string;
  runbook: {
    id: string;
    title: string;
    file: string;
    sha256: string;
    /** The runbook's text as the run read it, kept in the bundle under this name (absent in bundles of older versions). */
    copy?: string;
  };
  inputs: Record<string, unknown>;
  /** The target as the verdict saw it, with what findings taught the run (learned addresses). */
  target: Record<string, unknown>;
  /** The target as resolved before the first step, when findings changed it since: replays start from it. */
  initialTarget?: Record<string, unknown>;
  host: Record<string, unknown>;
  tool: { name: 'ebpfnet'; version: string; node: string };
  /** The command that reproduces this run. */
  command: string;
  startedAt: string;
  endedAt?: string;
  timeline: TimelineEntry[];
  /** Every finding in the order it arrived, including repeated and failed probes. */
  findings: Finding[];
  conclusion: ConclusionRecord | null;
  interruptions: Array<{ at: string; reason: string; step?: string }>;
  resumes: Array<{ at: string }>;
  /** Run-level failures (not probe failures, which are findings). */
  errors: string[];
}
