// net.conntrack: the connection tracker's health over a window: the per-CPU statistics of
// /proc/net/stat/nf_conntrack (new, invalid, insert_failed, drop, early_drop, ...) summed and
// read at both ends, against the table's fill (nf_conntrack_count of nf_conntrack_max).
// A full table shows as `drop` (no room, nothing evictable) and `early_drop` (an unassured
// entry evicted to make room); both end in NETFILTER_DROP at the conntrack hook, where no
// nftables rule counter moves.
// Over a window it also records the tracker's events (NEW, UPDATE, DESTROY from netlink, via
// `conntrack -E`: events.ts), the netfilter drop reasons of skb:kfree_skb (the kernel drop
// session) and, where kprobes attach, nf_conntrack_in's verdicts (lib/conntrack-kprobes.ts).
import { formatMs } from '../../engine/duration.js';
import { netnsMissing, netnsOf, readFilesIn, readingsOf } from '../../engine/probe/netns.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { NETFILTER_CT_PROGRAMS, parseConntrackKprobes, runConntrackKprobes, VERDICTS } from '../lib/conntrack-kprobes.js';
import { readDrops } from '../lib/drops/read.js';
import { collectDrops, DROPS_BUDGET } from '../lib/drops/session.js';
import { addressParams, durationParam, protocolNumber, protocolParam, topParam } from '../lib/params.js';
import { DATA, type ConntrackData } from './data.js';
import { parseAddr, vmIdentityOf, vmScopeParams } from '../lib/vm-scope.js';
import { EVENT_TYPES, listenEvents, recordedEvents, summariseEvents, type EventFilters } from './events.js';
import { nativeRun } from '../lib/bpf-probe.js';

const STAT = '/proc/net/stat/nf_conntrack';
const COUNT = '/proc/sys/net/netfilter/nf_conntrack_count';
const MAX = '/proc/sys/net/netfilter/nf_conntrack_max';
const BUCKETS = '/proc/sys/net/netfilter/nf_conntrack_buckets';
const PATHS = [STAT, COUNT, MAX, BUCKETS];

/** The statistics whose rise means packets were lost or connections not tracked. */
export const LOSS_STATS = ['drop', 'early_drop', 'insert_failed', 'invalid'] as const;

export type { ConntrackData } from './data.js';

/** skb:kfree_skb reasons of netfilter and conntrack (NETFILTER_DROP; newer kernels add NF_* ones). */
const NETFILTER_REASON = /^(NETFILTER_|NF_)|CONNTRACK/;
const DROPS_PREFIX = 'drops-';
const KPROBES_PREFIX = 'kprobes-';

const MEANING: Record<string, string> = {
  drop: 'packets dropped because a new entry could not be made (table full, nothing evictable)',
  early_drop: 'unassured entries evicted to make room for new ones (the table is full)',
  insert_failed: 'entries that could not be inserted (a clash with an existing entry, or a full table)',
  invalid: 'packets conntrack could not classify (out-of-window TCP, bad ICMP errors); dropped by `ct state invalid drop` rules',
};

/** An address filter the BPF programs (the drop session's, the conntrack kprobes') can apply: they filter IPv4 only. */
function ipv4Filter(ip: unknown): string | undefined {
  return typeof ip === 'string' && parseAddr(ip)?.family === 4 ? ip : undefined;
}

/** The IPv6 filters the BPF counts leave out (their counts are then not filtered by address). */
function ipv6Filters(params: Params): string[] {
  return [params.src_ip, params.dst_ip].filter((ip): ip is string => typeof ip === 'string' && parseAddr(ip)?.family === 6);
}

/** drops.kernel's params for the namespace's netfilter drops (every group kept, no stacks). */
function dropsParams(params: Params): Params {
  return {
    duration: params.duration as number,
    ...(netnsOf(params) !== undefined ? { netns: netnsOf(params) } : {}),
    src_ip: ipv4Filter(params.src_ip) ?? '',
    dst_ip: ipv4Filter(params.dst_ip) ?? '',
    protocol: (params.protocol as string | undefined) ?? 'any',
    port: 0,
    stacks: false,
    top: 1000,
  };
}

