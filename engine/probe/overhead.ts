// The overhead guard: while a probe's BPF programs run, the kernel's run statistics say how
// much CPU they take and how often they fire. A probe over its budget for a sustained moment
// is stopped early; it keeps what it gathered and says why it stopped.
import { formatMs } from '../duration.js';
import type { OverheadBudget } from './budget.js';
import type { ProbeIO, RawRecord, TableSpec } from './types.js';
import type { StatsSession } from '../native/stats.js';

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
  /** Time the statistics were on (the guard samples them: see GuardOptions.duty); absent in recordings from before. */
  sampledMs?: number;
  /** Program runs and their time while the statistics were on. */
  runCnt: number;
  runTimeNs: number;
  /** Average share of one CPU over the sampled time. */
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
  /** Consecutive samples over budget before the probe is stopped (a spike is tolerated). */
  sustain?: number;
  /** How statistics are counted, for the report. */
  stats?: string;
  /**
   * Turns the kernel's statistics on and off. With it the guard samples: they are on for the
   * first `duty.warmMs`, then for one interval in `duty.every`. Without it they are taken as on
   * all along.
   */
  control?: StatsControl;
  duty?: { warmMs: number; every: number };
}

/** Switches the kernel's run statistics (for every BPF program of the host: they cost each run ~45 ns of clock reads on a VM while on). */
export interface StatsControl {
  on(): Promise<void>;
  off(): Promise<void>;
}

/** On for the first second (a probe over budget from the start stops within half a second), then one interval in four. */
export const GUARD_DUTY = { warmMs: 1000, every: 4 };

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

/**
 * Reads the statistics every interval while they are on and stops the probe when it stays over
 * budget. With a `control` it samples (GUARD_DUTY): the statistics cost every BPF program of
 * the host as much as a cheap probe's own work, so they are off most of the time; what the
 * programs cost is then their cost while sampled.
 */
export class OverheadGuard {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = performance.now();
  private readonly intervalMs: number;
  /** The reading the next sample is taken against; undefined while the statistics are off. */
  private last: { at: number; totals: RunTotals } | undefined;
  private lastAt = this.startedAt;
  private statsOn = true;
  private tick = 0;
  private sampled = { runCnt: 0, runTimeNs: 0, ms: 0 };
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
    this.intervalMs = opts.intervalMs ?? 250;
    this.reading = this.sample();
    this.timer = setInterval(() => (this.reading = this.reading.then(() => this.step())), this.intervalMs);
  }

  /** Whether the statistics are on during the interval after tick `i`. */
  private onAfter(i: number): boolean {
    const duty = this.opts.duty ?? GUARD_DUTY;
    if (!this.opts.control || (i + 1) * this.intervalMs <= duty.warmMs) return true;
    return (i + 1) % duty.every === 0;
  }

  private async step(): Promise<void> {
    const i = ++this.tick;
    if (this.statsOn) await this.sample();
    const on = this.onAfter(i);
    if (on === this.statsOn || !this.opts.control || this.stopped) return;
    try {
      await (on ? this.opts.control.on() : this.opts.control.off());
    } catch {
      return; // statistics that cannot be switched stay as they are: the next tick tries again
    }
    this.statsOn = on;
    this.last = undefined;
    if (on) await this.sample(); // the reading the next sample is taken against
  }

  private async sample(): Promise<void> {
    let totals: RunTotals;
    try {
      totals = await this.read();
    } catch {
      return; // a program gone between reads: the next read tells
    }
    const at = performance.now();
    this.lastAt = at;
    // Counters only grow: a smaller total means a program went away between reads.
    if (this.last && totals.runCnt < this.last.totals.runCnt) return;
    if (this.last && at > this.last.at) {
      const ms = at - this.last.at;
      const runCnt = totals.runCnt - this.last.totals.runCnt;
      const runTimeNs = totals.runTimeNs - this.last.totals.runTimeNs;
      this.sampled = { runCnt: this.sampled.runCnt + runCnt, runTimeNs: this.sampled.runTimeNs + runTimeNs, ms: this.sampled.ms + ms };
      const cpu = runTimeNs / 1e6 / ms;
      const eventsPerSec = (runCnt * 1000) / ms;
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

  /** Stops sampling (after one last read while the statistics are on) and reports what the programs cost. */
  async stop(): Promise<OverheadReport> {
    clearInterval(this.timer);
    await this.reading;
    if (this.statsOn) await this.sample();
    const windowMs = this.lastAt - this.startedAt;
    const { runCnt, runTimeNs, ms } = this.sampled;
    const secs = ms / 1000;
    return {
      budget: this.budget,
      stats: this.opts.stats ?? 'BPF_ENABLE_STATS',
      windowMs: Math.round(windowMs),
      sampledMs: Math.round(ms),
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

/** Turns the kernel's run statistics on (`first` says how) and gives the switch for them. */
export async function runStatsControl(): Promise<{ control: StatsControl; first: StatsSession }> {
  const { enableRunStats } = await import('../native/stats.js');
  const first = await enableRunStats();
  let stats: StatsSession | null = first;
  const control: StatsControl = {
    on: async () => {
      stats ??= await enableRunStats();
    },
    off: async () => {
      const s = stats;
      stats = null;
      await s?.close();
    },
  };
  return { control, first };
}

/**
 * Guards the programs `read` sums up. When statistics cannot be turned on the session never
 * stops the probe, and its report says `stats: unavailable (why)`.
 */
export async function guardPrograms(budget: OverheadBudget, read: () => Promise<RunTotals>, opts: GuardOptions = {}): Promise<GuardSession> {
  const { control, first } = await runStatsControl();
  const how = first.how;
  const label = how === 'unavailable' ? `unavailable (${first.why})` : how;
  // Statistics someone else turned on stay on: there is nothing to sample then.
  const switchable = how === 'BPF_ENABLE_STATS' || how === 'sysctl (restored after)';
  const guard = new OverheadGuard(how === 'unavailable' ? async () => ({ runCnt: 0, runTimeNs: 0 }) : read, budget, {
    ...opts,
    stats: label,
    ...(switchable ? { control } : {}),
  });
  return {
    signal: guard.signal,
    stop: async () => {
      try {
        return await guard.stop();
      } finally {
        await control.off();
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
        o.sampledMs !== undefined && o.sampledMs < o.windowMs ? `${o.stats}, sampled ${Math.round((100 * o.sampledMs) / Math.max(1, o.windowMs))}% of ${formatMs(o.windowMs)}` : o.stats,
        o.stopped ? `stopped: ${o.stopped}` : 'within budget',
      ],
    ],
  };
}
