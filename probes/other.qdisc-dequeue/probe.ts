// other.qdisc-dequeue: what each device's root qdisc hands out when the kernel dequeues from it
// (qdisc:qdisc_dequeue): calls, packets per call (bulk dequeues), empty calls (an empty queue,
// or a shaper holding packets back), the queue left behind and requeues, aggregated in the
// kernel per device and qdisc (probes/other.qdisc-dequeue/other.qdisc-dequeue.bpf.c). The session is recorded as capture
// records, so a replay re-parses it without loading anything.
import type { BpfObject } from '../../engine/native/object.js';
import { runBpfSession } from '../../engine/probe/bpf-session.js';
import { histPercentile } from '../../engine/probe/bpftrace.js';
import type { OverheadBudget } from '../../engine/probe/budget.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { deviceLabel, filterScope, namespaceLabel, NETDEV_PARAMS, netdevSession, readSession, sessionData, sessionNotes, sessionTables, tcHandle, type NetdevId } from '../lib/netdev.js';
import { round } from '../lib/format.js';
import { maxBy, sumBy } from '../lib/tally.js';
import { slotTotals } from '../../engine/probe/bpf-values.js';
import { durationParam, topParam } from '../lib/params.js';
import { countBuckets } from '../lib/histogram.js';
import { DATA, type DequeueDevice, type DequeueQdisc, type QdiscDequeueData } from './data.js';
import { tracepointRun } from '../lib/bpf-probe.js';

export type { QdiscDequeueData };

const TRACEPOINT = 'qdisc:qdisc_dequeue';
/** Slots of the `totals` array: calls seen, calls not kept per qdisc (probes/other.qdisc-dequeue/other.qdisc-dequeue.h). */
const TOTALS = { seen: 0, unkeyed: 1 };

/**
 * What a session may cost: 5% of one CPU, 500k dequeue calls/s. Measured here (run statistics
 * on): ~0.7 µs per call (the device's identity is read before the filters apply), so a host
 * dequeuing 70k times a second is at the CPU budget; a ping flood through a pfifo (~46k calls/s,
 * most of them the empty dequeue after a bypassed packet) costs ~3%. Past the budget the
 * session stops early and keeps the counts up to then.
 */
export const QDISC_DEQUEUE_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 500_000 };

export interface DumpEntry extends NetdevId {
  handle: number;
  parent: number;
  slots: number[];
  calls: number;
  packets: number;
  empty: number;
  qlenSum: number;
  backlogSum: number;
  qlenMax: number;
  backlogMax: number;
  requeuesFirst: number;
  requeuesLast: number;
  gsoAnomalies: number;
  kind: string;
}

export interface DumpCapture {
  seen: number;
  unkeyed: number;
  entries: DumpEntry[];
}

/** struct qdeq_value, decoded. */
interface QdeqValue {
  slots: number[];
  calls: number;
  packets: number;
  empty: number;
  qlen_sum: number;
  backlog_sum: number;
  qlen_max: number;
  backlog_max: number;
  requeues_first: number;
  requeues_last: number;
  gso_anomalies: number;
  kind: string;
}

/** Reads the `qdiscs` map and the totals (exported for the test of the classic-tracepoint flavour). */
export function readDump(o: BpfObject): DumpCapture {
  const { seen, unkeyed } = slotTotals(o.map('totals'), TOTALS);
  const entries = o
    .map('qdiscs')
    .readAllDecoded<{ dev: NetdevId; handle: number; parent: number }, QdeqValue>()
    .map(({ key: k, value: v }): DumpEntry => ({
      ifindex: k.dev.ifindex,
      netns: k.dev.netns,
      name: k.dev.name,
      handle: k.handle,
      parent: k.parent,
      slots: v.slots,
      calls: v.calls,
      packets: v.packets,
      empty: v.empty,
      qlenSum: v.qlen_sum,
      backlogSum: v.backlog_sum,
      qlenMax: v.qlen_max,
      backlogMax: v.backlog_max,
      requeuesFirst: v.requeues_first,
      requeuesLast: v.requeues_last,
      gsoAnomalies: v.gso_anomalies,
      kind: v.kind,
    }));
  entries.sort((a, b) => b.calls - a.calls || a.ifindex - b.ifindex || a.handle - b.handle);
  return { seen, unkeyed, entries };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  await runBpfSession(io, netdevSession(params, { object: 'other.qdisc-dequeue', tracepoints: { qdisc_dequeue: TRACEPOINT }, what: 'other.qdisc-dequeue', dump: readDump }));
}