function eventFilters(params: Params): EventFilters {
  const proto = params.protocol as string | undefined;
  return {
    ...(params.src_ip ? { srcIp: params.src_ip as string } : {}),
    ...(params.dst_ip ? { dstIp: params.dst_ip as string } : {}),
    ...(proto && protocolNumber(proto) !== 0 ? { proto } : {}),
    ...(params.src_port ? { srcPort: params.src_port as number } : {}),
    ...(params.dst_port ? { dstPort: params.dst_port as number } : {}),
    ...(vmIdentityOf(params).ips.length > 0 ? { vmIps: vmIdentityOf(params).ips } : {}),
  };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  vmIdentityOf(params); // a bad vm_ips entry fails before anything runs
  const netns = netnsOf(params);
  const durationMs = params.duration as number;
  // `conntrack -E` takes ~200 ms to start and join its groups: it does so while the counters
  // are read and the programs attached, and is subscribed before the window opens.
  const listening = durationMs > 0 && params.events !== false ? listenEvents(io, netns) : undefined;
  listening?.catch(() => undefined); // awaited in the window; its failure is reported there
  try {
    const start = await readFilesIn(io, 'conntrack-start', netns, PATHS);
    const missing = netnsMissing(start, netns);
    if (missing) throw new Error(missing);
    if (durationMs === 0) return;
    // The window: kprobes attached (where they can be), the event listener subscribed, then the
    // wait and the second read; the listener and the kprobes stop after it.
    const watch = async (wio: ProbeIO) => {
      const listener = await listening;
      try {
        await wio.sleep(durationMs);
        // The events are drained while the counters are read again.
        await Promise.all([readFilesIn(wio, 'conntrack-end', netns, PATHS), listener?.stop()]);
      } finally {
        await listener?.stop();
      }
    };
    const window = (windowIO: ProbeIO) =>
      params.kprobes !== false ? runConntrackKprobes(windowIO, KPROBES_PREFIX, kprobeFilters(params), NETFILTER_CT_PROGRAMS, watch) : watch(windowIO);
    if (params.drop_reasons === false) return await window(io);
    await collectDrops(dropsParams(params), io, { prefix: DROPS_PREFIX, window });
  } finally {
    // Stopped by the window; here only when it never ran (a missing namespace, a failed attach).
    await (await listening?.catch(() => undefined))?.stop();
  }
}

function kprobeFilters(params: Params) {
  return {
    ...(ipv4Filter(params.src_ip) ? { saddr: params.src_ip as string } : {}),
    ...(ipv4Filter(params.dst_ip) ? { daddr: params.dst_ip as string } : {}),
    proto: protocolNumber(params.protocol),
  };
}

