// drops.kernel: every skb the kernel frees as a drop (skb:kfree_skb with a reason other than
// SKB_CONSUMED), counted in the kernel by {reason, location, device, netns, stack, flags} with
// the native driver (probes/drops.kernel/drops.kernel.bpf.c), optionally only a VM's (scope.ts), with the host's
// copies of bridged frames told apart. What the BPF session saw is recorded as capture
// records, so a replay re-parses it without loading anything.
import { readFile, readdir, stat } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import type { U64 } from '../../engine/native/btf-layout.js';
import { u32Key } from '../../engine/native/map.js';
import type { BpfObject } from '../../engine/native/object.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { tracepointFormat } from '../../engine/host/tracefs.js';
import { prefetchKallsyms, symbolise } from '../../engine/host/kallsyms.js';
import { BpfSession, captureRecord } from '../../engine/probe/bpf-session.js';
import { countsOf, hex, ipv4Bytes, ipv6Bytes, rootDevices } from '../../engine/probe/bpf-values.js';
import { overheadOf, overheadTable } from '../../engine/probe/overhead.js';
import { ParamError } from '../../engine/probe/params.js';
import { loadDrops, type DropsMethod } from './attach.js';
import { DATA, type DropsData } from './data.js';
import { dominantOf, FAMILY_PATTERNS, reasonFamily } from './families.js';
import { resolveScope, SCOPE_LIMITS, scopeOf, type ScopeRecord } from './scope.js';
import { isTunDevice } from '../../engine/target/taps.js';
import { readSubsystemNames, reasonName, type SubsystemNames } from './subsystems.js';
import type { BarChart, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';

const TRACEPOINT = 'skb:kfree_skb';
const NETNS_DIR = '/var/run/netns';
/** Slots of the per-CPU `totals` map (probes/drops.kernel/drops.kernel.h). */
const TOTAL_SEEN = 0;
const TOTAL_UNKEYED = 1;
/** Bits of the key's flags (enum drops_flag in probes/drops.kernel/drops.kernel.h). */
const BY_DEV = 1;
const BY_MAC = 2;
const BY_IP = 4;
const HOST_COPY = 8;
/** Offsets beyond this from the nearest symbol are not trusted. */
const PROTOCOLS: Record<string, number> = { any: 0, icmp: 1, tcp: 6, udp: 17 };
const IPPROTO_ICMPV6 = 58;
/**
 * What a drops session may cost: 5% of one CPU, 1M drops/s. Without stacks one drop costs
 * ~0.3 us, with stacks ~3 us: a host dropping 20k packets/s with stacks is right at the CPU
 * budget. Drop floods beyond that are stopped early, with the counts up to then.
 */
export const DROPS_BUDGET = { cpu: 0.05, eventsPerSec: 1_000_000 };

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
interface AttachCapture {
  loadMs: number;
  attach: DropsAttach[];
  /** Why the preferred programs were not used, when another one was. */
  fallback?: string;
  filters: { ifindex: number; netns: number; saddr: string | null; daddr: string | null; addr?: string; protocol: number; port: number };
  /** The VM scope, when one was given. */
  scope?: ScopeRecord;
}

/** The `dump` capture record: the aggregation map, its stacks, device and namespace names. */
interface DumpCapture {
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

export type { DropsData } from './data.js';

export async function netnsInode(ns: string): Promise<number> {
  if (/^\d+$/.test(ns)) return Number(ns);
  const path = ns.includes('/') ? ns : `${NETNS_DIR}/${ns}`;
  try {
    return (await stat(path)).ino;
  } catch {
    throw new Error(`no network namespace ${ns} (${path})`);
  }
}

export async function namedNamespaces(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let names: string[] = [];
  try {
    names = (await readdir(NETNS_DIR)).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      out[String((await stat(`${NETNS_DIR}/${name}`)).ino)] = name;
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** The tun/tap devices of ebpfnet's namespace. */
function rootTaps(devices: Record<string, string>): string[] {
  return Object.values(devices).filter(isTunDevice).sort();
}

/**
 * Reads the aggregation map (cumulative since attach), its stacks, device and namespace names.
 * `detachedAt`: when the guard detached the programs early, counting ended there.
 */
async function dumpMaps(o: BpfObject, params: Params, attachedAt: number, detachedAt?: number): Promise<DumpCapture> {
  const windowMs = round((detachedAt ?? performance.now()) - attachedAt);
  const totals = o.map('totals');
  const seen = Number(totals.sumU64(u32Key(TOTAL_SEEN)));
  const unkeyed = Number(totals.sumU64(u32Key(TOTAL_UNKEYED)));
  const entries: DumpCapture['entries'] = countsOf(o.map('agg'), (k: { location: U64; reason: number; ifindex: number; netns: number; stack_id: number; flags: number }) => ({
    location: hex(k.location),
    reason: k.reason,
    ifindex: k.ifindex,
    netns: k.netns,
    stackId: k.stack_id,
    flags: k.flags,
  }));
  entries.sort((a, b) => b.count - a.count || a.reason - b.reason || a.location.localeCompare(b.location));
  const stackMap = o.map('stacks');
  const stacks: Record<string, string[]> = {};
  if (params.stacks !== false) {
    for (const id of new Set(entries.map((e) => e.stackId))) {
      if (id >= 0) stacks[String(id)] = stackMap.readStack(id).map(hex);
    }
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

/** Whether the kfree_skb tracepoint passes the drop reason (5.17+). */
export function hasReasonField(format: string): boolean {
  return /field:[^;]*\breason;/.test(format);
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
  const named = PROTOCOLS[params.protocol as string] ?? 0;
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
const STACK_FIRST = 64;
const STACK_EVERY = 64;

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

/** How other probes run a drops.kernel session inside their own collect. */
export interface DropsSessionOptions {
  /** Prefix of the capture names (`w3-` → `w3-reasons`, `w3-attach`...), so one probe can run several sessions. */
  prefix?: string;
  /**
   * What to do while the programs are attached (default: sleep `params.duration`). Other probes
   * read their own counters here, so that both cover the same window. `snapshot(name)` records
   * the maps as they are now (cumulative since attach) as the capture `<prefix><name>`, without
   * detaching: a timeline without gaps (read a window with parseDrops' `dump` and `since`).
   */
  window?: (snapshot: (name: string) => Promise<void>, io: ProbeIO) => Promise<void>;
  /**
   * Record the symbols of the session's addresses (`<prefix>symbols`); false leaves it to the
   * caller (`captureSymbols` with the returned addresses), e.g. to read /proc/kallsyms once.
   */
  symbols?: boolean;
}

/**
 * One drops.kernel session: reason names, load + attach, `window`, dump, subsystem reason names,
 * symbols, recorded as capture records named `<prefix>reasons|attach|dump|subsystems|symbols`.
 * Read them back with `parseDrops`.
 */
export async function collectDrops(params: Params, io: ProbeIO, opts: DropsSessionOptions = {}): Promise<string[]> {
  const prefix = opts.prefix ?? '';
  // Bad params fail before anything is recorded, with their one-line message.
  const scope = scopeOf(params);
  filterFamily(params, PROTOCOLS[params.protocol as string] ?? 0, (params.port as number | undefined) ?? 0);
  const format = await captureReasonFormat(io, `${prefix}reasons`);

  const session = new BpfSession(io, prefix);
  const dumpTexts: string[] = [];
  try {
    await session.attach(async () => {
      // Indexing kallsyms takes ~250 ms: a window of a second or more hides it entirely.
      if (opts.symbols !== false && Number(params.duration) >= 1000) prefetchKallsyms();
      const filters = await resolveFilters(params);
      const resolved = await resolveScope(scope);
      const loaded = await loadDrops({ ...globalsOf(params, filters), ...resolved.globals }, hasReasonField(format));
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
    });
    const attachedAt = performance.now();
    const windowIO = session.windowIO;

    const snapshot = async (name: string) => {
      const rec = await io.capture(`${prefix}${name}`, async () => JSON.stringify(await dumpMaps(session.obj!, params, attachedAt, session.detachedAt)));
      dumpTexts.push(rec.stdout);
    };
    if (opts.window) await opts.window(snapshot, windowIO);
    else await windowIO.sleep(params.duration as number);
    const rec = await session.finish((o) => dumpMaps(o, params, attachedAt, session.detachedAt));
    dumpTexts.push(rec.stdout);
  } finally {
    await session.close();
  }

  // Symbols of the addresses seen, from /proc/kallsyms: only the ones needed are kept. Names
  // of subsystem reasons seen, from the kernel's BTF (nothing is read when there is none).
  const addrs = new Set<string>();
  const reasons = new Set<number>();
  for (const text of dumpTexts) {
    const dump = JSON.parse(text) as DumpCapture;
    for (const e of dump.entries) {
      addrs.add(e.location);
      reasons.add(e.reason);
    }
    for (const frames of Object.values(dump.stacks)) for (const a of frames) addrs.add(a);
  }
  await io.capture(`${prefix}subsystems`, async () => JSON.stringify(await readSubsystemNames([...reasons])));
  if (opts.symbols !== false) await captureSymbols(io, `${prefix}symbols`, [...addrs]);
  return [...addrs];
}

/**
 * Records the format of skb:kfree_skb as the capture `name` and returns it: the reason names
 * this kernel uses are its __print_symbolic table (parseReasonNames).
 */
export async function captureReasonFormat(io: ProbeIO, name: string): Promise<string> {
  const rec = await io.capture(name, async () => {
    const text = await tracepointFormat(TRACEPOINT);
    if (text === null) throw new Error(`cannot read the format of tracepoint ${TRACEPOINT}`);
    return text;
  });
  return rec.stdout;
}

/** Records `symbol+0xoff` of each address (from /proc/kallsyms) as the capture `name`. */
export async function captureSymbols(io: ProbeIO, name: string, addrs: string[]): Promise<void> {
  await io.capture(name, async () => JSON.stringify(await symbolise([...new Set(addrs)].sort())));
}

/** `{ 12, "NETFILTER_DROP" }` pairs of the tracepoint format's __print_symbolic. */
export function parseReasonNames(format: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const m of format.matchAll(/\{\s*(\d+)\s*,\s*"([A-Za-z0-9_]+)"\s*\}/g)) names.set(Number(m[1]), m[2]!);
  return names;
}

/** `nf_hook_slow+0x98 [mod]` → `nf_hook_slow`. */
function functionOf(sym: string): string {
  return sym.replace(/\+0x[0-9a-f]+.*$/, '');
}

function add(map: Record<string, number>, key: string, n: number): void {
  map[key] = (map[key] ?? 0) + n;
}

function sorted(map: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(map).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

// overheadOf and overheadTable live in engine/probe/overhead.ts (bpftrace probes use them too);
// re-exported here for the callers that import them from drops.kernel.
export { overheadOf, overheadTable };

/** When a capture of a session (`attach`, `dump`, a snapshot) was taken, ms since the epoch. */
export function captureAt(records: RawRecord[], name: string): number {
  const rec = captureRecord(records, name);
  return rec.at;
}

export interface ParseDropsOptions {
  /** The session's capture prefix. */
  prefix?: string;
  /** The symbols capture's full name (default `<prefix>symbols`). */
  symbols?: string;
  /** Which dump to read (default `dump`, the one at the end), without the prefix. */
  dump?: string;
  /** A snapshot taken earlier in the session (without the prefix): counts are since then. */
  since?: string;
}

/** The drops between two snapshots of one session: entries (per key), totals and time subtracted. */
function since(dump: DumpCapture, base: DumpCapture): DumpCapture {
  const k = (e: DumpCapture['entries'][number]) => `${e.location}|${e.reason}|${e.ifindex}|${e.netns}|${e.stackId}|${e.flags ?? 0}`;
  const before = new Map(base.entries.map((e) => [k(e), e.count]));
  return {
    ...dump,
    windowMs: round(dump.windowMs - base.windowMs),
    seen: dump.seen - base.seen,
    unkeyed: dump.unkeyed - base.unkeyed,
    entries: dump.entries.map((e) => ({ ...e, count: e.count - (before.get(k(e)) ?? 0) })).filter((e) => e.count > 0),
  };
}

/**
 * Whether a drop the kernel marked as a host copy is in fact the copy a userspace switch reads
 * with AF_PACKET (OVS netdev), dropped because its socket was full: the switch never got the
 * frame, a real loss. Named by reason (6.4+) or by the AF_PACKET receive functions.
 */
function switchRead(reason: string, location: string): boolean {
  return reason === 'PACKET_SOCK_ERROR' || /^(t?packet_rcv|packet_rcv_spkt|packet_rcv_fanout)$/.test(functionOf(location));
}

/** The subsystem names a session recorded (absent in recordings made before they were). */
function subsystemNames(records: RawRecord[], name: string): SubsystemNames | undefined {
  const rec = records.find((r) => r.op === 'capture' && r.name === name);
  return rec && !rec.error ? (JSON.parse(rec.stdout) as SubsystemNames) : undefined;
}

/**
 * The finding of a session `collectDrops` recorded (under `prefix`); other records are ignored.
 * Host copies are counted apart (`hostCopies`) when `params.host_copies` is `apart` (drops.kernel's
 * default); probes that run a session with params of their own keep them in the totals.
 */
export function parseDrops(records: RawRecord[], params: Params, opts: ParseDropsOptions = {}): ProbeResult<DropsData> {
  const prefix = opts.prefix ?? '';
  const reasons = parseReasonNames(captureRecord(records, `${prefix}reasons`).stdout);
  const subsystems = subsystemNames(records, `${prefix}subsystems`);
  const att = JSON.parse(captureRecord(records, `${prefix}attach`).stdout) as AttachCapture;
  const end = JSON.parse(captureRecord(records, `${prefix}${opts.dump ?? 'dump'}`).stdout) as DumpCapture;
  const dump = opts.since === undefined ? end : since(end, JSON.parse(captureRecord(records, `${prefix}${opts.since}`).stdout) as DumpCapture);
  const syms = JSON.parse(captureRecord(records, opts.symbols ?? `${prefix}symbols`).stdout) as Record<string, string>;
  const overhead = overheadOf(records, prefix);
  const top = Math.max(1, (params.top as number | undefined) ?? 10);
  const copiesApart = params.host_copies === 'apart';
  const sym = (a: string) => syms[a] ?? a;
  const device = (ifindex: number, netns: number) => {
    if (ifindex === 0) return '(no device)';
    const ns = netns === dump.hostNetns ? null : (dump.namespaces[String(netns)] ?? (netns ? `netns:${netns}` : null));
    if (ns === null) return dump.devices[String(ifindex)] ?? `if${ifindex}`;
    return `if${ifindex}@${ns}`;
  };

  const byReason: Record<string, number> = {};
  const byLocation: Record<string, number> = {};
  const byDevice: Record<string, number> = {};
  const bySubsystem: Record<string, number> = {};
  const byFamily: Record<string, number> = {};
  const matchedBy = { dev: 0, mac: 0, ip: 0 };
  const hostCopies: DropsData['hostCopies'] = { total: 0, byReason: {}, byDevice: {} };
  const atOtherTaps: DropsData['atOtherTaps'] = { total: 0, byReason: {}, byDevice: {} };
  const ownDevs = new Set(att.scope?.devs ?? []);
  const taps = new Set(dump.taps ?? []);
  const groups = new Map<string, DropsData['top'][number]>();
  const stackGroups = new Map<string, { count: number; reason: string; location: string; frames: string[] }>();
  let total = 0;
  const ignore = new Set((params.ignore as string[] | undefined) ?? []);
  const ignored: Record<string, number> = {};
  for (const e of dump.entries) {
    const { name: reason, subsystem } = reasonName(e.reason, reasons, subsystems);
    const dev = device(e.ifindex, e.netns);
    const flags = e.flags ?? 0;
    if (copiesApart && flags & HOST_COPY && !switchRead(reason, sym(e.location))) {
      hostCopies.total += e.count;
      add(hostCopies.byReason, reason, e.count);
      add(hostCopies.byDevice, dev, e.count);
      continue;
    }
    if (ignore.has(reason)) {
      add(ignored, reason, e.count);
      continue;
    }
    const family = reasonFamily(reason, subsystem);
    // A tap is its own VM's path: the VM's frames dropped at another tap (its full ring, its
    // qdisc, a tc filter on it) were on their way to, or from, that neighbour.
    if (ownDevs.size > 0 && e.netns === dump.hostNetns && !ownDevs.has(dev) && (family === 'tun' || taps.has(dev))) {
      atOtherTaps.total += e.count;
      add(atOtherTaps.byReason, reason, e.count);
      add(atOtherTaps.byDevice, dev, e.count);
      continue;
    }
    const location = sym(e.location);
    total += e.count;
    add(byReason, reason, e.count);
    add(byLocation, location, e.count);
    add(byDevice, dev, e.count);
    add(bySubsystem, subsystem, e.count);
    add(byFamily, family, e.count);
    if (flags & BY_DEV) matchedBy.dev += e.count;
    else if (flags & BY_MAC) matchedBy.mac += e.count;
    else if (flags & BY_IP) matchedBy.ip += e.count;
    const gk = `${reason}\u0000${location}\u0000${dev}`;
    const g = groups.get(gk) ?? { reason, family, location, device: dev, count: 0 };
    g.count += e.count;
    groups.set(gk, g);
    // Frames from the dropping function outwards: the tracing machinery above it is noise.
    const raw = dump.stacks[String(e.stackId)] ?? [];
    const at = raw.indexOf(e.location);
    const frames = (at >= 0 ? raw.slice(at) : raw).map(sym);
    if (frames.length > 0) {
      const sk = `${reason}\u0000${frames.join('\u0000')}`;
      const s = stackGroups.get(sk) ?? { count: 0, reason, location, frames };
      s.count += e.count;
      stackGroups.set(sk, s);
    }
  }
  const byCount = <T extends { count: number }>(a: T, b: T) => b.count - a.count;
  const topGroups = [...groups.values()].sort((a, b) => byCount(a, b) || a.reason.localeCompare(b.reason) || a.location.localeCompare(b.location));
  const topStacks = [...stackGroups.values()].sort((a, b) => byCount(a, b) || a.frames.join().localeCompare(b.frames.join())).slice(0, top);
  // Unkeyed drops were counted in `seen` but not aggregated.
  const lost = dump.unkeyed;
  if (lost > 0) total += lost;
  const dominant = dominantOf(byReason, total);
  const dominantFamily = dominantOf(byFamily, total);

  const data: DropsData = {
    method: att.attach[0]?.method ?? null,
    attach: att.attach,
    ...(att.fallback !== undefined ? { fallback: att.fallback } : {}),
    windowMs: dump.windowMs,
    ...(overhead ? { overhead } : {}),
    total,
    ignored: sorted(ignored),
    ...(lost > 0 ? { lost } : {}),
    byReason: sorted(byReason),
    byLocation: sorted(byLocation),
    byDevice: sorted(byDevice),
    bySubsystem: sorted(bySubsystem),
    byFamily: sorted(byFamily),
    dominant: dominant && { reason: dominant.key, count: dominant.count, share: dominant.share },
    dominantFamily: dominantFamily && { family: dominantFamily.key, count: dominantFamily.count, share: dominantFamily.share },
    scope: att.scope ? { ...att.scope, matchedBy } : null,
    hostCopies: { total: hostCopies.total, byReason: sorted(hostCopies.byReason), byDevice: sorted(hostCopies.byDevice) },
    atOtherTaps: { total: atOtherTaps.total, byReason: sorted(atOtherTaps.byReason), byDevice: sorted(atOtherTaps.byDevice) },
    topStacks,
    top: topGroups.slice(0, top),
  };

  const secs = `${(dump.windowMs / 1000).toFixed(1)}s`;
  const whose = att.scope ? " of the VM's" : '';
  let summary: string;
  if (total === 0) summary = `no kernel drops${whose} in ${secs} (${data.method})`;
  else {
    const parts = topGroups.slice(0, 3).map((g) => `${g.reason} ${g.count} at ${functionOf(g.location)}`);
    const more = topGroups.length > 3 ? `, +${topGroups.length - 3} more` : '';
    summary = `${total}${whose} drop${total === 1 ? '' : 's'} in ${secs}: ${parts.join(', ')}${more}`;
  }
  if (hostCopies.total > 0) summary += `; ${hostCopies.total} host cop${hostCopies.total === 1 ? 'y' : 'ies'} of bridged frames apart`;
  if (atOtherTaps.total > 0) summary += `; ${atOtherTaps.total} at other VMs' taps (${Object.keys(atOtherTaps.byDevice).join(', ')}) apart`;
  if (att.scope?.missingDevs) summary += ` (devices not found: ${att.scope.missingDevs.join(', ')})`;
  if (subsystems?.missing) summary += ` (${subsystems.missing.join('; ')})`;
  if (overhead?.stopped) summary += ` (stopped: ${overhead.stopped})`;

  const bar = (title: string, map: Record<string, number>): BarChart => ({
    kind: 'bar',
    title,
    unit: 'drops',
    bars: Object.entries(map)
      .slice(0, top)
      .map(([label, value]) => ({ label, value })),
  });
  const tables: TableSpec[] = [
    { title: 'Drops by reason, location and device', columns: ['reason', 'location', 'device', 'drops'], rows: topGroups.slice(0, top).map((g) => [g.reason, g.location, g.device, g.count]) },
    {
      title: 'Attach',
      columns: ['program', 'method', 'target', 'BTF', 'load ms', 'attach ms'],
      rows: att.attach.map((a) => [a.program, a.method, a.target, a.btf ?? '', a.loadMs ?? att.loadMs, a.attachMs]),
    },
  ];
  if (att.scope) {
    const s = att.scope;
    tables.push({
      title: "The VM's scope",
      columns: ['by', 'values', 'drops matched'],
      rows: [
        ['device', [...s.devs.filter((d) => !s.missingDevs?.includes(d)), ...(s.missingDevs ?? []).map((d) => `${d} (not found)`)].join(', '), matchedBy.dev],
        ['MAC', s.macs.join(', '), matchedBy.mac],
        ['address', s.ips.join(', '), matchedBy.ip],
      ],
    });
  }
  if (atOtherTaps.total > 0) {
    tables.push({
      title: "The VM's frames dropped at other VMs' taps (their rings, qdiscs or filters; not counted as this VM's loss)",
      columns: ['tap', 'drops'],
      rows: Object.entries(data.atOtherTaps.byDevice).map(([d, n]) => [d, n]),
    });
  }
  if (hostCopies.total > 0) {
    tables.push({
      title: "Host copies of bridged frames (the host's own stack discarded them; not counted as loss)",
      columns: ['reason', 'drops'],
      rows: Object.entries(data.hostCopies.byReason).map(([r, n]) => [r, n]),
    });
  }
  if (overhead) tables.push(overheadTable(overhead));
  if (topStacks.length > 0) {
    tables.push({
      title: `Top kernel stacks (sampled: per CPU the first ${STACK_FIRST} drops, then 1 in ${Number(params.stack_every ?? STACK_EVERY)})`,
      columns: ['sampled drops', 'reason', 'stack (innermost first)'],
      rows: topStacks.map((s) => [s.count, s.reason, s.frames.slice(0, 12).join(' ← ')]),
    });
  }
  return {
    data,
    summary,
    severity: total > 0 ? 'critical' : 'info',
    charts: total > 0 ? [bar('Drops by reason', data.byReason), bar('Drops by location', data.byLocation)] : [],
    tables,
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

export const dropsKernel: ProbeDefinition<DropsData> = {
  id: 'drops.kernel',
  title: 'Kernel packet drops by reason',
  description: `Counts every packet the kernel frees as a drop (\`skb:kfree_skb\` with a drop reason other than \`SKB_CONSUMED\`), aggregated in the kernel by reason, code location, device, network namespace and kernel stack, for \`duration\`. Reason names come from the running kernel's tracepoint format, locations and stacks are symbolised from \`/proc/kallsyms\`.

Use it when net.iface shows drops, or packets vanish without any counter moving: it tells *why* (\`NETFILTER_DROP\`, \`NO_SOCKET\`, \`QDISC_DROP\`, \`TCP_CSUM\`...) and *where*. Filters (device, namespace, IPv4 or IPv6 addresses, protocol, port) are applied in the kernel. Counts are exact; kernel stacks are sampled (per CPU the first ${STACK_FIRST} drops, then one in \`stack_every\`), since a stack walk is what makes a drop flood expensive. Attaches a raw tracepoint (falls back to tp_btf, then the classic tracepoint).

**One VM's drops.** With \`vm_macs\`, \`vm_ips\` or \`vm_devs\`, a drop counts only when it is the VM's packet: its device or input device is one of the VM's taps (in ebpfnet's namespace), or its Ethernet source or destination is one of the VM's MACs (when the skb has a MAC header), or its IPv4/IPv6 source or destination is one of the VM's addresses. \`scope\` says what was used and how many drops matched each way.

**Another VM's tap is not this VM's loss.** Scoped to a VM, its frames dropped at a tap that is not its own (a flooded broadcast, or what it sent a neighbour: at the neighbour's full ring, by a shaper or tc filter on the neighbour's tap) go to \`atOtherTaps\`: the neighbour's path is at fault, and asked about, says so. A tap is a device with \`tun_flags\` (on Open vSwitch's userspace datapath its internal ports are taps too); recordings older than this list only the \`tun\` reasons there.

**Host copies are not loss.** A broadcast, multicast or other-host frame dropped on its way *into* a device that is no bridge or OVS port (the frame's input device is the dropping device) is the host's own copy of a bridged frame: a Linux bridge's local copy (the drop is on the bridge device, e.g. IPv6 multicast the host never joined, \`ip6_mc_input\`), or a userspace switch's port (OVS netdev reads frames with AF_PACKET; the host stack then discards frames for other MACs, \`OTHERHOST\`). The switch forwarded the frame all the same, so these go to \`hostCopies\`, not \`total\`. Drops of the same frames while forwarded (a bridge netfilter rule, a bridge port's ingress rule, a qdisc or a full ring on the tap) stay in \`total\`, and so does the switch's own copy when its AF_PACKET socket was full (\`PACKET_SOCK_ERROR\`, \`packet_rcv\`): the switch never got that frame.

**Weight, not presence.** \`dominant\` is the reason with most of the drops and its share of \`total\`; \`byFamily\` and \`dominantFamily\` group reasons by name: ${FAMILY_PATTERNS.map(([f, re]) => `\`${f}\` (\`${re.source}\`)`).join(', ')}, \`other\` for the rest. Reasons of a subsystem (kernel 6.4+: the high 16 bits) are named from the kernel's BTF when the probe runs (\`enum skb_drop_reason_subsys\` in vmlinux, the subsystem's \`enum *_drop_reason\` in its module: \`OVS_DROP_LAST_ACTION\`), else \`OPENVSWITCH_<n>\`; \`bySubsystem\` counts them (\`core\` for the rest).`,
  normal: `A busy host drops a trickle of packets for benign reasons (\`NO_SOCKET\` for closed ports, \`NOT_SPECIFIED\` from some paths), and its stack discards its copies of bridged broadcast, multicast and other-host frames (\`hostCopies\`: \`OTHERHOST\`, \`ip6_mc_input\`...). Scoped to a healthy VM, \`total\` is 0. Drops in step with a VM's traffic, \`NETFILTER_DROP\` nobody expected, or any \`QDISC_*\`, \`*_CSUM\`, \`NEIGH_*\` reasons are not normal.`,
  replaces: ['packet-drop/kernel_drop_stack_stats_summary.py', 'packet-drop/kernel_drop_stack_stats.bt'],
  params: {
    duration: { type: 'duration', default: '5s', min: 100, description: 'How long to count drops.', cliOption: 'duration' },
    dev: { type: 'string', description: 'Only drops of this device (of the namespace ebpfnet runs in).', cliOption: 'dev' },
    netns: { type: 'string', description: 'Only drops in this network namespace: an `ip netns` name, a path, or an inode number.' },
    src_ip: { type: 'ip', description: 'Only packets from this IPv4 or IPv6 address.', cliOption: 'src-ip' },
    dst_ip: { type: 'ip', description: 'Only packets to this IPv4 or IPv6 address.', cliOption: 'dst-ip' },
    ip: { type: 'ip', description: 'Only packets from or to this IPv4 or IPv6 address (traffic in both directions). `src_ip`, `dst_ip` and `ip` are of one family.' },
    protocol: {
      type: 'string',
      enum: ['any', 'icmp', 'tcp', 'udp'],
      default: 'any',
      description: 'Only packets of this L4 protocol (`icmp` is ICMPv6 with an IPv6 address filter). IPv4 only, unless an IPv6 address filter is given.',
    },
    port: { type: 'integer', min: 0, max: 65535, default: 0, description: 'Only TCP/UDP packets with this source or destination port (0 = any); IPv4 only unless an IPv6 address filter is given.' },
    vm_macs: { type: 'string[]', default: [], description: `Count only the VM's drops: frames from or to these MACs (at most ${SCOPE_LIMITS.vm_macs}). With vm_ips and vm_devs, any match counts.` },
    vm_ips: { type: 'string[]', default: [], description: `Count only the VM's drops: packets from or to these IPv4/IPv6 addresses (at most ${SCOPE_LIMITS.vm_ips}).` },
    vm_devs: { type: 'string[]', default: [], description: `Count only the VM's drops: on or received by these devices of ebpfnet's namespace, the VM's taps (at most ${SCOPE_LIMITS.vm_devs}).` },
    host_copies: {
      type: 'string',
      enum: ['apart', 'count'],
      default: 'apart',
      description: "Where the host's own copies of bridged frames go (see above): `apart` in `hostCopies`, `count` in the totals like any drop.",
    },
    stacks: { type: 'boolean', default: true, description: 'Collect kernel stacks of the drops (sampled, see stack_every).' },
    stack_every: {
      type: 'integer',
      default: STACK_EVERY,
      min: 1,
      max: 1_000_000,
      description: `Per CPU, the first ${STACK_FIRST} drops get a kernel stack, then one in this many (1: every drop). A stack walk costs about ten times the rest of the handler, so in a drop flood sampling keeps the probe cheap; the stack table's counts are of sampled drops.`,
    },
    top: { type: 'integer', default: 10, min: 1, max: 1000, description: 'How many rows, bars and stacks to show.' },
    ignore: {
      type: 'string[]',
      default: [],
      description: 'Drop reasons to count apart (`ignored`) rather than in the totals. (The `OTHERHOST` copies every port of a userspace AF_PACKET switch hands the host are host copies already, see `host_copies`.)',
    },
  },
  requirements: [{ kind: 'root' }, { kind: 'kernel', feature: 'btf' }, { kind: 'tracepoint', name: TRACEPOINT }],
  overhead: 'low',
  budget: DROPS_BUDGET,
  driver: 'native',
  data: DATA,
  collect: async (params, io) => {
    await collectDrops(params, io);
  },
  parse: (records, params) => parseDrops(records, params),
};
