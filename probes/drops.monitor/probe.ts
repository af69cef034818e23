// drops.monitor: the controller. Runs one drops.kernel session for `duration`, snapshots its
// maps at every `interval` (captures `w<k>`, cumulative), and parses each window as drops.kernel
// would (the difference of two snapshots), building a timeline of rates per reason and changes.
import { performance } from 'node:perf_hooks';
import { formatMs } from '../../engine/duration.js';
import type { Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TimeSeriesChart } from '../../engine/probe/types.js';
import { overheadOf } from '../../engine/probe/overhead.js';
import { readDrops } from '../lib/drops/read.js';
import { captureAt, collectDrops, DROPS_BUDGET, DROPS_FILTER_PARAMS, DROPS_REQUIREMENTS, DROPS_TOP_PARAM, type DropsAttach } from '../lib/drops/session.js';
import { durationParam } from '../lib/params.js';
import { DATA, type DropsMonitorData } from './data.js';
import { nativeRun } from '../lib/bpf-probe.js';

/** More windows than this make evidence nobody reads: use a longer interval. */
const MAX_WINDOWS = 600;
const FILTERS = ['dev', 'netns', 'src_ip', 'dst_ip', 'ip', 'protocol', 'port'] as const;

export interface MonitorWindow {
  index: number;
  /** When the window's programs were attached and its maps read (ms since the epoch). */
  start: number;
  end: number;
  windowMs: number;
  total: number;
  /** Drops per second over the window. */
  rate: number;
  byReason: Record<string, number>;
  rates: Record<string, number>;
}

export type { DropsMonitorData } from './data.js';

export function windowLengths(durationMs: number, intervalMs: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < durationMs; t += intervalMs) out.push(Math.min(intervalMs, durationMs - t));
  return out;
}

function dropsParams(params: Params, windowMs: number): Params {
  const p: Params = { duration: windowMs, stacks: false, top: (params.top as number | undefined) ?? 10 };
  for (const f of FILTERS) if (params[f] !== undefined) p[f] = params[f]!;
  return p;
}