/** The netfilter drop reasons of the kernel drop session, when it ran. */
function dropReasonsOf(records: RawRecord[], params: Params): ConntrackData['dropReasons'] {
  if (!records.some((r) => r.name === `${DROPS_PREFIX}attach`)) return null;
  const drops = readDrops(records, dropsParams(params), { prefix: DROPS_PREFIX }).data;
  const byReason = Object.fromEntries(Object.entries(drops.byReason).filter(([r]) => NETFILTER_REASON.test(r)));
  return { total: Object.values(byReason).reduce((n, v) => n + v, 0), byReason };
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
  const evRec = recordedEvents(records);
  const events = evRec ? summariseEvents(evRec, eventFilters(params), Math.max(1, (params.top as number | undefined) ?? 10)) : null;
  if (events?.error) notes.push(`no conntrack events: ${events.error}`);
  if (events && events.overflows > 0) notes.push(`the event listener overflowed ${events.overflows} time(s): the event counts miss some`);
  const kprobes = parseConntrackKprobes(records, KPROBES_PREFIX);
  const v6 = ipv6Filters(params);
  if (v6.length > 0) notes.push(`the netfilter drop reasons and kprobe verdicts filter IPv4 addresses only: they are not filtered by ${v6.join(', ')} (the events are)`);
  const vmIps = vmIdentityOf(params).ips;
  if (vmIps.length > 0) notes.push(`the statistics, drop reasons and kprobe verdicts are the whole tracker's; the events are the VM's (${vmIps.join(', ')})`);
  if (kprobes && !kprobes.attachable) notes.push(`nf_conntrack_in verdicts not counted: ${kprobes.failed.length} of ${kprobes.failed.length + kprobes.attached.length} kprobe programs did not attach (${kprobes.failed[0]})`);
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
    events,
    dropReasons: dropReasonsOf(records, params),
    kprobes,
    vmIps: vmIps.length > 0 ? vmIps : null,
    notes,
  };
  const when = cumulative ? 'since boot' : `in ${formatMs(data.durationMs)}`;
  const fill = max > 0 ? `${count} of ${max} entries (${fillPct}%)` : `${count} entries (no limit)`;
  const lossText = losses.length === 0 ? `no conntrack drops ${when}` : `${losses.map((l) => `${l.stat} +${l.delta}`).join(', ')} ${when}`;
  const severity = (stats.drop ?? 0) > 0 || (stats.insert_failed ?? 0) > 0 ? 'critical' : losses.length > 0 || full ? 'warning' : 'info';
  const eventText = events?.listened ? `; ${vmIps.length > 0 ? "the VM's " : ''}events NEW ${events.byType.NEW}, UPDATE ${events.byType.UPDATE}, DESTROY ${events.byType.DESTROY}${events.destroyedEarly > 0 ? ` (${events.destroyedEarly} destroyed unassured)` : ''}` : '';
  return {
    data,
    summary: loaded ? `${lossText}${eventText}; table ${fill}${full ? ', full' : ''}` : notes[0]!,
    severity,
    charts: chartsOf(data, when),
    tables: tablesOf(data),
  };
}

function chartsOf(data: ConntrackData, when: string): ChartSpec[] {
  const charts: ChartSpec[] = [];
  if (data.losses.length > 0) charts.push({ kind: 'bar', title: `Conntrack losses ${when}`, unit: 'packets', bars: data.losses.map((l) => ({ label: l.stat, value: l.delta })) });
  const ev = data.events;
  if (ev && ev.total > 0) {
    const bars = Object.entries(ev.byProtocol).flatMap(([proto, t]) => EVENT_TYPES.filter((k) => t[k] > 0).map((k) => ({ label: `${proto} ${k}`, value: t[k] })));
    charts.push({ kind: 'bar', title: `Conntrack events ${when}`, unit: 'events', bars });
  }
  return charts;
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
  const tables: TableSpec[] = [{ title: 'Connection tracker', columns: ['statistic', 'value', 'meaning'], rows }];
  const ev = data.events;
  if (ev && ev.topFlows.length > 0) {
    tables.push({
      title: 'Entries with the most events',
      columns: ['flow', 'events', 'NEW', 'UPDATE', 'DESTROY', 'last state', 'assured'],
      rows: ev.topFlows.map((f) => [f.flow, f.events, f.byType.NEW, f.byType.UPDATE, f.byType.DESTROY, f.lastState ?? '', f.assured ? 'yes' : 'no']),
    });
  }
  if (ev && ev.earlyDestroys.length > 0) {
    tables.push({
      title: `Entries destroyed before they were assured (${ev.destroyedEarly})`,
      columns: ['flow', 'state', 'lifetime ms'],
      rows: ev.earlyDestroys.map((e) => [e.flow, e.state ?? '', e.lifetimeMs ?? '']),
    });
  }
  const k = data.kprobes;
  if (k && k.attached.length > 0) {
    tables.push({
      title: 'nf_conntrack_in verdicts',
      columns: ['path', ...VERDICTS, 'confirm failures'],
      rows: [
        ['netfilter', ...VERDICTS.map((v) => k.netfilter.byVerdict[v]), k.netfilter.confirmFailures],
        ['OVS ct()', ...VERDICTS.map((v) => k.ovs.byVerdict[v]), k.ovs.confirmFailures],
      ],
    });
  }
  return tables;
}

