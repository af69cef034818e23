// perf.host-metrics' findings from what the session recorded: per-CPU packets and softirq
// time, the imbalance and hot-softirq verdicts, interface rates and drops; their summary,
// charts and tables.
import { loadedFields, type LoadedRecord } from '../../engine/native/attach-plan.js';
import type { OverheadReport } from '../../engine/probe/overhead.js';
import type { ChartSpec, ProbeResult, Severity, TableSpec } from '../../engine/probe/types.js';
import { percentiles, usBuckets, type UsBucket } from '../lib/histogram.js';
import { activityRows, directionOf, droppingDevices, totalsOf, type CounterReadings, type IfaceDevice, type IfaceTotals } from '../lib/iface-counters.js';
import type { NetdevFilter } from '../lib/netdev.js';
import type { HostMetricsMethod } from './attach.js';

/** softirq vector numbers → names: the kernel's softirq_to_name, fixed since 2.6 (RCU last). */
export const VECTOR_NAMES = ['HI', 'TIMER', 'NET_TX', 'NET_RX', 'BLOCK', 'IRQ_POLL', 'TASKLET', 'SCHED', 'HRTIMER', 'RCU'] as const;
const NET_VECTORS = ['NET_RX', 'NET_TX'];

/** The `setup` capture: filters, the devices whose counters are sampled, thresholds. */
export interface SetupCapture {
  filter: NetdevFilter;
  direction: 'both' | 'rx' | 'tx';
  onlineCpus: number;
  devices: string[];
  ifaceSkipped: string | null;
  durationMs: number;
  intervalMs: number;
  /** 0..1 */
  imbalanceShare: number;
  /** 0..1 */
  softirqShare: number;
  minPackets: number;
}

export type AttachCapture = LoadedRecord<HostMetricsMethod>;

/** The `dump` capture: what each CPU counted (non-zero entries only). */
export interface DumpCapture {
  windowMs: number;
  possibleCpus: number;
  softirqs: Array<{ cpu: number; vector: number; count: number; totalNs: number; maxNs: number; slots: number[] }>;
  packets: Array<{ cpu: number; dir: 'rx' | 'tx'; packets: number; bytes: number; failed: number }>;
  unpaired: number;
}

export interface SoftirqStats {
  count: number;
  totalMs: number;
  maxUs: number;
  meanUs: number;
  /** At log2 bucket resolution, capped at max. */
  p50Us: number;
  p99Us: number;
  /** Of the window's time (of one CPU), 0..1. */
  share: number;
}

export interface HostCpu {
  cpu: number;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** net_dev_xmit with a result other than NETDEV_TX_OK. */
  txFailed: number;
  /** NET_RX + NET_TX time over the window, 0..1. */
  netSoftirqShare: number;
  /** Every vector that ran on this CPU. */
  softirqs: Record<string, SoftirqStats>;
}

export type ImbalanceMetric = 'rx packets' | 'tx packets' | 'NET_RX time' | 'NET_TX time';

export interface Imbalance {
  metric: ImbalanceMetric;
  cpu: number;
  /** This CPU's share of the metric over all CPUs, 0..1. */
  share: number;
  /** The metric summed over CPUs (packets, or ms). */
  total: number;
}

export interface HostMetricsData {
  [key: string]: unknown;
  filter: { dev: string | null; netns: string | null; direction: SetupCapture['direction'] };
  method: HostMetricsMethod;
  btf: string;
  loadMs: number;
  attach: AttachCapture['attach'];
  fallback?: string;
  windowMs: number;
  intervalMs: number;
  onlineCpus: number;
  overhead?: OverheadReport;
  /** Packets counted by the programs (after the filters), over every CPU. */
  packets: { rx: number; tx: number; rxBytes: number; txBytes: number; txFailed: number };
  /** CPUs that counted packets or ran softirqs, by number. */
  cpus: HostCpu[];
  /** Per vector over every CPU (share: of one CPU's window time, summed: 1.0 = a whole CPU). */
  softirqs: Record<string, SoftirqStats & { buckets: UsBucket[] }>;
  /** Per metric, the CPU taking at least `imbalance_pct` of it (with several CPUs online and enough packets). */
  imbalance: Imbalance[];
  imbalanced: boolean;
  /** CPUs spending at least `softirq_pct` of the window in NET_RX + NET_TX. */
  softirqHot: Array<{ cpu: number; share: number }>;
  /** Interfaces whose counters were sampled (lib/iface-counters.ts, as net.iface reads them). */
  interfaces: IfaceDevice[];
  interfaceTotals: IfaceTotals;
  /** Interfaces whose drops or errors rose. */
  dropping: string[];
  worst?: { name: string; drops: number; errors: number; direction: 'rx' | 'tx' | 'rx+tx' };
  samples: number;
  notes: string[];
}

