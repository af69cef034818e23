// other.udp-path's session: the flow's filters into udppath.bpf.c's globals, load and attach,
// the sampled packets' hops streamed from the ring buffer during the window, then the maps and
// the names of the devices the hops were seen on (every namespace ebpfnet can name), recorded
// as capture records so a replay re-parses them without loading anything.
import { readdir } from 'node:fs/promises';
import { runCommand } from '../../engine/exec.js';
import { loadedRecord } from '../../engine/native/attach-plan.js';
import type { U64 } from '../../engine/native/btf-layout.js';
import type { BpfObject } from '../../engine/native/object.js';
import { RingBufferReader } from '../../engine/native/ringbuf.js';
import { runBpfSession } from '../../engine/probe/bpf-session.js';
import { hex, ipv4Bytes, slotTotals } from '../../engine/probe/bpf-values.js';
import type { Params, ProbeIO } from '../../engine/probe/types.js';
import { captureReasonFormat, captureSymbols } from '../lib/drop-reasons.js';
import { HOOKS, loadUdpPath, SOCKET_TRACEPOINTS } from './attach.js';
import { hasTracepoint } from '../../engine/host/tracefs.js';
import { recorded } from '../lib/recorded.js';

/** Slots of the per-CPU `totals` array (probes/other.udp-path/other.udp-path.h). */
const TOTALS = { lostEvents: 0, noEntry: 1, short: 2, queueFull: 3 };

/** The flow as the user gave it (the `setup` capture). */
export interface FlowSetup {
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  both: boolean;
  samples: number;
  timeoutMs: number;
  /** The kernel has the socket's tracepoints (sock:sk_data_ready, 6.3+): absent from older records, which had them. */
  socketStage?: boolean;
}

/** struct udppath_hop. */
export interface HopKey {
  hook: number;
  way: number;
  ifindex: number;
  netns: number;
}

export interface HopEntry extends HopKey {
  packets: number;
  stepSum: number;
  firstNs: number;
}

export interface PairEntry {
  from: HopKey;
  to: HopKey;
  slots: number[];
  count: number;
  sumNs: number;
  maxNs: number;
}

export interface DropEntry {
  at: HopKey;
  reason: number;
  location: string;
  count: number;
}

/** One hop of a sampled packet (struct udppath_event). */
export interface EventEntry {
  ns: number;
  firstNs: number;
  location: string;
  hop: HopKey;
  step: number;
  reason: number;
  len: number;
}

/** The `dump` capture. */
export interface DumpCapture {
  windowMs: number;
  hops: HopEntry[];
  pairs: PairEntry[];
  drops: DropEntry[];
  events: EventEntry[];
  lostEvents: number;
  noEntry: number;
  short: number;
  queueFull: number;
}

/** The `devices` capture: `<netns inode>/<ifindex>` → device name, and netns inode → its `ip netns` name. */
export interface DeviceNames {
  devices: Record<string, string>;
  namespaces: Record<string, string>;
}

/** A decoded struct udppath_hop without its padding. */
const hopOf = (h: HopKey): HopKey => ({ ifindex: h.ifindex, netns: h.netns, hook: h.hook, way: h.way });

const byHop = (a: HopKey, b: HopKey) => a.way - b.way || a.hook - b.hook || a.netns - b.netns || a.ifindex - b.ifindex;

/** struct udppath_event, decoded. */
interface UdpPathEvent {
  ns: U64;
  first_ns: U64;
  location: U64;
  hop: HopKey;
  step: number;
  reason: number;
  len: number;
}

function eventOf(e: UdpPathEvent): EventEntry {
  return { ns: Number(e.ns), firstNs: Number(e.first_ns), location: hex(e.location), hop: hopOf(e.hop), step: e.step, reason: e.reason, len: e.len };
}

/** struct udppath_pair_stats, decoded. */
interface PairStats {
  slots: number[];
  count: number;
  sum_ns: U64;
  max_ns: U64;
  step_sum: number;
  first_ns: U64;
}

/** The `from` of the pairs that count packets' first hops (UDPPATH_START: one past the hooks). */
const START_HOOK = HOOKS.length;

type PairCounts = { key: { from: HopKey; to: HopKey }; value: PairStats };

