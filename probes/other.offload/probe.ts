// other.offload: segmentation (GSO/TSO) and checksum offload of the packets each driver is
// handed (net:net_dev_start_xmit), aggregated in the kernel per device (probes/other.offload/other.offload.bpf.c),
// with the abnormal packets as findings naming the device. The GSO type names come from the
// kernel's BTF (capture `gso-types`), the session from capture records: a replay re-parses both.
import type { U64 } from '../../engine/native/btf-layout.js';
import type { BpfObject } from '../../engine/native/object.js';
import { captureRecord, runBpfSession } from '../../engine/probe/bpf-session.js';
import { countsOf, slotTotals } from '../../engine/probe/bpf-values.js';
import { histPercentile } from '../../engine/probe/bpftrace.js';
import type { OverheadBudget } from '../../engine/probe/budget.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, Severity, TableSpec } from '../../engine/probe/types.js';
import { deviceLabel, namespaceLabel, type NetdevId } from '../lib/netdev.js';
import { round } from '../lib/format.js';
import { sumBy } from '../lib/tally.js';
import { pendingWays, PENDING_WAYS } from '../lib/pending.js';
import { PROTOCOL_PARAM, readXmit, XMIT_PARAMS, XMIT_TRACEPOINT, xmitScope, xmitSession, xmitSessionData } from '../lib/xmit.js';
import { countBuckets, type SizeBucket } from '../lib/histogram.js';
import { captureGsoTypes, gsoTypeList, type GsoTypeNames } from './gso-types.js';
import { durationParam, topParam } from '../lib/params.js';
import { DATA, type OffloadAnomaly, type OffloadData, type OffloadDevice } from './data.js';
import { loadedTables, tracepointRun } from '../lib/bpf-probe.js';

export type { OffloadData, OffloadDevice };

/** probes/other.offload/other.offload.h */
const CSUM = ['none', 'unnecessary', 'complete', 'partial'] as const;
type Csum = Record<(typeof CSUM)[number], number>;
const TOTALS = { seen: 0, unkeyed: 1 };
/** OFFLOAD_SLOTS: log2 buckets of gso_size and gso_segs. */
const SLOTS = 17;
const zeros = (n: number) => new Array<number>(n).fill(0);

/**
 * What a session may cost: 5% of one CPU, 1M program runs/s. The program runs once per packet
 * handed to a driver (a GSO packet once, however many segments it carries): the device's fields
 * and the shared info, and for a packet not GSO one cache line of its CPU's while the device and
 * checksum state stay the same (a hash update otherwise, and for GSO packets).
 */
export const OFFLOAD_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 1_000_000 };

export interface OffloadEntry extends NetdevId {
  packets: number;
  bytes: number;
  gsoPackets: number;
  gsoBytes: number;
  gsoSegs: number;
  /** GSO packets per whole gso_type (from the `gso_types` map). */
  gsoTypes: Array<{ type: number; packets: number }>;
  sizeSlots: number[];
  segsSlots: number[];
  csum: number[];
  gsoCsum: number[];
  sizeWithoutType: number;
  sizeOverMtu: number;
  unsupported: number;
  oversize: number;
  /** Bit masks as decimal strings (u64). */
  unsupportedBits: string;
  features: string;
  mtu: number;
  maxGsoSize: number;
  maxLen: number;
}

export interface OffloadDump {
  seen: number;
  unkeyed: number;
  entries: OffloadEntry[];
}

/** struct offload_value, decoded. */
interface OffloadValue {
  packets: number;
  bytes: number;
  gso_packets: number;
  gso_bytes: number;
  gso_segs: number;
  size_slots: number[];
  segs_slots: number[];
  csum: number[];
  gso_csum: number[];
  size_without_type: number;
  size_over_mtu: number;
  unsupported: number;
  oversize: number;
  /** Bit masks: past 2^53 a bigint. */
  unsupported_bits: U64;
  features: U64;
  mtu: number;
  max_gso_size: number;
  max_len: number;
}

/** struct offload_pending, decoded: a CPU's non-GSO packets of one device and class not in `devices` yet. */
interface OffloadPending {
  dev: NetdevId;
  features: U64;
  packets: number;
  bytes: number;
  mtu: number;
  max_len: number;
  csum: number;
  oversize: number;
}

