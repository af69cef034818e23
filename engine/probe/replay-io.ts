// The replay driver of ProbeIO: answers each call with the next recorded observation,
// after checking it is the same observation (op, name, argv or path). Sleeps are instant.
import { isDeepStrictEqual } from 'node:util';
import { abortedError } from './live-io.js';
import type { ExecOptions, ProbeIO, RawRecord, ReadOptions } from './types.js';

/** A probe asked for something other than what was recorded. */
export class ReplayMismatchError extends Error {
  override readonly name = 'ReplayMismatchError';
}

export class ReplayIO implements ProbeIO {
  private readonly recorded: RawRecord[];
  private next = 0;
  /** A replay runs no BPF: nothing to guard. */
  readonly budget = null;

  /** `dir` names the recording in errors. */
  constructor(
    records: RawRecord[],
    private readonly dir: string,
    readonly signal: AbortSignal,
  ) {
    this.recorded = [...records].sort((a, b) => a.seq - b.seq);
  }

  exec(name: string, argv: string[], opts: ExecOptions = {}): Promise<RawRecord> {
    return this.answer({ op: 'exec', name, argv }, opts.allowFailure === true);
  }

  readFile(name: string, path: string, opts: ReadOptions = {}): Promise<RawRecord> {
    return this.answer({ op: 'read', name, path }, opts.allowFailure === true);
  }

  readFiles(name: string, paths: string[]): Promise<RawRecord> {
    return this.answer({ op: 'readfiles', name, paths }, true);
  }

  readDir(name: string, path: string, opts: ReadOptions = {}): Promise<RawRecord> {
    return this.answer({ op: 'readdir', name, path }, opts.allowFailure === true);
  }

  /** Answers with the recorded text: the session (BPF) is never run in a replay. */
  capture(name: string, _session: (signal: AbortSignal) => Promise<string>): Promise<RawRecord> {
    return this.answer({ op: 'capture', name }, false);
  }

  async sleep(_ms: number): Promise<void> {
    if (this.signal.aborted) throw abortedError(this.signal);
  }

  /** The records served so far, in order. */
  served(): RawRecord[] {
    return this.recorded.slice(0, this.next).map((r) => ({ ...r }));
  }

  /** Recorded observations the probe has not asked for (yet). */
  remaining(): RawRecord[] {
    return this.recorded.slice(this.next).map((r) => ({ ...r }));
  }

  /** Describes a record as the probe would ask for it: `exec "tc-start"`. */
  static describe(r: Pick<RawRecord, 'op' | 'name'>): string {
    return `${r.op} "${r.name}"`;
  }

  private answer(asked: Pick<RawRecord, 'op' | 'name' | 'argv' | 'path' | 'paths'>, allowFailure: boolean): Promise<RawRecord> {
    // Take the record now, before any await: concurrent calls are answered in the order made.
    if (this.signal.aborted) return Promise.reject(abortedError(this.signal));
    const rec = this.recorded[this.next];
    const mismatch = (detail: string) =>
      Promise.reject(new ReplayMismatchError(`replay mismatch in ${this.dir}: ${detail}`));
    if (!rec) return mismatch(`the recording has no more observations but the probe asked for ${ReplayIO.describe(asked)}`);
    if (rec.op !== asked.op || rec.name !== asked.name) {
      return mismatch(`expected ${ReplayIO.describe(rec)} but the probe asked for ${ReplayIO.describe(asked)}`);
    }
    if (asked.argv !== undefined && !isDeepStrictEqual(rec.argv, asked.argv)) {
      return mismatch(
        `${ReplayIO.describe(rec)} was recorded as ${JSON.stringify(rec.argv ?? [])} but the probe ran ${JSON.stringify(asked.argv)}`,
      );
    }
    if (asked.path !== undefined && rec.path !== asked.path) {
      return mismatch(`${ReplayIO.describe(rec)} was recorded reading ${rec.path ?? '(no path)'} but the probe asked for ${asked.path}`);
    }
    if (asked.paths !== undefined && !isDeepStrictEqual(rec.paths, asked.paths)) {
      return mismatch(`${ReplayIO.describe(rec)} was recorded reading other files than the probe asked for`);
    }
    this.next++;
    if (rec.error !== undefined && !allowFailure) return Promise.reject(new Error(rec.error));
    return Promise.resolve({ ...rec });
  }
}
