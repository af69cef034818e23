// other.dev-queue: what each device is handed to transmit (net:net_dev_queue, every packet
// through __dev_queue_xmit, with or without a qdisc) and what its driver answered
// (net:net_dev_xmit's return code), aggregated in the kernel per device
// (probes/other.dev-queue/other.dev-queue.bpf.c). The session is recorded as capture records, so a replay re-parses it.
import type { BpfObject } from '../../engine/native/object.js';
import { runBpfSession } from '../../engine/probe/bpf-session.js';
import { histPercentile } from '../../engine/probe/bpftrace.js';
import type { OverheadBudget } from '../../engine/probe/budget.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { deviceLabel, filterScope, namespaceLabel, NETDEV_PARAMS, netdevSession, readSession, sessionData, sessionNotes, sessionTables, type NetdevId, type NetdevLoadOptions } from '../lib/netdev.js';
import { round } from '../lib/format.js';
import { sumBy } from '../lib/tally.js';
import { pendingMaxEntries, pendingWays, PENDING_WAYS } from '../lib/pending.js';
import { slotTotals } from '../../engine/probe/bpf-values.js';
import { durationParam, topParam } from '../lib/params.js';
import { countBuckets } from '../lib/histogram.js';
import { DATA, type DevQueueData, type DevQueueDevice, type SizeBucket } from './data.js';
import { tracepointRun } from '../lib/bpf-probe.js';

export type { DevQueueData, SizeBucket };

const TRACEPOINTS = { dev_queue: 'net:net_dev_queue', dev_xmit: 'net:net_dev_xmit' };
/** probes/other.dev-queue/other.dev-queue.h and bpf/include/netdev.h */
const L3 = ['ipv4', 'ipv6', 'arp', 'other'] as const;
const L4 = ['tcp', 'udp', 'icmp', 'otherIp', 'notIp'] as const;
const RC = ['ok', 'busy', 'drop', 'congested', 'error', 'other'] as const;
/** Slots of the `totals` array: packets queued, driver results, events not kept per device. */
const TOTALS = { queued: 0, xmits: 1, unkeyed: 2 };

/**
 * What a session may cost: 5% of one CPU, 1M program runs/s. Every packet sent runs two
 * programs (queue: the device, the headers; xmit: the device), each counting in a cache line of
 * its CPU's while the device and the packet's class (size slot, L3/L4, GSO; the driver's result)
 * stay the same, a hash update otherwise. Past the budget the session stops early and keeps the
 * counts up to then.
 */
export const DEV_QUEUE_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 1_000_000 };

/** tp_btf first (plain loads) and the per-CPU ways sized to the CPUs (probes/lib/pending.ts). */
export function devQueueLoad(): NetdevLoadOptions {
  return { prefer: 'tp_btf', maxEntries: pendingMaxEntries('queue_pending', 'xmit_pending') };
}

type Split<K extends string> = Record<K, number>;

export interface DumpEntry extends NetdevId {
  slots: number[];
  packets: number;
  bytes: number;
  l3: number[];
  l4: number[];
  gsoPackets: number;
  gsoAnomalies: number;
  xmit: number[];
  xmitBytes: number;
}

export interface DumpCapture {
  queued: number;
  xmits: number;
  unkeyed: number;
  entries: DumpEntry[];
}

/** struct devq_value, decoded. */
interface DevqValue {
  slots: number[];
  packets: number;
  bytes: number;
  l3: number[];
  l4: number[];
  gso_packets: number;
  gso_anomalies: number;
  xmit: number[];
  xmit_bytes: number;
}

/** struct devq_pending, decoded: a CPU's events of one device and class not in `devices` yet. */
interface DevqPending {
  dev: NetdevId;
  slot: number;
  l3: number;
  l4: number;
  gso: number;
  packets: number;
  bytes: number;
}

/** DEVQ_SLOTS, NETDEV_L3_SLOTS, NETDEV_L4_SLOTS, DEVQ_RC_SLOTS; DEVQ_GSO and DEVQ_GSO_ANOMALY. */
const SLOTS = 19;
const GSO = 1;
const GSO_ANOMALY = 2;
const zeros = (n: number) => new Array<number>(n).fill(0);
const deviceKey = (d: NetdevId) => `${d.ifindex}/${d.netns}/${d.name}`;

