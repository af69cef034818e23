// The kfree_skb drop session (probes/drops.kernel/drops.kernel.bpf.c) that every drop probe
// runs: drops.kernel on its own; drops.eth, drops.monitor, qdisc.drops and net.conntrack beside
// their own reads, over the same window. Every skb the kernel frees as a drop is counted in the
// kernel by {reason, location, device, netns, stack, flags}, optionally only a VM's (scope.ts),
// with the host's copies of bridged frames flagged. Each step is a capture record, so a replay
// re-reads it without loading anything; read.ts turns the records into counts.
import { readFile, stat } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { functionRanges, prefetchKallsyms } from '../../../engine/host/kallsyms.js';
import type { U64 } from '../../../engine/native/btf-layout.js';
import type { GlobalValue } from '../../../engine/native/globals.js';
import { u32Key } from '../../../engine/native/map.js';
import type { BpfObject } from '../../../engine/native/object.js';
import { captureRecord, runBpfSession, type SessionWork } from '../../../engine/probe/bpf-session.js';
import { countsOf, hex, ipv4Bytes, ipv6Bytes, rootDevices } from '../../../engine/probe/bpf-values.js';
import { ParamError } from '../../../engine/probe/params.js';
import type { Params, ParamSpec, ProbeIO, RawRecord, Requirement } from '../../../engine/probe/types.js';
import { isTunDevice } from '../../../engine/target/taps.js';
import { captureReasonFormat, captureSymbols, hasReasonField, KFREE_SKB } from '../drop-reasons.js';
import { round } from '../format.js';
import { namedNamespaces, netnsInode } from '../netns.js';
import { addressParams, protocolNumber, protocolParam, PROTOCOLS, topParam } from '../params.js';
import { tracepointRequirements } from '../bpf-probe.js';
import { loadDrops, type DropsMethod } from './attach.js';
import { KFREE_SKB_HELPER_SLOTS, KFREE_SKB_HELPERS } from './locations.js';
import { resolveScope, scopeOf, type ScopeRecord } from './scope.js';
import { readSubsystemNames } from './subsystems.js';

/** Slots of the per-CPU `totals` map (probes/drops.kernel/drops.kernel.h). */
const TOTAL_SEEN = 0;
const TOTAL_UNKEYED = 1;
const IPPROTO_ICMPV6 = 58;
/**
 * What a drops session may cost: 5% of one CPU, 1M drops/s. One drop costs ~85 ns (tp_btf,
 * stacks off) to ~140 ns (raw_tp, sampled stacks), a stack walk ~5 us: a host dropping 300k
 * packets/s is near the CPU budget. Drop floods beyond that are stopped early, with the counts
 * up to then.
 */
export const DROPS_BUDGET = { cpu: 0.05, eventsPerSec: 1_000_000 };

/** The session's filters, applied in the kernel (drops.kernel's params, and drops.monitor's). */
export const DROPS_FILTER_PARAMS: Record<string, ParamSpec> = {
  dev: { type: 'string', description: 'Only drops of this device (of the namespace ebpfnet runs in).', cliOption: 'dev' },
  netns: { type: 'string', description: 'Only drops in this network namespace: an `ip netns` name, a path, or an inode number.' },
  ...addressParams({ src: 'Only packets from this IPv4 or IPv6 address.', dst: 'Only packets to this IPv4 or IPv6 address.' }),
  ip: { type: 'ip', description: 'Only packets from or to this IPv4 or IPv6 address (traffic in both directions). `src_ip`, `dst_ip` and `ip` are of one family.' },
  protocol: protocolParam('Only packets of this L4 protocol (`icmp` is ICMPv6 with an IPv6 address filter). IPv4 only, unless an IPv6 address filter is given.'),
  port: { type: 'integer', min: 0, max: 65535, default: 0, description: 'Only TCP/UDP packets with this source or destination port (0 = any); IPv4 only unless an IPv6 address filter is given.' },
};

