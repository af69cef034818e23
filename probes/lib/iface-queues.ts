// Per-queue view of an interface: the queue layout (/sys/class/net/<dev>/queues/{rx,tx}-N),
// each TX queue's watchdog timeouts and byte-queue-limit state, and the per-queue packet,
// byte, drop and error counters a driver gives through `ethtool -S` (veth:
// rx_queue_N_xdp_packets..., virtio_net: rx_queue_N_packets..., i40e: tx-N.packets, mlx5:
// rx0_packets), read at the start and the end of the window and parsed generically.
import type { ProbeIO, RawRecord } from '../../engine/probe/types.js';
import { parseCounter, perFileReads, round2, SYS_NET } from './iface-counters.js';

export type QueueDirection = 'rx' | 'tx';

export interface IfaceQueue {
  direction: QueueDirection;
  queue: number;
  /** Deltas over the window of the driver's per-queue packet and byte counters; null when it has none. */
  packets: number | null;
  bytes: number | null;
  /** Sum of the queue's counters named *drop*; null when it has none. */
  drops: number | null;
  /** Sum of the queue's counters named *err*; null when it has none. */
  errors: number | null;
  /** Every per-queue counter of `ethtool -S` (name without the queue part), as deltas. */
  counters: Record<string, number>;
  /** TX only: transmit watchdog timeouts (sysfs tx_timeout) during the window; null when unreadable. */
  txTimeouts?: number | null;
  /** TX only: byte queue limits at the end (bytes in flight, current limit); absent without BQL. */
  bql?: { inflight: number | null; limit: number | null };
}

export interface IfaceQueues {
  /** Queues the device has (sysfs). */
  rx: number;
  tx: number;
  /** Whether per-queue counters came from `ethtool -S`. */
  counted: boolean;
  queues: IfaceQueue[];
}

/** A queue that took (nearly) all of its device's traffic in one direction while others idled. */
export interface QueueSkew {
  device: string;
  direction: QueueDirection;
  queue: number;
  /** Its share of the direction's packets, 0..1. */
  share: number;
  packets: number;
  /** Queues with counters in that direction. */
  queues: number;
}

export interface QueueProblem {
  device: string;
  direction: QueueDirection;
  queue: number;
  count: number;
}

/** A skew needs this share of at least this many packets. */
export const SKEW_SHARE = 0.9;
export const SKEW_MIN_PACKETS = 100;
const EXEC_TIMEOUT_MS = 5000;
const QUEUE_DIR_RE = /^(rx|tx)-(\d+)$/;
/** ethtool -S names of per-queue counters: direction, queue index, counter. */
const STAT_PATTERNS: Array<{ re: RegExp; dir: number; queue: number; name: number }> = [
  { re: /^(rx|tx)_queue_(\d+)_(\w+)$/, dir: 1, queue: 2, name: 3 },
  { re: /^(rx|tx)-(\d+)\.(\w+)$/, dir: 1, queue: 2, name: 3 },
  { re: /^(rx|tx)(\d+)_(\w+)$/, dir: 1, queue: 2, name: 3 },
  { re: /^queue_(\d+)_(rx|tx)_(\w+)$/, dir: 2, queue: 1, name: 3 },
];

const queuesPath = (dev: string) => `${SYS_NET}/${dev}/queues`;

/** Lists each device's queues (records `queues-<dev>`). */
export async function readQueueLayout(io: ProbeIO, devices: string[]): Promise<Map<string, string[]>> {
  const layout = new Map<string, string[]>();
  for (const dev of devices) {
    const rec = await io.readDir(`queues-${dev}`, queuesPath(dev), { allowFailure: true });
    layout.set(dev, rec.exitCode === 0 && rec.error === undefined ? rec.stdout.split('\n').filter((q) => QUEUE_DIR_RE.test(q)) : []);
  }
  return layout;
}