function entryOf(byDevice: Map<string, DumpEntry>, d: NetdevId): DumpEntry {
  const id = deviceKey(d);
  let e = byDevice.get(id);
  if (!e) {
    e = { ifindex: d.ifindex, netns: d.netns, name: d.name, slots: zeros(SLOTS), packets: 0, bytes: 0, l3: zeros(L3.length), l4: zeros(L4.length), gsoPackets: 0, gsoAnomalies: 0, xmit: zeros(RC.length), xmitBytes: 0 };
    byDevice.set(id, e);
  }
  return e;
}

const bump = (counts: number[], i: number, n: number) => (counts[i] = (counts[i] ?? 0) + n);

/** Adds the `queue_pending` and `xmit_pending` ways to their devices' entries. */
function addWays(byDevice: Map<string, DumpEntry>, queued: DevqPending[], xmits: DevqPending[]): void {
  for (const w of queued) {
    const e = entryOf(byDevice, w.dev);
    bump(e.slots, w.slot, w.packets);
    e.packets += w.packets;
    e.bytes += w.bytes;
    bump(e.l3, w.l3, w.packets);
    bump(e.l4, w.l4, w.packets);
    if (w.gso & GSO) e.gsoPackets += w.packets;
    if (w.gso & GSO_ANOMALY) e.gsoAnomalies += w.packets;
  }
  for (const w of xmits) {
    const e = entryOf(byDevice, w.dev);
    bump(e.xmit, w.slot, w.packets);
    e.xmitBytes += w.bytes;
  }
}

/** Reads the `devices` map, the ways not moved into it yet and the totals (exported for the test of the classic-tracepoint flavour). */
export function readDump(o: BpfObject): DumpCapture {
  const { queued, xmits, unkeyed } = slotTotals(o.map('totals'), TOTALS);
  const byDevice = new Map<string, DumpEntry>();
  for (const { key: { ifindex, netns, name }, value: v } of o.map('devices').readAllDecoded<NetdevId, DevqValue>()) {
    byDevice.set(deviceKey({ ifindex, netns, name }), {
      ifindex,
      netns,
      name,
      slots: v.slots,
      packets: v.packets,
      bytes: v.bytes,
      l3: v.l3,
      l4: v.l4,
      gsoPackets: v.gso_packets,
      gsoAnomalies: v.gso_anomalies,
      xmit: v.xmit,
      xmitBytes: v.xmit_bytes,
    });
  }
  const queuedWays = pendingWays<DevqPending>(o, 'queue_pending');
  const xmitWays = pendingWays<DevqPending>(o, 'xmit_pending');
  addWays(byDevice, queuedWays, xmitWays);
  const entries = [...byDevice.values()];
  entries.sort((a, b) => b.packets - a.packets || a.ifindex - b.ifindex || a.name.localeCompare(b.name));
  return { queued: queued + sumBy(queuedWays, (w) => w.packets), xmits: xmits + sumBy(xmitWays, (w) => w.packets), unkeyed, entries };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  await runBpfSession(
    io,
    netdevSession(params, { object: 'other.dev-queue', tracepoints: TRACEPOINTS, what: 'other.dev-queue', dump: readDump, load: devQueueLoad(), detachToRead: true }),
  );
}

function split<K extends string>(names: readonly K[], counts: number[]): Split<K> {
  return Object.fromEntries(names.map((n, i) => [n, counts[i] ?? 0])) as Split<K>;
}

/**
 * With the classic tracepoints net_dev_xmit names the device only (ifindex and netns 0): its
 * results join the one queueing device of that name, when there is exactly one.
 */
export function joinNameOnly(entries: DumpEntry[], notes: string[]): DumpEntry[] {
  const named = entries.filter((e) => e.ifindex === 0 && e.netns === 0);
  const rest = entries.filter((e) => !(e.ifindex === 0 && e.netns === 0));
  for (const n of named) {
    const same = rest.filter((e) => e.name === n.name);
    if (same.length === 1) {
      const into = same[0]!;
      into.xmit = into.xmit.map((c, i) => c + (n.xmit[i] ?? 0));
      into.xmitBytes += n.xmitBytes;
    } else {
      rest.push(n);
      if (same.length > 1) notes.push(`${n.name}: driver results could not be told apart between the ${same.length} devices of that name (classic tracepoints name the device only)`);
    }
  }
  return rest;
}

