// perf.icmp-rtt: round-trip time of ICMP echoes (ping) seen on this host's devices, per peer,
// from two tracepoints (probes/perf.icmp-rtt/perf.icmp-rtt.bpf.c, native driver): requests matched to their replies
// by (local address, peer, echo id, sequence), RTTs in a log2 histogram in the kernel, and the
// requests never answered counted as lost. Both ways: this host's own pings (the RTT) and the
// pings it answers (its answer time). What the session saw is recorded as capture records, so
// a replay re-parses it without loading anything.
import type { U64 } from '../../engine/native/btf-layout.js';
import type { BpfObject } from '../../engine/native/object.js';
import { captureRecord, planLoad, readBpfSession, runBpfSession } from '../../engine/probe/bpf-session.js';
import { ipv4Bytes, slotTotals } from '../../engine/probe/bpf-values.js';
import { netnsOf } from '../../engine/probe/netns.js';
import { overheadOf, type OverheadBudget } from '../../engine/probe/overhead.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, Severity, TableSpec } from '../../engine/probe/types.js';
import { loadedFields, type LoadedRecord } from '../../engine/native/attach-plan.js';
import { devParam, NETNS_PARAM, resolveDeviceFilter } from '../lib/devices.js';
import { fmtUs, round } from '../lib/format.js';
import { percentiles, usBuckets } from '../lib/histogram.js';
import { addressParams, durationParam } from '../lib/params.js';
import { HOOKS, loadIcmpRtt, type IcmpRttMethod } from './attach.js';
import { DATA, type IcmpRttData, type IcmpRttPeer } from './data.js';
import { recorded } from '../lib/recorded.js';
import { loadedTables, nativeRun } from '../lib/bpf-probe.js';

export type { IcmpRttData, IcmpRttPeer };

/** Slots of the per-CPU `totals` array (probes/perf.icmp-rtt/perf.icmp-rtt.h). */
const T_SHORT = 0;
const T_NO_PEER = 1;
const DIRECTIONS = ['outgoing', 'incoming'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** A loss of this share of a peer's requests (or more) is critical; any loss is a warning. */
const CRITICAL_LOSS = 0.5;
/** A P99 of `latency_ms` × this (or more) is critical. */
const CRITICAL_FACTOR = 10;

/**
 * What a session may cost: 5% of one CPU, 1M program runs/s. Both programs run on every packet
 * of every device the filters do not rule out by device first (one ifindex read, and the
 * namespace when a device is given); packets that are not ICMP echoes cost the protocol and IP
 * header reads. Past the budget the session stops early and keeps the histograms up to then.
 */
export const ICMP_RTT_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 1_000_000 };

/** The `setup` capture: where and what the programs filter. */
interface SetupCapture {
  dev: string | null;
  ifindex: number;
  netns: string | null;
  /** Inode of the device's namespace (0: any namespace). */
  netnsInode: number;
  srcIp: string | null;
  dstIp: string | null;
  direction: 'both' | Direction;
  thresholdMs: number;
  timeoutMs: number;
}

type AttachCapture = LoadedRecord<IcmpRttMethod>;

interface PeerEntry {
  local: string;
  peer: string;
  dir: Direction;
  slots: number[];
  requests: number;
  matched: number;
  unmatched: number;
  sumNs: number;
  minNs: number;
  maxNs: number;
  slow: number;
}

/** The `dump` capture: the aggregates, and the requests still waiting at the end by age. */
interface DumpCapture {
  windowMs: number;
  peers: PeerEntry[];
  /** Requests unanswered at the end, per `local>peer>dir`: younger than the timeout (in flight), older (lost). */
  waiting: Record<string, { inFlight: number; expired: number }>;
  short: number;
  noPeer: number;
}

// ---- collect ----

async function resolveSetup(params: Params, io: ProbeIO): Promise<SetupCapture> {
  // the params checked before any command runs
  netnsOf(params);
  devParam(params);
  for (const ip of [params.src_ip, params.dst_ip]) ipv4Bytes(ip);
  const device = await resolveDeviceFilter(params, io);
  return {
    ...device,
    srcIp: (params.src_ip as string | undefined) || null,
    dstIp: (params.dst_ip as string | undefined) || null,
    direction: (params.direction as SetupCapture['direction'] | undefined) ?? 'both',
    thresholdMs: (params.latency_ms as number | undefined) ?? 0,
    timeoutMs: (params.timeout as number | undefined) ?? 1000,
  };
}

function globalsOf(s: SetupCapture) {
  const any = new Uint8Array(4);
  return {
    targ_ifindex: s.ifindex,
    targ_netns: s.netnsInode,
    targ_local: ipv4Bytes(s.srcIp) ?? any,
    targ_peer: ipv4Bytes(s.dstIp) ?? any,
    targ_dirs: s.direction === 'outgoing' ? 1 : s.direction === 'incoming' ? 2 : 3,
    threshold_ns: BigInt(Math.round(s.thresholdMs * 1e6)),
  };
}

