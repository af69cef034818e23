// other.udp-path's session: the flow's filters into udppath.bpf.c's globals, load and attach,
// the sampled packets' hops streamed from the ring buffer during the window, then the maps and
// the names of the devices the hops were seen on (every namespace ebpfnet can name), recorded
// as capture records so a replay re-parses them without loading anything.
import { readdir } from 'node:fs/promises';
import { runCommand } from '../../engine/exec.js';
import { loadedRecord } from '../../engine/native/attach-plan.js';
import type { BpfObject } from '../../engine/native/object.js';
import { RingBufferReader } from '../../engine/native/ringbuf.js';
import { runBpfSession } from '../../engine/probe/bpf-session.js';
import { hex, ipv4Bytes, slotTotals } from '../../engine/probe/bpf-values.js';
import type { Params, ProbeIO } from '../../engine/probe/types.js';
import { captureReasonFormat, captureSymbols } from '../lib/drop-reasons.js';
import { loadUdpPath } from './attach.js';
import { recorded } from '../lib/recorded.js';

/** Layouts of bpf/udppath.h. */
export const SLOTS = 32;
const HOP_SIZE = 12;
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

const u64 = (b: Buffer, at: number) => Number(b.readBigUInt64LE(at));

function hopAt(b: Buffer, at: number): HopKey {
  return { ifindex: b.readUInt32LE(at), netns: b.readUInt32LE(at + 4), hook: b.readUInt8(at + 8), way: b.readUInt8(at + 9) };
}

const byHop = (a: HopKey, b: HopKey) => a.way - b.way || a.hook - b.hook || a.netns - b.netns || a.ifindex - b.ifindex;

function eventOf(b: Buffer): EventEntry {
  return {
    ns: u64(b, 0),
    firstNs: u64(b, 8),
    location: hex(b.readBigUInt64LE(16)),
    hop: hopAt(b, 24),
    step: b.readUInt32LE(24 + HOP_SIZE),
    reason: b.readUInt32LE(28 + HOP_SIZE),
    len: b.readUInt32LE(32 + HOP_SIZE),
  };
}

/** The maps (programs detached already) and the events read. */
function dumpMaps(o: BpfObject, windowMs: number, events: EventEntry[]): DumpCapture {
  const hops = o
    .map('hops')
    .readAll()
    .entries.map(([k, v]) => ({ ...hopAt(k, 0), packets: u64(v, 0), stepSum: u64(v, 8), firstNs: u64(v, 16) }))
    .sort(byHop);
  const pairs = o
    .map('pairs')
    .readAll()
    .entries.map(([k, v]) => ({
      from: hopAt(k, 0),
      to: hopAt(k, HOP_SIZE),
      slots: Array.from({ length: SLOTS }, (_, i) => u64(v, i * 8)),
      count: u64(v, SLOTS * 8),
      sumNs: u64(v, SLOTS * 8 + 8),
      maxNs: u64(v, SLOTS * 8 + 16),
    }))
    .sort((a, b) => byHop(a.from, b.from) || byHop(a.to, b.to));
  const drops = o
    .map('drops')
    .readAll()
    .entries.map(([k, v]) => ({ at: hopAt(k, 0), reason: k.readUInt32LE(HOP_SIZE), location: hex(k.readBigUInt64LE(16)), count: u64(v, 0) }))
    .sort((a, b) => byHop(a.at, b.at) || a.reason - b.reason || a.location.localeCompare(b.location));
  events.sort((a, b) => a.firstNs - b.firstNs || a.ns - b.ns || a.step - b.step);
  return { windowMs: Math.round(windowMs * 1000) / 1000, hops, pairs, drops, events, ...slotTotals(o.map('totals'), TOTALS) };
}

function setupOf(params: Params): FlowSetup {
  for (const ip of [params.src_ip, params.dst_ip]) ipv4Bytes(ip); // throws for IPv6: only IPv4 is parsed
  return {
    srcIp: params.src_ip as string,
    dstIp: params.dst_ip as string,
    srcPort: params.src_port as number,
    dstPort: params.dst_port as number,
    both: params.both === true,
    samples: (params.samples as number | undefined) ?? 8,
    timeoutMs: (params.timeout as number | undefined) ?? 1000,
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
  const events: EventEntry[] = [];
  const done = (async () => {
    for await (const batch of reader) for (const e of batch) events.push(eventOf(e));
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
        const loaded = await loadUdpPath(globalsOf(setup));
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
