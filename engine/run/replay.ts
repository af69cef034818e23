// Answers a run from a recorded bundle: each probe invocation gets the evidence the
// recorded run gathered for the same step, visit and alias; each question gets the
// recorded answer. Probes re-parse that evidence, so a replay exercises the parsers.
import { RunBundle } from './bundle.js';
import type { RunRecord } from './record.js';

export class ReplaySource {
  readonly record: RunRecord;
  private readonly bundle: RunBundle;

  constructor(bundleDir: string) {
    this.bundle = RunBundle.open(bundleDir);
    this.record = this.bundle.readRecord();
  }

  get dir(): string {
    return this.bundle.dir;
  }

  /** Absolute evidence folder of the recorded invocation, or undefined when it was not recorded. */
  evidenceFor(step: string, visit: number, alias: string): string | undefined {
    // A step interrupted and then resumed was recorded twice: the last attempt is the one that counted.
    const recorded = this.record.findings.filter(
      (f) => f.step === step && (f.visit ?? 1) === visit && f.alias === alias && f.evidence !== undefined,
    );
    const chosen = recorded.filter((f) => f.status !== 'interrupted').pop() ?? recorded.pop();
    return chosen?.evidence !== undefined ? this.bundle.resolve(chosen.evidence) : undefined;
  }

  answerFor(step: string, visit: number): string | undefined {
    const entry = this.record.timeline.find((t) => t.step === step && t.visit === visit && t.answer !== undefined);
    return entry?.answer;
  }
}
