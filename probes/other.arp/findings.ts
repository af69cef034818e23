// other.arp's finding from what the session recorded: per-sender counts become conflicts
// (one IP claimed by several MACs), storms (gratuitous or unsolicited ARP faster than a
// threshold from one MAC), unsolicited replies and MAC mismatches, with per-device totals.
import { formatMs } from '../../engine/duration.js';
import { loadedFields, type LoadedRecord } from '../../engine/native/attach-plan.js';
import type { OverheadReport } from '../../engine/probe/overhead.js';
import type { BarChart, ChartSpec, ProbeResult, Severity, TableSpec } from '../../engine/probe/types.js';
import type { ArpMethod } from './attach.js';
import type { ArpConflict, ArpData, ArpSender, ArpStorm } from './data.js';

export type { ArpData, ArpSender };
import { round } from '../lib/format.js';
import { loadedTables } from '../lib/bpf-probe.js';

/** How each received frame is classified (probes/other.arp/other.arp.h): every frame is exactly one of these. */
export const KINDS = ['requests', 'replies', 'gratuitous', 'probes', 'unsolicited', 'unverified', 'other'] as const;
export type ArpKind = (typeof KINDS)[number];
export type ArpCounts = Record<ArpKind, number>;

/** One `senders` entry as the dump records it. */
export interface SenderEntry extends ArpCounts {
  ifindex: number;
  netns: number;
  ip: string;
  mac: string;
  macMismatch: number;
  /** The Ethernet source of the last frame whose source was not `mac`. */
  ethSrc: string | null;
  peakPerSec: number;
}

/** The `dump` capture. */
export interface DumpCapture {
  windowMs: number;
  /** ARP frames received that passed the filters. */
  seen: number;
  /** Of those, frames not aggregated: the senders map was full. */
  unkeyed: number;
  /** ARP requests the watched namespace(s) sent. */
  asked: number;
  entries: SenderEntry[];
}

export interface AttachCapture extends LoadedRecord<ArpMethod> {
  filters: { netns: string | null; netnsInode: number; dev: string | null; ifindex: number; ip: string | null; replyWindowMs: number };
}

/** Where the session looked: the namespace's inode and its devices (ifindex → name). */
export interface Scope {
  netnsInode: number;
  devices: Record<string, string>;
}

export interface ParseOptions {
  stormPerSec: number;
  top: number;
}

const zero = (): ArpCounts => ({ requests: 0, replies: 0, gratuitous: 0, probes: 0, unsolicited: 0, unverified: 0, other: 0 });
const framesOf = (c: ArpCounts) => KINDS.reduce((s, k) => s + c[k], 0);
const addCounts = (into: ArpCounts, from: ArpCounts) => KINDS.forEach((k) => (into[k] += from[k]));
const abnormalOf = (c: ArpCounts) => c.gratuitous + c.unsolicited;
const plural = (n: number, word: string, words = `${word}s`) => `${n} ${n === 1 ? word : words}`;
const uniqueSorted = (xs: string[]) => [...new Set(xs)].sort();

function deviceName(e: SenderEntry, scope: Scope): string {
  if (e.netns === scope.netnsInode) return scope.devices[String(e.ifindex)] ?? `if${e.ifindex}`;
  return `if${e.ifindex}@netns:${e.netns}`;
}

/** One IP claimed by more than one MAC (DAD probes from 0.0.0.0 claim nothing). */
function conflictsOf(senders: ArpSender[]): ArpConflict[] {
  const byIp = new Map<string, Map<string, { frames: number; devices: string[] }>>();
  for (const s of senders) {
    const claims = s.frames - s.probes;
    if (s.ip === '0.0.0.0' || claims === 0) continue;
    const macs = byIp.get(s.ip) ?? new Map<string, { frames: number; devices: string[] }>();
    const m = macs.get(s.mac) ?? { frames: 0, devices: [] };
    m.frames += claims;
    m.devices = uniqueSorted([...m.devices, s.device]);
    macs.set(s.mac, m);
    byIp.set(s.ip, macs);
  }
  return [...byIp.entries()]
    .filter(([, macs]) => macs.size > 1)
    .map(([ip, macs]) => ({ ip, macs: [...macs.entries()].map(([mac, m]) => ({ mac, ...m })).sort((a, b) => a.mac.localeCompare(b.mac)) }))
    .sort((a, b) => compareIp(a.ip, b.ip));
}