const emptyEntry = (d: NetdevId): OffloadEntry => ({
  ...d,
  packets: 0,
  bytes: 0,
  gsoPackets: 0,
  gsoBytes: 0,
  gsoSegs: 0,
  gsoTypes: [],
  sizeSlots: zeros(SLOTS),
  segsSlots: zeros(SLOTS),
  csum: zeros(CSUM.length),
  gsoCsum: zeros(CSUM.length),
  sizeWithoutType: 0,
  sizeOverMtu: 0,
  unsupported: 0,
  oversize: 0,
  unsupportedBits: '0',
  features: '0',
  mtu: 0,
  maxGsoSize: 0,
  maxLen: 0,
});

/** Adds a way's packets to its device's entry (a new one when `devices` has none). */
function addWay(byDevice: Map<string, OffloadEntry>, w: OffloadPending): void {
  const id = deviceKey(w.dev);
  const e = byDevice.get(id) ?? emptyEntry({ ifindex: w.dev.ifindex, netns: w.dev.netns, name: w.dev.name });
  byDevice.set(id, e);
  e.packets += w.packets;
  e.bytes += w.bytes;
  e.csum[w.csum] = (e.csum[w.csum] ?? 0) + w.packets;
  if (w.oversize) e.oversize += w.packets;
  e.maxLen = Math.max(e.maxLen, w.max_len);
  e.mtu = w.mtu;
  e.features = String(w.features);
}

const deviceKey = (d: NetdevId) => `${d.ifindex}/${d.netns}/${d.name}`;

/** Reads the `devices` map, the ways not moved into it yet and the totals (exported for the tests that load a flavour by hand). */
export function readOffload(o: BpfObject): OffloadDump {
  const types = countsOf(o.map('gso_types'), (k: { dev: NetdevId; gso_type: number }) => ({ id: deviceKey(k.dev), type: k.gso_type }));
  const byDevice = new Map<string, OffloadEntry>();
  for (const { key: { ifindex, netns, name }, value: v } of o.map('devices').readAllDecoded<NetdevId, OffloadValue>()) {
    const id = deviceKey({ ifindex, netns, name });
    const gsoTypes = types.filter((t) => t.id === id).map((t) => ({ type: t.type, packets: t.count })).sort((a, b) => b.packets - a.packets || a.type - b.type);
    byDevice.set(id, {
      ifindex,
      netns,
      name,
      packets: v.packets,
      bytes: v.bytes,
      gsoPackets: v.gso_packets,
      gsoBytes: v.gso_bytes,
      gsoSegs: v.gso_segs,
      gsoTypes,
      sizeSlots: v.size_slots,
      segsSlots: v.segs_slots,
      csum: v.csum,
      gsoCsum: v.gso_csum,
      sizeWithoutType: v.size_without_type,
      sizeOverMtu: v.size_over_mtu,
      unsupported: v.unsupported,
      oversize: v.oversize,
      unsupportedBits: String(v.unsupported_bits),
      features: String(v.features),
      mtu: v.mtu,
      maxGsoSize: v.max_gso_size,
      maxLen: v.max_len,
    });
  }
  const ways = pendingWays<OffloadPending>(o);
  for (const w of ways) addWay(byDevice, w);
  const entries = [...byDevice.values()];
  entries.sort((a, b) => b.packets - a.packets || a.ifindex - b.ifindex || a.netns - b.netns || a.name.localeCompare(b.name));
  const totals = slotTotals(o.map('totals'), TOTALS);
  return { seen: totals.seen + sumBy(ways, (w) => w.packets), unkeyed: totals.unkeyed, entries };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  await captureGsoTypes(io);
  await runBpfSession(io, xmitSession(params, { object: 'other.offload', prefix: 'offload_xmit', what: 'other.offload', read: readOffload }));
}

/** The kinds of abnormal packets, worst first. */
export const ANOMALIES = ['unsupportedType', 'sizeWithoutType', 'checksumMismatch', 'sizeOverMtu', 'oversize'] as const;
export type AnomalyKind = (typeof ANOMALIES)[number];

const ANOMALY_TEXT: Record<AnomalyKind, string> = {
  unsupportedType: 'GSO packets of a type the device does not offload reached its driver',
  sizeWithoutType: 'packets with a gso_size but no gso_type (segmentation cannot tell how to cut them)',
  checksumMismatch: 'GSO packets not in CHECKSUM_PARTIAL (segmentation needs a checksum it can finish per segment)',
  sizeOverMtu: 'GSO packets whose gso_size is larger than the MTU (every segment is too big for the link)',
  oversize: 'non-GSO packets longer than the MTU plus the link header (the driver or the peer drops them)',
};
const CRITICAL: ReadonlySet<AnomalyKind> = new Set(['unsupportedType', 'sizeWithoutType', 'checksumMismatch']);

