// perf.host-latency: how long IPv4 packets spend in each stage of this host's network stack,
// both ways, each packet followed by its skb through tracepoints (probes/perf.host-latency/perf.host-latency.bpf.c, native
// driver): TX from net_dev_queue through the qdisc to the driver, RX from the driver's hand-off
// to the socket. Histograms are aggregated in the kernel; what the session saw is recorded as
// capture records, so a replay re-parses it without loading anything.
import { loadedFields, type LoadedRecord } from '../../engine/native/attach-plan.js';
import type { BpfObject } from '../../engine/native/object.js';
import { hasTracepoint } from '../../engine/host/tracefs.js';
import { captureRecord, planLoad, readBpfSession, runBpfSession } from '../../engine/probe/bpf-session.js';
import { ipv4Bytes } from '../../engine/probe/bpf-values.js';
import { overheadOf, type OverheadBudget } from '../../engine/probe/overhead.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, Severity, TableSpec } from '../../engine/probe/types.js';
import { NETNS_PARAM, resolveDeviceFilter, type DeviceFilter } from '../lib/devices.js';
import { captureReasonFormat, parseReasonNames } from '../lib/drop-reasons.js';
import { fmtUs, round } from '../lib/format.js';
import { CRITICAL_P99_US, layerStats, WARN_P99_US, type LatHist, type LayerStats } from '../lib/lathist.js';
import { addressParams, durationParam, protocolNumber, protocolParam } from '../lib/params.js';
import { HOOKS, hooksFor, loadHostLat, type HostLatMethod } from './attach.js';
import { DATA, type HostLatencyData } from './data.js';
import { readCpuTotals, trackedPaths } from './maps.js';

export type { HostLatencyData };
import { recorded } from '../lib/recorded.js';
import { loadedTables, tracepointRun } from '../lib/bpf-probe.js';

/*
 * Layouts of perf.host-latency.h.
 */
const DIRS = ['tx', 'rx'] as const;
export type Direction = (typeof DIRS)[number];

/** The stages in path order (enum hostlat_stage), the way each is named, and the tracepoint that stamps it. */
export const STAGES = [
  { id: 'queue', dir: 'tx', tracepoint: 'net_dev_queue', what: 'handed to the device (path start)' },
  { id: 'enqueue', dir: 'tx', tracepoint: 'qdisc_enqueue', what: 'net_dev_queue → qdisc_enqueue (tc egress, classification)' },
  { id: 'qdisc', dir: 'tx', tracepoint: 'qdisc_dequeue', what: 'qdisc_enqueue → qdisc_dequeue (the wait in the qdisc)' },
  { id: 'start_xmit', dir: 'tx', tracepoint: 'net_dev_start_xmit', what: 'previous stamp → net_dev_start_xmit (to the driver)' },
  { id: 'driver', dir: 'tx', tracepoint: 'net_dev_xmit', what: 'net_dev_start_xmit → net_dev_xmit (the driver took it)' },
  { id: 'rx_entry', dir: 'rx', tracepoint: 'napi_gro_receive_entry / netif_receive_skb_entry / netif_rx_entry', what: 'the driver hands it to the stack (path start)' },
  { id: 'backlog', dir: 'rx', tracepoint: 'netif_receive_skb', what: 'rx entry → netif_receive_skb (GRO, the backlog queue, RPS)' },
  { id: 'socket', dir: 'rx', tracepoint: 'sk_data_ready', what: 'netif_receive_skb → the socket has it (IP, netfilter, TCP/UDP)' },
] as const;
export type StageId = (typeof STAGES)[number]['id'];
/** The stages that open a path: packets are counted there, not timed. */
const FIRST: ReadonlySet<StageId> = new Set(['queue', 'rx_entry']);
const C_DIR_BASE = STAGES.length;
const C_PER_DIR = 6;
const DIR_COUNTERS = ['started', 'done', 'dropped', 'ended', 'replaced', 'slow'] as const;

/** The statistics of a stage no packet was timed through. */
const UNTIMED: LayerStats = { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0, buckets: [] };