const r3 = (n: number) => Math.round(n * 1000) / 1000;
const r4 = (n: number) => Math.round(n * 10000) / 10000;
const vectorName = (v: number) => VECTOR_NAMES[v] ?? `VEC${v}`;

function softirqStats(count: number, totalNs: number, maxNs: number, slots: number[], windowMs: number): SoftirqStats {
  const p = percentiles(slots, maxNs / 1000);
  return {
    count,
    totalMs: r3(totalNs / 1e6),
    maxUs: r3(maxNs / 1000),
    meanUs: count > 0 ? r3(totalNs / count / 1000) : 0,
    p50Us: r3(p.p50Us),
    p99Us: r3(p.p99Us),
    share: windowMs > 0 ? r4(totalNs / 1e6 / windowMs) : 0,
  };
}

function cpusOf(dump: DumpCapture): HostCpu[] {
  const byCpu = new Map<number, HostCpu>();
  const cpu = (n: number) => {
    let c = byCpu.get(n);
    if (!c) byCpu.set(n, (c = { cpu: n, rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, txFailed: 0, netSoftirqShare: 0, softirqs: {} }));
    return c;
  };
  for (const p of dump.packets) {
    const c = cpu(p.cpu);
    if (p.dir === 'rx') Object.assign(c, { rxPackets: p.packets, rxBytes: p.bytes });
    else Object.assign(c, { txPackets: p.packets, txBytes: p.bytes, txFailed: p.failed });
  }
  for (const s of dump.softirqs) {
    const c = cpu(s.cpu);
    c.softirqs[vectorName(s.vector)] = softirqStats(s.count, s.totalNs, s.maxNs, s.slots, dump.windowMs);
  }
  for (const c of byCpu.values()) c.netSoftirqShare = r4(NET_VECTORS.reduce((sum, v) => sum + (c.softirqs[v]?.share ?? 0), 0));
  return [...byCpu.values()].sort((a, b) => a.cpu - b.cpu);
}

function vectorsOf(dump: DumpCapture): HostMetricsData['softirqs'] {
  const out: HostMetricsData['softirqs'] = {};
  const byVector = new Map<number, { count: number; totalNs: number; maxNs: number; slots: number[] }>();
  for (const s of dump.softirqs) {
    const v = byVector.get(s.vector) ?? { count: 0, totalNs: 0, maxNs: 0, slots: new Array<number>(s.slots.length).fill(0) };
    v.count += s.count;
    v.totalNs += s.totalNs;
    v.maxNs = Math.max(v.maxNs, s.maxNs);
    s.slots.forEach((n, i) => (v.slots[i] = (v.slots[i] ?? 0) + n));
    byVector.set(s.vector, v);
  }
  for (const [vector, v] of [...byVector].sort((a, b) => a[0] - b[0])) {
    out[vectorName(vector)] = { ...softirqStats(v.count, v.totalNs, v.maxNs, v.slots, dump.windowMs), buckets: usBuckets(v.slots) };
  }
  return out;
}

/** The CPU taking at least `share` of each metric, when the host has several CPUs and the metric is big enough. */
function imbalancesOf(cpus: HostCpu[], setup: SetupCapture): Imbalance[] {
  if (setup.onlineCpus < 2) return [];
  const metrics: Array<{ metric: ImbalanceMetric; of: (c: HostCpu) => number; enough: (total: number, packets: number) => boolean }> = [
    { metric: 'rx packets', of: (c) => c.rxPackets, enough: (total) => total >= setup.minPackets },
    { metric: 'tx packets', of: (c) => c.txPackets, enough: (total) => total >= setup.minPackets },
    // Softirq time is only worth comparing when the network kept it busy (enough packets).
    { metric: 'NET_RX time', of: (c) => c.softirqs.NET_RX?.totalMs ?? 0, enough: (_t, packets) => packets >= setup.minPackets },
    { metric: 'NET_TX time', of: (c) => c.softirqs.NET_TX?.totalMs ?? 0, enough: (_t, packets) => packets >= setup.minPackets },
  ];
  const packets = cpus.reduce((s, c) => s + c.rxPackets + c.txPackets, 0);
  const out: Imbalance[] = [];
  for (const m of metrics) {
    const total = cpus.reduce((s, c) => s + m.of(c), 0);
    if (total <= 0 || !m.enough(total, packets)) continue;
    const top = [...cpus].sort((a, b) => m.of(b) - m.of(a) || a.cpu - b.cpu)[0]!;
    const share = m.of(top) / total;
    if (share >= setup.imbalanceShare) out.push({ metric: m.metric, cpu: top.cpu, share: r4(share), total: r3(total) });
  }
  return out;
}