/** An address the program stored in network order in a __u32 (decoded little-endian): its bytes in memory order. */
const ipOf = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
const waitingKey = (local: string, peer: string, dir: Direction) => `${local}>${peer}>${dir}`;

/** struct icmprtt_peer, decoded. */
interface PeerValue {
  slots: number[];
  requests: number;
  matched: number;
  unmatched: number;
  sum_ns: U64;
  min_ns: U64;
  max_ns: U64;
  slow: number;
}

/** Reads the maps (programs detached already). */
function dumpMaps(o: BpfObject, windowMs: number, timeoutMs: number): DumpCapture {
  const peers: PeerEntry[] = [];
  for (const { key: k, value: v } of o.map('peers').readAllDecoded<{ local: number; peer: number; dir: number }, PeerValue>()) {
    peers.push({
      local: ipOf(k.local),
      peer: ipOf(k.peer),
      dir: DIRECTIONS[k.dir] ?? 'outgoing',
      slots: v.slots,
      requests: v.requests,
      matched: v.matched,
      unmatched: v.unmatched,
      sumNs: Number(v.sum_ns),
      minNs: Number(v.min_ns),
      maxNs: Number(v.max_ns),
      slow: v.slow,
    });
  }
  peers.sort((a, b) => waitingKey(a.local, a.peer, a.dir).localeCompare(waitingKey(b.local, b.peer, b.dir)));
  const nowNs = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
  const waiting: DumpCapture['waiting'] = {};
  for (const { key: k, value: sentNs } of o.map('pending').readAllDecoded<{ local: number; peer: number; dir: number }, U64>()) {
    const key = waitingKey(ipOf(k.local), ipOf(k.peer), DIRECTIONS[k.dir] ?? 'outgoing');
    const w = (waiting[key] ??= { inFlight: 0, expired: 0 });
    if (Number(nowNs - BigInt(sentNs)) / 1e6 < timeoutMs) w.inFlight++;
    else w.expired++;
  }
  return { windowMs, peers, waiting, ...slotTotals(o.map('totals'), { short: T_SHORT, noPeer: T_NO_PEER }) };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  // The lookups are exec records of their own (a replay answers them again); the capture keeps what they resolved to.
  const resolved = await resolveSetup(params, io);
  const setup = await recorded<SetupCapture>(io, 'setup', () => resolved);
  await runBpfSession(io, {
    load: planLoad(() => loadIcmpRtt(globalsOf(setup))),
    window: params.duration as number,
    detachToRead: true,
    read: (o, w) => dumpMaps(o, round(w.ms), setup.timeoutMs),
  });
}

// ---- parse ----

const ms = (us: number) => Math.round(us) / 1000;

function peerStats(e: PeerEntry, waiting: DumpCapture['waiting']): IcmpRttPeer {
  const w = waiting[waitingKey(e.local, e.peer, e.dir)] ?? { inFlight: 0, expired: 0 };
  const maxUs = e.maxNs / 1000;
  const p = percentiles(e.slots, maxUs);
  // Requests neither answered nor waiting were evicted from the pending map: lost too.
  const lost = Math.max(0, e.requests - e.matched - w.inFlight);
  const settled = e.requests - w.inFlight;
  return {
    local: e.local,
    peer: e.peer,
    direction: e.dir,
    requests: e.requests,
    replies: e.matched,
    lost,
    inFlight: w.inFlight,
    unmatchedReplies: e.unmatched,
    lossRatio: settled > 0 ? Math.round((lost / settled) * 1e4) / 1e4 : 0,
    minMs: ms(e.minNs / 1000),
    meanMs: e.matched > 0 ? ms(e.sumNs / e.matched / 1000) : 0,
    maxMs: ms(maxUs),
    p50Ms: ms(p.p50Us),
    p95Ms: ms(p.p95Us),
    p99Ms: ms(p.p99Us),
    slow: e.slow,
    buckets: usBuckets(e.slots),
  };
}

const byWorst = (a: IcmpRttPeer, b: IcmpRttPeer) => b.lossRatio - a.lossRatio || b.lost - a.lost || b.p99Ms - a.p99Ms || b.requests - a.requests;

function peerLabel(p: Pick<IcmpRttPeer, 'local' | 'peer' | 'direction'>): string {
  return p.direction === 'outgoing' ? `${p.local} → ${p.peer}` : `${p.peer} → ${p.local}`;
}

const fmtMs = (v: number) => fmtUs(v * 1000);