/**
 * What a session may cost: 5% of one CPU, 1M program runs/s. The programs run on every packet
 * of every device at each stage (up to nine tracepoints a packet) and on every freed skb; a
 * packet the filters rule out costs a device read and, at its first stage only, the header
 * reads; later stages read one line of the skb table. Measured here (BPF run statistics, a UDP
 * flood through a veth, test/bench/cost.ts): ~100 ns a run, ~600 ns a packet timed both ways
 * (six runs, five clock reads); an untracked skb freed ~55 ns. So the budget is reached near
 * 80k packets/s; past it the session stops early and keeps the histograms up to then.
 */
export const HOST_LATENCY_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 1_000_000 };

interface Filters {
  srcIp: string | null;
  dstIp: string | null;
  srcPort: number;
  dstPort: number;
  protocol: string;
  direction: 'both' | Direction;
  /** Completed packets with a total of at least this are counted (`slow`); 0: not counted. */
  latencyUs: number;
}

/** The `setup` capture: where and what the programs filter. */
interface SetupCapture extends DeviceFilter {
  filters: Filters;
  /** The kernel has sock:sk_data_ready (absent from older kernels: the RX path then ends at netif_receive_skb). Absent: true (older records). */
  socketStage?: boolean;
}

type AttachCapture = LoadedRecord<HostLatMethod>;

/** The `dump` capture: histograms, counters, drops and what was still on its way, summed over CPUs. */
interface DumpCapture {
  windowMs: number;
  /** By hist index: stages, then the total of each direction. */
  hists: Array<LatHist & { index: number }>;
  counters: number[];
  drops: Array<{ reason: number; dir: number; stage: number; count: number }>;
  /** Tracked skbs left in each direction's table at the end, by latest stage, and the oldest's age. */
  left: Record<Direction, { byStage: Record<string, number>; oldestMs: number | null }>;
}

// ---- collect ----

async function resolveSetup(params: Params, io: ProbeIO): Promise<SetupCapture> {
  for (const ip of [params.src_ip, params.dst_ip]) ipv4Bytes(ip);
  const device = await resolveDeviceFilter(params, io);
  return {
    ...device,
    filters: {
      srcIp: (params.src_ip as string | undefined) || null,
      dstIp: (params.dst_ip as string | undefined) || null,
      srcPort: (params.src_port as number | undefined) ?? 0,
      dstPort: (params.dst_port as number | undefined) ?? 0,
      protocol: String(params.protocol ?? 'any'),
      direction: (params.direction as Filters['direction'] | undefined) ?? 'both',
      latencyUs: (params.latency_us as number | undefined) ?? 0,
    },
    socketStage: await hasTracepoint('sock:sk_data_ready'),
  };
}

function globalsOf(s: SetupCapture) {
  const any = new Uint8Array(4);
  const f = s.filters;
  return {
    targ_ifindex: s.ifindex,
    targ_netns: s.netnsInode,
    targ_saddr: ipv4Bytes(f.srcIp) ?? any,
    targ_daddr: ipv4Bytes(f.dstIp) ?? any,
    targ_sport: f.srcPort,
    targ_dport: f.dstPort,
    targ_proto: protocolNumber(f.protocol),
    targ_dirs: f.direction === 'tx' ? 1 : f.direction === 'rx' ? 2 : 3,
    threshold_ns: BigInt(Math.round(f.latencyUs * 1000)),
    rx_ends_at_receive: s.socketStage === false,
  };
}