/** Per (device, MAC): gratuitous + unsolicited frames at or above `perSec`, at their peak or on average. */
function stormsOf(senders: ArpSender[], perSec: number, windowMs: number): ArpStorm[] {
  const groups = new Map<string, ArpStorm>();
  for (const s of senders) {
    if (abnormalOf(s) === 0) continue;
    const k = `${s.device}\u0000${s.mac}`;
    const g = groups.get(k) ?? { device: s.device, mac: s.mac, ips: [], gratuitous: 0, unsolicited: 0, peakPerSec: 0, ratePerSec: 0 };
    g.ips = uniqueSorted([...g.ips, s.ip]);
    g.gratuitous += s.gratuitous;
    g.unsolicited += s.unsolicited;
    g.peakPerSec = Math.max(g.peakPerSec, s.peakPerSec);
    groups.set(k, g);
  }
  const secs = Math.max(windowMs, 1000) / 1000;
  return [...groups.values()]
    .map((g) => ({ ...g, ratePerSec: round((g.gratuitous + g.unsolicited) / secs) }))
    .filter((g) => Math.max(g.peakPerSec, g.ratePerSec) >= perSec)
    .sort((a, b) => b.peakPerSec - a.peakPerSec || a.mac.localeCompare(b.mac) || a.device.localeCompare(b.device));
}

function compareIp(a: string, b: string): number {
  const n = (ip: string) => ip.split('.').reduce((v, o) => v * 256 + Number(o), 0);
  return n(a) - n(b);
}

const bySender = (a: ArpSender, b: ArpSender) =>
  abnormalOf(b) - abnormalOf(a) || b.frames - a.frames || compareIp(a.ip, b.ip) || a.mac.localeCompare(b.mac) || a.device.localeCompare(b.device);

function summaryOf(d: ArpData): string {
  const secs = `${(d.windowMs / 1000).toFixed(1)}s`;
  const parts: string[] = [];
  for (const c of d.conflicts) parts.push(`IP ${c.ip} claimed by ${c.macs.length} MACs (${c.macs.map((m) => m.mac).join(', ')})`);
  for (const s of d.storms.slice(0, 3)) {
    const what = s.unsolicited > s.gratuitous ? 'unsolicited ARP reply' : 'gratuitous ARP';
    parts.push(`${what} storm from ${s.mac} (${s.ips.join(', ')}) on ${s.device}: ${s.gratuitous + s.unsolicited} in ${secs}, peak ${s.peakPerSec}/s`);
  }
  const unsolicited = d.unsolicited.reduce((n, u) => n + u.count, 0);
  if (unsolicited > 0) {
    const who = uniqueSorted(d.unsolicited.map((u) => `${u.ip} from ${u.mac}`));
    parts.push(`${plural(unsolicited, 'unsolicited reply', 'unsolicited replies')} (${who.slice(0, 3).join(', ')}${who.length > 3 ? `, +${who.length - 3} more` : ''})`);
  }
  const mismatched = d.mismatches.reduce((n, m) => n + m.count, 0);
  if (mismatched > 0) parts.push(`${plural(mismatched, 'frame')} whose Ethernet source is not the ARP sender MAC`);
  let summary: string;
  if (parts.length > 0) summary = `${parts.join('; ')} (${plural(d.frames, 'ARP frame')} in ${secs})`;
  else {
    const devices = Object.keys(d.byDevice).length;
    summary = `no abnormal ARP in ${secs}: ${plural(d.totals.requests, 'request')}, ${plural(d.totals.replies, 'reply', 'replies')}, ${d.totals.gratuitous} gratuitous on ${plural(devices, 'device')}`;
  }
  if (d.stopped) summary += ` (stopped: ${d.stopped})`;
  return summary;
}

function severityOf(d: ArpData): Severity {
  if (d.conflicts.length > 0 || d.storms.length > 0) return 'critical';
  if (d.unsolicited.length > 0 || d.mismatches.length > 0) return 'warning';
  return 'info';
}

function offendersTable(d: ArpData): TableSpec {
  const rows: TableSpec['rows'] = [];
  for (const c of d.conflicts) for (const m of c.macs) rows.push(['IP conflict', c.ip, m.mac, m.devices.join(', '), m.frames, `${c.macs.length} MACs claim ${c.ip}`]);
  for (const s of d.storms) rows.push(['storm', s.ips.join(', '), s.mac, s.device, s.gratuitous + s.unsolicited, `peak ${s.peakPerSec}/s, mean ${s.ratePerSec}/s (${s.gratuitous} gratuitous, ${s.unsolicited} unsolicited)`]);
  for (const u of d.unsolicited) rows.push(['unsolicited reply', u.ip, u.mac, u.device, u.count, `no request for ${u.ip} within ${formatMs(d.replyWindowMs)}`]);
  for (const m of d.mismatches) rows.push(['MAC mismatch', m.ip, m.arpMac, m.device, m.count, `Ethernet source ${m.ethMac}`]);
  return { title: 'Abnormal ARP: offenders', columns: ['finding', 'IP', 'MAC', 'device', 'frames', 'detail'], rows };
}

