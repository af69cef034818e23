// other.tc's filter and action hits: the counters tc keeps for the filters of a device's ingress
// and egress hooks (clsact or ingress qdisc) and for their actions, read with `tc -s -j filter
// show` and `tc -s -j actions ls` at the start and the end of the window. u32 filters built with
// perf counters report lookups and matches themselves (`rule_hit`, `success`); otherwise a
// filter's matches are the packets of its first action, which every matching packet runs.
// mirred actions also name their target device (`*` once it is gone).
import { inNetns, netnsOf } from '../../engine/probe/netns.js';
import type { Params, ProbeIO, RawRecord, TableSpec } from '../../engine/probe/types.js';
import type { ActionHits, FilterHits, TcHits } from './data.js';

export type { FilterHits };

const TC_TIMEOUT_MS = 10_000;
const DIRECTIONS = ['ingress', 'egress'] as const;
type Direction = (typeof DIRECTIONS)[number];
/** The action kinds listed from the action table (the ones bound to filters show with them anyway). */
const ACTION_KINDS = ['mirred'] as const;

/** Where the counters are read: a namespace tc can enter, and one device or all of them. */
interface HitScope {
  netns: string | undefined;
  dev: string | null;
}

function scopeOf(params: Params): HitScope | { skipped: string } {
  const ns = typeof params.netns === 'string' && params.netns !== '' ? params.netns : undefined;
  if (ns !== undefined && /^\d+$/.test(ns)) return { skipped: `tc cannot enter a namespace given by inode (${ns}): give its name or path` };
  return { netns: netnsOf(params), dev: typeof params.dev === 'string' && params.dev !== '' ? params.dev : null };
}

const qdiscRecord = (phase: string) => `hits-${phase}-qdiscs`;
const filterRecord = (phase: string, dev: string, dir: Direction) => `hits-${phase}-${dev}-${dir}`;
const actionRecord = (phase: string, kind: string) => `hits-${phase}-actions-${kind}`;

/** Devices with an ingress or clsact qdisc, from `tc -j qdisc show` (which names none when asked for one `dev`). */
function hookedDevices(rec: RawRecord | undefined, dev: string | null): string[] {
  if (!rec || rec.exitCode !== 0) return [];
  try {
    const list = JSON.parse(rec.stdout) as Array<{ kind?: string; dev?: string }>;
    const hooked = list.filter((q) => q.kind === 'clsact' || q.kind === 'ingress').map((q) => q.dev ?? dev ?? '');
    return [...new Set(hooked)].filter((d) => d !== '').sort();
  } catch {
    return [];
  }
}

/**
 * Reads the counters (records `hits-<phase>-*`). At `end` the devices are the ones found at
 * `start`, so that both ends cover the same hooks.
 */
export async function sampleHits(io: ProbeIO, params: Params, phase: 'start' | 'end', startRecords: RawRecord[] = []): Promise<RawRecord[]> {
  const scope = scopeOf(params);
  if ('skipped' in scope) return [];
  const opts = { timeoutMs: TC_TIMEOUT_MS, allowFailure: true };
  const records: RawRecord[] = [];
  let devices: string[];
  if (phase === 'start') {
    const q = await io.exec(qdiscRecord(phase), inNetns(scope.netns, ['tc', '-j', 'qdisc', 'show', ...(scope.dev ? ['dev', scope.dev] : [])]), opts);
    records.push(q);
    devices = hookedDevices(q, scope.dev);
  } else devices = hookedDevices(startRecords.find((r) => r.name === qdiscRecord('start')), scope.dev);
  for (const dev of devices) {
    for (const dir of DIRECTIONS) records.push(await io.exec(filterRecord(phase, dev, dir), inNetns(scope.netns, ['tc', '-s', '-j', 'filter', 'show', 'dev', dev, dir]), opts));
  }
  for (const kind of ACTION_KINDS) records.push(await io.exec(actionRecord(phase, kind), inNetns(scope.netns, ['tc', '-s', '-j', 'actions', 'ls', 'action', kind]), opts));
  return records;
}

// ---- parse ---------------------------------------------------------------------------------

interface TcStats {
  packets?: number;
  bytes?: number;
  drops?: number;
  overlimits?: number;
}