export const DROPS_TOP_PARAM = topParam('How many rows, bars and stacks to show.', { default: 10, max: 1000 });

/** What the session needs of the host. */
export const DROPS_REQUIREMENTS: Requirement[] = tracepointRequirements([KFREE_SKB]);

export interface DropsAttach {
  program: string;
  method: DropsMethod;
  target: string;
  attachMs: number;
  /** In-process load time of the object, ms. */
  loadMs?: number;
  /** The BTF CO-RE reads were relocated against. */
  btf?: string;
}

/** The `attach` capture record. */
export interface AttachCapture {
  loadMs: number;
  attach: DropsAttach[];
  /** Why the preferred programs were not used, when another one was. */
  fallback?: string;
  filters: { ifindex: number; netns: number; saddr: string | null; daddr: string | null; addr?: string; protocol: number; port: number };
  /** The VM scope, when one was given. */
  scope?: ScopeRecord;
}

/** The `dump` capture record: the aggregation map, its stacks, device and namespace names. */
export interface DumpCapture {
  /** Time the programs were attached, from attach to dump. */
  windowMs: number;
  seen: number;
  unkeyed: number;
  entries: Array<{ reason: number; location: string; ifindex: number; netns: number; stackId: number; count: number; flags?: number }>;
  /** Stack id → kernel addresses (hex), innermost first. */
  stacks: Record<string, string[]>;
  /** This host's root-namespace devices: ifindex → name, and the namespace they are in. */
  devices: Record<string, string>;
  /** Which of them are taps (tun/tap devices: a VM's, or a userspace switch's port); absent in old recordings. */
  taps?: string[];
  hostNetns: number;
  /** Named namespaces (ip netns): inode → name. */
  namespaces: Record<string, string>;
}

/** The tun/tap devices of ebpfnet's namespace. */
function rootTaps(devices: Record<string, string>): string[] {
  return Object.values(devices).filter(isTunDevice).sort();
}

type AggKey = { location: U64; reason: number; ifindex: number; netns: number; stack_id: number; flags: number };
type Entry = DumpCapture['entries'][number];
/** A CPU's pending count (struct drops_pending): drops of its last key not in `agg` yet. */
type Pending = { seq: U64; count: U64; seen: U64; key: AggKey };

const entryOf = (k: AggKey): Omit<Entry, 'count'> => ({ location: hex(k.location), reason: k.reason, ifindex: k.ifindex, netns: k.netns, stackId: k.stack_id, flags: k.flags });
const entryId = (e: Omit<Entry, 'count'>) => `${e.location}/${e.reason}/${e.ifindex}/${e.netns}/${e.stackId}/${e.flags}`;

/** How often a live reading is retried while a CPU's pending entry changes key under it. */
const LIVE_READ_TRIES = 5;

/**
 * The counts by key: `agg` plus every CPU's pending count. Detached, one reading is exact. Live
 * (a snapshot), a CPU may move its pending count into `agg` between the two reads: the pending
 * entries are read before and after `agg`, and the reading counts when no entry changed key in
 * between (same even `seq`), else it is tried again; the last try is kept, short at most of the
 * pending count of a CPU that changed key just then, which the next snapshot has.
 */
export function readDropCounts(o: BpfObject): { entries: Entry[]; pendingSeen: number } {
  const pendingOf = () => o.map('pending').readAllDecoded<number, Pending>().map((e) => e.value);
  let entries: Entry[] = [];
  let after: Pending[] = [];
  for (let attempt = 0; attempt < LIVE_READ_TRIES; attempt++) {
    const before = pendingOf();
    entries = countsOf(o.map('agg'), entryOf);
    after = pendingOf();
    if (after.every((p, cpu) => Number(p.seq) % 2 === 0 && p.seq === before[cpu]?.seq)) break;
  }
  const byId = new Map(entries.map((e) => [entryId(e), e]));
  for (const p of after) {
    const count = Number(p.count);
    if (count === 0 || Number(p.seq) % 2 === 1) continue;
    const e = entryOf(p.key);
    const known = byId.get(entryId(e));
    if (known) known.count += count;
    else byId.set(entryId(e), { ...e, count });
  }
  return { entries: [...byId.values()], pendingSeen: after.reduce((n, p) => n + Number(p.seen), 0) };
}