/** The TX queue attributes read with the first and the last counter sample. */
export function queueAttributePaths(layout: Map<string, string[]>): string[] {
  const paths: string[] = [];
  for (const [dev, queues] of layout) {
    for (const q of queues.filter((name) => name.startsWith('tx-'))) {
      const base = `${queuesPath(dev)}/${q}`;
      paths.push(`${base}/tx_timeout`, `${base}/byte_queue_limits/inflight`, `${base}/byte_queue_limits/limit`);
    }
  }
  return paths;
}

/** Whether a device has more than one queue in a direction: only then can one queue take it all. */
export function multiQueue(queues: string[]): boolean {
  return queues.filter((q) => q.startsWith('rx-')).length > 1 || queues.filter((q) => q.startsWith('tx-')).length > 1;
}

/** `ethtool -S` of each multi-queue device (records `ethtool-<end>-<dev>`); failures are kept, not thrown. */
export async function readQueueStats(io: ProbeIO, layout: Map<string, string[]>, end: 'start' | 'end'): Promise<void> {
  for (const [dev, queues] of layout) {
    if (!multiQueue(queues)) continue;
    await io.exec(`ethtool-${end}-${dev}`, ['ethtool', '-S', dev], { allowFailure: true, timeoutMs: EXEC_TIMEOUT_MS });
  }
}

interface QueueKey {
  direction: QueueDirection;
  queue: number;
  name: string;
}

export function parseQueueStat(name: string): QueueKey | null {
  for (const p of STAT_PATTERNS) {
    const m = p.re.exec(name);
    if (m) return { direction: m[p.dir] as QueueDirection, queue: Number(m[p.queue]), name: m[p.name]! };
  }
  return null;
}

/** The per-queue counters of one `ethtool -S` output, keyed `rx:0:packets`. */
function ethtoolQueueStats(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const m = /^\s*([^:]+):\s*(\d+)\s*$/.exec(line);
    if (!m) continue;
    const key = parseQueueStat(m[1]!.trim());
    if (key) out.set(`${key.direction}:${key.queue}:${key.name}`, BigInt(m[2]!));
  }
  return out;
}

function execOutput(records: RawRecord[], name: string): string | null {
  const rec = records.find((r) => r.op === 'exec' && r.name === name);
  return rec && rec.exitCode === 0 && rec.error === undefined ? rec.stdout : null;
}

const SAMPLE_RE = /^s(\d+)-/;

/** The TX queue attributes of the first and last samples: path → [first, last]. */
function queueAttributes(records: RawRecord[]): Map<string, { first?: bigint; last?: bigint; lastK: number; firstK: number }> {
  const out = new Map<string, { first?: bigint; last?: bigint; lastK: number; firstK: number }>();
  for (const rec of perFileReads(records)) {
    const m = rec.op === 'read' ? SAMPLE_RE.exec(rec.name) : null;
    if (!m || rec.path === undefined || !rec.path.includes('/queues/')) continue;
    const k = Number(m[1]);
    const value = rec.exitCode === 0 && rec.error === undefined ? parseCounter(rec.stdout) : undefined;
    const entry = out.get(rec.path) ?? { firstK: k, lastK: k };
    if (k <= entry.firstK) Object.assign(entry, { firstK: k, first: value });
    if (k >= entry.lastK) Object.assign(entry, { lastK: k, last: value });
    out.set(rec.path, entry);
  }
  return out;
}

function sumMatching(counters: Record<string, number>, re: RegExp): number | null {
  const names = Object.keys(counters).filter((n) => re.test(n));
  return names.length === 0 ? null : names.reduce((s, n) => s + counters[n]!, 0);
}

