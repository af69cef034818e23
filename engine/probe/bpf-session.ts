// The one way a native probe runs a BPF object (runBpfSession), under the overhead guard: load
// and attach (capture `<prefix>attach`), the window, the last reading of the maps
// (`<prefix>dump`) and what the programs cost (`<prefix>overhead`, read back by overheadOf).
// Its variants are options: a fixed window or work run during it (with snapshots of the maps),
// programs that may not all attach (kprobes: probes/lib/kprobe-session.ts), a detach before the
// last reading. A replay answers the captures from the recording: it loads nothing, so the
// object and the guard stay unset and the window's sleeps are the replay's.
import { loadedRecord, type PlanLoaded } from '../native/attach-plan.js';
import { installDetachGuard } from '../native/guard.js';
import type { BpfObject } from '../native/object.js';
import { programRunStats } from '../native/stats.js';
import { guardPrograms, overheadOf, stoppableIO, totalsOf, type GuardSession, type OverheadReport } from './overhead.js';
import type { ProbeIO, RawRecord } from './types.js';

export interface SessionGuardOptions {
  /**
   * Detach the programs as soon as the guard stops them (default): counting ends there, the maps
   * stay readable, and `detachedAt` says when. Off: only the window ends early.
   */
  detachOnAbort?: boolean;
}

/** What a session's `load` returns; `attachedAt` is performance.now() when the programs attached. */
export interface SessionLoad {
  obj?: BpfObject;
  record: unknown;
  attachedAt?: number;
}

/** The load of an object an attach plan loads (engine/native/attach-plan.ts), recorded as loadedRecord says. */
export function planLoad<M extends string>(load: () => Promise<PlanLoaded<M>>): () => Promise<SessionLoad> {
  return async () => {
    const loaded = await load();
    return { obj: loaded.obj, record: loadedRecord(loaded) };
  };
}

/** The steps of a session, in the order runBpfSession takes them. */
class BpfSession {
  /** The loaded object, until `finish` or `close` closes it. */
  obj: BpfObject | undefined;
  /** When the guard detached the programs for being over budget (performance.now()). */
  detachedAt: number | undefined;
  /** When the programs began counting (performance.now()): as `load` said, else when it returned. */
  attachedAt: number | undefined;
  private guard: GuardSession | undefined;

  /** `prefix` names the captures (`kernel-` → `kernel-attach`, `kernel-dump`...). */
  constructor(
    private readonly io: ProbeIO,
    readonly prefix = '',
  ) {}

  /**
   * Loads and attaches in the capture `<prefix>attach`: `load` returns the object (none when
   * nothing attached), what to record and, when work followed the attach inside it, when the
   * programs attached. When the IO has a budget, the object's programs are guarded from then on.
   */
  async attach(load: () => Promise<SessionLoad>, opts: SessionGuardOptions = {}): Promise<RawRecord> {
    return this.io.capture(`${this.prefix}attach`, async () => {
      installDetachGuard();
      const { obj, record, attachedAt } = await load();
      this.attachedAt = attachedAt ?? performance.now();
      this.obj = obj;
      if (obj) await this.startGuard(obj, opts);
      return JSON.stringify(record);
    });
  }

  private async startGuard(obj: BpfObject, opts: SessionGuardOptions): Promise<void> {
    if (!this.io.budget) return;
    const fds = obj.programs().flatMap((p) => (p.info.fd === null ? [] : [p.info.fd]));
    this.guard = await guardPrograms(this.io.budget, async () => totalsOf(await programRunStats('self', fds)));
    if (opts.detachOnAbort === false) return;
    // Over budget: detach at once (the maps stay readable) and end the window early.
    this.guard.signal.addEventListener('abort', () => {
      this.detachedAt = performance.now();
      this.obj?.detach();
    });
  }

  /** The IO to wait on during the window: its sleeps end early once the guard stops the programs. */
  get windowIO(): ProbeIO {
    return stoppableIO(this.io, this.guard?.signal);
  }

  /**
   * Ends the session: stops the guard (before the programs close: their statistics die with
   * them), records `read`'s last reading of the maps as `<prefix>dump` and closes the object,
   * then records the guard's report (null without a budget) as `<prefix>overhead`.
   */
  async finish(read: (obj: BpfObject) => unknown): Promise<RawRecord> {
    const report: OverheadReport | null = this.guard ? await this.guard.stop() : null;
    this.guard = undefined;
    const rec = await this.io.capture(`${this.prefix}dump`, async () => {
      const dump = await read(this.obj!);
      this.obj!.close();
      this.obj = undefined;
      return JSON.stringify(dump);
    });
    await this.io.capture(`${this.prefix}overhead`, async () => JSON.stringify(report));
    return rec;
  }