const median = (b: SizeBucket[]) => histPercentile(b.map((x) => ({ low: x.low, high: x.high, count: x.packets })), 50) ?? 0;
const csumOf = (counts: number[]) => Object.fromEntries(CSUM.map((n, i) => [n, counts[i] ?? 0])) as Csum;
const hex = (decimal: string) => `0x${BigInt(decimal).toString(16)}`;

function deviceOf(e: OffloadEntry, dump: Parameters<typeof deviceLabel>[1], names: GsoTypeNames): OffloadDevice {
  const gsoSize = countBuckets(e.sizeSlots, 'packets');
  const gsoSegs = countBuckets(e.segsSlots, 'packets');
  const gsoTypes: Record<string, number> = {};
  const gsoTypeSets: Record<string, number> = {};
  for (const t of e.gsoTypes) {
    const bits = gsoTypeList(t.type, names);
    for (const bit of bits) gsoTypes[bit] = (gsoTypes[bit] ?? 0) + t.packets;
    const set = bits.length > 0 ? bits.join('|') : 'none';
    gsoTypeSets[set] = (gsoTypeSets[set] ?? 0) + t.packets;
  }
  const gsoChecksum = csumOf(e.gsoCsum);
  return {
    device: deviceLabel(e, dump),
    dev: e.name,
    ifindex: e.ifindex,
    netns: namespaceLabel(e.netns, dump),
    mtu: e.mtu,
    features: hex(e.features),
    packets: e.packets,
    bytes: e.bytes,
    gsoPackets: e.gsoPackets,
    gsoBytes: e.gsoBytes,
    nonGsoPackets: e.packets - e.gsoPackets,
    nonGsoBytes: e.bytes - e.gsoBytes,
    gsoSegments: e.gsoSegs,
    meanGsoSegs: e.gsoPackets > 0 ? round(e.gsoSegs / e.gsoPackets, 2) : 0,
    maxGsoSize: e.maxGsoSize,
    maxLen: e.maxLen,
    gsoTypes,
    gsoTypeSets,
    gsoSize,
    gsoSegs,
    p50GsoSize: median(gsoSize),
    p50GsoSegs: median(gsoSegs),
    checksum: csumOf(e.csum),
    gsoChecksum,
    anomalies: {
      unsupportedType: e.unsupported,
      sizeWithoutType: e.sizeWithoutType,
      // On transmit, segmentation wants CHECKSUM_PARTIAL (UNNECESSARY passes skb_gso_segment's check too).
      checksumMismatch: gsoChecksum.none + gsoChecksum.complete,
      sizeOverMtu: e.sizeOverMtu,
      oversize: e.oversize,
    },
    unsupportedTypes: gsoTypeList(Number(BigInt(e.unsupportedBits) & 0xffffffffn), names),
  };
}

function anomalyDetail(kind: AnomalyKind, d: OffloadDevice): string {
  switch (kind) {
    case 'unsupportedType':
      return `${d.unsupportedTypes.join(', ')} not in the device's features ${d.features}`;
    case 'checksumMismatch':
      return `CHECKSUM_NONE ${d.gsoChecksum.none}, CHECKSUM_COMPLETE ${d.gsoChecksum.complete}`;
    case 'sizeOverMtu':
      return `gso_size up to ${d.maxGsoSize} on MTU ${d.mtu}`;
    case 'oversize':
      return `up to ${d.maxLen} bytes on MTU ${d.mtu}`;
    default:
      return ANOMALY_TEXT[kind];
  }
}

function sum(list: OffloadDevice[], f: (d: OffloadDevice) => Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of list) for (const [k, n] of Object.entries(f(d))) out[k] = (out[k] ?? 0) + n;
  return out;
}

