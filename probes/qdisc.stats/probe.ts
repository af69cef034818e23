// qdisc.stats: the counters of every queueing discipline (`tc -s -j qdisc show`), read at
// the start and the end of a window; drops, overlimits and requeues over that window.
import { formatMs } from '../../engine/duration.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord } from '../../engine/probe/types.js';
import { DATA, type QdiscData } from './data.js';

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

export type { QdiscData } from './data.js';

const COUNTERS = ['drops', 'overlimits', 'requeues', 'packets', 'bytes'] as const;
type Counter = (typeof COUNTERS)[number];

/** One qdisc as tc printed it, with only the fields used, missing ones as 0. */
interface TcQdisc {
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

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const devices = [...new Set(params.devices as string[])];
  const durationMs = params.duration as number;
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

function parse(records: RawRecord[], params: Params): ProbeResult<QdiscData> {
  const requestedMs = params.duration as number;
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

  const depth = depths(last);
  const isTop = (q: QdiscEntry) => (depth.get(keyOf(q)) ?? 0) === 0;
  const sum = (c: 'drops' | 'overlimits' | 'requeues' | 'packets') => qdiscs.filter(isTop).reduce((n, q) => n + q[c], 0);
  const totals = { drops: sum('drops'), overlimits: sum('overlimits'), requeues: sum('requeues'), packets: sum('packets') };
  const dropped = qdiscs
    .filter((q) => q.drops > 0)
    .sort((a, b) => b.drops - a.drops || (depth.get(keyOf(b)) ?? 0) - (depth.get(keyOf(a)) ?? 0) || b.overlimits - a.overlimits);
  const topQ = dropped[0];
  const data: QdiscData = {
    durationMs: cumulative || at.start.length === 0 ? 0 : Math.max(...at.end) - Math.min(...at.start),
    cumulative,
    qdiscs,
    totals,
    dropping: dropped.map((q) => ({ dev: q.dev, kind: q.kind, handle: q.handle, drops: q.drops })),
    ...(topQ ? { top: { dev: topQ.dev, kind: topQ.kind, handle: topQ.handle, drops: topQ.drops, overlimits: topQ.overlimits } } : {}),
    notes,
  };

  const devCount = new Set(qdiscs.map((q) => q.dev)).size;
  const inventory = `${qdiscs.length} ${qdiscs.length === 1 ? 'qdisc' : 'qdiscs'} on ${devCount} ${devCount === 1 ? 'device' : 'devices'}`;
  const when = cumulative ? 'since creation' : `in ${formatMs(requestedMs)}`;
  const summary = topQ
    ? `${topQ.kind} ${topQ.handle} on ${topQ.dev} dropped ${topQ.drops} packets ${when} (${totals.drops} on all qdiscs, ${totals.overlimits} overlimits); ${inventory}`
    : `no qdisc dropped ${when}${totals.overlimits > 0 ? ` (${totals.overlimits} overlimits: shaping at work)` : ''}; ${inventory}`;

  const charts: ChartSpec[] = dropped.length
    ? [
        {
          kind: 'bar',
          title: `Drops by qdisc ${when}`,
          unit: 'packets',
          bars: dropped.map((q) => ({ label: `${q.dev} ${q.kind} ${q.handle}`, value: q.drops })),
        },
      ]
    : [];
  return {
    data,
    summary,
    severity: topQ ? (cumulative ? 'warning' : 'critical') : 'info',
    charts,
    tables: [
      {
        title: cumulative ? 'Qdiscs (counters since creation)' : `Qdiscs (counters over ${formatMs(requestedMs)})`,
        columns: ['device', 'kind', 'handle', 'parent', 'packets', 'bytes', 'drops', 'overlimits', 'requeues', 'backlog bytes', 'backlog packets'],
        rows: qdiscs.map((q) => [q.dev, q.kind, q.handle, q.parent, q.packets, q.bytes, q.drops, q.overlimits, q.requeues, q.backlog_bytes, q.backlog_packets]),
      },
    ],
  };
}

export const qdiscStats: ProbeDefinition = {
  id: 'qdisc.stats',
  title: 'Queueing discipline counters',
  description: `Reads the statistics of every queueing discipline (\`tc -s -j qdisc show\`) at the start and the end of \`duration\` and reports, per qdisc, the packets it sent and the packets it **dropped**, its **overlimits** (a shaper held packets back) and **requeues** (the driver pushed back) over that window, with its backlog at the end. \`duration: 0\` reads once and reports the counters since each qdisc was created (\`cumulative: true\`).

Use it when packets are lost or delayed on their way out of an interface: a shaper (tbf, htb) whose rate is below the traffic, or a queue whose limit is too small, drops here before the driver sees the packet. It costs nothing: tc reads counters over netlink.

Replaces the \`tc -s qdisc\` counter part of the seed's \`packet-drop/qdisc_drop_trace.py\` (PROBES.md row 29); the per-packet drop events come from the \`qdisc.drops\` tracing probe.`,
  normal: `Drops stay at 0. Overlimits on a shaping qdisc (tbf, htb) are normal while it shapes; drops there mean the traffic exceeds its rate for longer than its queue can hold. A backlog that stays high means packets wait in the queue (latency).`,
  replaces: ['packet-drop/qdisc_drop_trace.py'],
  params: {
    devices: {
      type: 'string[]',
      default: [],
      description: 'Devices whose qdiscs to read; empty means every device.',
      cliOption: 'dev',
    },
    duration: {
      type: 'duration',
      default: '5s',
      description: 'Time between the two reads; 0 reads once (counters since creation).',
      cliOption: 'duration',
    },
  },
  requirements: [{ kind: 'binary', name: 'tc', package: 'iproute2' }],
  overhead: 'none',
  driver: 'command',
  data: DATA,
  collect,
  parse,
};