/** `into`'s counts plus `v`'s (a CPU's recent entry of the same pair). */
function addPairStats(into: PairStats, v: PairStats): PairStats {
  return {
    slots: into.slots.map((n, i) => n + v.slots[i]!),
    count: into.count + v.count,
    sum_ns: BigInt(into.sum_ns) + BigInt(v.sum_ns),
    max_ns: BigInt(into.max_ns) > BigInt(v.max_ns) ? into.max_ns : v.max_ns,
    step_sum: into.step_sum + v.step_sum,
    first_ns: BigInt(into.first_ns) < BigInt(v.first_ns) ? into.first_ns : v.first_ns,
  };
}

/** The `pairs` map with the counts the CPUs' `recent` entries still hold (read once the programs stopped). */
function pairCounts(o: BpfObject): PairCounts[] {
  const byPair = new Map<string, PairCounts>();
  const add = (e: PairCounts) => {
    const id = JSON.stringify([hopOf(e.key.from), hopOf(e.key.to)]);
    const known = byPair.get(id);
    byPair.set(id, known ? { key: known.key, value: addPairStats(known.value, e.value) } : e);
  };
  o.map('pairs').readAllDecoded<PairCounts['key'], PairStats>().forEach(add);
  for (const { value: r } of o.map('recent').readAllDecoded<number, { key: PairCounts['key']; v: PairStats }>()) {
    if (r.v.count > 0) add({ key: r.key, value: r.v });
  }
  return [...byPair.values()];
}

/**
 * The pairs counted as hops and pairs: a hop's counts are the sums over the pairs ending there
 * (first hops' pairs start at START_HOOK and are no pair of the path).
 */
export function readHopsAndPairs(o: BpfObject): { hops: HopEntry[]; pairs: PairEntry[] } {
  const entries = pairCounts(o);
  const hops = new Map<string, HopEntry>();
  for (const { key, value: v } of entries) {
    const to = hopOf(key.to);
    const id = JSON.stringify(to);
    const h = hops.get(id) ?? { ...to, packets: 0, stepSum: 0, firstNs: Number(v.first_ns) };
    h.packets += v.count;
    h.stepSum += v.step_sum;
    h.firstNs = Math.min(h.firstNs, Number(v.first_ns));
    hops.set(id, h);
  }
  const pairs = entries
    .filter(({ key }) => key.from.hook !== START_HOOK)
    .map(({ key, value: v }) => ({ from: hopOf(key.from), to: hopOf(key.to), slots: v.slots, count: v.count, sumNs: Number(v.sum_ns), maxNs: Number(v.max_ns) }))
    .sort((a, b) => byHop(a.from, b.from) || byHop(a.to, b.to));
  return { hops: [...hops.values()].sort(byHop), pairs };
}

type DropKey = { at: HopKey; reason: number; location: U64 };

/** The `drops` map with the counts the CPUs' `recent_drops` entries still hold (read once the programs stopped). */
export function readDrops(o: BpfObject): DropEntry[] {
  const byKey = new Map<string, DropEntry>();
  const add = (key: DropKey, count: number) => {
    const e = { at: hopOf(key.at), reason: key.reason, location: hex(key.location), count };
    const id = JSON.stringify([e.at, e.reason, e.location]);
    const known = byKey.get(id);
    if (known) known.count += count;
    else byKey.set(id, e);
  };
  for (const { key, value } of o.map('drops').readAllDecoded<DropKey, U64>()) add(key, Number(value));
  for (const { value: r } of o.map('recent_drops').readAllDecoded<number, { key: DropKey; count: U64 }>()) {
    if (Number(r.count) > 0) add(r.key, Number(r.count));
  }
  return [...byKey.values()];
}

/** The maps (programs detached already) and the events read. */
function dumpMaps(o: BpfObject, windowMs: number, events: EventEntry[]): DumpCapture {
  const { hops, pairs } = readHopsAndPairs(o);
  const drops = readDrops(o).sort((a, b) => byHop(a.at, b.at) || a.reason - b.reason || a.location.localeCompare(b.location));
  events.sort((a, b) => a.firstNs - b.firstNs || a.ns - b.ns || a.step - b.step);
  return { windowMs: Math.round(windowMs * 1000) / 1000, hops, pairs, drops, events, ...slotTotals(o.map('totals'), TOTALS) };
}

async function setupOf(params: Params): Promise<FlowSetup> {
  for (const ip of [params.src_ip, params.dst_ip]) ipv4Bytes(ip); // throws for IPv6: only IPv4 is parsed
  const socketStage = (await Promise.all(SOCKET_TRACEPOINTS.map((tp) => hasTracepoint(tp)))).every(Boolean);
  return {
    srcIp: params.src_ip as string,
    dstIp: params.dst_ip as string,
    srcPort: params.src_port as number,
    dstPort: params.dst_port as number,
    both: params.both === true,
    samples: (params.samples as number | undefined) ?? 8,
    timeoutMs: (params.timeout as number | undefined) ?? 1000,
    socketStage,
  };
}