function parse(records: RawRecord[], params: Params): ProbeResult<QdiscDequeueData> {
  const { attach: att, dump, overhead } = readSession<DumpCapture>(records);
  const top = Math.max(1, (params.top as number | undefined) ?? 20);
  const notes = sessionNotes(att, overhead, dump.windowMs);

  const qdiscs: DequeueQdisc[] = dump.entries.map((e) => {
    // Slot 0: empty calls; slot k: [2^(k-1), 2^k) packets (other.qdisc-dequeue.h).
    const buckets = countBuckets(e.slots, 'calls');
    const nonEmpty = buckets.filter((b) => b.low > 0).map((b) => ({ low: b.low, high: b.high, count: b.calls }));
    return {
      device: deviceLabel(e, dump),
      dev: e.name,
      ifindex: e.ifindex,
      netns: namespaceLabel(e.netns, dump),
      kind: e.kind,
      handle: tcHandle(e.handle),
      parent: tcHandle(e.parent),
      calls: e.calls,
      packets: e.packets,
      empty: e.empty,
      packetsPerCall: e.calls > e.empty ? round(e.packets / (e.calls - e.empty), 2) : 0,
      p99PacketsPerCall: histPercentile(nonEmpty, 99) ?? 0,
      qlenMean: e.calls > 0 ? round(e.qlenSum / e.calls, 2) : 0,
      qlenMax: e.qlenMax,
      backlogMeanBytes: e.calls > 0 ? Math.round(e.backlogSum / e.calls) : 0,
      backlogMaxBytes: e.backlogMax,
      requeues: (e.requeuesLast - e.requeuesFirst) >>> 0,
      gsoAnomalies: e.gsoAnomalies,
      buckets,
    };
  });

  const byDevice = new Map<string, DequeueQdisc[]>();
  for (const q of qdiscs) byDevice.set(q.device, [...(byDevice.get(q.device) ?? []), q]);
  const devices: DequeueDevice[] = [...byDevice.entries()]
    .map(([device, list]) => ({
      device,
      calls: sumBy(list, (q) => q.calls),
      packets: sumBy(list, (q) => q.packets),
      empty: sumBy(list, (q) => q.empty),
      qlenMax: maxBy(list, (q) => q.qlenMax),
      backlogMaxBytes: maxBy(list, (q) => q.backlogMaxBytes),
      requeues: sumBy(list, (q) => q.requeues),
      gsoAnomalies: sumBy(list, (q) => q.gsoAnomalies),
    }))
    .sort((a, b) => b.packets - a.packets || b.calls - a.calls || a.device.localeCompare(b.device));

  const lost = dump.unkeyed;
  if (lost > 0) notes.push(`${lost} dequeue calls were counted but not kept per qdisc: the map was full`);
  const gsoAnomalies = sumBy(qdiscs, (q) => q.gsoAnomalies);
  const requeues = sumBy(qdiscs, (q) => q.requeues);
  if (qdiscs.some((q) => q.calls > 0 && q.qlenMax === 0 && q.packets > 0 && q.handle === 'none')) {
    notes.push('lockless qdiscs (pfifo_fast, handle none) keep their queue length per CPU: it reads 0 here');
  }
  const stopped = overhead?.stopped;
  const data: QdiscDequeueData = {
    ...sessionData(att, dump, overhead),
    calls: dump.seen,
    packets: sumBy(qdiscs, (q) => q.packets),
    empty: sumBy(qdiscs, (q) => q.empty),
    requeues,
    gsoAnomalies,
    qlenMax: maxBy(qdiscs, (q) => q.qlenMax),
    devices: devices.slice(0, top),
    qdiscs: qdiscs.slice(0, top),
    lost,
    notes,
  };

  const secs = `${(dump.windowMs / 1000).toFixed(1)}s`;
  const scope = filterScope(att.filter);
  let summary: string;
  const busiest = [...qdiscs].sort((a, b) => b.packets - a.packets || b.calls - a.calls)[0];
  if (!busiest) summary = `no qdisc dequeue on ${scope} in ${secs} (${att.method})`;
  else {
    const lead = `${busiest.kind} ${busiest.handle} on ${busiest.device}: ${busiest.packets} packets in ${busiest.calls} dequeues (${busiest.empty} empty), queue up to ${busiest.qlenMax} packets / ${busiest.backlogMaxBytes} B`;
    const more = qdiscs.length > 1 ? `; ${data.packets} packets on ${qdiscs.length} qdiscs in all` : '';
    const extra = [requeues > 0 ? `${requeues} requeues` : '', gsoAnomalies > 0 ? `${gsoAnomalies} skbs with a GSO size but no GSO type` : ''].filter((s) => s !== '');
    summary = `${lead} in ${secs}${more}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`;
  }
  if (stopped) summary += ` (stopped: ${stopped})`;
  const severity = gsoAnomalies > 0 ? 'critical' : requeues > 0 || data.qlenMax > 0 ? 'warning' : 'info';

  const charts: ChartSpec[] = qdiscs
    .filter((q) => q.calls > 0)
    .slice(0, top)
    .map((q) => ({
      kind: 'histogram',
      title: `${q.kind} ${q.handle} on ${q.device}: packets per dequeue call (0 = empty; log2 buckets)`,
      unit: 'packets',
      buckets: q.buckets.map((b) => ({ low: b.low, high: b.high, count: b.calls })),
    }));
  const tables: TableSpec[] = [
    {
      title: 'Root qdisc dequeues (queue length and backlog right after each dequeue)',
      columns: ['device', 'kind', 'handle', 'parent', 'calls', 'packets', 'empty', 'packets/call', 'qlen mean', 'qlen max', 'backlog mean B', 'backlog max B', 'requeues', 'GSO anomalies'],
      rows: qdiscs
        .slice(0, top)
        .map((q) => [q.device, q.kind, q.handle, q.parent, q.calls, q.packets, q.empty, q.packetsPerCall, q.qlenMean, q.qlenMax, q.backlogMeanBytes, q.backlogMaxBytes, q.requeues, q.gsoAnomalies]),
    },
    ...sessionTables(att, overhead),
  ];
  return { data, summary, severity, charts, tables };
}

