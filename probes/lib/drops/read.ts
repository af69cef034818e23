// The counts of a recorded kfree_skb drop session (session.ts): by reason, location, device,
// subsystem and family of reason, within a VM's scope, with the host's copies of bridged
// frames and the VM's frames dropped at other VMs' taps counted apart. drops.kernel reports
// them; the probes that run the session beside their own reads join them with those.
import { captureRecord } from '../../../engine/probe/bpf-session.js';
import { overheadOf } from '../../../engine/probe/overhead.js';
import type { Params, RawRecord } from '../../../engine/probe/types.js';
import type { DropsData } from '../data/drops.js';
import { hasReasonField, parseReasonNames } from '../drop-reasons.js';
import { round } from '../format.js';
import { addCount, sortedCounts } from '../tally.js';
import { dominantOf, reasonFamily } from './families.js';
import { functionOf, reasonAt } from './locations.js';
import { reasonName, type SubsystemNames } from './subsystems.js';
import type { AttachCapture, DumpCapture } from './session.js';

/** Bits of the key's flags (enum drops_flag in probes/drops.kernel/drops.kernel.h). */
const BY_DEV = 1;
const BY_MAC = 2;
const BY_IP = 4;
const HOST_COPY = 8;
const OTHERHOST = 16;

export type { DropsData } from '../data/drops.js';

/** What a session counted, and what its finding shows beyond `data`. */
export interface DropsReading {
  data: DropsData;
  /** Every (reason, location, device) group, busiest first; `data.top` holds the first `top`. */
  groups: DropsData['top'];
  /** The object's load time, ms (recordings before per-program load times keep it only here). */
  loadMs: number;
  /** Subsystems whose reason names could not be read, with why. */
  missingSubsystems?: string[];
}

export { functionOf } from './locations.js';

export interface ReadDropsOptions {
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
 * The counts of a session `collectDrops` recorded (under `prefix`); other records are ignored.
 * Host copies are counted apart (`hostCopies`) when `params.host_copies` is `apart` (drops.kernel's
 * default); probes that run a session with params of their own keep them in the totals.
 */
export function readDrops(records: RawRecord[], params: Params, opts: ReadDropsOptions = {}): DropsReading {
  const prefix = opts.prefix ?? '';
  const format = captureRecord(records, `${prefix}reasons`).stdout;
  const reasons = parseReasonNames(format);
  // Before 5.17 the kernel gives no reason: the place of the drop says which a later kernel would.
  const reasonsFrom = hasReasonField(format) || reasons.size > 0 ? 'kernel' : 'location';
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
    // The dropping function, then its callers (the tracing machinery above it is noise).
    const raw = dump.stacks[String(e.stackId)] ?? [];
    const at = raw.indexOf(e.location);
    const frames = (at >= 0 ? raw.slice(at) : raw).map(sym);
    const flags = e.flags ?? 0;
    const { name: reason, subsystem } =
      reasonsFrom === 'kernel' ? reasonName(e.reason, reasons, subsystems) : { name: reasonAt([sym(e.location), ...frames], (flags & OTHERHOST) !== 0), subsystem: 'core' };
    const dev = device(e.ifindex, e.netns);
    if (copiesApart && flags & HOST_COPY && !switchRead(reason, sym(e.location))) {
      hostCopies.total += e.count;
      addCount(hostCopies.byReason, reason, e.count);
      addCount(hostCopies.byDevice, dev, e.count);
      continue;
    }
    if (ignore.has(reason)) {
      addCount(ignored, reason, e.count);
      continue;
    }
    const family = reasonFamily(reason, subsystem);
    // A tap is its own VM's path: the VM's frames dropped at another tap (its full ring, its
    // qdisc, a tc filter on it) were on their way to, or from, that neighbour.
    if (ownDevs.size > 0 && e.netns === dump.hostNetns && !ownDevs.has(dev) && (family === 'tun' || taps.has(dev))) {
      atOtherTaps.total += e.count;
      addCount(atOtherTaps.byReason, reason, e.count);
      addCount(atOtherTaps.byDevice, dev, e.count);
      continue;
    }
    const location = sym(e.location);
    total += e.count;
    addCount(byReason, reason, e.count);
    addCount(byLocation, location, e.count);
    addCount(byDevice, dev, e.count);
    addCount(bySubsystem, subsystem, e.count);
    addCount(byFamily, family, e.count);
    if (flags & BY_DEV) matchedBy.dev += e.count;
    else if (flags & BY_MAC) matchedBy.mac += e.count;
    else if (flags & BY_IP) matchedBy.ip += e.count;
    const gk = `${reason}\u0000${location}\u0000${dev}`;
    const g = groups.get(gk) ?? { reason, family, location, device: dev, count: 0 };
    g.count += e.count;
    groups.set(gk, g);
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
    reasonsFrom,
    attach: att.attach,
    ...(att.fallback !== undefined ? { fallback: att.fallback } : {}),
    windowMs: dump.windowMs,
    ...(overhead ? { overhead } : {}),
    total,
    ignored: sortedCounts(ignored),
    ...(lost > 0 ? { lost } : {}),
    byReason: sortedCounts(byReason),
    byLocation: sortedCounts(byLocation),
    byDevice: sortedCounts(byDevice),
    bySubsystem: sortedCounts(bySubsystem),
    byFamily: sortedCounts(byFamily),
    dominant: dominant && { reason: dominant.key, count: dominant.count, share: dominant.share },
    dominantFamily: dominantFamily && { family: dominantFamily.key, count: dominantFamily.count, share: dominantFamily.share },
    scope: att.scope ? { ...att.scope, matchedBy } : null,
    hostCopies: { total: hostCopies.total, byReason: sortedCounts(hostCopies.byReason), byDevice: sortedCounts(hostCopies.byDevice) },
    atOtherTaps: { total: atOtherTaps.total, byReason: sortedCounts(atOtherTaps.byReason), byDevice: sortedCounts(atOtherTaps.byDevice) },
    topStacks,
    top: topGroups.slice(0, top),
  };
  return { data, groups: topGroups, loadMs: att.loadMs, ...(subsystems?.missing ? { missingSubsystems: subsystems.missing } : {}) };
}