/** Per device: its queues and what each counted over the window. */
export function readQueues(records: RawRecord[], notes: string[]): Map<string, IfaceQueues> {
  const out = new Map<string, IfaceQueues>();
  const attrs = queueAttributes(records);
  for (const rec of records) {
    if (rec.op !== 'readdir' || !rec.name.startsWith('queues-')) continue;
    const dev = rec.name.slice('queues-'.length);
    const names = rec.exitCode === 0 && rec.error === undefined ? rec.stdout.split('\n').filter((q) => QUEUE_DIR_RE.test(q)) : [];
    if (names.length === 0) continue;
    const start = execOutput(records, `ethtool-start-${dev}`);
    const end = execOutput(records, `ethtool-end-${dev}`);
    const before = start === null ? new Map<string, bigint>() : ethtoolQueueStats(start);
    const after = end === null ? new Map<string, bigint>() : ethtoolQueueStats(end);
    const queues: IfaceQueue[] = [];
    for (const name of names) {
      const [, dir, index] = QUEUE_DIR_RE.exec(name)!;
      const direction = dir as QueueDirection;
      const queue = Number(index);
      const counters: Record<string, number> = {};
      for (const [key, value] of after) {
        const [d, q, counter] = key.split(':');
        if (d !== direction || Number(q) !== queue) continue;
        const was = before.get(key);
        // A counter that went down was reset: count from 0.
        counters[counter!] = was === undefined ? 0 : Number(value >= was ? value - was : value);
      }
      const entry: IfaceQueue = {
        direction,
        queue,
        packets: counters.packets ?? counters.xdp_packets ?? null,
        bytes: counters.bytes ?? counters.xdp_bytes ?? null,
        drops: sumMatching(counters, /drop/),
        errors: sumMatching(counters, /err/),
        counters,
      };
      if (direction === 'tx') {
        const base = `${queuesPath(dev)}/${name}`;
        const timeout = attrs.get(`${base}/tx_timeout`);
        entry.txTimeouts = timeout?.first !== undefined && timeout.last !== undefined ? Number(timeout.last >= timeout.first ? timeout.last - timeout.first : timeout.last) : null;
        const inflight = attrs.get(`${base}/byte_queue_limits/inflight`)?.last;
        const limit = attrs.get(`${base}/byte_queue_limits/limit`)?.last;
        if (inflight !== undefined || limit !== undefined) entry.bql = { inflight: inflight === undefined ? null : Number(inflight), limit: limit === undefined ? null : Number(limit) };
      }
      queues.push(entry);
    }
    queues.sort((a, b) => a.direction.localeCompare(b.direction) || a.queue - b.queue);
    const counted = after.size > 0 && before.size > 0;
    if (multiQueue(names) && !counted) notes.push(`${dev}: no per-queue counters (ethtool -S ${start === null || end === null ? 'failed' : 'has none for this driver'})`);
    out.set(dev, { rx: names.filter((n) => n.startsWith('rx-')).length, tx: names.filter((n) => n.startsWith('tx-')).length, counted, queues });
  }
  return out;
}

/** Queues that took at least SKEW_SHARE of their direction's packets (≥ SKEW_MIN_PACKETS) while other queues existed. */
export function queueSkews(devices: Array<{ name: string; queues?: IfaceQueues }>): QueueSkew[] {
  const out: QueueSkew[] = [];
  for (const d of devices) {
    for (const direction of ['rx', 'tx'] as const) {
      const counted = (d.queues?.queues ?? []).filter((q) => q.direction === direction && q.packets !== null);
      if (counted.length < 2) continue;
      const total = counted.reduce((s, q) => s + q.packets!, 0);
      const busiest = [...counted].sort((a, b) => b.packets! - a.packets! || a.queue - b.queue)[0]!;
      if (total >= SKEW_MIN_PACKETS && busiest.packets! >= SKEW_SHARE * total) {
        out.push({ device: d.name, direction, queue: busiest.queue, share: round2(busiest.packets! / total), packets: total, queues: counted.length });
      }
    }
  }
  return out;
}

/** Queues whose drop (or tx_timeout) counters rose. */
export function queueProblems(devices: Array<{ name: string; queues?: IfaceQueues }>, count: (q: IfaceQueue) => number | null | undefined): QueueProblem[] {
  return devices.flatMap((d) =>
    (d.queues?.queues ?? []).flatMap((q) => {
      const n = count(q) ?? 0;
      return n > 0 ? [{ device: d.name, direction: q.direction, queue: q.queue, count: n }] : [];
    }),
  );
}