export function analyse(setup: SetupCapture, att: AttachCapture, dump: DumpCapture, readings: CounterReadings, overhead: OverheadReport | null): ProbeResult<HostMetricsData> {
  const cpus = cpusOf(dump);
  const sum = (f: (c: HostCpu) => number) => cpus.reduce((s, c) => s + f(c), 0);
  const imbalance = imbalancesOf(cpus, setup);
  const softirqHot = cpus.filter((c) => c.netSoftirqShare >= setup.softirqShare).map((c) => ({ cpu: c.cpu, share: c.netSoftirqShare }));
  const dropping = droppingDevices(readings.devices);
  const worst = [...dropping].sort((a, b) => b.drops + b.errors - (a.drops + a.errors))[0];
  const notes = [...readings.notes];
  if (setup.ifaceSkipped) notes.push(setup.ifaceSkipped);
  if (dump.unpaired > 0) notes.push(`${dump.unpaired} softirq runs were already running when the programs attached: not timed`);
  if (overhead?.stopped) notes.push(`stopped early: ${overhead.stopped}`);
  if (setup.onlineCpus < 2) notes.push('one CPU online: no imbalance to find');
  const data: HostMetricsData = {
    filter: { dev: setup.filter.dev, netns: setup.filter.netns, direction: setup.direction },
    ...loadedFields(att),
    windowMs: dump.windowMs,
    intervalMs: setup.intervalMs,
    onlineCpus: setup.onlineCpus,
    ...(overhead ? { overhead } : {}),
    packets: { rx: sum((c) => c.rxPackets), tx: sum((c) => c.txPackets), rxBytes: sum((c) => c.rxBytes), txBytes: sum((c) => c.txBytes), txFailed: sum((c) => c.txFailed) },
    cpus,
    softirqs: vectorsOf(dump),
    imbalance,
    imbalanced: imbalance.length > 0,
    softirqHot,
    interfaces: readings.devices,
    interfaceTotals: totalsOf(readings.devices),
    dropping: dropping.map((d) => d.name),
    ...(worst ? { worst: { name: worst.name, drops: worst.drops, errors: worst.errors, direction: directionOf(worst) } } : {}),
    samples: readings.samples,
    notes,
  };
  const severity: Severity = data.dropping.length > 0 ? 'critical' : data.imbalanced || softirqHot.length > 0 ? 'warning' : 'info';
  return { data, summary: summaryOf(data), severity, charts: chartsOf(data, readings), tables: tablesOf(data) };
}

const pct = (share: number) => `${Math.round(share * 1000) / 10}%`;

function summaryOf(d: HostMetricsData): string {
  const where = d.filter.dev !== null ? ` on ${d.filter.dev}` : '';
  const secs = `${(d.windowMs / 1000).toFixed(1)}s`;
  const parts = [`${d.packets.rx} packets received, ${d.packets.tx} sent${where} in ${secs}`];
  const netRx = d.softirqs.NET_RX;
  if (netRx) parts.push(`NET_RX ${netRx.count} runs, ${netRx.totalMs} ms (${pct(netRx.share)} of a CPU)`);
  for (const i of d.imbalance) parts.push(`CPU ${i.cpu} took ${pct(i.share)} of the ${i.metric}`);
  for (const h of d.softirqHot) parts.push(`CPU ${h.cpu} spent ${pct(h.share)} in network softirqs`);
  if (d.worst) parts.push(`${d.worst.name} dropped ${d.worst.drops} and had ${d.worst.errors} errors (${d.worst.direction})`);
  if (d.overhead?.stopped) parts.push(`stopped: ${d.overhead.stopped}`);
  return parts.join('; ');
}

