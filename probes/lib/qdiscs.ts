// Queueing disciplines as tc reports them (`tc -s -j qdisc show`), read at the start and the
// end of a window: each qdisc's counters over the window (qdisc.stats reports them, qdisc.drops
// joins them with the kernel's drop reasons), and where each sits in its device's tree.
import type { ProbeIO, RawRecord, Requirement } from '../../engine/probe/types.js';

export const TC_REQUIREMENTS: Requirement[] = [{ kind: 'binary', name: 'tc', package: 'iproute2' }];

export interface QdiscEntry {
  dev: string;
  kind: string;
  handle: string;
  /** The parent's handle (`1:10`, `ffff:fff1` for ingress/clsact), or `root`. */
  parent: string;
  root: boolean;
  /** Over the window (cumulative since creation when `cumulative`). */
  drops: number;
  overlimits: number;
  requeues: number;
  packets: number;
  bytes: number;
  /** At the end of the window. */
  backlog_bytes: number;
  backlog_packets: number;
  qlen: number;
}

const COUNTERS = ['drops', 'overlimits', 'requeues', 'packets', 'bytes'] as const;
type Counter = (typeof COUNTERS)[number];

/** One qdisc as tc printed it, with only the fields used, missing ones as 0. */
export interface TcQdisc {
  dev: string;
  kind: string;
  handle: string;
  parent: string;
  root: boolean;
  counters: Record<Counter, number>;
  backlog: number;
  qlen: number;
}

function tcArgv(dev?: string): string[] {
  return dev === undefined ? ['tc', '-s', '-j', 'qdisc', 'show'] : ['tc', '-s', '-j', 'qdisc', 'show', 'dev', dev];
}

async function readAll(io: ProbeIO, phase: 'start' | 'end', devices: string[]): Promise<void> {
  if (devices.length === 0) {
    await io.exec(`tc-${phase}`, tcArgv(), { timeoutMs: 30_000 });
    return;
  }
  await Promise.all(devices.map((dev) => io.exec(`tc-${phase}-${dev}`, tcArgv(dev), { timeoutMs: 30_000 })));
}

/** Reads the qdiscs of `devices` (every device when none) at the start and, after `durationMs` (0: not), the end. */
export async function sampleQdiscs(io: ProbeIO, wanted: string[], durationMs: number): Promise<void> {
  const devices = [...new Set(wanted)];
  await readAll(io, 'start', devices);
  if (durationMs === 0) return;
  await io.sleep(durationMs);
  await readAll(io, 'end', devices);
}

/** Parses one `tc -s -j qdisc show [dev X]` output; `dev` fills in the device tc leaves out. */
export function parseTcJson(stdout: string, dev: string | undefined): TcQdisc[] {
  const text = stdout.trim();
  if (text === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Some tc versions print one array per device, back to back.
    try {
      parsed = JSON.parse(`[${text.replace(/\]\s*\[/g, '],[')}]`).flat();
    } catch (err) {
      throw new Error(`tc printed something that is not JSON: ${(err as Error).message}: ${JSON.stringify(text.slice(0, 80))}`);
    }
  }
  if (!Array.isArray(parsed)) throw new Error('tc JSON output is not a list of qdiscs');
  return parsed
    .filter((q): q is Record<string, unknown> => typeof q === 'object' && q !== null && !Array.isArray(q))
    .map((q) => {
      const stats = typeof q.stats === 'object' && q.stats !== null ? (q.stats as Record<string, unknown>) : {};
      const num = (key: string) => toNumber(q[key] ?? stats[key]);
      const root = q.root === true;
      return {
        dev: typeof q.dev === 'string' ? q.dev : (dev ?? '?'),
        kind: typeof q.kind === 'string' ? q.kind : '?',
        handle: typeof q.handle === 'string' ? q.handle : '?',
        parent: typeof q.parent === 'string' ? q.parent : root ? 'root' : '?',
        root,
        counters: Object.fromEntries(COUNTERS.map((c) => [c, num(c)])) as Record<Counter, number>,
        backlog: num('backlog'),
        qlen: num('qlen'),
      };
    });
}

function toNumber(v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return 0;
}

export const keyOf = (q: Pick<TcQdisc, 'dev' | 'handle' | 'parent'>) => `${q.dev}|${q.handle}|${q.parent}`;

/** The major number of a handle or parent (`1:` → 1, `:1` → 0, `ffff:fff1` → 0xffff). */
function major(handle: string): number | undefined {
  const m = /^([0-9a-f]*):[0-9a-f]*$/i.exec(handle);
  return m ? (m[1] === '' ? 0 : parseInt(m[1]!, 16)) : undefined;
}