function describePeer(p: IcmpRttPeer): string {
  const what = p.direction === 'outgoing' ? 'RTT' : 'answer time';
  const rtt = p.replies > 0 ? `, ${what} p50 ${fmtMs(p.p50Ms)} p99 ${fmtMs(p.p99Ms)} (min ${fmtMs(p.minMs)}, mean ${fmtMs(p.meanMs)}, max ${fmtMs(p.maxMs)})` : '';
  return `${peerLabel(p)} (${p.direction}): ${p.requests} request${p.requests === 1 ? '' : 's'}, ${p.lost} lost${rtt}`;
}

function parse(records: RawRecord[]): ProbeResult<IcmpRttData> {
  const setup = JSON.parse(captureRecord(records, 'setup').stdout) as SetupCapture;
  const { attach: att, dump } = readBpfSession<AttachCapture, DumpCapture>(records);
  const overhead = overheadOf(records);
  const peers = dump.peers.map((e) => peerStats(e, dump.waiting)).filter((p) => p.requests > 0 || p.unmatchedReplies > 0);
  peers.sort(byWorst);
  const sum = (f: (p: IcmpRttPeer) => number) => peers.reduce((s, p) => s + f(p), 0);
  const worst = peers[0];
  const notes: string[] = [];
  if (dump.short > 0) notes.push(`${dump.short} ICMP packets had their header outside the skb's linear area and were not read`);
  if (dump.noPeer > 0) notes.push(`${dump.noPeer} echoes were not counted: the per-peer map was full`);
  const inFlight = sum((p) => p.inFlight);
  if (inFlight > 0) notes.push(`${inFlight} requests were younger than the ${fmtMs(setup.timeoutMs)} timeout at the end: in flight, not counted as lost`);
  const unmatched = sum((p) => p.unmatchedReplies);
  if (unmatched > 0) notes.push(`${unmatched} replies had no request waiting (sent before the window, duplicated, or answered after the request was evicted)`);
  if (overhead?.stopped) notes.push(`stopped early: ${overhead.stopped}`);

  const data: IcmpRttData = {
    dev: setup.dev,
    ifindex: setup.ifindex,
    netns: setup.netns,
    filters: { srcIp: setup.srcIp, dstIp: setup.dstIp, direction: setup.direction },
    thresholdMs: setup.thresholdMs,
    timeoutMs: setup.timeoutMs,
    ...loadedFields(att),
    windowMs: dump.windowMs,
    ...(overhead ? { overhead } : {}),
    requests: sum((p) => p.requests),
    replies: sum((p) => p.replies),
    lost: sum((p) => p.lost),
    unmatchedReplies: unmatched,
    peers,
    worst: worst ? { local: worst.local, peer: worst.peer, direction: worst.direction, lost: worst.lost, p99Ms: worst.p99Ms } : null,
    skipped: { short: dump.short, noPeer: dump.noPeer },
    notes,
  };

  const where = setup.dev !== null ? ` on ${setup.dev}` : '';
  const secs = `${(dump.windowMs / 1000).toFixed(1)}s`;
  let summary = worst ? describePeer(worst) : `no ICMP echo${where} in ${secs}`;
  if (peers.length > 1) summary += `; ${peers.length - 1} more peer${peers.length === 2 ? '' : 's'}`;
  if (overhead?.stopped) summary += ` (stopped: ${overhead.stopped})`;

  let severity: Severity = 'info';
  for (const p of peers) {
    const slowP99 = setup.thresholdMs > 0 && p.p99Ms >= setup.thresholdMs;
    if (p.lossRatio >= CRITICAL_LOSS || (slowP99 && p.p99Ms >= setup.thresholdMs * CRITICAL_FACTOR)) severity = 'critical';
    else if ((p.lost > 0 || slowP99) && severity === 'info') severity = 'warning';
  }

  const charts: ChartSpec[] = peers
    .filter((p) => p.replies > 0)
    .map((p) => ({
      kind: 'histogram' as const,
      title: `${peerLabel(p)}: ${p.direction === 'outgoing' ? 'ICMP RTT' : 'answer time'} (log2 buckets)`,
      unit: 'µs',
      buckets: p.buckets.map((b) => ({ low: b.lowUs, high: b.highUs, count: b.count })),
      percentiles: { P50: p.p50Ms * 1000, P95: p.p95Ms * 1000, P99: p.p99Ms * 1000, max: p.maxMs * 1000 },
    }));
  const slowColumn = setup.thresholdMs > 0 ? [`≥ ${fmtMs(setup.thresholdMs)}`] : [];
  const tables: TableSpec[] = [
    {
      title: 'ICMP echoes per peer (ms; percentiles at log2 bucket resolution, capped at max; min, mean, max exact)',
      columns: ['echo', 'direction', 'requests', 'replies', 'lost', 'in flight', 'unmatched replies', 'P50', 'P95', 'P99', 'min', 'mean', 'max', ...slowColumn],
      rows: peers.map((p) => [
        peerLabel(p),
        p.direction,
        p.requests,
        p.replies,
        p.lost,
        p.inFlight,
        p.unmatchedReplies,
        p.p50Ms,
        p.p95Ms,
        p.p99Ms,
        p.minMs,
        p.meanMs,
        p.maxMs,
        ...(setup.thresholdMs > 0 ? [p.slow] : []),
      ]),
    },
    ...loadedTables(att, overhead),
  ];
  return { data, summary, severity, charts, tables };
}

