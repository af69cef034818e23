// Conntrack events over a window, from netlink (the NFNLGRP_CONNTRACK_* groups) through
// `conntrack -E` of conntrack-tools: a listener is started inside the target namespace before
// the window (capture `conntrack-listen`, once its netlink socket has joined the groups) and
// stopped after it (capture `conntrack-events`, its output). A replay answers both captures
// from the recording and starts nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { findBinary, installHint } from '../../engine/host/binaries.js';
import { inNetns } from '../../engine/probe/netns.js';
import type { ProbeIO, RawRecord } from '../../engine/probe/types.js';
import { parseAddr, sameAddr } from '../lib/vm-scope.js';
import type { ConntrackEventsData } from './data.js';

/** Timestamps, the layer-3 protocol and the entry's id on every line (`conntrack -E -o ...`). */
const OUTPUT = 'timestamp,extended,id';
/** A large socket buffer: a burst of events does not overflow it (ENOBUFS, events lost). */
const BUFFER_BYTES = String(8 * 1024 * 1024);
const READY_TIMEOUT_MS = 3000;
/** After the window: the events of its last packets are read before the listener stops (at most this long). */
const DRAIN_MS = 150;
const DRAIN_POLL_MS = 5;
const NETLINK_NETFILTER = 12;

export const EVENT_TYPES = ['NEW', 'UPDATE', 'DESTROY'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface ConntrackEvent {
  /** Seconds since the epoch, as conntrack printed it. */
  at: number;
  type: EventType;
  family: string;
  proto: string;
  /** The TCP (SCTP, DCCP) state the entry is in, when the protocol has states. */
  state: string | null;
  src: string;
  dst: string;
  sport: number | null;
  dport: number | null;
  /** [UNREPLIED], [ASSURED], ... without brackets. */
  flags: string[];
  /** The entry's id (the same over its NEW, UPDATEs and DESTROY). */
  id: string | null;
  /** The reply direction's addresses, when they are not the original's swapped (NAT). */
  reply?: { src: string; dst: string };
}

interface ListenCapture {
  started: boolean;
  pid?: number;
  error?: string;
}

interface EventsCapture {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

/** The listener of a live run (a replay starts none). */
export interface EventListener {
  /** Stops the listener and records what it printed; once, whoever calls it again. */
  stop(): Promise<void>;
}

/** The inodes of the sockets `pid` holds (its fds that link to `socket:[inode]`). */
async function socketInodes(pid: number): Promise<Set<string>> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return new Set(links.flatMap((l) => /^socket:\[(\d+)\]$/.exec(l)?.[1] ?? []));
}

/** The NETLINK_NETFILTER sockets of `pid` that joined groups, with the bytes queued on each (its namespace's /proc/net/netlink: sk Eth Pid Groups Rmem ... Inode). */
async function eventSockets(pid: number): Promise<Array<{ queued: number }>> {
  const [text, inodes] = await Promise.all([readFile(`/proc/${pid}/net/netlink`, 'utf8').catch(() => ''), socketInodes(pid)]);
  return text.split('\n').flatMap((line) => {
    const f = line.trim().split(/\s+/);
    return Number(f[1]) === NETLINK_NETFILTER && /[1-9a-f]/i.test(f[3] ?? '0') && inodes.has(f[9] ?? '') ? [{ queued: Number(f[4]) }] : [];
  });
}

async function subscribed(pid: number): Promise<boolean> {
  return (await eventSockets(pid)).length > 0;
}

/** Waits until conntrack has read every event queued on its socket (or DRAIN_MS passed). */
async function drain(pid: number | undefined): Promise<void> {
  const deadline = performance.now() + DRAIN_MS;
  do {
    await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    if (pid === undefined) return;
    // Read from the socket: one more poll for the last of them to be printed.
    if ((await eventSockets(pid)).every((sock) => sock.queued === 0)) return void (await new Promise((r) => setTimeout(r, DRAIN_POLL_MS)));
  } while (performance.now() < deadline);
}

/** Starts `conntrack -E` in `netns` and waits until it listens; `stop` records what it printed. */
export async function listenEvents(io: ProbeIO, netns: string | undefined): Promise<EventListener> {
  let child: ChildProcess | undefined;
  const out = { stdout: '', stderr: '' };
  let exited: Promise<number | null> = Promise.resolve(null);
  const listenRec = await io.capture('conntrack-listen', async () => {
    if (!(await findBinary('conntrack'))) return JSON.stringify({ started: false, error: `the conntrack command is missing: ${installHint('conntrack', 'conntrack')}` } satisfies ListenCapture);
    const argv = inNetns(netns, ['conntrack', '-E', '-o', OUTPUT, '-b', BUFFER_BYTES]);
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    child = proc;
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
    // An aborted probe leaves no listener behind.
    io.signal.addEventListener('abort', () => proc.kill('SIGKILL'), { once: true });
    let failed: string | undefined;
    exited = new Promise((resolve) => {
      proc.on('error', (err) => {
        failed = err.message;
        resolve(null);
      });
      proc.on('exit', (code) => resolve(code));
    });
    const deadline = performance.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (failed !== undefined || proc.exitCode !== null) {
        const why = failed ?? (out.stderr.trim().split('\n')[0] || `exited with ${proc.exitCode}`);
        return JSON.stringify({ started: false, error: `conntrack -E: ${why}` } satisfies ListenCapture);
      }
      if (proc.pid !== undefined && (await subscribed(proc.pid))) break;
      if (performance.now() > deadline) {
        proc.kill('SIGKILL');
        return JSON.stringify({ started: false, error: `conntrack -E did not subscribe to conntrack events within ${READY_TIMEOUT_MS} ms` } satisfies ListenCapture);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return JSON.stringify({ started: true, pid: proc.pid } satisfies ListenCapture);
  });
  const started = (JSON.parse(listenRec.stdout) as ListenCapture).started;
  let stopping: Promise<void> | undefined;
  return {
    // Once: a second call waits for the first.
    stop() {
      if (!started) return Promise.resolve();
      stopping ??= io
        .capture('conntrack-events', async () => {
          await drain(child?.pid);
          child?.kill('SIGTERM');
          const exitCode = await exited;
          return JSON.stringify({ ...out, exitCode } satisfies EventsCapture);
        })
        .then(() => undefined);
      return stopping;
    },
  };
}

const LINE = /^\[(\d+(?:\.\d+)?)\]\s+\[(NEW|UPDATE|DESTROY)\]\s+(\S+)\s+\d+\s+(\S+)\s+\d+\s+(.*)$/;

/**
 * One line of `conntrack -E -o timestamp,extended,id`:
 *   [1796171569.839517]	    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=42732 dport=22 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=22 dport=42732 id=3066274447
 * The original direction's tuple comes first; the reply's starts at the second `src=`. The
 * entry's id is the last field (an ICMP tuple has an `id=` of its own before it).
 */
export function parseEventLine(line: string): ConntrackEvent | null {
  const m = LINE.exec(line.trim());
  if (!m) return null;
  const tokens = m[5]!.split(/\s+/);
  let state: string | null = null;
  const orig = new Map<string, string>();
  const reply = new Map<string, string>();
  const flags: string[] = [];
  let srcSeen = 0;
  let id: string | null = null;
  tokens.forEach((tok, i) => {
    const flag = /^\[([A-Z_]+)\]$/.exec(tok);
    if (flag) {
      flags.push(flag[1]!);
      return;
    }
    const eq = tok.indexOf('=');
    if (eq < 0) {
      if (/^[A-Z_]+$/.test(tok) && srcSeen === 0) state = tok;
      return;
    }
    const key = tok.slice(0, eq);
    const value = tok.slice(eq + 1);
    if (key === 'src') srcSeen++;
    if (key === 'id' && i === tokens.length - 1) id = value;
    else if (srcSeen === 1 && !orig.has(key)) orig.set(key, value);
    else if (srcSeen === 2 && !reply.has(key)) reply.set(key, value);
  });
  const port = (k: string) => (orig.has(k) ? Number(orig.get(k)) : null);
  const src = orig.get('src') ?? '';
  const dst = orig.get('dst') ?? '';
  const [rSrc, rDst] = [reply.get('src'), reply.get('dst')];
  const natted = rSrc !== undefined && rDst !== undefined && !(sameAddr(rSrc, dst) && sameAddr(rDst, src));
  return {
    at: Number(m[1]),
    type: m[2] as EventType,
    family: m[3]!,
    proto: m[4]!,
    state,
    src: orig.get('src') ?? '',
    dst: orig.get('dst') ?? '',
    sport: port('sport'),
    dport: port('dport'),
    flags,
    id,
    ...(natted ? { reply: { src: rSrc, dst: rDst } } : {}),
  };
}

/** What the listener recorded: null when it did not run (no window, or not asked for). */
export interface RecordedEvents {
  events: ConntrackEvent[];
  /** Why there are no events: the listener could not start. */
  error?: string;
  /** Lines that were not events (besides conntrack's own closing line). */
  unparsed: number;
  /** conntrack's own count of the events it printed, when it said. */
  shown: number | null;
  /** Times the listener's socket overflowed (ENOBUFS): events were lost. */
  overflows: number;
}

export function recordedEvents(records: RawRecord[]): RecordedEvents | null {
  const listen = records.find((r) => r.op === 'capture' && r.name === 'conntrack-listen');
  if (!listen) return null;
  if (listen.error !== undefined) return { events: [], error: listen.error, unparsed: 0, shown: null, overflows: 0 };
  const l = JSON.parse(listen.stdout) as ListenCapture;
  if (!l.started) return { events: [], error: l.error ?? 'conntrack -E did not start', unparsed: 0, shown: null, overflows: 0 };
  const rec = records.find((r) => r.op === 'capture' && r.name === 'conntrack-events');
  if (!rec || rec.error !== undefined) return { events: [], error: rec?.error ?? 'the listener\'s output was not recorded', unparsed: 0, shown: null, overflows: 0 };
  const cap = JSON.parse(rec.stdout) as EventsCapture;
  const events: ConntrackEvent[] = [];
  let unparsed = 0;
  for (const line of cap.stdout.split('\n')) {
    if (line.trim() === '') continue;
    const e = parseEventLine(line);
    if (e) events.push(e);
    else unparsed++;
  }
  const shown = /(\d+) flow events? ha(?:s|ve) been shown/.exec(cap.stderr);
  return { events, unparsed, shown: shown ? Number(shown[1]) : null, overflows: (cap.stderr.match(/ENOBUFS/g) ?? []).length };
}

/** Which events count: the original direction's tuple against the probe's filters (absent: any). */
export interface EventFilters {
  srcIp?: string;
  dstIp?: string;
  proto?: string;
  srcPort?: number;
  dstPort?: number;
  /** A VM's addresses: only connections whose original or reply tuple has one of them. */
  vmIps?: string[];
}

/** Whether the connection has one of the VM's addresses, in either direction (a NATed reply included). */
function isVmConnection(e: ConntrackEvent, vmIps: string[]): boolean {
  const mine = vmIps.map(parseAddr);
  const addrs = [e.src, e.dst, e.reply?.src, e.reply?.dst].filter((a): a is string => a !== undefined).map(parseAddr);
  return addrs.some((a) => a !== null && mine.some((m) => m !== null && m.family === a.family && m.value === a.value));
}

export function eventMatches(e: ConntrackEvent, f: EventFilters): boolean {
  return (
    (f.vmIps === undefined || f.vmIps.length === 0 || isVmConnection(e, f.vmIps)) &&
    (f.srcIp === undefined || sameAddr(e.src, f.srcIp)) &&
    (f.dstIp === undefined || sameAddr(e.dst, f.dstIp)) &&
    (f.proto === undefined || e.proto === f.proto) &&
    (f.srcPort === undefined || e.sport === f.srcPort) &&
    (f.dstPort === undefined || e.dport === f.dstPort)
  );
}

export type TypeCounts = Record<EventType, number>;
type EventFlow = ConntrackEventsData['topFlows'][number];
type EarlyDestroy = ConntrackEventsData['earlyDestroys'][number];

const zeroTypes = (): TypeCounts => ({ NEW: 0, UPDATE: 0, DESTROY: 0 });
const flowText = (e: ConntrackEvent) =>
  e.sport !== null && e.dport !== null ? `${e.proto} ${e.src}:${e.sport} > ${e.dst}:${e.dport}` : `${e.proto} ${e.src} > ${e.dst}`;

/** The window's events, counted: by type, protocol, state, entry; and the entries destroyed early. */
export function summariseEvents(rec: RecordedEvents, filters: EventFilters, top: number): ConntrackEventsData {
  const events = rec.events.filter((e) => eventMatches(e, filters));
  const byType = zeroTypes();
  const byProtocol: Record<string, TypeCounts> = {};
  const byState: Record<string, number> = {};
  const flows = new Map<string, EventFlow>();
  const born = new Map<string, number>();
  const earlyByProto: Record<string, number> = {};
  const early: EarlyDestroy[] = [];
  for (const e of events) {
    byType[e.type]++;
    (byProtocol[e.proto] ??= zeroTypes())[e.type]++;
    if (e.state !== null) byState[`${e.proto} ${e.state}`] = (byState[`${e.proto} ${e.state}`] ?? 0) + 1;
    const key = e.id ?? flowText(e);
    let f = flows.get(key);
    if (!f) flows.set(key, (f = { flow: flowText(e), proto: e.proto, events: 0, byType: zeroTypes(), lastState: null, assured: false }));
    f.events++;
    f.byType[e.type]++;
    if (e.state !== null) f.lastState = e.state;
    if (e.flags.includes('ASSURED')) f.assured = true;
    if (e.type === 'NEW') born.set(key, e.at);
    if (e.type === 'DESTROY' && !e.flags.includes('ASSURED')) {
      earlyByProto[e.proto] = (earlyByProto[e.proto] ?? 0) + 1;
      const from = born.get(key);
      early.push({ flow: flowText(e), proto: e.proto, state: e.state, lifetimeMs: from === undefined ? null : Math.round((e.at - from) * 1e6) / 1e3 });
    }
  }
  const topFlows = [...flows.values()].sort((a, b) => b.events - a.events || a.flow.localeCompare(b.flow)).slice(0, top);
  return {
    listened: rec.error === undefined,
    ...(rec.error !== undefined ? { error: rec.error } : {}),
    total: events.length,
    byType,
    byProtocol,
    byState,
    topFlows,
    destroyedEarly: early.length,
    destroyedEarlyByProtocol: earlyByProto,
    earlyDestroys: early.slice(0, top),
    overflows: rec.overflows,
    unparsed: rec.unparsed,
  };
}
