// The overhead guard: while a probe's BPF programs run, the kernel's run statistics say how
// much CPU they take and how often they fire. A probe over its budget for a sustained moment
// is stopped early; it keeps what it gathered and says why it stopped.
import { formatMs } from '../duration.js';
import type { OverheadBudget } from './budget.js';
import type { ProbeIO, RawRecord, TableSpec } from './types.js';

// The budget is the guard's input: its callers (probes among them) take the type from here.
export type { OverheadBudget } from './budget.js';

export interface RunTotals {
  runCnt: number;
  runTimeNs: number;
}

export interface OverheadReport {
  budget: OverheadBudget;
  /** How run statistics were counted (`BPF_ENABLE_STATS`...), or `unavailable`. */
  stats: string;
  windowMs: number;
  runCnt: number;
  runTimeNs: number;
  /** Average share of one CPU over the window. */
  cpu: number;
  /** Highest share of one CPU over one sampling interval. */
  peakCpu: number;
  eventsPerSec: number;
  peakEventsPerSec: number;
  /** Average cost of one program run, ns. */
  nsPerEvent: number | null;
  /** Set when the guard stopped the probe: "overhead budget exceeded at 4.1% CPU (budget 2%)". */
  stopped?: string;
}

export interface GuardOptions {
  /** How often the statistics are read. */
  intervalMs?: number;
  /** Consecutive intervals over budget before the probe is stopped (a spike is tolerated). */
  sustain?: number;
  /** How statistics are counted, for the report. */
  stats?: string;
}

const pct = (share: number) => `${share < 0.001 ? +(share * 100).toPrecision(2) : (share * 100).toFixed(share < 0.1 ? 1 : 0)}%`;
const rate = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : n.toFixed(0));

/** Why `sample` is over `budget`, or null when it is within. */
export function overBudget(sample: { cpu: number; eventsPerSec: number }, budget: OverheadBudget): string | null {
  if (sample.cpu > budget.cpu) return `overhead budget exceeded at ${pct(sample.cpu)} CPU (budget ${pct(budget.cpu)})`;
  if (sample.eventsPerSec > budget.eventsPerSec) {
    return `overhead budget exceeded at ${rate(sample.eventsPerSec)} events/s (budget ${rate(budget.eventsPerSec)}/s)`;
  }
  return null;
}

export class OverheadGuard {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = performance.now();
  private last: { at: number; totals: RunTotals } | undefined;
  private first: RunTotals | undefined;
  private peakCpu = 0;
  private peakEvents = 0;
  private overCount = 0;
  private reading: Promise<void> = Promise.resolve();
  private stopped?: string;

  /** Aborts when the probe goes over budget; its reason is the one-line why. */
  readonly signal = this.controller.signal;

  constructor(
    private readonly read: () => Promise<RunTotals>,
    readonly budget: OverheadBudget,
    private readonly opts: GuardOptions = {},
  ) {
    this.reading = this.sample();
    this.timer = setInterval(() => (this.reading = this.reading.then(() => this.sample())), opts.intervalMs ?? 250);
  }

  private async sample(): Promise<void> {
    let totals: RunTotals;
    try {
      totals = await this.read();
    } catch {
      return; // a program gone between reads: the next read tells
    }
    const at = performance.now();
    // Counters only grow: a smaller total means a program went away between reads.
    if (this.last && totals.runCnt < this.last.totals.runCnt) return;
    this.first ??= totals;
    if (this.last && at > this.last.at) {
      const secs = (at - this.last.at) / 1000;
      const cpu = (totals.runTimeNs - this.last.totals.runTimeNs) / 1e9 / secs;
      const eventsPerSec = (totals.runCnt - this.last.totals.runCnt) / secs;
      this.peakCpu = Math.max(this.peakCpu, cpu);
      this.peakEvents = Math.max(this.peakEvents, eventsPerSec);
      const why = overBudget({ cpu, eventsPerSec }, this.budget);
      this.overCount = why ? this.overCount + 1 : 0;
      if (why && this.overCount >= (this.opts.sustain ?? 2) && !this.stopped) {
        this.stopped = `${why} after ${formatMs(at - this.startedAt)}`;
        this.controller.abort(new Error(`stopped: ${this.stopped}`));
      }
    }
    this.last = { at, totals };
  }

  /** Stops sampling (after one last read) and reports what the programs cost. */
  async stop(): Promise<OverheadReport> {
    clearInterval(this.timer);
    await this.reading;
    await this.sample();
    const windowMs = (this.last?.at ?? this.startedAt) - this.startedAt;
    const runCnt = (this.last?.totals.runCnt ?? 0) - (this.first?.runCnt ?? 0);
    const runTimeNs = (this.last?.totals.runTimeNs ?? 0) - (this.first?.runTimeNs ?? 0);
    const secs = windowMs / 1000;
    return {
      budget: this.budget,
      stats: this.opts.stats ?? 'BPF_ENABLE_STATS',
      windowMs: Math.round(windowMs),
      runCnt,
      runTimeNs,
      cpu: secs > 0 ? runTimeNs / 1e9 / secs : 0,
      peakCpu: this.peakCpu,
      eventsPerSec: secs > 0 ? runCnt / secs : 0,
      peakEventsPerSec: this.peakEvents,
      nsPerEvent: runCnt > 0 ? runTimeNs / runCnt : null,
      ...(this.stopped ? { stopped: this.stopped } : {}),
    };
  }
}

