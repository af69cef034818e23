// net.conntrack: the connection tracker's health over a window: the per-CPU statistics of
// /proc/net/stat/nf_conntrack (new, invalid, insert_failed, drop, early_drop, ...) summed and
// read at both ends, against the table's fill (nf_conntrack_count of nf_conntrack_max).
// A full table shows as `drop` (no room, nothing evictable) and `early_drop` (an unassured
// entry evicted to make room); both end in NETFILTER_DROP at the conntrack hook, where no
// nftables rule counter moves.
import { formatMs } from '../../engine/duration.js';
import { netnsMissing, netnsOf, readFilesIn, readingsOf } from '../../engine/probe/netns.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';

const STAT = '/proc/net/stat/nf_conntrack';
const COUNT = '/proc/sys/net/netfilter/nf_conntrack_count';
const MAX = '/proc/sys/net/netfilter/nf_conntrack_max';
const BUCKETS = '/proc/sys/net/netfilter/nf_conntrack_buckets';
const PATHS = [STAT, COUNT, MAX, BUCKETS];

/** The statistics whose rise means packets were lost or connections not tracked. */
export const LOSS_STATS = ['drop', 'early_drop', 'insert_failed', 'invalid'] as const;

export interface ConntrackData {
  [key: string]: unknown;
  durationMs: number;
  /** One read only (duration 0): statistics are totals since boot. */
  cumulative: boolean;
  netns: string | null;
  /** Whether connection tracking is active in the namespace (its files exist). */
  loaded: boolean;
  /** At the end of the window. */
  count: number;
  max: number;
  buckets: number | null;
  /** count / max in percent (0 when max is 0: unlimited). */
  fillPct: number;
  /** The table is full or within 1% of it. */
  full: boolean;
  /** Every statistic over the window, summed over CPUs (totals when cumulative). */
  stats: Record<string, number>;
  /** Packets the tracker dropped because it could not make a new entry (the `drop` statistic). */
  drops: number;
  /** Rises of the loss statistics, largest first. */
  losses: Array<{ stat: string; delta: number; meaning: string }>;
  notes: string[];
}

const MEANING: Record<string, string> = {
  drop: 'packets dropped because a new entry could not be made (table full, nothing evictable)',
  early_drop: 'unassured entries evicted to make room for new ones (the table is full)',
  insert_failed: 'entries that could not be inserted (a clash with an existing entry, or a full table)',
  invalid: 'packets conntrack could not classify (out-of-window TCP, bad ICMP errors); dropped by `ct state invalid drop` rules',
};

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const netns = netnsOf(params);
  const durationMs = params.duration as number;
  const start = await readFilesIn(io, 'conntrack-start', netns, PATHS);
  const missing = netnsMissing(start, netns);
  if (missing) throw new Error(missing);
  if (durationMs === 0) return;
  await io.sleep(durationMs);
  await readFilesIn(io, 'conntrack-end', netns, PATHS);
}

/** Sums the per-CPU rows of /proc/net/stat/nf_conntrack (hex fields under a header line). */
export function parseConntrackStat(text: string): Record<string, number> {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const header = lines[0]?.split(/\s+/) ?? [];
  if (header.length === 0 || header[0] !== 'entries') throw new Error(`${STAT} does not start with its header line`);
  const sums: Record<string, number> = Object.fromEntries(header.map((h) => [h, 0]));
  for (const line of lines.slice(1)) {
    const fields = line.split(/\s+/);
    fields.forEach((f, i) => {
      const name = header[i];
      const v = Number.parseInt(f, 16);
      // `entries` is the same global count on every row: keep one, do not sum.
      if (name !== undefined && Number.isFinite(v)) sums[name] = name === 'entries' ? v : sums[name]! + v;
    });
  }
  return sums;
}

interface Reading {
  at: number;
  stats: Record<string, number> | null;
  count: number | null;
  max: number | null;
  buckets: number | null;
  error?: string;
}

function readingOf(rec: RawRecord | undefined): Reading | undefined {
  if (!rec) return undefined;
  const files = readingsOf(rec, PATHS);
  const int = (p: string) => {
    const t = files.get(p)?.text?.trim();
    return t === undefined || t === '' ? null : Number(t);
  };
  const stat = files.get(STAT);
  return {
    at: rec.at,
    stats: stat?.text ? parseConntrackStat(stat.text) : null,
    count: int(COUNT),
    max: int(MAX),
    buckets: int(BUCKETS),
    ...(stat?.error !== undefined ? { error: stat.error } : {}),
  };
}

