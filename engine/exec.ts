// Runs a program with an argument array (never a shell) and collects its output: Node's own
// child_process with what every caller here needs (a timeout, an abort signal, an output cap,
// a grace period before SIGKILL, LC_ALL=C). It replaced execa on the CLI's start path, whose
// import alone took 160 ms of every `ebpfnet diagnose`.
import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Kill it (SIGTERM, then SIGKILL after `killGraceMs`) after this long. */
  timeoutMs?: number;
  /** Abort kills it the same way. */
  signal?: AbortSignal;
  /** Output past this many bytes (stdout and stderr together) kills it; default 64 MiB. */
  maxBuffer?: number;
  /** Text written to its stdin; otherwise stdin is /dev/null. */
  input?: string;
  /** Added to the environment (LC_ALL=C always is). */
  env?: Record<string, string>;
  killGraceMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** null when it was killed by a signal or never started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** It did not exit 0 (or never started). */
  failed: boolean;
  timedOut: boolean;
  canceled: boolean;
  overflowed: boolean;
  /** Why it could not start (not found, not executable). */
  startError?: string;
}

const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024;

/** Never rejects: every outcome is in the result. */
export function runCommand(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env, LC_ALL: 'C' },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let timedOut = false;
    let canceled = false;
    let overflowed = false;
    let startError: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const max = opts.maxBuffer ?? DEFAULT_MAX_BUFFER;
    const kill = () => {
      if (child.exitCode !== null || child.signalCode !== null || killTimer) return;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), opts.killGraceMs ?? 2000);
      killTimer.unref();
    };
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        overflowed = true;
        kill();
        return;
      }
      into.push(chunk);
    };
    child.stdout!.on('data', collect(out));
    child.stderr!.on('data', collect(err));
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => ((timedOut = true), kill()), opts.timeoutMs) : undefined;
    const onAbort = () => ((canceled = true), kill());
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => undefined); // a program that does not read its stdin
      child.stdin!.end(opts.input);
    }
    child.on('error', (e) => (startError = e.message));
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        exitCode: startError !== undefined ? null : code,
        signal,
        failed: code !== 0 || startError !== undefined || timedOut || canceled || overflowed,
        timedOut,
        canceled,
        overflowed,
        ...(startError !== undefined ? { startError } : {}),
      });
    });
  });
}