interface TcAction {
  order?: number;
  kind?: string;
  index?: number;
  bind?: number;
  mirred_action?: string;
  direction?: string;
  to_dev?: string;
  stats?: TcStats;
}

interface TcFilter {
  kind?: string;
  pref?: number;
  chain?: number;
  protocol?: string;
  options?: { fh?: string; handle?: string; rule_hit?: number; success?: number; actions?: TcAction[]; bpf_name?: string; name?: string; match?: unknown; keys?: unknown };
}

function parseJson<T>(rec: RawRecord | undefined): T[] {
  if (!rec || rec.exitCode !== 0 || rec.stdout.trim() === '') return [];
  try {
    return JSON.parse(rec.stdout) as T[];
  } catch {
    return [];
  }
}

function actionOf(a: TcAction, inFilter: boolean): ActionHits {
  const s = a.stats ?? {};
  return {
    kind: a.kind ?? '?',
    index: a.index ?? 0,
    order: inFilter ? (a.order ?? null) : null,
    packets: s.packets ?? 0,
    bytes: s.bytes ?? 0,
    drops: s.drops ?? 0,
    overlimits: s.overlimits ?? 0,
    ...(a.kind === 'mirred' ? { mirred: { action: a.mirred_action ?? '?', direction: a.direction ?? '?', device: a.to_dev ?? '?', missing: a.to_dev === '*' } } : {}),
  };
}

/** The rules of one hook: entries with a handle and either actions or a match (not u32's hash-table headers). */
function filtersOf(rec: RawRecord | undefined, device: string, direction: Direction): FilterHits[] {
  return parseJson<TcFilter>(rec)
    .filter((f) => f.options && (f.options.actions !== undefined || f.options.match !== undefined || f.options.keys !== undefined || f.options.bpf_name !== undefined))
    .map((f) => {
      const o = f.options!;
      const actions = (o.actions ?? []).map((a) => actionOf(a, true));
      const own = o.success !== undefined;
      return {
        device,
        direction,
        kind: f.kind ?? '?',
        pref: f.pref ?? 0,
        chain: f.chain ?? 0,
        handle: o.fh ?? o.handle ?? '?',
        protocol: f.protocol ?? 'all',
        matches: own ? o.success! : (actions[0]?.packets ?? 0),
        matchesFrom: own ? 'filter' : actions.length > 0 ? 'first action' : 'none',
        lookups: o.rule_hit ?? null,
        actions,
      };
    });
}

const filterKey = (f: FilterHits) => `${f.device}|${f.direction}|${f.kind}|${f.pref}|${f.chain}|${f.handle}`;
const actionKey = (a: ActionHits) => `${a.kind}|${a.index}|${a.order ?? ''}`;

function minus(end: ActionHits, start: ActionHits | undefined): ActionHits {
  const d = (k: 'packets' | 'bytes' | 'drops' | 'overlimits') => Math.max(0, end[k] - (start?.[k] ?? 0));
  return { ...end, packets: d('packets'), bytes: d('bytes'), drops: d('drops'), overlimits: d('overlimits') };
}

function filterDelta(end: FilterHits, start: FilterHits | undefined): FilterHits {
  const before = new Map((start?.actions ?? []).map((a) => [actionKey(a), a]));
  return {
    ...end,
    matches: Math.max(0, end.matches - (start?.matches ?? 0)),
    lookups: end.lookups === null ? null : Math.max(0, end.lookups - (start?.lookups ?? 0)),
    actions: end.actions.map((a) => minus(a, before.get(actionKey(a)))),
    ...(start ? {} : { changed: 'added' as const }),
  };
}

function actionTable(records: RawRecord[], phase: string): ActionHits[] {
  return ACTION_KINDS.flatMap((kind) => parseJson<{ actions?: TcAction[] }>(records.find((r) => r.name === actionRecord(phase, kind))).flatMap((e) => (e.actions ?? []).map((a) => actionOf(a, false))));
}

