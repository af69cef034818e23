// The live driver of ProbeIO: runs commands (argument arrays, never a shell) and
// reads files on this host, and records every observation as a RawRecord, in call order.
import type { OverheadBudget } from './budget.js';
import { constants as osConstants } from 'node:os';
import { readFile, readdir } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { runCommand } from '../exec.js';
import { formatMs } from '../duration.js';
import { formatFileReadings } from './file-readings.js';
import type { ExecOptions, FileReading, ProbeIO, RawRecord, ReadOptions } from './types.js';

/** Output beyond this is cut (and the command fails): probes read counters, not dumps. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
/** How long a command may ignore SIGTERM after a timeout or abort before SIGKILL. */
const KILL_GRACE_MS = 2000;

/** A ProbeIO that observes this host; `records()` is what it saw, failures included. */
export class LiveIO implements ProbeIO {
  private readonly done: RawRecord[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  private nextSeq = 1;

  constructor(
    readonly signal: AbortSignal,
    readonly budget: OverheadBudget | null = null,
  ) {}

  exec(name: string, argv: string[], opts: ExecOptions = {}): Promise<RawRecord> {
    if (argv.length === 0 || argv[0] === '') return Promise.reject(new Error(`exec "${name}": empty argv`));
    return this.observe(name, { op: 'exec', argv: [...argv] }, opts.allowFailure === true, async (rec) => {
      const [file, ...args] = argv as [string, ...string[]];
      const result = await runCommand(file, args, {
        maxBuffer: MAX_OUTPUT_BYTES,
        signal: this.signal,
        killGraceMs: KILL_GRACE_MS,
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      });
      rec.stdout = result.stdout;
      rec.stderr = result.stderr;
      const command = `command "${argv.join(' ')}"`;
      if (!result.failed) {
        rec.exitCode = 0;
        return;
      }
      if (result.startError !== undefined || (result.overflowed && result.exitCode === null && result.signal === null)) {
        // It never ran (not found, not executable) or its output overflowed.
        rec.exitCode = result.overflowed ? 1 : 127;
        rec.error = result.overflowed ? `${command} printed more than ${MAX_OUTPUT_BYTES} bytes` : `${command} could not start: ${firstLine(result.startError ?? 'unknown error')}`;
        return;
      }
      rec.exitCode = result.exitCode ?? 128 + signalNumber(result.signal ?? undefined);
      if (result.overflowed) rec.error = `${command} printed more than ${MAX_OUTPUT_BYTES} bytes`;
      else if (result.timedOut) rec.error = `${command} timed out after ${formatMs(opts.timeoutMs ?? 0)}`;
      else if (result.canceled) rec.error = `${command} was stopped: the probe was aborted`;
      else if (result.exitCode === null) rec.error = `${command} was killed by ${result.signal}`;
      else {
        const why = firstLine(rec.stderr) || firstLine(rec.stdout);
        rec.error = `${command} exited with code ${result.exitCode}${why ? `: ${why}` : ''}`;
      }
    });
  }

  readFile(name: string, path: string, opts: ReadOptions = {}): Promise<RawRecord> {
    return this.observe(name, { op: 'read', path }, opts.allowFailure === true, async (rec) => {
      try {
        rec.stdout = await readFile(path, 'utf8');
      } catch (err) {
        failRead(rec, path, err);
      }
    });
  }

  readFiles(name: string, paths: string[]): Promise<RawRecord> {
    return this.observe(name, { op: 'readfiles', paths: [...paths] }, true, async (rec) => {
      const readings = await Promise.all(
        paths.map(async (path): Promise<FileReading> => {
          try {
            return { path, text: await readFile(path, 'utf8') };
          } catch (err) {
            const failed = { stdout: '', stderr: '', exitCode: 0 } as RawRecord;
            failRead(failed, path, err);
            return { path, errno: failed.exitCode, error: failed.error! };
          }
        }),
      );
      rec.stdout = formatFileReadings(readings);
    });
  }

  readDir(name: string, path: string, opts: ReadOptions = {}): Promise<RawRecord> {
    return this.observe(name, { op: 'readdir', path }, opts.allowFailure === true, async (rec) => {
      try {
        const entries = (await readdir(path)).sort();
        rec.stdout = entries.map((e) => `${e}\n`).join('');
      } catch (err) {
        failRead(rec, path, err);
      }
    });
  }

  capture(name: string, session: (signal: AbortSignal) => Promise<string>): Promise<RawRecord> {
    return this.observe(name, { op: 'capture' }, false, async (rec) => {
      rec.stdout = await session(this.signal);
    });
  }

  async sleep(ms: number, opts: { until?: AbortSignal } = {}): Promise<void> {
    this.throwIfAborted();
    if (opts.until?.aborted) return;
    const signal = opts.until ? AbortSignal.any([this.signal, opts.until]) : this.signal;
    try {
      await delay(Math.max(0, ms), undefined, { signal });
    } catch {
      if (this.signal.aborted) throw abortedError(this.signal);
    }
  }

  /** Every observation made so far, in call order, failed ones included. */
  records(): RawRecord[] {
    return [...this.done].sort((a, b) => a.seq - b.seq).map((r) => ({ ...r }));
  }

  /** Resolves once no observation is in flight (after an abort, killed commands still report). */
  async settled(maxWaitMs = KILL_GRACE_MS + 1000): Promise<void> {
    if (this.pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, maxWaitMs)));
    try {
      await Promise.race([Promise.allSettled([...this.pending]), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private observe(
    name: string,
    what: Pick<RawRecord, 'op' | 'argv' | 'path' | 'paths'>,
    allowFailure: boolean,
    run: (rec: RawRecord) => Promise<void>,
  ): Promise<RawRecord> {
    if (this.signal.aborted) return Promise.reject(abortedError(this.signal));
    const rec: RawRecord = {
      seq: this.nextSeq++,
      op: what.op,
      name,
      ...(what.argv ? { argv: what.argv } : {}),
      ...(what.path !== undefined ? { path: what.path } : {}),
      ...(what.paths !== undefined ? { paths: what.paths } : {}),
      at: Date.now(),
      durationMs: 0,
      stdout: '',
      stderr: '',
      exitCode: 0,
    };
    const started = performance.now();
    const promise = (async () => {
      try {
        await run(rec);
      } catch (err) {
        rec.exitCode ||= 1;
        rec.error ??= `${what.op} "${name}" failed: ${firstLine(err instanceof Error ? err.message : String(err))}`;
      } finally {
        rec.durationMs = Math.round((performance.now() - started) * 1000) / 1000;
        this.done.push(rec);
      }
      if (rec.error !== undefined && !allowFailure) throw new Error(rec.error);
      return { ...rec };
    })();
    this.pending.add(promise);
    promise.then(
      () => this.pending.delete(promise),
      () => this.pending.delete(promise),
    );
    return promise;
  }

  private throwIfAborted(): void {
    if (this.signal.aborted) throw abortedError(this.signal);
  }
}

/** The error IO calls throw once the probe is aborted. */
export function abortedError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'aborted';
  return new Error(`probe aborted: ${firstLine(why)}`, { cause: reason });
}

function failRead(rec: RawRecord, path: string, err: unknown): void {
  const e = err as NodeJS.ErrnoException;
  const code = e.code ?? 'EIO';
  const errno = (osConstants.errno as Record<string, number>)[code];
  rec.exitCode = errno ?? 1;
  // Node says "ENOENT: no such file or directory, open '/x'": the path is said once, first.
  rec.stderr = firstLine(e.message ?? String(err)).replace(/, \w+ '.*'$/, '');
  rec.error = `cannot read ${path}: ${rec.stderr.startsWith(code) ? rec.stderr : `${code}: ${rec.stderr}`}`;
}

function signalNumber(signal: string | undefined): number {
  if (!signal) return 0;
  return (osConstants.signals as Record<string, number>)[signal] ?? 0;
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  const trimmed = line.trim();
  return trimmed.length > 300 ? `${trimmed.slice(0, 297)}...` : trimmed;
}