export const netConntrack: ProbeDefinition<ConntrackData> = {
  id: 'net.conntrack',
  title: 'Connection tracking: table fill and drops',
  description: `Reads the connection tracker's statistics (\`${STAT}\`, one row per CPU, summed) and the table's fill (\`nf_conntrack_count\` against \`nf_conntrack_max\`) at the start and the end of \`duration\`.

A **full table** drops the first packet of every new connection: the kernel frees it with \`NETFILTER_DROP\` at the conntrack hook (\`nf_hook_slow\`), no nftables rule counter moves, and \`drop\` rises here (\`early_drop\` rises when an unassured entry could be evicted instead). \`insert_failed\` counts entries that clashed at confirmation (often parallel UDP/DNS from one socket); \`invalid\` counts packets conntrack could not classify, which \`ct state invalid drop\` rules then drop. \`netns\` reads another network namespace's tracker (\`ip netns exec\`, or \`nsenter\` for a path); the table limit is global on Linux. \`duration: 0\` reads once: totals since boot.

Over a window it also records the tracker's **events** from netlink (\`conntrack -E\` of conntrack-tools, run inside the namespace): NEW, UPDATE and DESTROY by protocol and by TCP state, the entries with the most events, and the entries **destroyed before they were assured** (no answer, a reset, evicted by \`early_drop\`). The filters (\`src_ip\`, \`dst_ip\` IPv4 or IPv6, \`protocol\`, \`src_port\`, \`dst_port\`) select events by their original direction; \`vm_ips\` (a VM's IPv4 and IPv6 addresses) keeps the events, and so the entries listed, of the connections whose original or reply tuple has one of them (a connection DNATed to the VM included), so that a neighbour's connections on the same host are not counted as the VM's. The statistics and the table's fill are the whole tracker's (the kernel keeps no per-address count). It counts the packets the kernel freed with a netfilter drop reason (\`NETFILTER_DROP\`, from skb:kfree_skb, drops.kernel's programs) in the namespace, and, where kprobes attach, what \`nf_conntrack_in\` decided for each packet (tracked as new/established/related, invalid, dropped, untracked) and the entries \`__nf_conntrack_confirm\` could not insert; on a kernel without kprobes those programs are not loaded, and the finding says so.`,
  normal: `\`drop\`, \`early_drop\` and \`insert_failed\` stay at 0 and the table is well below \`nf_conntrack_max\` (under 80%). A few \`invalid\` packets are normal on busy hosts; \`search_restart\` rising is harmless (the table was resized or an entry moved). Events (the VM's, with \`vm_ips\`): about as many DESTROY as NEW over a long window; entries destroyed unassured are connection attempts nobody answered (scans, a dead peer) and should be few.`,
  replaces: ['trace_conntrack.py'],
  params: {
    duration: durationParam('Time between the two reads; 0 reads once (totals since boot).', { min: 0 }),
    netns: {
      type: 'string',
      description: 'Read the tracker of this network namespace: an `ip netns` name or a path such as /proc/<pid>/ns/net. Default: the namespace ebpfnet runs in.',
    },
    ...addressParams({
      src: 'Only events of entries from this address, IPv4 or IPv6 (the drop reasons and kprobe verdicts filter IPv4 only).',
      dst: 'Only events of entries to this address, IPv4 or IPv6 (the drop reasons and kprobe verdicts filter IPv4 only).',
    }),
    ...vmScopeParams({ ips: 'only the events (and the entries listed) of connections whose original or reply tuple has one of them, NATed replies included.' }),
    protocol: protocolParam('Only events of this L4 protocol.'),
    src_port: { type: 'integer', min: 0, max: 65535, default: 0, description: 'Only events of entries from this port (0 = any).' },
    dst_port: { type: 'integer', min: 0, max: 65535, default: 0, description: 'Only events of entries to this port (0 = any).' },
    events: { type: 'boolean', default: true, description: 'Record the conntrack events of the window (`conntrack -E`).' },
    drop_reasons: { type: 'boolean', default: true, description: 'Count the netfilter drop reasons of skb:kfree_skb in the namespace (BPF).' },
    kprobes: { type: 'boolean', default: true, description: "Count nf_conntrack_in's verdicts with kprobes, where the kernel has them." },
    top: topParam('How many entries to list.', { default: 10, max: 1000 }),
  },
  requirements: [{ kind: 'root' }],
  memory: { objects: ['drops.kernel'] },
  ...nativeRun(DROPS_BUDGET),
  data: DATA,
  collect,
  parse,
};