/** The globals of udppath.bpf.c for a flow (exported for tests that load a flavour by hand). */
export function globalsOf(s: FlowSetup) {
  const port = (p: number) => Uint8Array.of(p >> 8, p & 0xff); // network byte order, as on the wire
  return {
    targ_saddr: ipv4Bytes(s.srcIp)!,
    targ_daddr: ipv4Bytes(s.dstIp)!,
    targ_sport: port(s.srcPort),
    targ_dport: port(s.dstPort),
    targ_both: s.both ? 1 : 0,
    sample_packets: s.samples,
    stale_ns: BigInt(Math.round(s.timeoutMs * 1e6)),
  };
}

/** `ip -j link show` in the namespace `netns` (the current one when undefined): ifindex → name. */
async function linksOf(netns: string | undefined): Promise<Array<{ ifindex: number; ifname: string }>> {
  const r = await runCommand('ip', [...(netns === undefined ? [] : ['-n', netns]), '-j', 'link', 'show'], { timeoutMs: 5000 });
  if (r.exitCode !== 0) return [];
  return (JSON.parse(r.stdout || '[]') as Array<{ ifindex?: number; ifname?: string }>).flatMap((l) => (typeof l.ifindex === 'number' && typeof l.ifname === 'string' ? [{ ifindex: l.ifindex, ifname: l.ifname }] : []));
}

async function inodeOf(path: string): Promise<number | null> {
  const r = await runCommand('stat', ['-L', '-c', '%i', path], { timeoutMs: 5000 });
  return r.exitCode === 0 ? Number(r.stdout.trim()) : null;
}

/** Names of the devices in `inodes`: the namespace ebpfnet runs in and every `ip netns` one. */
async function deviceNames(inodes: Set<number>): Promise<DeviceNames> {
  const out: DeviceNames = { devices: {}, namespaces: {} };
  const named = await readdir('/run/netns').catch(() => [] as string[]);
  const candidates: Array<{ name: string | undefined; path: string }> = [{ name: undefined, path: '/proc/self/ns/net' }, ...named.sort().map((n) => ({ name: n, path: `/run/netns/${n}` }))];
  for (const c of candidates) {
    const inode = await inodeOf(c.path);
    if (inode === null || !inodes.has(inode) || out.namespaces[inode] !== undefined) continue;
    out.namespaces[inode] = c.name ?? 'host';
    for (const l of await linksOf(c.name)) out.devices[`${inode}/${l.ifindex}`] = l.ifname;
  }
  return out;
}

/** Drains what the ring buffer streams until stopped. */
function readEvents(o: BpfObject): { stop: () => Promise<EventEntry[]> } {
  const reader = new RingBufferReader(o.map('events'));
  const decode = o.recordDecoder<UdpPathEvent>('udppath_event');
  const events: EventEntry[] = [];
  const done = (async () => {
    for await (const batch of reader) for (const e of batch) events.push(eventOf(decode(e)));
  })();
  return {
    stop: async () => {
      reader.stop();
      await done;
      return events;
    },
  };
}

export async function collect(params: Params, io: ProbeIO): Promise<void> {
  const setup = await recorded<FlowSetup>(io, 'setup', () => setupOf(params));
  await captureReasonFormat(io, 'reasons');
  let stream: ReturnType<typeof readEvents> | undefined;
  let dump: DumpCapture;
  try {
    const rec = await runBpfSession(io, {
      load: async () => {
        const loaded = await loadUdpPath(globalsOf(setup), setup.socketStage !== false);
        stream = readEvents(loaded.obj);
        return { obj: loaded.obj, record: loadedRecord(loaded) };
      },
      window: params.duration as number,
      detachToRead: true,
      read: async (o, w) => dumpMaps(o, w.ms, (await stream?.stop()) ?? []),
    });
    dump = JSON.parse(rec.stdout) as DumpCapture;
  } finally {
    await stream?.stop().catch(() => undefined);
  }
  const inodes = new Set(dump.hops.map((h) => h.netns));
  await io.capture('devices', async () => JSON.stringify(await deviceNames(inodes)));
  await captureSymbols(io, 'symbols', [...new Set(dump.drops.map((d) => d.location))]);
}