function parse(records: RawRecord[], params: Params): ProbeResult<OffloadData> {
  const { attach, dump, overhead } = readXmit<OffloadDump>(records);
  const names = JSON.parse(captureRecord(records, 'gso-types').stdout) as GsoTypeNames;
  const top = Math.max(1, (params.top as number | undefined) ?? 20);
  const session = xmitSessionData(attach, dump, overhead);
  if (Object.keys(names).length === 0) session.notes.push('GSO type names could not be read from the kernel BTF (bpftool): types are shown by bit');
  if (dump.unkeyed > 0) session.notes.push(`${dump.unkeyed} packets were counted but not kept per device: the map was full`);

  const all = dump.entries.map((e) => deviceOf(e, dump, names));
  all.sort((a, b) => b.packets - a.packets || b.bytes - a.bytes || a.device.localeCompare(b.device));
  const anomalies: OffloadAnomaly[] = ANOMALIES.flatMap((kind) =>
    all.filter((d) => d.anomalies[kind] > 0).map((d) => ({ kind, device: d.device, packets: d.anomalies[kind], detail: anomalyDetail(kind, d) })),
  );
  const devices = all.slice(0, top);
  const data: OffloadData = {
    ...session,
    packets: sumBy(all, (d) => d.packets),
    bytes: sumBy(all, (d) => d.bytes),
    gsoPackets: sumBy(all, (d) => d.gsoPackets),
    nonGsoPackets: sumBy(all, (d) => d.nonGsoPackets),
    gsoSegments: sumBy(all, (d) => d.gsoSegments),
    gsoTypes: sum(all, (d) => d.gsoTypes),
    checksum: sum(all, (d) => d.checksum) as Csum,
    anomalies,
    anomalyPackets: sumBy(anomalies, (a) => a.packets),
    devices,
    deviceCount: all.length,
    lost: dump.unkeyed,
  };
  if (all.length === 0) data.checksum = csumOf([]);

  const secs = `${(dump.windowMs / 1000).toFixed(1)}s`;
  let summary: string;
  const lead = all[0];
  if (!lead) summary = `nothing handed to ${xmitScope(attach.filter)} for transmit in ${secs} (${attach.method})`;
  else {
    const types = Object.entries(lead.gsoTypes).map(([t, n]) => `${t} ${n}`).join(', ');
    const gso = lead.gsoPackets > 0 ? `${lead.gsoPackets} GSO (${types}; ${lead.meanGsoSegs} segments each on average, gso_size up to ${lead.maxGsoSize})` : 'no GSO';
    const more = all.length > 1 ? `; ${data.packets} packets on ${all.length} devices in all` : '';
    summary = `${lead.device}: ${lead.packets} packets in ${secs}, ${gso}, ${lead.nonGsoPackets} not GSO${more}`;
  }
  if (anomalies.length > 0) summary += ` (abnormal: ${anomalies.map((a) => `${a.packets} ${a.kind} on ${a.device}`).join(', ')})`;
  if (session.stopped) summary += ` (stopped: ${session.stopped})`;
  const severity: Severity = anomalies.some((a) => CRITICAL.has(a.kind)) ? 'critical' : anomalies.length > 0 ? 'warning' : 'info';

  const charts: ChartSpec[] = devices
    .filter((d) => d.gsoPackets > 0)
    .flatMap((d): ChartSpec[] => [
      { kind: 'histogram', title: `${d.device}: gso_size of GSO packets (log2 buckets)`, unit: 'bytes', buckets: d.gsoSize.map((b) => ({ low: b.low, high: b.high, count: b.packets })) },
      { kind: 'histogram', title: `${d.device}: gso_segs of GSO packets (log2 buckets)`, unit: 'segments', buckets: d.gsoSegs.map((b) => ({ low: b.low, high: b.high, count: b.packets })) },
    ]);
  if (devices.length > 1) charts.unshift({ kind: 'bar', title: 'GSO packets per device', unit: 'packets', bars: devices.map((d) => ({ label: d.device, value: d.gsoPackets })) });
  const typeNames = Object.keys(data.gsoTypes);
  const tables: TableSpec[] = [
    {
      title: 'Packets handed to each driver: segmentation and checksum offload',
      columns: ['device', 'MTU', 'packets', 'bytes', 'GSO', 'not GSO', 'segments', 'mean segs', 'max gso_size', 'CSUM NONE', 'UNNECESSARY', 'COMPLETE', 'PARTIAL'],
      rows: devices.map((d) => [d.device, d.mtu, d.packets, d.bytes, d.gsoPackets, d.nonGsoPackets, d.gsoSegments, d.meanGsoSegs, d.maxGsoSize, d.checksum.none, d.checksum.unnecessary, d.checksum.complete, d.checksum.partial]),
    },
    ...(typeNames.length > 0 ? [{ title: 'GSO packets per gso_type', columns: ['device', ...typeNames], rows: devices.filter((d) => d.gsoPackets > 0).map((d) => [d.device, ...typeNames.map((t) => d.gsoTypes[t] ?? 0)]) }] : []),
    ...(anomalies.length > 0 ? [{ title: 'Abnormal packets', columns: ['kind', 'device', 'packets', 'detail'], rows: anomalies.map((a) => [a.kind, a.device, a.packets, a.detail]) }] : []),
    ...loadedTables(attach, overhead),
  ];
  return { data, summary, severity, charts, tables };
}

