// qdisc.latency: how long packets wait in each device's root qdisc (sojourn time), from
// tracepoint:qdisc:qdisc_enqueue to tracepoint:qdisc:qdisc_dequeue of the same skb, as a
// log2 histogram per device (probes/qdisc.latency/qdisc.latency.bt, run by the bpftrace driver).
import { formatMs } from '../../engine/duration.js';
import {
  BPFTRACE_REQUIREMENTS,
  bpftraceTables,
  histPercentile,
  readBpftrace,
  runBpftrace,
  type HistBucket,
} from '../../engine/probe/bpftrace.js';
import { fileReadings } from '../../engine/probe/file-readings.js';
import type { OverheadBudget } from '../../engine/probe/budget.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { durationParam } from '../lib/params.js';
import { DATA, type QdiscLatencyData, type QdiscLatencyDevice } from './data.js';

export type { QdiscLatencyData };

export const SCRIPT = 'qdisc.latency.bt';
/** Above this P99 (ns) the finding is a warning. */
export const WARN_P99_NS = 1_000_000;
/**
 * What the script's programs may cost: 5% of one CPU, 250k program runs/s. Every packet
 * through a qdisc runs two programs (enqueue and dequeue: hash lookups, a histogram and a max
 * update) of ~250 ns each here, so ~100k packets/s through qdiscs is at the CPU budget and
 * 125k at the events budget; a busy 10 Gbit/s host (~1M packets/s) would pay ~50% of a CPU
 * and is stopped early, with the histograms up to then.
 */
export const QDISC_LATENCY_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 250_000 };

const DEV_RE = /^[A-Za-z0-9_.:@-]{1,15}$/;

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const durationMs = params.duration as number;
  const dev = params.dev as string | undefined;
  let ifindex = 0;
  if (dev !== undefined && dev !== '') {
    if (!DEV_RE.test(dev) || dev === '.' || dev === '..') throw new Error(`not a device name: ${JSON.stringify(dev)}`);
    const rec = await io.readFile('ifindex', `/sys/class/net/${dev}/ifindex`, { allowFailure: true });
    if (rec.error !== undefined) throw new Error(`device ${dev} not found in this namespace (${rec.error})`);
    ifindex = Number(rec.stdout.trim());
  }
  await runBpftrace(io, 'bpftrace', SCRIPT, { durationMs, vars: [ifindex] });
  // Names of the devices, read after the window so that devices created during it are named.
  const list = await io.readDir('net-devices', '/sys/class/net', { allowFailure: true });
  const names = list.error === undefined ? list.stdout.split('\n').filter((n) => n !== '' && DEV_RE.test(n)) : [];
  await io.readFiles('net-ifindex', names.map((n) => `/sys/class/net/${n}/ifindex`));
}

function parse(records: RawRecord[], params: Params): ProbeResult {
  const durationMs = params.duration as number;
  const run = readBpftrace(records, 'bpftrace');
  const out = run.output;
  const notes: string[] = [];
  if (out.attachedProbes === null) notes.push('bpftrace printed no attached_probes line');

  const names = new Map<number, string>();
  const idx = records.find((r) => r.name === 'net-ifindex');
  if (idx) {
    for (const f of fileReadings(idx)) {
      const m = /^\/sys\/class\/net\/([^/]+)\/ifindex$/.exec(f.path);
      if (m && f.text !== undefined) names.set(Number(f.text.trim()), m[1]!);
    }
  }
  let filter: QdiscLatencyData['filter'];
  const ifrec = records.find((r) => r.name === 'ifindex');
  if (ifrec && typeof params.dev === 'string') filter = { dev: params.dev, ifindex: Number(ifrec.stdout.trim()) };
  if (filter) names.set(filter.ifindex, filter.dev);

  const hists = out.hists['@sojourn_ns'] ?? {};
  const enq = keyed(out.maps['@enqueued']);
  const maxes = keyed(out.maps['@max_ns']);
  const bulk = keyed(out.maps['@bulk_untimed']);
  const keys = new Set([...Object.keys(hists), ...Object.keys(enq)]);
  const devices: QdiscLatencyDevice[] = [];
  for (const key of keys) {
    const ifindex = Number(key);
    const buckets: HistBucket[] = (hists[key] ?? []).filter((b) => b.low >= 0);
    const count = buckets.reduce((s, b) => s + b.count, 0);
    const maxNs = maxes[key] ?? 0;
    // A bucket's upper bound can lie past the longest sojourn seen: never report more than it.
    const pct = (p: number) => Math.min(histPercentile(buckets, p) ?? 0, maxNs > 0 ? maxNs : Infinity);
    devices.push({
      ifindex,
      dev: names.get(ifindex) ?? `ifindex ${ifindex}`,
      count,
      enqueued: enq[key] ?? 0,
      bulkUntimed: bulk[key] ?? 0,
      p50Ns: pct(50),
      p95Ns: pct(95),
      p99Ns: pct(99),
      maxNs,
      buckets: buckets.filter((b) => b.count > 0).map((b) => ({ lowNs: b.low, highNs: b.high, count: b.count })),
    });
  }
  devices.sort((a, b) => b.count - a.count || a.ifindex - b.ifindex);
  for (const d of devices) {
    if (d.bulkUntimed > 0) notes.push(`${d.dev}: ${d.bulkUntimed} packets left in bulk dequeues and were not timed`);
    if (d.dev.startsWith('ifindex ')) notes.push(`${d.dev} has no device of that index in this namespace (a device of another namespace?)`);
  }
  if (out.lostEvents > 0) notes.push(`bpftrace lost ${out.lostEvents} events`);
  if (run.stopped) notes.push(`stopped early: ${run.stopped}; the counts cover the ${formatMs(run.windowMs ?? 0)} before`);
  const totalPackets = devices.reduce((s, d) => s + d.count, 0);
  const data: QdiscLatencyData = {
    durationMs,
    ...(filter ? { filter } : {}),
    devices,
    totalPackets,
    lostEvents: out.lostEvents,
    attach: run.attach,
    windowMs: run.windowMs,
    ...(run.overhead ? { overhead: run.overhead } : {}),
    ...(run.stopped ? { stopped: run.stopped } : {}),
    notes,
  };

  const charts: ChartSpec[] = devices
    .filter((d) => d.count > 0)
    .map((d) => ({
      kind: 'histogram',
      title: `${d.dev}: qdisc sojourn time (log2 buckets)`,
      unit: 'µs',
      buckets: d.buckets.map((b) => ({ low: b.lowNs / 1000, high: (b.highNs + 1) / 1000, count: b.count })),
      percentiles: { P50: d.p50Ns / 1000, P95: d.p95Ns / 1000, P99: d.p99Ns / 1000, max: d.maxNs / 1000 },
    }));
  const tables: TableSpec[] = [
    {
      title: 'qdisc sojourn time per device (percentiles are estimates at log2 bucket resolution: the bucket upper bound, capped at max)',
      columns: ['device', 'ifindex', 'packets timed', 'enqueued', 'P50', 'P95', 'P99', 'max'],
      rows: devices.map((d) => [d.dev, d.ifindex, d.count, d.enqueued, fmtNs(d.p50Ns), fmtNs(d.p95Ns), fmtNs(d.p99Ns), fmtNs(d.maxNs)]),
    },
    ...bpftraceTables(run),
  ];

  const timed = devices.filter((d) => d.count > 0);
  const worst = [...timed].sort((a, b) => b.p99Ns - a.p99Ns)[0];
  const severity = worst && worst.p99Ns > WARN_P99_NS ? 'warning' : 'info';
  const where = filter ? filter.dev : timed.length === 1 ? '' : `${timed.length} devices`;
  let summary: string;
  if (timed.length === 0) {
    const window = run.stopped && run.windowMs !== null ? run.windowMs : durationMs;
    summary = `no packet went through ${filter ? `the qdisc of ${filter.dev}` : 'a qdisc'} in ${formatMs(window)}`;
  } else {
    const top = worst!;
    const lead = `${top.dev}: ${top.count} packets, P50 ${fmtNs(top.p50Ns)}, P99 ${fmtNs(top.p99Ns)}, max ${fmtNs(top.maxNs)}`;
    summary = timed.length > 1 ? `${lead} (worst P99 of ${where}, ${totalPackets} packets in all)` : lead;
    summary += ' (percentiles at log2 bucket resolution)';
  }
  if (run.stopped) summary += ` (stopped: ${run.stopped})`;
  return { data, summary, severity, charts, tables };
}