/** Reads the maps (programs detached already). */
function dumpMaps(o: BpfObject, windowMs: number): DumpCapture {
  const totals = readCpuTotals(o);
  const hists: DumpCapture['hists'] = [];
  totals.hists.forEach((h, index) => h && hists.push({ index, ...h }));
  const drops = totals.drops.sort((a, b) => a.dir - b.dir || a.stage - b.stage || a.reason - b.reason);
  const nowNs = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
  const paths = trackedPaths(o);
  const left = {} as DumpCapture['left'];
  DIRS.forEach((dir, di) => {
    const entry: DumpCapture['left'][Direction] = { byStage: {}, oldestMs: null };
    for (const p of paths[di]!) {
      const stage = STAGES[p.stage]?.id ?? 'unknown';
      entry.byStage[stage] = (entry.byStage[stage] ?? 0) + 1;
      entry.oldestMs = Math.max(entry.oldestMs ?? 0, round(Number(nowNs - p.firstTs) / 1e6));
    }
    left[dir] = entry;
  });
  return { windowMs, hists, counters: totals.counters, drops, left };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  // The lookups are exec records of their own (a replay answers them again); the capture keeps what they resolved to.
  const resolved = await resolveSetup(params, io);
  const setup = await recorded<SetupCapture>(io, 'setup', () => resolved);
  await captureReasonFormat(io, 'reasons');
  const hooks = hooksFor(setup.filters.direction).filter((h) => setup.socketStage !== false || !h.optional);
  const load = planLoad(() => loadHostLat(globalsOf(setup), hooks));
  await runBpfSession(io, { load, window: params.duration as number, detachToRead: true, read: (o, w) => dumpMaps(o, round(w.ms)) });
}

// ---- parse ----

const DIR_TEXT: Record<Direction, string> = { tx: 'TX', rx: 'RX' };

function dirsOf(direction: Filters['direction']): Direction[] {
  return direction === 'both' ? [...DIRS] : [direction];
}