/**
 * Reads the aggregation map (cumulative since attach), its stacks, device and namespace names.
 * `sinceAttachMs`: how long the programs counted (to the guard's early detach, when it stopped them).
 */
async function dumpMaps(o: BpfObject, params: Params, sinceAttachMs: number): Promise<DumpCapture> {
  const windowMs = round(sinceAttachMs);
  const totals = o.map('totals');
  const { entries, pendingSeen } = readDropCounts(o);
  const seen = Number(totals.sumU64(u32Key(TOTAL_SEEN))) + pendingSeen;
  const unkeyed = Number(totals.sumU64(u32Key(TOTAL_UNKEYED)));
  entries.sort((a, b) => b.count - a.count || a.reason - b.reason || a.location.localeCompare(b.location));
  const stackMap = o.map('stacks');
  const stacks: Record<string, string[]> = {};
  // With stacks off, the only stacks are those that name a drop by its place (before 5.17).
  for (const id of new Set(entries.map((e) => e.stackId))) {
    if (id >= 0) stacks[String(id)] = stackMap.readStack(id).map(hex);
  }
  const devices = await rootDevices();
  return {
    windowMs,
    seen,
    unkeyed,
    entries,
    stacks,
    devices,
    taps: rootTaps(devices),
    hostNetns: (await stat('/proc/self/ns/net')).ino,
    namespaces: await namedNamespaces(),
  };
}

interface ResolvedFilters {
  ifindex: number;
  netns: number;
  /** The address filters' family (0: no address, protocol or port filter). */
  family: 0 | 4 | 6;
  saddr: Uint8Array | null;
  daddr: Uint8Array | null;
  addr: Uint8Array | null;
  protocol: number;
  port: number;
  record: AttachCapture['filters'];
}

/** The family of the address filters given: one family for all, IPv4 when only protocol/port filter. */
function filterFamily(params: Params, protocol: number, port: number): 0 | 4 | 6 {
  const given = (['src_ip', 'dst_ip', 'ip'] as const).filter((n) => typeof params[n] === 'string' && params[n] !== '');
  const families = new Set(given.map((n) => (isIPv4(params[n] as string) ? 4 : 6)));
  if (families.size > 1) {
    throw new ParamError('drops.kernel', given[1]!, `${given.join(', ')} mix IPv4 and IPv6: no packet has both; give addresses of one family`);
  }
  if (families.size === 1) return [...families][0] as 4 | 6;
  return protocol || port ? 4 : 0;
}

/** An address filter's bytes: 4 or 16 (network order), per the filters' family. */
function addressBytes(ip: unknown, family: 0 | 4 | 6): Uint8Array | null {
  if (typeof ip !== 'string' || ip === '') return null;
  return family === 6 ? ipv6Bytes(ip) : ipv4Bytes(ip);
}

async function resolveFilters(params: Params): Promise<ResolvedFilters> {
  const dev = typeof params.dev === 'string' && params.dev !== '' ? params.dev : undefined;
  let ifindex = 0;
  if (dev !== undefined) {
    try {
      ifindex = Number((await readFile(`/sys/class/net/${dev}/ifindex`, 'utf8')).trim());
    } catch {
      throw new Error(`no device ${dev} in this network namespace`);
    }
  }
  const netns = typeof params.netns === 'string' && params.netns !== '' ? await netnsInode(params.netns) : 0;
  const port = (params.port as number | undefined) ?? 0;
  const named = protocolNumber(params.protocol);
  const family = filterFamily(params, named, port);
  // ICMP of an IPv6 filter is ICMPv6.
  const protocol = family === 6 && named === PROTOCOLS.icmp ? IPPROTO_ICMPV6 : named;
  const saddr = addressBytes(params.src_ip, family);
  const daddr = addressBytes(params.dst_ip, family);
  const addr = addressBytes(params.ip, family);
  const record = {
    ifindex,
    netns,
    saddr: (params.src_ip as string) || null,
    daddr: (params.dst_ip as string) || null,
    ...(addr ? { addr: params.ip as string } : {}),
    protocol,
    port,
  };
  return { ifindex, netns, family, saddr, daddr, addr, protocol, port, record };
}