function keyed(v: unknown): Record<string, number> {
  if (typeof v !== 'object' || v === null) return {};
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter((e): e is [string, number] => typeof e[1] === 'number'));
}

/** 850 ns, 12 µs, 4.2 ms, 1.3 s. */
export function fmtNs(ns: number): string {
  if (ns < 1000) return `${ns} ns`;
  const [v, unit] = ns < 1e6 ? [ns / 1e3, 'µs'] : ns < 1e9 ? [ns / 1e6, 'ms'] : [ns / 1e9, 's'];
  return `${v < 10 ? Number(v.toFixed(1)) : Math.round(v)} ${unit}`;
}

export const qdiscLatency: ProbeDefinition = {
  id: 'qdisc.latency',
  title: 'Queueing delay in qdiscs',
  description: `Times every packet from \`qdisc:qdisc_enqueue\` to \`qdisc:qdisc_dequeue\` of the same skb (the time it waited in the device's root qdisc) for \`duration\`, and reports per device a log2 histogram with P50/P95/P99 and the maximum. \`dev\` limits it to one device. Percentiles are estimates at log2 bucket resolution (the upper bound of the bucket holding them, capped at the maximum: never below the true value, at most twice it); the maximum is exact.

Use it when a VM sees latency or jitter on its way out of a tap or a bond: a shaper (tbf, htb) or a long queue in front of a slow link shows here as milliseconds of waiting. Runs \`probes/qdisc.latency/qdisc.latency.bt\` with bpftrace (one to a few seconds to compile and attach: \`attach.attachMs\`); every packet through a qdisc costs two tracepoint programs (~250 ns each). Past its overhead budget (5% of a CPU, 250k program runs/s; \`--budget\` changes it) bpftrace is stopped early and the finding keeps the histograms up to then and says so.

Replaces the seed's \`qdisc_lateny_details.py\` (PROBES.md row 46).`,
  normal: `Sojourn times of a few microseconds: packets leave the qdisc as soon as they arrive. Milliseconds mean a queue is building (a shaper at its rate, a saturated link); P99 above 1 ms is flagged.`,
  replaces: ['qdisc_lateny_details.py'],
  params: {
    duration: durationParam('How long to trace.', { max: 3_600_000 }),
    dev: { type: 'string', description: 'Only this device (its root qdisc); every device when not given.', cliOption: 'dev' },
  },
  requirements: [
    ...BPFTRACE_REQUIREMENTS,
    { kind: 'tracepoint', name: 'qdisc:qdisc_enqueue' },
    { kind: 'tracepoint', name: 'qdisc:qdisc_dequeue' },
  ],
  overhead: 'medium',
  budget: QDISC_LATENCY_BUDGET,
  driver: 'bpftrace',
  data: DATA,
  collect,
  parse,
};