export const perfIcmpRtt: ProbeDefinition<IcmpRttData> = {
  id: 'perf.icmp-rtt',
  title: 'ICMP echo round-trip time per peer, at the host',
  description: `Matches ICMP echo requests to their replies by (local address, peer, echo id, sequence) where they leave (\`net:net_dev_start_xmit\`) and arrive (\`net:netif_receive_skb\`) on this host's devices, for \`duration\`, and reports per peer the requests, replies, lost requests, min/mean/max (exact) and P50/P95/P99 (log2 buckets, aggregated in the kernel) of the time between them.

Two directions: **outgoing**, this host (or a namespace on it) pinged the peer: the RTT as the host's devices see it, i.e. the wire, the peer's stack and whatever sits between, without this host's own socket and IP layer; **incoming**, the peer pinged this host: the host's own answer time, request in to reply out. On a device that forwards (a VM's tap, a bridge port), the direction is the device's: a VM's pings arrive on its tap, so they are **incoming** there, timed from its request to its reply passing the tap (the host, the network and the remote end together); pings toward the VM are **outgoing** on the tap (the guest's answer time, its stack included). Use it beside a running \`ping\` (or a VM's pings) to tell a slow or lossy peer from a slow host: a high outgoing RTT with a low incoming answer time on the other end points at the path between.

Filters apply in the kernel: \`dev\` (the device the echoes cross; with \`netns\`, a device of that namespace), \`netns\` (only devices of that namespace), \`src_ip\` (this host's address in the echoes), \`dst_ip\` (the peer), \`direction\`. A request unanswered after \`timeout\` at the end of the window is lost; younger ones are in flight and not counted. Replies with no request waiting (sent before the window) are counted apart. RTTs of at least \`latency_ms\` (the seed's threshold) are counted exactly. Tracepoints only (tp_btf, whose skb fields are plain loads, else raw_tp with a cached minimal BTF, else the classic tracepoints); IPv4 only. A packet that is not IPv4, or whose TCP/UDP checksum is left to the device, returns before its headers are read. Past its overhead budget (5% of a CPU, 1M program runs/s; \`--budget\` changes it) the session stops early and keeps what it counted.

Replaces the seed's \`system_network_icmp_rtt.py\` (PROBES.md row 32), which stamped each echo at every stage of the host's stack and OVS with kprobes; here the two ends on the devices are timed (\`perf.vm-latency\` splits a VM's path into layers).`,
  normal: `Between a VM and its host, or two namespaces of one host, RTTs are sub-millisecond (tens to a few hundred µs) and nothing is lost; across a data-centre network a few hundred µs to ~1 ms. The value is the host's view: it includes the peer's stack (a busy or paused VM answers late), so compare it with the peer's own answer time (\`direction: incoming\` on the peer). Any lost request is a warning, half or more lost critical; with \`latency_ms\` set, a P99 at or above it is a warning, at 10× critical.`,
  replaces: ['system_network_icmp_rtt.py'],
  params: {
    dev: { type: 'string', description: 'Only echoes crossing this device (the seed\'s --phy-iface1); in `netns` when given.', cliOption: 'dev' },
    netns: NETNS_PARAM,
    ...addressParams({ src: "This host's address in the echoes (IPv4).", dst: 'The peer: the address pinged (outgoing) or pinging (incoming) (IPv4).' }),
    direction: { type: 'string', enum: ['both', 'outgoing', 'incoming'], default: 'both', description: 'outgoing: pings this host sends (the seed\'s tx); incoming: pings it answers (rx).' },
    duration: durationParam('How long to match echoes.', { max: 3_600_000 }),
    timeout: { type: 'duration', default: '1s', min: 1, max: 600_000, description: 'A request unanswered this long at the end of the window is lost; younger ones are in flight.' },
    latency_ms: { type: 'number', default: 0, min: 0, max: 600_000, description: 'RTTs of at least this many ms are counted per peer, and a P99 at or above it is a warning (0: off).' },
  },
  requirements: [
    { kind: 'root' },
    { kind: 'kernel', feature: 'btf' },
    // resolves `dev` and `netns`
    { kind: 'binary', name: 'ip', package: 'iproute2' },
    ...HOOKS.map((h) => ({ kind: 'tracepoint' as const, name: `net:${h.name}` })),
  ],
  ...nativeRun(ICMP_RTT_BUDGET),
  data: DATA,
  collect,
  parse,
};