export const otherOffload: ProbeDefinition<OffloadData> = {
  id: 'other.offload',
  title: 'Segmentation (GSO/TSO) and checksum offload of the packets handed to drivers',
  description: `Looks at every packet handed to a driver (\`net:net_dev_start_xmit\`, after the stack has segmented in software what the device cannot take) for \`duration\` and counts, in the kernel per device and namespace: GSO packets (\`gso_size\` set: the device or its peer cuts them into \`gso_segs\` segments) and non-GSO packets with their bytes, the GSO types by name (\`TCPV4\`, \`TCPV6\`, \`UDP_L4\`, \`UDP_TUNNEL\`..., named from the running kernel's BTF; per bit and per whole set of bits such as \`TCPV4|TCP_ECN\`), log2 histograms of \`gso_size\` and \`gso_segs\`, and the checksum state (\`ip_summed\`: NONE, UNNECESSARY, COMPLETE, PARTIAL). Abnormal packets are findings naming the device:

- **unsupportedType**: a GSO type the device does not offload (not in its \`features\`) reached its driver;
- **sizeWithoutType**: a \`gso_size\` without a \`gso_type\` (segmentation cannot tell how to cut it; the seed tools' anomaly);
- **checksumMismatch**: a GSO packet in CHECKSUM_NONE or CHECKSUM_COMPLETE (segmentation finishes a CHECKSUM_PARTIAL checksum per segment);
- **sizeOverMtu**: \`gso_size\` above the device's MTU (every segment too big for the link);
- **oversize**: a non-GSO packet longer than MTU + link header.

Use it when large transfers stall or are slow through a VM's path (a tap, a bridge, a tunnel, a VLAN device): whether segmentation is offloaded where you think, and how big the super-packets are. \`dev\`/\`netns\` and the address, port and protocol filters apply in the kernel. Attaches one tp_btf program, whose reads are plain loads (falls back to raw_tp with a cached minimal BTF, then the classic tracepoint); it runs once per packet handed to a driver (a GSO packet once) and reads the headers only for an address, port or protocol filter. A CPU counts packets that are not GSO in a cache line of its own while the device and checksum state stay the same, and moves them to the device's entry when they change. Past the overhead budget (5% of a CPU, 1M runs/s) the session stops early and keeps its counts.

Replaces the seed's \`other/trace_offloading_segment.bt\` (PROBES.md row 49), which printed gso_size, gso_type and the device features of each Geneve packet at kprobes on the tunnel transmit and segmentation functions.`,
  normal: `On a device with TSO/GSO on (veth, tap, virtio, most NICs), bulk TCP leaves as a few GSO packets of type \`TCPV4\`/\`TCPV6\` with \`gso_size\` the MSS (1448 on a 1500 MTU) and tens of segments each, in CHECKSUM_PARTIAL; ACKs and small packets are not GSO. With offloads off, nothing is GSO (the stack segmented in software before the driver). Any unsupportedType, sizeWithoutType or checksumMismatch is critical (a broken driver, tunnel or VM offload path); sizeOverMtu or oversize is a warning (an MTU mismatch).`,
  replaces: ['other/trace_offloading_segment.bt'],
  memory: { resized: { pending: { perCpu: PENDING_WAYS } } },
  params: {
    duration: durationParam('How long to count.', { max: 3_600_000 }),
    ...XMIT_PARAMS,
    protocol: PROTOCOL_PARAM,
    top: topParam('How many devices to list (busiest first).', { default: 20, max: 1000 }),
  },
  ...tracepointRun([XMIT_TRACEPOINT], OFFLOAD_BUDGET),
  data: DATA,
  collect,
  parse,
};