/** Per CPU, the first STACK_FIRST drops get a kernel stack, then one in `stack_every` (probes/drops.kernel/drops.kernel.bpf.c). */
export const STACK_FIRST = 64;
export const STACK_EVERY = 1024;

function globalsOf(params: Params, f: ResolvedFilters): Record<string, GlobalValue> {
  const v4 = (a: Uint8Array | null) => (f.family === 4 && a ? a : new Uint8Array(4));
  const v6 = (a: Uint8Array | null) => (f.family === 6 && a ? a : new Uint8Array(16));
  return {
    targ_ifindex: f.ifindex,
    targ_netns: f.netns,
    targ_family: f.family,
    targ_saddr: v4(f.saddr),
    targ_daddr: v4(f.daddr),
    targ_addr: v4(f.addr),
    targ_saddr6: v6(f.saddr),
    targ_daddr6: v6(f.daddr),
    targ_addr6: v6(f.addr),
    targ_proto: f.protocol,
    targ_port: f.port,
    want_stacks: params.stacks === false ? 0 : 1,
    stack_first: STACK_FIRST,
    stack_every: Number(params.stack_every ?? STACK_EVERY),
  };
}

type FunctionRange = { name: string; lo: bigint; hi: bigint };

/** A `const volatile __u64 x[slots]` global of each range's lo or hi (0 past the ranges found). */
function rangeSlots(ranges: FunctionRange[], slots: number, pick: (r: FunctionRange) => bigint): Uint8Array {
  return new Uint8Array(BigUint64Array.from({ length: slots }, (_, i) => (ranges[i] ? pick(ranges[i]!) : 0n)).buffer);
}

/** For the legacy kprobe (before 5.17): where the helpers that free their callers' drops lie (see KFREE_SKB_HELPERS). */
async function helperGlobals(): Promise<Record<string, GlobalValue>> {
  const ranges = await functionRanges(KFREE_SKB_HELPERS);
  return { helper_lo: rangeSlots(ranges, KFREE_SKB_HELPER_SLOTS, (r) => r.lo), helper_hi: rangeSlots(ranges, KFREE_SKB_HELPER_SLOTS, (r) => r.hi) };
}

/** The OVS kernel datapath's output functions (ovs_flood_to_down_port in the BPF source, DROPS_OVS_OUTPUTS slots). */
const OVS_OUTPUTS = ['do_output [openvswitch]', 'do_execute_actions [openvswitch]'];

/**
 * Where the functions lie whose frees the program tells apart, from kallsyms: icmpv6_rcv (its
 * frees of the ND and MLD messages it handled are no drops) and the OVS kernel datapath's output
 * (its floods to a port that is down are host copies; absent while openvswitch.ko is not loaded).
 */
async function placeGlobals(): Promise<Record<string, GlobalValue>> {
  const ranges = await functionRanges(['icmpv6_rcv', ...OVS_OUTPUTS]);
  const icmp6 = ranges.find((r) => r.name === 'icmpv6_rcv');
  const outputs = ranges.filter((r) => OVS_OUTPUTS.includes(r.name));
  return {
    ...(icmp6 ? { icmp6_rcv_lo: icmp6.lo, icmp6_rcv_hi: icmp6.hi } : {}),
    ...(outputs.length > 0 ? { ovs_out_lo: rangeSlots(outputs, OVS_OUTPUTS.length, (r) => r.lo), ovs_out_hi: rangeSlots(outputs, OVS_OUTPUTS.length, (r) => r.hi) } : {}),
  };
}