/** The budget in force: the probe's own, with the user's `--budget` on top. */
export function effectiveBudget(declared: OverheadBudget, override?: Partial<OverheadBudget>): OverheadBudget {
  return { cpu: override?.cpu ?? declared.cpu, eventsPerSec: override?.eventsPerSec ?? declared.eventsPerSec };
}

/**
 * Parses `--budget`: `2%` (CPU), `cpu=2%,events=100k`, `events=1M`. CPU also takes a share
 * (`0.02`); events take k/M suffixes.
 */
export function parseBudget(text: string): Partial<OverheadBudget> {
  const out: Partial<OverheadBudget> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [key, value] = part.includes('=') ? (part.split('=', 2) as [string, string]) : ['cpu', part];
    if (key === 'cpu') {
      const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(value.trim());
      const share = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
      if (!(share > 0 && share <= 1)) throw new Error(`bad --budget cpu "${value}": give a share of one CPU such as 2% or 0.02`);
      out.cpu = share;
    } else if (key === 'events') {
      const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(value.trim());
      const n = m ? Number(m[1]) * ({ k: 1e3, m: 1e6 }[m[2]!.toLowerCase()] ?? 1) : NaN;
      if (!(n > 0)) throw new Error(`bad --budget events "${value}": give events per second such as 100k or 2M`);
      out.eventsPerSec = n;
    } else {
      throw new Error(`bad --budget "${part}": use cpu=<share>% and/or events=<per second>, e.g. cpu=5%,events=200k`);
    }
  }
  return out;
}

/** A guard that also turns the kernel's run statistics on, and off again when it stops. */
export interface GuardSession {
  /** Aborts when the probe goes over budget. */
  signal: AbortSignal;
  stop(): Promise<OverheadReport>;
}

/**
 * Guards the programs `read` sums up. When statistics cannot be turned on the session never
 * stops the probe, and its report says `stats: unavailable (why)`.
 */
export async function guardPrograms(budget: OverheadBudget, read: () => Promise<RunTotals>, opts: GuardOptions = {}): Promise<GuardSession> {
  const { enableRunStats } = await import('../native/stats.js');
  const stats = await enableRunStats();
  const label = stats.how === 'unavailable' ? `unavailable (${stats.why})` : stats.how;
  const guard = new OverheadGuard(stats.how === 'unavailable' ? async () => ({ runCnt: 0, runTimeNs: 0 }) : read, budget, { ...opts, stats: label });
  return {
    signal: guard.signal,
    stop: async () => {
      try {
        return await guard.stop();
      } finally {
        await stats.close();
      }
    },
  };
}

/** Sums the run statistics of programs. */
export function totalsOf(list: Array<{ runCnt: number; runTimeNs: number }>): RunTotals {
  return list.reduce((t, p) => ({ runCnt: t.runCnt + p.runCnt, runTimeNs: t.runTimeNs + p.runTimeNs }), { runCnt: 0, runTimeNs: 0 });
}

/**
 * The same IO, except that its sleeps end early once `stop` aborts: a probe stopped by the
 * guard still takes its closing readings (end counters, the last dump) at once. A replay makes
 * the same calls in the same order, so it replays a stopped run as it happened.
 */
export function stoppableIO(io: ProbeIO, stop: AbortSignal | undefined): ProbeIO {
  if (!stop) return io;
  return {
    exec: (name, argv, o) => io.exec(name, argv, o),
    readFile: (name, path, o) => io.readFile(name, path, o),
    readFiles: (name, paths) => io.readFiles(name, paths),
    readDir: (name, path, o) => io.readDir(name, path, o),
    capture: (name, session) => io.capture(name, session),
    sleep: (ms, o) => io.sleep(ms, { until: o?.until ? AbortSignal.any([stop, o.until]) : stop }),
    signal: io.signal,
    budget: io.budget,
  };
}

/** The session's overhead report; null when the recording predates the guard or had no budget. */
export function overheadOf(records: RawRecord[], prefix = ''): OverheadReport | null {
  const rec = records.find((r) => r.op === 'capture' && r.name === `${prefix}overhead`);
  if (!rec || rec.error !== undefined) return null;
  return JSON.parse(rec.stdout) as OverheadReport | null;
}

export function overheadTable(o: OverheadReport): TableSpec {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  return {
    title: 'Overhead of the BPF programs',
    columns: ['CPU (avg)', 'CPU (peak)', 'events/s', 'ns/event', 'budget', 'statistics', 'outcome'],
    rows: [
      [
        pct(o.cpu),
        pct(o.peakCpu),
        Math.round(o.eventsPerSec),
        o.nsPerEvent === null ? '' : Math.round(o.nsPerEvent),
        `${pct(o.budget.cpu)} CPU, ${o.budget.eventsPerSec} events/s`,
        o.stats,
        o.stopped ? `stopped: ${o.stopped}` : 'within budget',
      ],
    ],
  };
}