function parse(records: RawRecord[], params: Params): ProbeResult<DevQueueData> {
  const { attach: att, dump, overhead } = readSession<DumpCapture>(records);
  const top = Math.max(1, (params.top as number | undefined) ?? 20);
  const notes = sessionNotes(att, overhead, dump.windowMs);

  const all: DevQueueDevice[] = joinNameOnly(dump.entries, notes).map((e) => {
    // Slot k (k >= 1): [2^(k-1), 2^k) bytes; slot 0: empty skbs (other.dev-queue.h).
    const buckets = countBuckets(e.slots, 'packets');
    return {
      device: deviceLabel(e, dump),
      dev: e.name,
      ifindex: e.ifindex,
      netns: namespaceLabel(e.netns, dump),
      packets: e.packets,
      bytes: e.bytes,
      meanBytes: e.packets > 0 ? round(e.bytes / e.packets, 1) : 0,
      p99Bytes: histPercentile(buckets.map((b) => ({ low: b.low, high: b.high, count: b.packets })), 99) ?? 0,
      l3: split(L3, e.l3),
      l4: split(L4, e.l4),
      gsoPackets: e.gsoPackets,
      gsoAnomalies: e.gsoAnomalies,
      xmit: split(RC, e.xmit),
      xmitBytes: e.xmitBytes,
      buckets,
    };
  });
  all.sort((a, b) => b.packets - a.packets || b.bytes - a.bytes || a.device.localeCompare(b.device));

  const lost = dump.unkeyed;
  if (lost > 0) notes.push(`${lost} events were counted but not kept per device: the map was full`);
  const xmitSum = (k: (typeof RC)[number]) => sumBy(all, (d) => d.xmit[k]);
  const busy = xmitSum('busy');
  const dropped = xmitSum('drop');
  const congested = xmitSum('congested');
  const errors = xmitSum('error') + xmitSum('other');
  const gsoAnomalies = sumBy(all, (d) => d.gsoAnomalies);
  const stopped = overhead?.stopped;
  const devices = all.slice(0, top);
  const data: DevQueueData = {
    ...sessionData(att, dump, overhead),
    packets: sumBy(all, (d) => d.packets),
    bytes: sumBy(all, (d) => d.bytes),
    busy,
    dropped,
    congested,
    errors,
    gsoAnomalies,
    devices,
    deviceCount: all.length,
    lost,
    notes,
  };

  const secs = `${(dump.windowMs / 1000).toFixed(1)}s`;
  const problems = [
    busy > 0 ? `${busy} NETDEV_TX_BUSY` : '',
    dropped > 0 ? `${dropped} NET_XMIT_DROP` : '',
    congested > 0 ? `${congested} NET_XMIT_CN` : '',
    errors > 0 ? `${errors} driver errors` : '',
    gsoAnomalies > 0 ? `${gsoAnomalies} skbs with a GSO size but no GSO type` : '',
  ].filter((s) => s !== '');
  let summary: string;
  const lead = all.find((d) => d.packets > 0);
  if (!lead) summary = `nothing handed to ${filterScope(att.filter)} for transmit in ${secs} (${att.method})`;
  else {
    const more = all.length > 1 ? `; ${data.packets} packets on ${all.length} devices in all` : '';
    summary = `${lead.device}: ${lead.packets} packets, ${lead.bytes} bytes (mean ${lead.meanBytes} B) queued for transmit in ${secs}${more}`;
  }
  if (problems.length > 0) summary += ` (${problems.join(', ')})`;
  if (stopped) summary += ` (stopped: ${stopped})`;
  const severity = gsoAnomalies > 0 ? 'critical' : busy + dropped + congested + errors > 0 ? 'warning' : 'info';

  const charts: ChartSpec[] = [
    ...devices
      .filter((d) => d.packets > 0)
      .map((d): ChartSpec => ({
        kind: 'histogram',
        title: `${d.device}: sizes of packets queued for transmit (log2 buckets)`,
        unit: 'bytes',
        buckets: d.buckets.map((b) => ({ low: b.low, high: b.high, count: b.packets })),
      })),
  ];
  if (devices.length > 1) charts.unshift({ kind: 'bar', title: 'Packets queued for transmit per device', unit: 'packets', bars: devices.map((d) => ({ label: d.device, value: d.packets })) });
  const tables: TableSpec[] = [
    {
      title: 'Packets handed to each device for transmit (net_dev_queue) and what its driver returned (net_dev_xmit)',
      columns: ['device', 'packets', 'bytes', 'mean B', 'IPv4', 'IPv6', 'ARP', 'TCP', 'UDP', 'ICMP', 'GSO', 'GSO anomalies', 'xmit OK', 'TX_BUSY', 'XMIT_DROP', 'XMIT_CN', 'errors'],
      rows: devices.map((d) => [
        d.device,
        d.packets,
        d.bytes,
        d.meanBytes,
        d.l3.ipv4,
        d.l3.ipv6,
        d.l3.arp,
        d.l4.tcp,
        d.l4.udp,
        d.l4.icmp,
        d.gsoPackets,
        d.gsoAnomalies,
        d.xmit.ok,
        d.xmit.busy,
        d.xmit.drop,
        d.xmit.congested,
        d.xmit.error + d.xmit.other,
      ]),
    },
    ...sessionTables(att, overhead),
  ];
  return { data, summary, severity, charts, tables };
}