  /** Closes what is still open (after an error): the object, then the guard. */
  async close(): Promise<void> {
    this.obj?.close();
    this.obj = undefined;
    await this.guard?.stop().catch(() => undefined);
  }
}

/** The capture record `name` of a session; throws when it is missing or failed. */
export function captureRecord(records: RawRecord[], name: string): RawRecord {
  const rec = records.find((r) => r.op === 'capture' && r.name === name);
  if (!rec) throw new Error(`no ${name} record in the evidence`);
  if (rec.error !== undefined) throw new Error(rec.error);
  return rec;
}

/** How long the programs counted, as `read` is told. */
export interface SessionWindow {
  /** From the attach to now, or to the guard's early detach, ms. */
  ms: number;
  /** How long ago the guard detached the programs (0: attached until now). */
  detachedAgoMs: number;
}

/**
 * What runs while the programs count, on the window's IO (its sleeps end early once the guard
 * stops the programs). `snapshot(name)` records `read`'s reading as it is now (cumulative since
 * the attach) as the capture `<prefix><name>`, without detaching.
 */
export type SessionWork = (windowIO: ProbeIO, snapshot: (name: string) => Promise<RawRecord>) => Promise<void>;

export interface BpfSessionOptions extends SessionGuardOptions {
  /** Names the captures: `kernel-` → `kernel-attach`, `kernel-dump`, `kernel-overhead`. */
  prefix?: string;
  /**
   * Loads and attaches, in the capture `<prefix>attach`: the object (none when nothing
   * attached), what to record and, when work followed the attach inside it, when the programs
   * attached. The IO's budget guards the object's programs from then on.
   */
  load: () => Promise<SessionLoad>;
  /**
   * Whether the recorded attach has programs that count (default: always). When it has none
   * (kprobes on a kernel without them) the window still runs, but no maps are read: no dump.
   */
  attached?: (record: unknown) => boolean;
  /** The window: this many ms, or work to run meanwhile (the window ends when it returns). */
  window: number | SessionWork;
  /** Reads the maps at the end (`<prefix>dump`) and for each snapshot, given the window so far. */
  read: (obj: BpfObject, window: SessionWindow) => unknown;
  /** Detach the programs before the last reading: one consistent picture, nothing counts meanwhile. */
  detachToRead?: boolean;
}

/**
 * A native probe's BPF session: load and attach (`<prefix>attach`), the window, the last
 * reading of the maps (`<prefix>dump`) and what the programs cost (`<prefix>overhead`), the
 * object closed whatever happens. Returns the dump record; null when nothing attached.
 */
export async function runBpfSession(io: ProbeIO, opts: BpfSessionOptions & { attached?: undefined }): Promise<RawRecord>;
export async function runBpfSession(io: ProbeIO, opts: BpfSessionOptions): Promise<RawRecord | null>;
export async function runBpfSession(io: ProbeIO, opts: BpfSessionOptions): Promise<RawRecord | null> {
  const session = new BpfSession(io, opts.prefix);
  try {
    const rec = await session.attach(opts.load, opts);
    const attached = opts.attached?.(JSON.parse(rec.stdout)) ?? true;
    // From the attach, not from now: the guard's start and the capture came after it, and the
    // programs counted meanwhile. A replay loads nothing and reads no window.
    const attachedAt = session.attachedAt ?? performance.now();
    const windowSoFar = (): SessionWindow => {
      const now = performance.now();
      return { ms: (session.detachedAt ?? now) - attachedAt, detachedAgoMs: session.detachedAt === undefined ? 0 : now - session.detachedAt };
    };
    const snapshot = (name: string) => io.capture(`${session.prefix}${name}`, async () => JSON.stringify(await opts.read(session.obj!, windowSoFar())));
    if (typeof opts.window === 'number') await session.windowIO.sleep(opts.window);
    else await opts.window(session.windowIO, snapshot);
    if (!attached) return null;
    return await session.finish((o) => {
      const window = windowSoFar();
      if (opts.detachToRead) o.detach();
      return opts.read(o, window);
    });
  } finally {
    await session.close();
  }
}

/** What runBpfSession recorded: its attach record, its dump and what it cost. */
export function readBpfSession<A, D>(records: RawRecord[], prefix = ''): { attach: A; dump: D; overhead: OverheadReport | null } {
  return {
    attach: JSON.parse(captureRecord(records, `${prefix}attach`).stdout) as A,
    dump: JSON.parse(captureRecord(records, `${prefix}dump`).stdout) as D,
    overhead: overheadOf(records, prefix),
  };
}
