// net.defrag's kprobe flavour (probes/net.defrag/net.defrag.kprobe.bpf.c): the IPv4 reassembly queues seen from
// ip_defrag (every fragment handed to reassembly, by source and by who asked for it) and
// ip_expire (every queue whose timer fired before its datagram was complete, with its source,
// IP ID and what it held). Kprobes only: on a kernel without them (this project's lab) the
// programs are not loaded, and the session says so in its attach record
// (`kprobe-attach`). The maps are recorded (`kprobe-dump`), so a replay re-parses them.
import type { BpfObject } from '../../engine/native/object.js';
import type { SessionWork } from '../../engine/probe/bpf-session.js';
import { slotTotals } from '../../engine/probe/bpf-values.js';
import type { ProbeIO, RawRecord } from '../../engine/probe/types.js';
import { KPROBE_PREFIX, kprobeObjectOpener, readKprobeSession, runDeviceKprobeSession, type KprobeProgram } from '../lib/kprobe-session.js';
import { namespaceLabel, type NamespaceNames } from '../lib/netdev.js';
import type { DefragQueues, ExpiredQueue } from './data.js';

/** The programs of defrag-kprobe.bpf.c and where each attaches. */
export const DEFRAG_KPROBES: readonly KprobeProgram[] = [
  { program: 'defrag_ip_defrag_kprobe', kind: 'kprobe', target: 'ip_defrag' },
  { program: 'defrag_ip_expire_kprobe', kind: 'kprobe', target: 'ip_expire' },
];

/** Slots of the per-CPU `totals` map (enum defrag_kprobe_total of probes/net.defrag/net.defrag.h). */
const TOTALS = { attempts: 0, attemptsUnkeyed: 1, expired: 2, expiredUnkeyed: 3 };
/** include/net/inet_frag.h */
const FIRST_IN = 1;
const LAST_IN = 2;

export interface QueueFilters {
  saddr: Uint8Array | null;
  daddr: Uint8Array | null;
  protocol: number;
}

/** The opener of net.defrag.kprobe.bpf.o with its filters set. */
export function queueObjectOpener(f: QueueFilters): Promise<() => BpfObject> {
  return kprobeObjectOpener('net.defrag.kprobe', { targ_saddr: f.saddr ?? new Uint8Array(4), targ_daddr: f.daddr ?? new Uint8Array(4), targ_proto: f.protocol });
}

/** struct defrag_attempt_key + its count. */
export interface AttemptEntry {
  netns: number;
  saddr: string;
  daddr: string;
  user: number;
  protocol: number;
  count: number;
}

/** struct defrag_queue_key + struct defrag_queue_value. */
export interface ExpiredEntry {
  netns: number;
  saddr: string;
  daddr: string;
  user: number;
  id: number;
  protocol: number;
  expiries: number;
  meat: number;
  len: number;
  flags: number;
}

/** The `kprobe-dump` capture record. */
export interface QueueDump extends NamespaceNames {
  windowMs: number;
  attempts: AttemptEntry[];
  expired: ExpiredEntry[];
  totals: Record<keyof typeof TOTALS, number>;
}

/** A __be32 address (decoded big-endian) in dotted form. */
const ipv4 = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');

/** Reads the maps (exported for the test that fills them as the kernel would). */
export function readQueueMaps(o: BpfObject): Pick<QueueDump, 'attempts' | 'expired' | 'totals'> {
  type AttemptKey = { netns: number; saddr: number; daddr: number; user: number; protocol: number };
  const attempts = o
    .map('attempts')
    .readAllDecoded<AttemptKey, number>()
    .map(({ key: k, value }) => ({ netns: k.netns, saddr: ipv4(k.saddr), daddr: ipv4(k.daddr), user: k.user, protocol: k.protocol, count: value }));
  type QueueKey = AttemptKey & { id: number };
  type QueueValue = { expiries: number; meat: number; len: number; flags: number };
  const expired = o
    .map('expired')
    .readAllDecoded<QueueKey, QueueValue>()
    .map(({ key: k, value: v }) => ({
      netns: k.netns,
      saddr: ipv4(k.saddr),
      daddr: ipv4(k.daddr),
      user: k.user,
      id: k.id,
      protocol: k.protocol,
      expiries: v.expiries,
      meat: v.meat,
      len: v.len,
      flags: v.flags,
    }));
  attempts.sort((a, b) => b.count - a.count || a.saddr.localeCompare(b.saddr) || a.daddr.localeCompare(b.daddr) || a.user - b.user);
  expired.sort((a, b) => b.expiries - a.expiries || a.saddr.localeCompare(b.saddr) || a.id - b.id);
  return { attempts, expired, totals: slotTotals(o.map('totals'), TOTALS) };
}