function chartsOf(d: ArpData, top: number): ChartSpec[] {
  if (d.frames === 0) return [];
  const charts: ChartSpec[] = [
    { kind: 'bar', title: 'ARP frames received by kind', unit: 'frames', bars: KINDS.filter((k) => d.totals[k] > 0).map((k) => ({ label: k, value: d.totals[k] })) },
  ];
  const loud = d.senders.filter((s) => abnormalOf(s) > 0).slice(0, top);
  if (loud.length > 0) {
    const bar: BarChart = { kind: 'bar', title: 'Gratuitous + unsolicited ARP per sender', unit: 'frames', bars: loud.map((s) => ({ label: `${s.mac} ${s.ip} (${s.device})`, value: abnormalOf(s) })) };
    charts.push(bar);
  }
  return charts;
}

/** The finding of one session: its attach record, where it looked, its dump and overhead. */
export function arpFinding(att: AttachCapture, scope: Scope, dump: DumpCapture, overhead: OverheadReport | null, opts: ParseOptions): ProbeResult<ArpData> {
  const all: ArpSender[] = dump.entries.map((e) => {
    const counts = Object.fromEntries(KINDS.map((k) => [k, e[k]])) as ArpCounts;
    return { device: deviceName(e, scope), ip: e.ip, mac: e.mac, ...counts, macMismatch: e.macMismatch, peakPerSec: e.peakPerSec, frames: framesOf(counts) };
  });
  all.sort(bySender);
  const totals = { ...zero(), macMismatch: 0 };
  const byDevice: Record<string, ArpCounts> = {};
  for (const s of all) {
    addCounts(totals, s);
    totals.macMismatch += s.macMismatch;
    addCounts((byDevice[s.device] ??= zero()), s);
  }
  const mismatches = dump.entries
    .filter((e) => e.macMismatch > 0)
    .map((e) => ({ device: deviceName(e, scope), ip: e.ip, arpMac: e.mac, ethMac: e.ethSrc ?? '', count: e.macMismatch }))
    .sort((a, b) => b.count - a.count || compareIp(a.ip, b.ip));
  const unsolicited = all.filter((s) => s.unsolicited > 0).map((s) => ({ device: s.device, ip: s.ip, mac: s.mac, count: s.unsolicited }));
  const conflicts = conflictsOf(all);
  const storms = stormsOf(all, opts.stormPerSec, dump.windowMs);
  const stopped = overhead?.stopped;

  const notes: string[] = [];
  if (stopped) notes.push(`stopped early: ${stopped}; the counts cover the ${(dump.windowMs / 1000).toFixed(1)}s before`);
  if (dump.unkeyed > 0) notes.push(`${dump.unkeyed} ARP frames were counted but not kept per sender: the senders map was full`);
  if (totals.unverified > 0) {
    notes.push(`${plural(totals.unverified, 'reply', 'replies')} arrived in the first ${formatMs(att.filters.replyWindowMs)} without a request seen: they may answer requests sent before the probe started, so they are not called unsolicited`);
  }

  const data: ArpData = {
    ...loadedFields(att),
    windowMs: dump.windowMs,
    ...(overhead ? { overhead } : {}),
    ...(stopped ? { stopped } : {}),
    filters: { netns: att.filters.netns, dev: att.filters.dev, ip: att.filters.ip },
    stormPerSec: opts.stormPerSec,
    replyWindowMs: att.filters.replyWindowMs,
    frames: dump.seen,
    totals,
    byDevice: Object.fromEntries(Object.entries(byDevice).sort(([a], [b]) => a.localeCompare(b))),
    requestsSent: dump.asked,
    conflicts,
    storms,
    unsolicited,
    mismatches,
    senders: all.slice(0, opts.top),
    senderCount: all.length,
    lost: dump.unkeyed,
    abnormal: conflicts.length + storms.length + unsolicited.length + mismatches.length > 0,
    notes,
  };

  const kindColumns = [...KINDS];
  const tables: TableSpec[] = [
    offendersTable(data),
    {
      title: `ARP senders (most gratuitous + unsolicited first${all.length > opts.top ? `, ${opts.top} of ${all.length}` : ''})`,
      columns: ['device', 'sender IP', 'sender MAC', ...kindColumns, 'MAC mismatch', 'peak abnormal/s'],
      rows: data.senders.map((s) => [s.device, s.ip, s.mac, ...kindColumns.map((k) => s[k]), s.macMismatch, s.peakPerSec]),
    },
    { title: 'ARP frames received per device', columns: ['device', ...kindColumns], rows: Object.entries(data.byDevice).map(([dev, c]) => [dev, ...kindColumns.map((k) => c[k])]) },
    ...loadedTables(att, overhead),
  ];
  return { data, summary: summaryOf(data), severity: severityOf(data), charts: chartsOf(data, opts.top), tables };
}