/** How other probes run a drops.kernel session inside their own collect. */
export interface DropsSessionOptions {
  /** Prefix of the capture names (`w3-` → `w3-reasons`, `w3-attach`...), so one probe can run several sessions. */
  prefix?: string;
  /**
   * What to do while the programs are attached (default: sleep `params.duration`). Other probes
   * read their own counters here, so that both cover the same window. `snapshot(name)` records
   * the maps as they are now (cumulative since attach) as the capture `<prefix><name>`, without
   * detaching: a timeline without gaps (read a window with readDrops' `dump` and `since`).
   */
  window?: SessionWork;
}

/**
 * One drop session: reason names, load + attach, `window`, dump, subsystem reason names,
 * symbols, recorded as capture records named `<prefix>reasons|attach|dump|subsystems|symbols`.
 * Read them back with `readDrops`.
 */
export async function collectDrops(params: Params, io: ProbeIO, opts: DropsSessionOptions = {}): Promise<void> {
  const prefix = opts.prefix ?? '';
  // Bad params fail before anything is recorded, with their one-line message.
  const scope = scopeOf(params);
  filterFamily(params, protocolNumber(params.protocol), (params.port as number | undefined) ?? 0);
  const format = await captureReasonFormat(io, `${prefix}reasons`);

  // Every reading of the maps (snapshots and the dump), for the names of what they hold. A
  // replay reads none: it answers those captures from the recording too.
  const dumps: DumpCapture[] = [];
  await runBpfSession(io, {
    prefix,
    load: async () => {
      // Indexing kallsyms takes ~250 ms: a window of a second or more hides it entirely.
      if (Number(params.duration) >= 1000) prefetchKallsyms();
      const filters = await resolveFilters(params);
      const resolved = await resolveScope(scope);
      const reasoned = hasReasonField(format);
      const helpers = reasoned ? {} : await helperGlobals();
      const loaded = await loadDrops({ ...globalsOf(params, filters), ...resolved.globals, ...helpers, ...(await placeGlobals()) }, reasoned);
      const record: AttachCapture = {
        loadMs: round(loaded.loadMs),
        attach: [
          { program: loaded.link.program, method: loaded.method, target: loaded.link.target, attachMs: round(loaded.link.attachMs), loadMs: round(loaded.loadMs), btf: loaded.btf },
        ],
        ...(loaded.fallbacks.length > 0 ? { fallback: loaded.fallbacks.join('; ') } : {}),
        filters: filters.record,
        ...(resolved.record ? { scope: resolved.record } : {}),
      };
      return { obj: loaded.obj, record };
    },
    window: opts.window ?? (params.duration as number),
    // Detached, the pending counts stand still: the final reading is exact.
    detachToRead: true,
    read: async (o, w) => {
      const dump = await dumpMaps(o, params, w.ms);
      dumps.push(dump);
      return dump;
    },
  });

  // Symbols of the addresses seen, from /proc/kallsyms: only the ones needed are kept. Names
  // of subsystem reasons seen, from the kernel's BTF (nothing is read when there is none).
  const addrs = new Set<string>();
  const reasons = new Set<number>();
  for (const dump of dumps) {
    for (const e of dump.entries) {
      addrs.add(e.location);
      reasons.add(e.reason);
    }
    for (const frames of Object.values(dump.stacks)) for (const a of frames) addrs.add(a);
  }
  await io.capture(`${prefix}subsystems`, async () => JSON.stringify(await readSubsystemNames([...reasons])));
  await captureSymbols(io, `${prefix}symbols`, [...addrs]);
}

/** When a capture of a session (`attach`, `dump`, a snapshot) was taken, ms since the epoch. */
export function captureAt(records: RawRecord[], name: string): number {
  const rec = captureRecord(records, name);
  return rec.at;
}

