// One BPF object's session inside a native probe's collect, under the overhead guard: load and
// attach (capture `<prefix>attach`), the window, the last reading of the maps (`<prefix>dump`)
// and what the programs cost (`<prefix>overhead`, read back by overheadOf). A replay answers
// the captures from the recording: it loads nothing, so the object and the guard stay unset
// and the window's sleeps are the replay's.
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

export class BpfSession {
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

/**
 * A native probe's session with one window: load and attach (`<prefix>attach`, as
 * BpfSession.attach), wait `ms` (less when the guard stops the programs) or run `window` on the
 * window's IO (whose sleeps end when the guard stops the programs: e.g. counters sampled
 * meanwhile), record `read`'s reading of the maps (`<prefix>dump`) given the window's length in
 * ms (from the attach to the dump, or to the guard's early detach) and how long ago the guard
 * detached them (0: attached until the dump), and close. Returns the dump record.
 */
export async function runWindowedSession(
  io: ProbeIO,
  load: () => Promise<SessionLoad>,
  window: number | ((windowIO: ProbeIO) => Promise<void>),
  read: (obj: BpfObject, windowMs: number, detachedAgoMs: number) => unknown,
  prefix = '',
): Promise<RawRecord> {
  const session = new BpfSession(io, prefix);
  try {
    await session.attach(load);
    // From the attach, not from now: the guard's start and the capture came after it, and the
    // programs counted meanwhile. A replay loads nothing and reads no window.
    const attachedAt = session.attachedAt ?? performance.now();
    if (typeof window === 'number') await session.windowIO.sleep(window);
    else await window(session.windowIO);
    return await session.finish((o) => {
      const now = performance.now();
      return read(o, (session.detachedAt ?? now) - attachedAt, session.detachedAt === undefined ? 0 : now - session.detachedAt);
    });
  } finally {
    await session.close();
  }
}

/** What runWindowedSession recorded: its attach record, its dump and what it cost. */
export function readWindowedSession<A, D>(records: RawRecord[], prefix = ''): { attach: A; dump: D; overhead: OverheadReport | null } {
  return {
    attach: JSON.parse(captureRecord(records, `${prefix}attach`).stdout) as A,
    dump: JSON.parse(captureRecord(records, `${prefix}dump`).stdout) as D,
    overhead: overheadOf(records, prefix),
  };
}