function parse(records: RawRecord[]): ProbeResult<HostLatencyData> {
  const setup = JSON.parse(captureRecord(records, 'setup').stdout) as SetupCapture;
  const { attach: att, dump } = readBpfSession<AttachCapture, DumpCapture>(records);
  const reasonNames = parseReasonNames(captureRecord(records, 'reasons').stdout);
  const overhead = overheadOf(records);
  const dirs = dirsOf(setup.filters.direction);
  const histOf = (index: number) => dump.hists.find((h) => h.index === index);
  const notes: string[] = [];

  const stages: HostLatencyData['stages'] = {};
  const socketStage = setup.socketStage !== false;
  if (!socketStage && dirs.includes('rx')) notes.push('RX: this kernel has no sock:sk_data_ready tracepoint, so the RX path ends at netif_receive_skb: the socket stage is not measured');
  STAGES.forEach((s, i) => {
    if (!dirs.includes(s.dir) || (s.id === 'socket' && !socketStage)) return;
    const h = histOf(i);
    stages[s.id] = { direction: s.dir, stage: s.id, tracepoint: s.tracepoint, packets: dump.counters[i] ?? 0, ...(h ? layerStats(h) : UNTIMED) };
  });
  const totals: HostLatencyData['totals'] = {};
  const packets: HostLatencyData['packets'] = {};
  for (const dir of dirs) {
    const di = DIRS.indexOf(dir);
    const total = histOf(STAGES.length + di);
    if (total) totals[dir] = layerStats(total);
    const c = Object.fromEntries(DIR_COUNTERS.map((name, k) => [name, dump.counters[C_DIR_BASE + di * C_PER_DIR + k] ?? 0])) as Record<(typeof DIR_COUNTERS)[number], number>;
    const inFlight = Object.values(dump.left[dir].byStage).reduce((a, b) => a + b, 0);
    packets[dir] = {
      started: c.started,
      completed: c.done,
      dropped: c.dropped,
      ended: c.ended,
      inFlight,
      evicted: Math.max(0, c.started - c.done - c.dropped - c.ended - inFlight),
      slow: c.slow,
    };
  }
  const drops = dump.drops
    .filter((d) => DIRS[d.dir] !== undefined && STAGES[d.stage] !== undefined)
    .map((d) => ({ direction: DIRS[d.dir]!, stage: STAGES[d.stage]!.id, reason: reasonNames.get(d.reason) ?? `REASON_${d.reason}`, count: d.count }))
    .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));

  // The slowest stage: the highest P99 among the timed stages; its share of its path's mean total.
  const timed = Object.values(stages).filter((s) => !FIRST.has(s.stage) && s.count > 0);
  timed.sort((a, b) => b.p99 - a.p99 || STAGES.findIndex((x) => x.id === a.stage) - STAGES.findIndex((x) => x.id === b.stage));
  const top = timed[0];
  const slowest = top
    ? { direction: top.direction, stage: top.stage, p99: top.p99, share: totals[top.direction]?.mean ? round(Math.min(1, top.mean / totals[top.direction]!.mean)) : 0 }
    : null;

  for (const dir of dirs) {
    const p = packets[dir]!;
    const t = DIR_TEXT[dir];
    if (p.dropped > 0) notes.push(`${t}: ${p.dropped} packets dropped on the way (see the drops table)`);
    if (p.evicted > 0) notes.push(`${t}: ${p.evicted} packets were stamped but their end was never seen (evicted from the table, or the skb reused)`);
    if (p.inFlight > 0) notes.push(`${t}: ${p.inFlight} packets still on their way at the end (${Object.entries(dump.left[dir].byStage).map(([s, n]) => `${n} after ${s}`).join(', ')}; the oldest for ${fmtUs((dump.left[dir].oldestMs ?? 0) * 1000)})`);
    if (setup.filters.latencyUs > 0) notes.push(`${t}: ${p.slow} of ${p.completed} completed packets took ${fmtUs(setup.filters.latencyUs)} or more end to end`);
    if (dir === 'tx' && p.ended > 0) notes.push(`TX: the driver refused ${p.ended} packets (net_dev_xmit error)`);
    if (dir === 'rx' && p.ended > 0) notes.push(`RX: ${p.ended} packets were consumed by the kernel before any socket (ICMP echo, TCP segments merged into an earlier one, ...)`);
  }
  if (dirs.includes('tx') && (stages.queue?.packets ?? 0) > 0 && (stages.qdisc?.packets ?? 0) === 0) {
    notes.push('TX: no qdisc stage: the devices have no queue (noqueue, as veth and virtual devices by default)');
  }
  if (overhead?.stopped) notes.push(`stopped early: ${overhead.stopped}`);

  const data: HostLatencyData = {
    dev: setup.dev,
    ifindex: setup.ifindex,
    netns: setup.netns,
    filters: setup.filters,
    ...loadedFields(att),
    attachMs: round(att.attach.reduce((s, a) => s + a.attachMs, 0)),
    windowMs: dump.windowMs,
    ...(overhead ? { overhead } : {}),
    stages,
    totals,
    packets,
    drops,
    lostEvents: 0,
    slowest,
    notes,
  };

  // Summary: per direction its packets and timed stages, the slowest one first.
  const secs = `${(dump.windowMs / 1000).toFixed(1)}s`;
  const parts = dirs.flatMap((dir) => {
    const list = timed.filter((s) => s.direction === dir).map((s) => `${s.stage} p99 ${fmtUs(s.p99)}`);
    const n = packets[dir]!.started;
    if (n === 0) return [];
    const dropped = packets[dir]!.dropped > 0 ? `, ${packets[dir]!.dropped} dropped` : '';
    return [`${DIR_TEXT[dir]} (${n} packet${n === 1 ? '' : 's'}${dropped}): ${list.join(', ') || 'no stage timed'}`];
  });
  let summary = parts.length === 0 ? `no IPv4 packet matched in ${secs}` : `${slowest ? `slowest stage ${DIR_TEXT[slowest.direction]} ${slowest.stage} (p99 ${fmtUs(slowest.p99)}); ` : ''}${parts.join('; ')}`;
  if (overhead?.stopped) summary += ` (stopped: ${overhead.stopped})`;

  const worstUs = slowest?.p99 ?? 0;
  const anyDrop = dirs.some((d) => packets[d]!.dropped > 0);
  const severity: Severity = worstUs >= CRITICAL_P99_US ? 'critical' : worstUs >= WARN_P99_US || anyDrop ? 'warning' : 'info';

  const charts: ChartSpec[] = [];
  for (const dir of dirs) {
    const list = timed.filter((s) => s.direction === dir).sort((a, b) => STAGES.findIndex((x) => x.id === a.stage) - STAGES.findIndex((x) => x.id === b.stage));
    if (list.length > 0) charts.push({ kind: 'layers', title: `${DIR_TEXT[dir]}: mean time per stage`, unit: 'µs', layers: list.map((s) => s.stage), rows: [{ label: DIR_TEXT[dir], values: list.map((s) => s.mean) }] });
    for (const s of list) {
      charts.push({
        kind: 'histogram',
        title: `${DIR_TEXT[dir]} ${s.stage} latency (${s.tracepoint}; log2 buckets)`,
        unit: 'µs',
        buckets: s.buckets.map((b) => ({ low: b.lowUs, high: b.highUs, count: b.count })),
        percentiles: { P50: s.p50, P95: s.p95, P99: s.p99, max: s.max },
      });
    }
  }
  const stageRows = Object.values(stages).map((s) => [DIR_TEXT[s.direction], s.stage, s.tracepoint, s.packets, s.count, s.p50, s.p95, s.p99, s.max, s.mean]);
  const totalRows = dirs.flatMap((dir) => {
    const t = totals[dir];
    return t ? [[DIR_TEXT[dir], 'total', 'first stamp → end', packets[dir]!.started, t.count, t.p50, t.p95, t.p99, t.max, t.mean]] : [];
  });
  const tables: TableSpec[] = [
    {
      title: 'Latency per stage (µs since the previous stamp; percentiles within ~25%, max exact)',
      columns: ['direction', 'stage', 'tracepoint', 'packets', 'timed', 'P50', 'P95', 'P99', 'max', 'mean'],
      rows: [...stageRows, ...totalRows],
    },
    {
      title: 'Packets per direction',
      columns: ['direction', 'started', 'completed', 'dropped', 'ended (TX: xmit error; RX: consumed)', 'in flight', 'evicted', `slow (≥ ${setup.filters.latencyUs} µs)`],
      rows: dirs.map((dir) => {
        const p = packets[dir]!;
        return [DIR_TEXT[dir], p.started, p.completed, p.dropped, p.ended, p.inFlight, p.evicted, setup.filters.latencyUs > 0 ? p.slow : '-'];
      }),
    },
  ];
  if (drops.length > 0) tables.push({ title: 'Drops by reason', columns: ['direction', 'after stage', 'reason', 'packets'], rows: drops.map((d) => [DIR_TEXT[d.direction], d.stage, d.reason, d.count]) });
  tables.push(...loadedTables(att, overhead));
  return { data, summary, severity, charts, tables };
}

