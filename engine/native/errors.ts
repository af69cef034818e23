// Errors from the addon: errno-based, carrying what libbpf printed during the failed call.

export class BpfError extends Error {
  /** errno name (`EACCES`, `ENOENT`) or an addon code (`ECLOSED`). */
  readonly code: string;
  /** Positive errno, when the failure came from a system call. */
  readonly errno?: number;
  /** libbpf's output during the failed call ('' when it printed nothing). */
  readonly log: string;

  constructor(message: string, code: string, errno: number | undefined, log: string) {
    super(message);
    this.name = 'BpfError';
    this.code = code;
    this.errno = errno;
    this.log = log;
  }

  /** The kernel verifier's log of the program that failed to load, or null. */
  get verifierLog(): string | null {
    return verifierLog(this.log);
  }
}

/**
 * The verifier output libbpf prints between `-- BEGIN PROG LOAD LOG --` and
 * `-- END PROG LOAD LOG --` (the last such block), or null when there is none.
 */
export function verifierLog(log: string): string | null {
  const begin = log.lastIndexOf('-- BEGIN PROG LOAD LOG --');
  if (begin < 0) return null;
  const start = log.indexOf('\n', begin) + 1;
  const end = log.indexOf('-- END PROG LOAD LOG --', start);
  return log.slice(start, end < 0 ? undefined : end).trimEnd();
}

/** Runs an addon call, turning its errors into BpfError (TypeErrors pass through as they are). */
export function nativeCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toBpfError(e);
  }
}

export function toBpfError(e: unknown): unknown {
  if (!(e instanceof Error) || e instanceof BpfError || e instanceof TypeError) return e;
  const x = e as Error & { code?: unknown; errno?: unknown; log?: unknown };
  if (typeof x.code !== 'string') return e;
  return new BpfError(e.message, x.code, typeof x.errno === 'number' ? x.errno : undefined, typeof x.log === 'string' ? x.log : '');
}