/** How deep each qdisc sits under its device's top-level qdisc (0 = top level). */
export function depths(qdiscs: Array<Pick<TcQdisc, 'dev' | 'handle' | 'parent' | 'root'>>): Map<string, number> {
  type Q = Pick<TcQdisc, 'dev' | 'handle' | 'parent' | 'root'>;
  const byDevMajor = new Map<string, Q>();
  for (const q of qdiscs) {
    const m = major(q.handle);
    if (m !== undefined && (q.root || !byDevMajor.has(`${q.dev}|${m}`))) byDevMajor.set(`${q.dev}|${m}`, q);
  }
  const out = new Map<string, number>();
  const depthOf = (q: Q, seen: Set<string>): number => {
    const key = keyOf(q);
    const known = out.get(key);
    if (known !== undefined) return known;
    let d = 0;
    const pm = major(q.parent);
    const parent = !q.root && pm !== undefined ? byDevMajor.get(`${q.dev}|${pm}`) : undefined;
    if (parent && parent !== q && !seen.has(key)) d = depthOf(parent, new Set([...seen, key])) + 1;
    out.set(key, d);
    return d;
  };
  for (const q of qdiscs) depthOf(q, new Set());
  return out;
}

export interface QdiscDeltas {
  /** Each qdisc at the end, its counters over the window (since creation when `cumulative`). */
  qdiscs: QdiscEntry[];
  /** One read only: counters are totals since each qdisc was created. */
  cumulative: boolean;
  /** From the first read at the start to the last at the end (0 when cumulative). */
  durationMs: number;
  /** The qdiscs as tc printed them last. */
  last: TcQdisc[];
  /** Qdiscs that appeared, were replaced or removed, and counters that went down. */
  notes: string[];
}

/** The qdiscs' counters over the window that sampleQdiscs recorded. */
export function qdiscDeltas(records: RawRecord[]): QdiscDeltas {
  const phase = (rec: RawRecord) => (rec.name.startsWith('tc-start') ? 'start' : rec.name.startsWith('tc-end') ? 'end' : undefined);
  const devOf = (rec: RawRecord) => {
    const i = rec.argv?.indexOf('dev') ?? -1;
    return i >= 0 ? rec.argv?.[i + 1] : undefined;
  };
  const start: TcQdisc[] = [];
  const end: TcQdisc[] = [];
  const at = { start: [] as number[], end: [] as number[] };
  for (const rec of records) {
    const p = rec.op === 'exec' ? phase(rec) : undefined;
    if (!p) continue;
    (p === 'start' ? start : end).push(...parseTcJson(rec.stdout, devOf(rec)));
    at[p].push(rec.at);
  }
  const cumulative = at.end.length === 0;
  const notes: string[] = [];
  const startByKey = new Map(start.map((q) => [keyOf(q), q]));
  const last = cumulative ? start : end;
  const lastKeys = new Set(last.map(keyOf));

  const qdiscs: QdiscEntry[] = last.map((q) => {
    const before = cumulative ? undefined : startByKey.get(keyOf(q));
    const replaced = before !== undefined && before.kind !== q.kind;
    if (!cumulative && !before) notes.push(`${q.kind} ${q.handle} on ${q.dev} appeared during the window; counted from 0`);
    if (replaced) notes.push(`${before.kind} ${q.handle} on ${q.dev} was replaced by ${q.kind}; counted from 0`);
    const delta = (c: Counter) => {
      const b = !before || replaced ? 0 : before.counters[c];
      const a = q.counters[c];
      if (a < b) {
        notes.push(`${c} of ${q.kind} ${q.handle} on ${q.dev} went down (reset); counted from 0`);
        return a;
      }
      return a - b;
    };
    return {
      dev: q.dev,
      kind: q.kind,
      handle: q.handle,
      parent: q.parent,
      root: q.root,
      drops: delta('drops'),
      overlimits: delta('overlimits'),
      requeues: delta('requeues'),
      packets: delta('packets'),
      bytes: delta('bytes'),
      backlog_bytes: q.backlog,
      backlog_packets: q.qlen,
      qlen: q.qlen,
    };
  });
  if (!cumulative) {
    for (const q of start) if (!lastKeys.has(keyOf(q))) notes.push(`${q.kind} ${q.handle} on ${q.dev} was removed during the window`);
  }

  return { qdiscs, cumulative, durationMs: cumulative || at.start.length === 0 ? 0 : Math.max(...at.end) - Math.min(...at.start), last, notes };
}