export const perfHostLatency: ProbeDefinition<HostLatencyData> = {
  id: 'perf.host-latency',
  title: "Latency of packets per stage of the host's network stack",
  description: `Times IPv4 packets through each stage of this host's network stack for \`duration\`, each packet followed by its skb, and names the stage that adds the most delay (\`slowest\`, with its P99) with the packets, P50/P95/P99/max and mean of every stage (\`stages.<id>\`), in µs since the packet's previous stamp:

- **TX**: \`net_dev_queue\` (queue) → \`qdisc_enqueue\` (**enqueue**: tc egress, classification) → \`qdisc_dequeue\` (**qdisc**: the wait in the queue or shaper) → \`net_dev_start_xmit\` (**start_xmit**) → \`net_dev_xmit\` (**driver**);
- **RX**: \`napi_gro_receive_entry\` / \`netif_receive_skb_entry\` / \`netif_rx_entry\` (rx_entry) → \`netif_receive_skb\` (**backlog**: GRO, the per-CPU backlog, RPS) → \`sk_data_ready\` of the packet's socket (**socket**: IP, netfilter, TCP/UDP until the socket has it);
- **total** per direction: first stamp to end.

A stage a packet skips (no qdisc on a noqueue device such as veth, no RX entry tracepoint on its path) is not stamped; the next stage is timed from the previous stamp. Packets freed by \`kfree_skb\` on the way are counted as drops by reason and stage; RX packets consumed before a socket (an ICMP echo the kernel answers) are counted apart. The skb table is direct-mapped by address (16384 entries, both directions of an skb in one), so packets whose end is never seen cannot fill it: overwritten by a later skb, they are counted as \`evicted\`; those left at the end as \`inFlight\`. Nothing is streamed, so no event is lost (\`lostEvents\` 0). Filters apply in the kernel at a packet's first stage: \`dev\` (the device it is first seen on; with \`netns\`, a device of that namespace), \`netns\`, \`src_ip\`, \`dst_ip\`, \`src_port\`, \`dst_port\`, \`protocol\`, \`direction\`; with \`latency_us\` the packets whose total reaches it are counted (\`packets.<dir>.slow\`). Histograms are aggregated there (log-linear buckets: percentiles within ~25%, max exact).

Use it when the host itself may add latency: a qdisc stage of milliseconds is a shaper or a deep queue, a backlog stage of milliseconds a busy CPU's softirq, a socket stage netfilter or a slow protocol path. Tracepoints only (tp_btf, else raw_tp with a cached minimal BTF, else classic tracepoints). The socket stage ends when the socket is told data is ready (the packet's protocol and local port), so TCP segments merged into an earlier one and packets to raw sockets end as consumed, not delivered. A kernel without the \`sock:sk_data_ready\` tracepoint (Debian 12's 6.1 has none) has no socket stage: the RX path ends at \`netif_receive_skb\`, and a note says so. Past its overhead budget (5% of a CPU, 1M program runs/s; \`--budget\` changes it) the session stops early and keeps the histograms up to then.

Replaces the seed's \`system_network_latency_details.py\` (PROBES.md row 33), whose OVS internal-port stages (kprobes) are left to ovs.* probes.`,
  normal: `Every stage of a few µs to some tens of µs on an idle host: enqueue and start_xmit under ~5 µs, a qdisc of a few µs without a shaper, a driver of a few µs (veth: the peer's enqueue), a backlog of tens of µs, a socket of ~10-50 µs. A stage with a P99 of milliseconds is where the delay comes from (flagged above 1 ms, critical above 10 ms); drops are named by reason.`,
  replaces: ['system_network_latency_details.py'],
  // attach.ts sizes `cpus` to the possible CPUs: one entry (counters, histograms) each.
  memory: { resized: { cpus: { perCpu: 1 } } },
  params: {
    dev: { type: 'string', description: 'Only packets first seen on this device (TX: the device it is queued on; RX: the one it arrives on); in `netns` when given.', cliOption: 'dev' },
    netns: NETNS_PARAM,
    ...addressParams({ src: 'Only packets with this IPv4 source address.', dst: 'Only packets with this IPv4 destination address.' }),
    src_port: { type: 'integer', min: 0, max: 65535, default: 0, description: 'Only TCP/UDP packets with this source port (0 = any).' },
    dst_port: { type: 'integer', min: 0, max: 65535, default: 0, description: 'Only TCP/UDP packets with this destination port (0 = any).' },
    protocol: protocolParam('Only IPv4 packets of this L4 protocol.'),
    latency_us: { type: 'integer', min: 0, max: 3_600_000_000, default: 0, description: "Count the packets whose total (first stamp to end) is at least this many µs (the seed's --latency-us; 0 = off)." },
    direction: { type: 'string', enum: ['both', 'tx', 'rx'], default: 'both', description: 'Which way to time: tx (to a device), rx (from a device to a socket).' },
    duration: durationParam('How long to time packets.', { max: 3_600_000 }),
  },
  ...tracepointRun(HOOKS.filter((h) => !h.optional).map((h) => `${h.category}:${h.name}`), HOST_LATENCY_BUDGET, { overhead: 'medium' }),
  data: DATA,
  collect,
  parse,
};