/**
 * Loads the kprobes and attaches each that attaches, recording which did not and why
 * (`kprobe-*`), while `window` runs; then reads the queues.
 */
export async function runQueueSession(io: ProbeIO, filters: QueueFilters, window: SessionWork): Promise<void> {
  await runDeviceKprobeSession(io, await queueObjectOpener(filters), DEFRAG_KPROBES, window, readQueueMaps);
}

// ---- parse ---------------------------------------------------------------------------------

/** enum ip_defrag_users: who handed the fragment to reassembly (conntrack users carry the zone). */
export function defragUser(user: number): string {
  if (user === 0) return 'local delivery';
  if (user === 1) return 'router alert';
  const ranges: Array<[number, string]> = [
    [2, 'conntrack in'],
    [65538, 'conntrack out'],
    [131074, 'conntrack bridge in'],
  ];
  for (const [start, name] of ranges) if (user >= start && user < start + 65536) return user === start ? name : `${name} (zone ${user - start})`;
  const fixed: Record<number, string> = { 196610: 'ipvs in', 196611: 'ipvs out', 196612: 'ipvs forward', 196613: 'af_packet', 196614: 'macvlan' };
  return fixed[user] ?? `user ${user}`;
}

function missingOf(flags: number): ExpiredQueue['missing'] {
  const first = (flags & FIRST_IN) !== 0;
  const last = (flags & LAST_IN) !== 0;
  if (!first && !last) return 'first and last';
  if (!first) return 'first';
  return last ? 'middle' : 'last';
}

function bySource<T>(list: T[], source: (t: T) => string, n: (t: T) => number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of list) out[source(t)] = (out[source(t)] ?? 0) + n(t);
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

/** The kprobe session's part of the finding, from its capture records; null when it did not run. */
export function parseQueues(records: RawRecord[], top: number, protocolName: (p: number) => string): DefragQueues | null {
  const k = readKprobeSession<QueueDump>(records, KPROBE_PREFIX);
  if (!k) return null;
  const dump = k.dump;
  const ns = (netns: number) => (dump ? namespaceLabel(netns, dump) : null);
  const attempts = dump?.attempts ?? [];
  const expired = dump?.expired ?? [];
  const lost = (dump?.totals.attemptsUnkeyed ?? 0) + (dump?.totals.expiredUnkeyed ?? 0);
  return {
    attached: k.attached,
    failed: k.failed,
    windowMs: dump?.windowMs ?? 0,
    attempts: dump?.totals.attempts ?? 0,
    attemptsBySource: bySource(attempts, (a) => a.saddr, (a) => a.count),
    attemptFlows: attempts.slice(0, top).map((a) => ({ source: a.saddr, destination: a.daddr, protocol: protocolName(a.protocol), user: defragUser(a.user), netns: ns(a.netns), fragments: a.count })),
    expired: dump?.totals.expired ?? 0,
    expiredBySource: bySource(expired, (e) => e.saddr, (e) => e.expiries),
    expiredQueues: expired.slice(0, top).map((e) => ({
      source: e.saddr,
      destination: e.daddr,
      id: e.id,
      protocol: protocolName(e.protocol),
      user: defragUser(e.user),
      netns: ns(e.netns),
      expiries: e.expiries,
      receivedBytes: e.meat,
      totalBytes: e.flags & LAST_IN ? e.len : null,
      firstIn: (e.flags & FIRST_IN) !== 0,
      lastIn: (e.flags & LAST_IN) !== 0,
      missing: missingOf(e.flags),
    })),
    lost,
    ...(k.overhead ? { overhead: k.overhead } : {}),
  };
}