export const otherQdiscDequeue: ProbeDefinition<QdiscDequeueData> = {
  id: 'other.qdisc-dequeue',
  title: 'Root qdisc dequeues: packets per call, empty calls, queue left behind',
  description: `Counts every dequeue from a device's root qdisc (\`qdisc:qdisc_dequeue\`, fired once per call of the kernel's dequeue loop, also when nothing came out) for \`duration\`, aggregated in the kernel per device, namespace and qdisc (handle, parent): calls, packets dequeued (the tracepoint's \`packets\`: more than one per call is a bulk dequeue), empty calls, a log2 histogram of packets per call, the queue length and backlog left right after each dequeue (mean and max), the rise of the qdisc's requeue counter (a driver returning \`NETDEV_TX_BUSY\`), and dequeued skbs with a GSO size but no GSO type (what the seed tool hunted for). \`dev\` and \`netns\` filter in the kernel; devices are named from the kernel, so a device inside a namespace is found by its name.

Use it when packets leave a device late or in bursts: a shaper (tbf, htb) shows many empty calls and a standing backlog, a busy driver shows requeues. Packets that bypass an empty qdisc (pfifo, pfifo_fast send them directly) are not dequeued: such a device shows mostly empty calls (the dequeue that follows each bypassed packet); devices without a queue (noqueue: veth, bridges by default) do not show. Lockless qdiscs (pfifo_fast) keep their queue length per CPU: it reads 0. Loads a raw_tp program with a cached minimal BTF (falls back to tp_btf, then to the classic tracepoint); one call costs ~0.7 µs. Past the overhead budget (5% of a CPU, 500k calls/s; \`--budget\` changes it) the session stops early and keeps its counts.

Replaces the seed's \`other/trace-qdisc-dequeue.bt\` (PROBES.md row 52).`,
  normal: `Packets per call near 1 (bulk dequeues of a few packets on busy multi-queue NICs), few empty calls, a queue length of 0-2 left behind, no requeues, no GSO anomalies. A shaper at its rate shows a standing queue and many empty calls: expected where a rate limit is configured, a cause of delay where none should be. A queue left behind is a warning; requeues mean the driver refuses packets (ring full); any GSO anomaly is critical.`,
  replaces: ['other/trace-qdisc-dequeue.bt'],
  params: {
    duration: durationParam('How long to count.', { max: 3_600_000 }),
    ...NETDEV_PARAMS,
    top: topParam('How many qdiscs and devices to list (busiest first).', { default: 20, max: 1000 }),
  },
  ...tracepointRun([TRACEPOINT], QDISC_DEQUEUE_BUDGET),
  data: DATA,
  collect,
  parse,
};