export const otherDevQueue: ProbeDefinition<DevQueueData> = {
  id: 'other.dev-queue',
  title: 'Packets handed to devices for transmit, and what their drivers answered',
  description: `Counts every packet handed to a device's transmit path (\`net:net_dev_queue\`, fired by \`__dev_queue_xmit\` for every packet, with or without a qdisc) for \`duration\`, aggregated in the kernel per device and namespace: packets, bytes (\`skb->len\`: the frame with its link-layer header; a GSO packet counts whole), a log2 size histogram, the split by L3 (IPv4, IPv6, ARP) and L4 (TCP, UDP, ICMP), GSO packets and skbs with a GSO size but no GSO type (what the seed tool hunted for), and per device what the driver's \`ndo_start_xmit\` returned (\`net:net_dev_xmit\`: \`NETDEV_TX_OK\`, \`NETDEV_TX_BUSY\`, \`NET_XMIT_DROP\`, \`NET_XMIT_CN\`, errors). \`dev\` and \`netns\` filter in the kernel; devices are named from the kernel, so a device inside a namespace is found by its name.

Use it to see which devices a VM's traffic really leaves by, how much, in what sizes, and whether a driver pushes back (TX_BUSY: its ring is full). Packets queued minus packets the driver took is what waits in (or was dropped by) the qdisc, or was segmented on the way. Loads tp_btf programs, whose reads are plain loads (falls back to raw_tp with a cached minimal BTF, then to the classic tracepoints, where driver results are matched to devices by name); every packet sent costs two programs, each counting in a cache line of its CPU's while the device and the packet's class stay the same. Past the overhead budget (5% of a CPU, 1M program runs/s; \`--budget\` changes it) the session stops early and keeps its counts.

Replaces the seed's \`other/trace_dev_queue_xmit.bt\` (PROBES.md row 53).`,
  normal: `Every packet queued is taken by the driver with \`NETDEV_TX_OK\` (a shaping qdisc holds some back for a while); sizes follow the traffic (66-byte ACKs, MTU-sized data, large GSO packets on offloading devices). \`NETDEV_TX_BUSY\` or \`NET_XMIT_DROP\`/\`_CN\` are a warning (a full ring, a congested queue); any GSO anomaly is critical.`,
  replaces: ['other/trace_dev_queue_xmit.bt'],
  memory: { resized: { queue_pending: { perCpu: PENDING_WAYS }, xmit_pending: { perCpu: PENDING_WAYS } } },
  params: {
    duration: durationParam('How long to count.', { max: 3_600_000 }),
    ...NETDEV_PARAMS,
    top: topParam('How many devices to list (busiest first).', { default: 20, max: 1000 }),
  },
  ...tracepointRun(Object.values(TRACEPOINTS), DEV_QUEUE_BUDGET),
  data: DATA,
  collect,
  parse,
};