/** The hits over the window, from the `hits-*` records; null when none were taken (older evidence). */
export function parseHits(records: RawRecord[], params: Params, label: (dev: string) => string): TcHits | null {
  const scope = scopeOf(params);
  if ('skipped' in scope) return { skipped: scope.skipped, filters: [], actions: [], idle: 0, missingTargets: 0, mirredFailures: 0 };
  const qdiscs = records.find((r) => r.name === qdiscRecord('start'));
  if (!qdiscs) return null;
  const devices = hookedDevices(qdiscs, scope.dev);
  const read = (phase: string) => devices.flatMap((dev) => DIRECTIONS.flatMap((dir) => filtersOf(records.find((r) => r.name === filterRecord(phase, dev, dir)), label(dev), dir)));
  const start = new Map(read('start').map((f) => [filterKey(f), f]));
  const endList = read('end');
  const endKeys = new Set(endList.map(filterKey));
  const filters = [
    ...endList.map((f) => filterDelta(f, start.get(filterKey(f)))),
    ...[...start.values()].filter((f) => !endKeys.has(filterKey(f))).map((f) => ({ ...f, matches: 0, lookups: f.lookups === null ? null : 0, actions: f.actions.map((a) => minus(a, a)), changed: 'removed' as const })),
  ];
  const startActions = new Map(actionTable(records, 'start').map((a) => [actionKey(a), a]));
  const actions = actionTable(records, 'end').map((a) => minus(a, startActions.get(actionKey(a))));
  const mirreds = [...filters.flatMap((f) => f.actions), ...actions].filter((a) => a.mirred);
  // One action table entry may be bound to several filters: count each missing target once.
  const missing = new Set(mirreds.filter((a) => a.mirred!.missing).map((a) => a.index));
  const failures = new Map(mirreds.filter((a) => a.overlimits > 0).map((a) => [a.index, a.overlimits]));
  return {
    filters,
    actions,
    idle: filters.filter((f) => f.matchesFrom !== 'none' && f.matches === 0).length,
    missingTargets: missing.size,
    mirredFailures: [...failures.values()].reduce((n, v) => n + v, 0),
  };
}

const actionText = (a: ActionHits) => (a.mirred ? `mirred ${a.mirred.action} ${a.mirred.direction} to ${a.mirred.missing ? '(gone)' : a.mirred.device}` : a.kind);

/** What the summary says of the hits: broken mirreds first, then the busiest filter. */
export function hitsSummary(h: TcHits | null): string {
  if (!h || h.skipped || h.filters.length === 0) return '';
  const parts: string[] = [];
  if (h.missingTargets > 0) parts.push(`${h.missingTargets} mirred action${h.missingTargets === 1 ? '' : 's'} to a device that is gone`);
  if (h.mirredFailures > 0) parts.push(`mirred could not send ${h.mirredFailures} packet${h.mirredFailures === 1 ? '' : 's'}`);
  const busiest = [...h.filters].sort((a, b) => b.matches - a.matches)[0]!;
  if (busiest.matches > 0) parts.push(`filter ${busiest.kind} pref ${busiest.pref} on ${busiest.device} ${busiest.direction} matched ${busiest.matches}`);
  if (h.idle > 0) parts.push(`${h.idle} filter${h.idle === 1 ? '' : 's'} matched nothing`);
  return parts.length > 0 ? `; tc filters: ${parts.join(', ')}` : '';
}

export function hitsTables(h: TcHits | null): TableSpec[] {
  if (!h || h.skipped) return [];
  const tables: TableSpec[] = [
    {
      title: 'tc filters: matches in the window (u32 perf counters give lookups; otherwise matches are the first action\'s packets)',
      columns: ['device', 'hook', 'kind', 'pref', 'handle', 'matches', 'lookups', 'actions', 'change'],
      rows: h.filters.map((f) => [f.device, f.direction, f.kind, f.pref, f.handle, f.matches, f.lookups ?? '-', f.actions.map((a) => `${actionText(a)}: ${a.packets}`).join('; '), f.changed ?? '']),
    },
  ];
  if (h.actions.length > 0) {
    tables.push({
      title: 'tc action table (mirred)',
      columns: ['index', 'action', 'packets', 'bytes', 'drops', 'not sent'],
      rows: h.actions.map((a) => [a.index, actionText(a), a.packets, a.bytes, a.drops, a.overlimits]),
    });
  }
  return tables;
}