/** The snapshot ending window k (the last window ends with the session's final dump). */
function snapshotName(k: number, windows: number): string {
  return k === windows - 1 ? 'dump' : `w${k}`;
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const lengths = windowLengths(params.duration as number, params.interval as number);
  if (lengths.length > MAX_WINDOWS) throw new Error(`${lengths.length} windows: use a longer interval (at most ${MAX_WINDOWS} windows)`);
  // One session attached for the whole duration, its maps snapshotted (cumulative) at every
  // window's end: windows have no gaps between them, and each is the difference of two snapshots.
  await collectDrops(dropsParams(params, params.duration as number), io, {
    window: async (windowIO, snapshot) => {
      const start = performance.now();
      let planned = 0;
      for (let k = 0; k < lengths.length; k++) {
        planned += lengths[k]!;
        await windowIO.sleep(Math.max(0, start + planned - performance.now()));
        if (k < lengths.length - 1) await snapshot(snapshotName(k, lengths.length));
      }
    },
  });
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function parse(records: RawRecord[], params: Params): ProbeResult<DropsMonitorData> {
  const intervalMs = params.interval as number;
  const lengths = windowLengths(params.duration as number, intervalMs);
  const windows: MonitorWindow[] = [];
  let method: DropsAttach['method'] | null = null;
  let attach: DropsAttach[] = [];
  const n = lengths.length;
  for (let k = 0; k < n; k++) {
    const dump = snapshotName(k, n);
    const since = k === 0 ? undefined : snapshotName(k - 1, n);
    const d = readDrops(records, dropsParams(params, lengths[k]!), { dump, ...(since !== undefined ? { since } : {}) }).data;
    if (k === 0) {
      method = d.method;
      attach = d.attach;
    }
    const start = captureAt(records, since ?? 'attach');
    const end = captureAt(records, dump);
    const secs = d.windowMs / 1000;
    const per = (n: number) => (secs > 0 ? round2(n / secs) : 0);
    windows.push({
      index: k,
      start,
      end,
      windowMs: d.windowMs,
      total: d.total,
      rate: per(d.total),
      byReason: d.byReason,
      rates: Object.fromEntries(Object.entries(d.byReason).map(([r, n]) => [r, per(n)])),
    });
  }
  if (windows.length === 0) throw new Error('no window was recorded');
  // Stopped by the overhead guard: windows after the stop counted nothing and are not shown.
  const overhead = overheadOf(records);
  if (overhead?.stopped) {
    for (let k = windows.length - 1; k > 0 && windows[k]!.windowMs <= 0; k--) windows.pop();
  }

  const byReason: Record<string, number> = {};
  for (const w of windows) for (const [r, n] of Object.entries(w.byReason)) byReason[r] = (byReason[r] ?? 0) + n;
  const reasons = Object.keys(byReason).sort((a, b) => byReason[b]! - byReason[a]! || a.localeCompare(b));
  const total = windows.reduce((n, w) => n + w.total, 0);
  const seenMs = windows.reduce((n, w) => n + w.windowMs, 0);
  const appeared: DropsMonitorData['changes']['appeared'] = [];
  const vanished: DropsMonitorData['changes']['vanished'] = [];
  for (let k = 1; k < windows.length; k++) {
    for (const r of reasons) {
      const before = (windows[k - 1]!.byReason[r] ?? 0) > 0;
      const now = (windows[k]!.byReason[r] ?? 0) > 0;
      if (!before && now) appeared.push({ reason: r, window: k });
      if (before && !now) vanished.push({ reason: r, window: k });
    }
  }
  const peakW = windows.reduce<MonitorWindow | null>((best, w) => (w.total > 0 && (!best || w.total > best.total) ? w : best), null);
  const data: DropsMonitorData = {
    intervalMs,
    durationMs: windows.at(-1)!.end - windows[0]!.start,
    method,
    attach,
    windows,
    ...(overhead ? { overhead } : {}),
    totals: { total, rate: seenMs > 0 ? round2(total / (seenMs / 1000)) : 0, byReason: Object.fromEntries(reasons.map((r) => [r, byReason[r]!])) },
    changes: {
      appeared,
      vanished,
      peak: peakW ? { window: peakW.index, total: peakW.total, rate: peakW.rate, start: peakW.start } : null,
      steady: reasons.filter((r) => windows.every((w) => (w.byReason[r] ?? 0) > 0)),
    },
  };

  const span = formatMs(params.duration as number);
  const every = formatMs(intervalMs);
  let summary: string;
  if (total === 0) summary = `no kernel drops in ${windows.length} windows of ${every} (${span})`;
  else {
    const top = reasons.slice(0, 3).map((r) => `${r} ${byReason[r]}`).join(', ');
    const changes = [
      ...appeared.slice(0, 2).map((a) => `${a.reason} appeared in window ${a.window}`),
      ...vanished.slice(0, 2).map((v) => `${v.reason} vanished in window ${v.window}`),
    ];
    summary = `${total} drops in ${span} (${top}); peak ${peakW!.rate}/s in window ${peakW!.index} of ${windows.length}${changes.length ? `; ${changes.join(', ')}` : ''}`;
  }
  if (overhead?.stopped) summary += ` (stopped: ${overhead.stopped})`;
  const charts: TimeSeriesChart[] = reasons.map((r) => ({
    kind: 'timeseries',
    title: `${r} drops per second`,
    unit: 'drops/s',
    series: [{ name: r, points: windows.map((w) => [w.end, w.rates[r] ?? 0] as [number, number]) }],
  }));
  return {
    data,
    summary,
    severity: total > 0 ? 'critical' : 'info',
    charts,
    tables: [
      {
        title: `Drops per ${every} window`,
        columns: ['window', 'ms', 'drops', 'drops/s', ...reasons],
        rows: windows.map((w) => [w.index, w.windowMs, w.total, w.rate, ...reasons.map((r) => w.byReason[r] ?? 0)]),
      },
      {
        title: 'Changes',
        columns: ['window', 'change', 'reason'],
        rows: [...appeared.map((a) => [a.window, 'appeared', a.reason] as Array<string | number>), ...vanished.map((v) => [v.window, 'vanished', v.reason] as Array<string | number>)].sort(
          (a, b) => (a[0] as number) - (b[0] as number),
        ),
      },
    ],
  };
}

const d = DROPS_FILTER_PARAMS;
export const dropsMonitor: ProbeDefinition<DropsMonitorData> = {
  id: 'drops.monitor',
  title: 'Kernel drops over time: rates and changes per interval',
  description: `Runs drops.kernel for \`duration\` and reads its maps at the end of every \`interval\` (one attach, cumulative snapshots: the windows have no gaps between them) and reports a timeline: drops and drops per second per reason in every window, the totals, and what changed: reasons that appeared or vanished from one window to the next, the peak window, the reasons present throughout. Filters are drops.kernel's, applied in the kernel.

Use it to see *when* drops happen and whether they follow an event (a migration, a rule reload, a traffic burst), rather than only how many there were.

Replaces the seed's \`packet-drop/drop_monitor_controller.py\` (PROBES.md row 26).`,
  normal: `Flat: the same few benign reasons (\`NO_SOCKET\`, \`NOT_SPECIFIED\`, \`OTHERHOST\`) at a low, steady rate. A reason that appears mid-way, a peak window, or a rate that climbs with the traffic are not normal.`,
  replaces: ['packet-drop/drop_monitor_controller.py'],
  params: {
    duration: durationParam('How long to monitor.', { default: '10s', min: 200 }),
    interval: { type: 'duration', default: '1s', min: 100, description: 'Length of one window of the timeline.', cliOption: 'interval' },
    dev: d.dev!,
    netns: d.netns!,
    src_ip: d.src_ip!,
    dst_ip: d.dst_ip!,
    protocol: d.protocol!,
    port: d.port!,
    top: DROPS_TOP_PARAM,
  },
  requirements: DROPS_REQUIREMENTS,
  memory: { objects: ['drops.kernel'] },
  ...nativeRun(DROPS_BUDGET),
  data: DATA,
  collect,
  parse,
};