function chartsOf(d: HostMetricsData, readings: CounterReadings): ChartSpec[] {
  const charts: ChartSpec[] = [];
  if (d.packets.rx + d.packets.tx > 0) {
    charts.push({ kind: 'bar', title: 'Packets received per CPU', unit: 'packets', bars: d.cpus.map((c) => ({ label: `CPU ${c.cpu}`, value: c.rxPackets })) });
    charts.push({ kind: 'bar', title: 'Packets sent per CPU', unit: 'packets', bars: d.cpus.map((c) => ({ label: `CPU ${c.cpu}`, value: c.txPackets })) });
  }
  for (const v of NET_VECTORS) {
    if (!d.softirqs[v]) continue;
    charts.push({ kind: 'bar', title: `${v} softirq time per CPU`, unit: 'ms', bars: d.cpus.map((c) => ({ label: `CPU ${c.cpu}`, value: c.softirqs[v]?.totalMs ?? 0 })) });
    const s = d.softirqs[v]!;
    charts.push({
      kind: 'histogram',
      title: `${v} softirq run time, all CPUs (log2 buckets)`,
      unit: 'µs',
      buckets: s.buckets.map((b) => ({ low: b.lowUs, high: b.highUs, count: b.count })),
      percentiles: { P50: s.p50Us, P99: s.p99Us, max: s.maxUs },
    });
  }
  const busiest = [...d.interfaces]
    .filter((i) => i.deltas.rx_packets + i.deltas.tx_packets > 0)
    .sort((a, b) => b.deltas.rx_packets + b.deltas.tx_packets - (a.deltas.rx_packets + a.deltas.tx_packets))
    .slice(0, 3);
  if (busiest.length > 0) {
    const series = (unit: 'pps' | 'bps') =>
      busiest.flatMap((i) => {
        const p = readings.pointsOf.get(i.name);
        return [
          { name: `${i.name} rx`, points: (unit === 'pps' ? p?.rx : p?.rxBps) ?? [] },
          { name: `${i.name} tx`, points: (unit === 'pps' ? p?.tx : p?.txBps) ?? [] },
        ];
      });
    charts.push({ kind: 'timeseries', title: 'Throughput, busiest interfaces', unit: 'bits/s', series: series('bps') });
    charts.push({ kind: 'timeseries', title: 'Packets per second, busiest interfaces', unit: 'packets/s', series: series('pps') });
  }
  if (d.dropping.length > 0) {
    charts.push({ kind: 'timeseries', title: 'Drops + errors per second, dropping interfaces', unit: 'packets/s', series: d.dropping.map((name) => ({ name, points: readings.pointsOf.get(name)?.drops ?? [] })) });
  }
  return charts;
}

function tablesOf(d: HostMetricsData): TableSpec[] {
  const tables: TableSpec[] = [
    {
      title: 'Per CPU (packets after the filters; softirq time of the whole CPU)',
      columns: ['CPU', 'rx packets', 'rx bytes', 'tx packets', 'tx bytes', 'tx failed', 'NET_RX runs', 'NET_RX ms', 'NET_TX runs', 'NET_TX ms', 'net softirq %', 'all softirq ms'],
      rows: d.cpus.map((c) => [
        c.cpu,
        c.rxPackets,
        c.rxBytes,
        c.txPackets,
        c.txBytes,
        c.txFailed,
        c.softirqs.NET_RX?.count ?? 0,
        c.softirqs.NET_RX?.totalMs ?? 0,
        c.softirqs.NET_TX?.count ?? 0,
        c.softirqs.NET_TX?.totalMs ?? 0,
        Math.round(c.netSoftirqShare * 10000) / 100,
        r3(Object.values(c.softirqs).reduce((s, v) => s + v.totalMs, 0)),
      ]),
    },
    {
      title: 'Softirq vectors, all CPUs (µs; percentiles at log2 bucket resolution)',
      columns: ['vector', 'runs', 'total ms', 'mean', 'P50', 'P99', 'max', '% of a CPU'],
      rows: Object.entries(d.softirqs).map(([name, s]) => [name, s.count, s.totalMs, s.meanUs, s.p50Us, s.p99Us, s.maxUs, Math.round(s.share * 10000) / 100]),
    },
  ];
  const activity = activityRows(d.interfaces);
  if (activity) tables.push({ title: 'Interfaces with traffic, drops or errors', ...activity });
  return tables;
}