function parse(records: RawRecord[], params: Params): ProbeResult<ConntrackData> {
  const startRec = records.find((r) => r.name === 'conntrack-start');
  if (!startRec) throw new Error('no conntrack-start record in the evidence');
  const missing = netnsMissing(startRec, netnsOf(params));
  if (missing) throw new Error(missing);
  const start = readingOf(startRec)!;
  const end = readingOf(records.find((r) => r.name === 'conntrack-end'));
  const netns = netnsOf(params) ?? null;
  const last = end ?? start;
  const cumulative = end === undefined;
  const notes: string[] = [];
  const loaded = start.stats !== null;
  if (!loaded) {
    notes.push(`connection tracking is not active${netns ? ` in ${netns}` : ''} (${start.error ?? `${STAT} is empty`}): no rule or module uses it`);
  }
  const stats: Record<string, number> = {};
  for (const [k, v] of Object.entries(last.stats ?? {})) {
    if (k === 'entries' || k === 'chainlength') stats[k] = v;
    else stats[k] = cumulative ? v : Math.max(0, v - (start.stats?.[k] ?? 0));
  }
  const count = last.count ?? stats.entries ?? 0;
  const max = last.max ?? 0;
  const fillPct = max > 0 ? Math.round((count / max) * 1000) / 10 : 0;
  const full = max > 0 && count >= max * 0.99;
  const losses = LOSS_STATS.filter((s) => (stats[s] ?? 0) > 0)
    .map((s) => ({ stat: s, delta: stats[s]!, meaning: MEANING[s]! }))
    .sort((a, b) => b.delta - a.delta);
  const data: ConntrackData = {
    durationMs: cumulative ? 0 : last.at - start.at,
    cumulative,
    netns,
    loaded,
    count,
    max,
    buckets: last.buckets,
    fillPct,
    full,
    stats,
    drops: stats.drop ?? 0,
    losses,
    notes,
  };
  const when = cumulative ? 'since boot' : `in ${formatMs(data.durationMs)}`;
  const fill = max > 0 ? `${count} of ${max} entries (${fillPct}%)` : `${count} entries (no limit)`;
  const lossText = losses.length === 0 ? `no conntrack drops ${when}` : `${losses.map((l) => `${l.stat} +${l.delta}`).join(', ')} ${when}`;
  const severity = (stats.drop ?? 0) > 0 || (stats.insert_failed ?? 0) > 0 ? 'critical' : losses.length > 0 || full ? 'warning' : 'info';
  return {
    data,
    summary: loaded ? `${lossText}; table ${fill}${full ? ', full' : ''}` : notes[0]!,
    severity,
    charts: chartsOf(data, when),
    tables: tablesOf(data),
  };
}

function chartsOf(data: ConntrackData, when: string): ChartSpec[] {
  if (data.losses.length === 0) return [];
  return [{ kind: 'bar', title: `Conntrack losses ${when}`, unit: 'packets', bars: data.losses.map((l) => ({ label: l.stat, value: l.delta })) }];
}

function tablesOf(data: ConntrackData): TableSpec[] {
  if (!data.loaded) return [];
  const rows: Array<Array<string | number>> = [
    ['nf_conntrack_count', data.count, 'entries in the table at the end'],
    ['nf_conntrack_max', data.max, data.max > 0 ? `${data.fillPct}% full` : 'no limit'],
  ];
  for (const [k, v] of Object.entries(data.stats)) {
    if (k === 'entries') continue;
    rows.push([k, v, MEANING[k] ?? '']);
  }
  return [{ title: 'Connection tracker', columns: ['statistic', 'value', 'meaning'], rows }];
}

export const netConntrack: ProbeDefinition<ConntrackData> = {
  id: 'net.conntrack',
  title: 'Connection tracking: table fill and drops',
  description: `Reads the connection tracker's statistics (\`${STAT}\`, one row per CPU, summed) and the table's fill (\`nf_conntrack_count\` against \`nf_conntrack_max\`) at the start and the end of \`duration\`.

A **full table** drops the first packet of every new connection: the kernel frees it with \`NETFILTER_DROP\` at the conntrack hook (\`nf_hook_slow\`), no nftables rule counter moves, and \`drop\` rises here (\`early_drop\` rises when an unassured entry could be evicted instead). \`insert_failed\` counts entries that clashed at confirmation (often parallel UDP/DNS from one socket); \`invalid\` counts packets conntrack could not classify, which \`ct state invalid drop\` rules then drop. \`netns\` reads another network namespace's tracker (\`ip netns exec\`, or \`nsenter\` for a path); the table limit is global on Linux. \`duration: 0\` reads once: totals since boot. No BPF.`,
  normal: `\`drop\`, \`early_drop\` and \`insert_failed\` stay at 0 and the table is well below \`nf_conntrack_max\` (under 80%). A few \`invalid\` packets are normal on busy hosts; \`search_restart\` rising is harmless (the table was resized or an entry moved).`,
  replaces: ['trace_conntrack.py'],
  params: {
    duration: {
      type: 'duration',
      default: '5s',
      description: 'Time between the two reads; 0 reads once (totals since boot).',
      cliOption: 'duration',
    },
    netns: {
      type: 'string',
      description: 'Read the tracker of this network namespace: an `ip netns` name or a path such as /proc/<pid>/ns/net. Default: the namespace ebpfnet runs in.',
    },
  },
  requirements: [],
  overhead: 'none',
  driver: 'command',
  collect,
  parse,
};
