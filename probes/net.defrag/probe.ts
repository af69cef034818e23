// net.defrag: IP reassembly over a window. The namespace's SNMP counters (/proc/net/snmp
// Ip: Reasm*/Frag*, /proc/net/snmp6 Ip6Reasm*/Ip6Frag*) read at both ends, beside the
// fragments the kernel freed with a reassembly drop reason (FRAG_REASM_TIMEOUT, FRAG_TOO_FAR,
// DUP_FRAG), counted in the kernel by source, destination and reason (probes/net.defrag/net.defrag.bpf.c), and,
// where kprobes attach, the reassembly queues themselves (kprobes.ts: attempts per source from
// ip_defrag, the queues that expired incomplete from ip_expire).
import { formatMs } from '../../engine/duration.js';
import type { BpfObject } from '../../engine/native/object.js';
import { readBpfSession, runBpfSession } from '../../engine/probe/bpf-session.js';
import { addressText, countsOf, ipv4Bytes, slotTotals } from '../../engine/probe/bpf-values.js';
import { netnsMissing, netnsOf, readFilesIn, readingsOf } from '../../engine/probe/netns.js';
import { overheadOf, overheadTable } from '../../engine/probe/overhead.js';
import type { BarChart, ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { captureReasonFormat, hasReasonField, parseReasonNames } from '../lib/drop-reasons.js';
import { loadDefrag } from './attach.js';
import { kprobeTable } from '../lib/kprobe-session.js';
import { parseQueues, runQueueSession } from './kprobes.js';
import { round } from '../lib/format.js';
import { addressParams, durationParam, protocolNumber, protocolParam, topParam } from '../lib/params.js';
import { parseSnmp } from '../lib/snmp.js';
import { addCount, sortedCounts } from '../lib/tally.js';
import { DATA, type DefragAttach, type DefragData, type DefragDrops, type DefragFlow, type DefragQueues } from './data.js';
import { tracepointRun } from '../lib/bpf-probe.js';

export type { DefragData };

const SNMP = ['/proc/net/snmp', '/proc/net/snmp6'];
/** The IPv4 counters of /proc/net/snmp this probe reports, and their IPv6 twins of snmp6. */
export const IPV4_COUNTERS = ['ReasmReqds', 'ReasmOKs', 'ReasmFails', 'ReasmTimeout', 'FragOKs', 'FragFails', 'FragCreates'] as const;
export type DefragCounter = (typeof IPV4_COUNTERS)[number];
const IPV6 = (c: DefragCounter) => `Ip6${c}`;
/**
 * Reassembly drop reasons: DUP_FRAG and every FRAG_* of this kernel's enum (probes/net.defrag/net.defrag.h has
 * room for 8). IPV6_NDISC_FRAG is not one: a neighbour discovery message that came fragmented.
 */
const REASON_RE = /^(?:DUP_FRAG|FRAG_\w+)$/;
const MAX_REASONS = 8;
/** Slots of the per-CPU `totals` map (probes/net.defrag/net.defrag.h). */
const TOTAL_SEEN = 0;
const TOTAL_UNKEYED = 1;
const PROTOCOL_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 44: 'ipv6-frag', 58: 'icmpv6' };
/** Fragment drops are rare; a flood of other drops costs one reason comparison each. */
export const DEFRAG_BUDGET = { cpu: 0.05, eventsPerSec: 1_000_000 };

const MEANING: Record<DefragCounter, string> = {
  ReasmReqds: 'fragments received that needed reassembly',
  ReasmOKs: 'datagrams reassembled',
  ReasmFails: 'reassembly failures (timeouts, too-far queues, out of memory, malformed)',
  ReasmTimeout: 'datagrams whose fragments did not all arrive within ipfrag_time',
  FragOKs: 'datagrams this namespace fragmented to send',
  FragFails: 'datagrams that needed fragmenting but could not be (DF set, or no memory)',
  FragCreates: 'fragments this namespace created',
};

/** The `attach` capture record. */
interface AttachCapture {
  attach: DefragAttach[];
  fallback?: string;
  /** The reasons selected: number → name. */
  reasons: Record<string, string>;
  filters: { saddr: string | null; daddr: string | null; protocol: number };
}

/** The `dump` capture record. */
interface DumpCapture {
  windowMs: number;
  seen: number;
  unkeyed: number;
  entries: Array<{ family: number; saddr: string; daddr: string; reason: number; protocol: number; count: number }>;
}

// ---- collect -------------------------------------------------------------------------------

function filtersOf(params: Params) {
  return {
    saddr: ipv4Bytes(params.src_ip),
    daddr: ipv4Bytes(params.dst_ip),
    protocol: protocolNumber(params.protocol),
  };
}

/** This kernel's reassembly reasons (number → name), from the tracepoint format. */
export function defragReasons(format: string): Map<number, string> {
  return new Map([...parseReasonNames(format)].filter(([, name]) => REASON_RE.test(name)).slice(0, MAX_REASONS));
}

function reasonGlobal(reasons: number[]): Uint8Array {
  const out = Buffer.alloc(MAX_REASONS * 4);
  reasons.forEach((r, i) => out.writeUInt32LE(r, i * 4));
  return out;
}

function addressOf(bytes: Buffer, family: number): string {
  return family === 4 || family === 6 ? addressText(bytes, family) : '?';
}

function dumpMaps(o: BpfObject, windowMs: number): DumpCapture {
  const totals = o.map('totals');
  const entries = countsOf(o.map('agg'), (k: { saddr: Buffer; daddr: Buffer; reason: number; family: number; protocol: number }) => {
    return { family: k.family, saddr: addressOf(k.saddr, k.family), daddr: addressOf(k.daddr, k.family), reason: k.reason, protocol: k.protocol };
  });
  entries.sort((a, b) => b.count - a.count || a.saddr.localeCompare(b.saddr) || a.daddr.localeCompare(b.daddr) || a.reason - b.reason);
  return {
    windowMs: Math.round(windowMs),
    ...slotTotals(totals, { seen: TOTAL_SEEN, unkeyed: TOTAL_UNKEYED }),
    entries,
  };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const netns = netnsOf(params);
  const filters = filtersOf(params); // malformed addresses fail before anything runs
  const start = await readFilesIn(io, 'snmp-start', netns, SNMP);
  const missing = netnsMissing(start, netns);
  if (missing) throw new Error(missing);
  const duration = params.duration as number;
  if (params.drops === false) {
    await io.sleep(duration);
    await readFilesIn(io, 'snmp-end', netns, SNMP);
    return;
  }
  // The kprobes attach where the kernel has them; their session runs around the tracepoint's.
  if (params.kprobes === false) await collectDrops(io, params, filters);
  else await runQueueSession(io, filters, () => collectDrops(io, params, filters));
}

/** The tracepoint session over the window, ending with the second counter read. */
async function collectDrops(io: ProbeIO, params: Params, filters: ReturnType<typeof filtersOf>): Promise<void> {
  const netns = netnsOf(params);
  const duration = params.duration as number;
  const format = await captureReasonFormat(io, 'reasons');
  const reasons = defragReasons(format);
  if (!hasReasonField(format) || reasons.size === 0) {
    await io.sleep(duration);
    await readFilesIn(io, 'snmp-end', netns, SNMP);
    return;
  }
  await runBpfSession(io, {
    load: async () => {
      const loaded = await loadDefrag({
        targ_reasons: reasonGlobal([...reasons.keys()]),
        n_reasons: reasons.size,
        targ_saddr: filters.saddr ?? new Uint8Array(4),
        targ_daddr: filters.daddr ?? new Uint8Array(4),
        targ_proto: filters.protocol,
      });
      const link = loaded.links[0]!;
      const record: AttachCapture = {
        attach: [{ program: link.program, method: loaded.method, target: link.target, attachMs: round(link.attachMs), loadMs: round(loaded.loadMs), btf: loaded.btf }],
        ...(loaded.fallbacks.length > 0 ? { fallback: loaded.fallbacks.join('; ') } : {}),
        reasons: Object.fromEntries([...reasons].map(([n, name]) => [String(n), name])),
        filters: { saddr: (params.src_ip as string) || null, daddr: (params.dst_ip as string) || null, protocol: filters.protocol },
      };
      return { obj: loaded.obj, record };
    },
    window: async (windowIO) => {
      await windowIO.sleep(duration);
      await readFilesIn(io, 'snmp-end', netns, SNMP);
    },
    read: (o, w) => dumpMaps(o, w.ms),
  });
}

// ---- parse ---------------------------------------------------------------------------------

function countersOf(rec: RawRecord | undefined): Map<string, number> {
  const r = readingsOf(rec, SNMP);
  return parseSnmp(r.get(SNMP[0]!)?.text ?? '', r.get(SNMP[1]!)?.text ?? '');
}

function protocolName(p: number): string {
  return PROTOCOL_NAMES[p] ?? String(p);
}

function dropsOf(records: RawRecord[], top: number): DefragDrops | null {
  if (!records.some((r) => r.op === 'capture' && r.name === 'attach')) return null;
  const { attach: att, dump } = readBpfSession<AttachCapture, DumpCapture>(records);
  const overhead = overheadOf(records, '');
  const reasonName = (r: number) => att.reasons[String(r)] ?? `REASON_${r}`;
  const byReason: Record<string, number> = {};
  const bySource: Record<string, number> = {};
  const perSource = new Map<string, Record<string, number>>();
  const flows: DefragFlow[] = [];
  let total = 0;
  for (const e of dump.entries) {
    const reason = reasonName(e.reason);
    total += e.count;
    addCount(byReason, reason, e.count);
    addCount(bySource, e.saddr, e.count);
    const reasons = perSource.get(e.saddr) ?? {};
    addCount(reasons, reason, e.count);
    perSource.set(e.saddr, reasons);
    flows.push({ source: e.saddr, destination: e.daddr, protocol: protocolName(e.protocol), reason, count: e.count });
  }
  total += dump.unkeyed;
  const sourcesSorted = sortedCounts(bySource);
  return {
    method: att.attach[0]!.method,
    attach: att.attach,
    ...(att.fallback !== undefined ? { fallback: att.fallback } : {}),
    windowMs: dump.windowMs,
    reasons: Object.values(att.reasons),
    total,
    lost: dump.unkeyed,
    byReason: sortedCounts(byReason),
    bySource: sourcesSorted,
    sources: Object.entries(sourcesSorted).map(([source, drops]) => ({ source, drops, byReason: sortedCounts(perSource.get(source)!) })),
    flows: flows.slice(0, top),
    ...(overhead ? { overhead } : {}),
  };
}

function skippedWhy(records: RawRecord[], params: Params): string | undefined {
  if (params.drops === false) return 'drops: false';
  const format = records.find((r) => r.op === 'capture' && r.name === 'reasons');
  if (!format || records.some((r) => r.name === 'attach')) return undefined;
  if (!hasReasonField(format.stdout)) return 'the kfree_skb tracepoint of this kernel has no drop reason (before 5.17)';
  return 'this kernel has no reassembly drop reasons (FRAG_*, DUP_FRAG)';
}

function parse(records: RawRecord[], params: Params): ProbeResult<DefragData> {
  const startRec = records.find((r) => r.name === 'snmp-start');
  if (!startRec) throw new Error('no snmp-start record in the evidence');
  const netns = netnsOf(params);
  const missing = netnsMissing(startRec, netns);
  if (missing) throw new Error(missing);
  const endRec = records.find((r) => r.name === 'snmp-end');
  if (!endRec) throw new Error('no snmp-end record in the evidence');
  const start = countersOf(startRec);
  const end = countersOf(endRec);
  const notes: string[] = [];
  if (start.size === 0) notes.push(`the IP counters (${SNMP[0]}) could not be read`);
  const delta = (name: string) => Math.max(0, (end.get(name) ?? 0) - (start.get(name) ?? 0));
  const ipv4 = Object.fromEntries(IPV4_COUNTERS.map((c) => [c, delta(c)])) as Record<DefragCounter, number>;
  const ipv6 = Object.fromEntries(IPV4_COUNTERS.map((c) => [c, delta(IPV6(c))])) as Record<DefragCounter, number>;
  const both = (c: DefragCounter) => ipv4[c] + ipv6[c];
  const reassembled = both('ReasmOKs');
  const failures = both('ReasmFails');
  const top = Math.max(1, (params.top as number | undefined) ?? 10);
  const drops = dropsOf(records, top);
  const dropsSkipped = drops ? undefined : skippedWhy(records, params);
  if (drops?.lost) notes.push(`${drops.lost} drops were counted but not attributed to a source (the map was full)`);
  const queues = parseQueues(records, top, protocolName);
  if (queues && queues.failed.length > 0) notes.push(`reassembly queues not traced (${queues.attached.length === 0 ? 'no kprobe attached' : 'partly'}): ${queues.failed.join('; ')}`);
  if (queues?.lost) notes.push(`${queues.lost} reassembly attempts or expired queues were counted but not kept (a map was full)`);
  const data: DefragData = {
    durationMs: Math.max(0, endRec.at - startRec.at),
    netns: netns ?? null,
    ipv4,
    ipv6,
    requests: both('ReasmReqds'),
    reassembled,
    failures,
    timeouts: both('ReasmTimeout'),
    successRatio: reassembled + failures > 0 ? Math.round((reassembled / (reassembled + failures)) * 10000) / 10000 : null,
    fragments: both('ReasmReqds') + both('FragCreates') > 0,
    drops,
    ...(dropsSkipped !== undefined ? { dropsSkipped } : {}),
    queues,
    notes,
  };
  const dropTotal = drops?.total ?? 0;
  const severity = failures > 0 || dropTotal > 0 || (queues?.expired ?? 0) > 0 || both('FragFails') > 0 ? 'critical' : data.fragments ? 'warning' : 'info';
  return { data, summary: summaryOf(data), severity, charts: chartsOf(data), tables: tablesOf(data) };
}

function summaryOf(d: DefragData): string {
  const when = `in ${formatMs(d.durationMs)}`;
  const where = d.netns ? ` (${d.netns})` : '';
  const dropText = (): string => {
    if (!d.drops || d.drops.total === 0) return '';
    const reasons = Object.entries(d.drops.byReason).map(([r, n]) => `${r} ${n}`).join(', ');
    const src = d.drops.sources[0];
    const from = src ? `, most from ${src.source} (${src.drops})` : '';
    return `; ${d.drops.total} fragment drop${d.drops.total === 1 ? '' : 's'}: ${reasons}${from}`;
  };
  const queueText = (): string => {
    const q = d.queues;
    if (!q || q.expired === 0) return '';
    const first = q.expiredQueues[0];
    const example = first ? `, e.g. ${first.source} id ${first.id} (${first.receivedBytes}${first.totalBytes === null ? '' : ` of ${first.totalBytes}`} bytes, ${first.missing} fragment missing)` : '';
    return `; ${q.expired} reassembly queue${q.expired === 1 ? '' : 's'} expired${example}`;
  };
  const frag = d.ipv4.FragFails + d.ipv6.FragFails > 0 ? `, FragFails +${d.ipv4.FragFails + d.ipv6.FragFails}` : '';
  if (!d.fragments && d.failures === 0) return `no IP fragments ${when}${where}${frag}${dropText()}${queueText()}`;
  const ratio = d.successRatio === null ? '' : ` (${(d.successRatio * 100).toFixed(1)}% reassembled)`;
  const fails = d.failures > 0 ? `, ${d.failures} failed (${d.timeouts} timed out)` : '';
  return `${d.requests} fragments ${when}${where}: ${d.reassembled} datagrams reassembled${fails}${ratio}${frag}${dropText()}${queueText()}`;
}

function chartsOf(d: DefragData): ChartSpec[] {
  const charts: ChartSpec[] = [];
  const bar = (title: string, unit: string, map: Record<string, number>): BarChart => ({ kind: 'bar', title, unit, bars: Object.entries(map).map(([label, value]) => ({ label, value })) });
  if (d.fragments || d.failures > 0) {
    charts.push(bar('Reassembly', 'count', { requests: d.requests, reassembled: d.reassembled, failures: d.failures, timeouts: d.timeouts }));
  }
  if (d.drops && d.drops.total > 0) {
    charts.push(bar('Fragment drops by reason', 'drops', d.drops.byReason));
    charts.push(bar('Fragment drops by source', 'drops', Object.fromEntries(Object.entries(d.drops.bySource).slice(0, 10))));
  }
  if (d.queues && d.queues.expired > 0) charts.push(bar('Expired reassembly queues by source', 'queues', Object.fromEntries(Object.entries(d.queues.expiredBySource).slice(0, 10))));
  return charts;
}

function tablesOf(d: DefragData): TableSpec[] {
  const tables: TableSpec[] = [
    {
      title: `IP fragmentation counters${d.netns ? ` (${d.netns})` : ''}`,
      columns: ['counter', 'IPv4', 'IPv6', 'meaning'],
      rows: IPV4_COUNTERS.map((c) => [c, d.ipv4[c], d.ipv6[c], MEANING[c]]),
    },
  ];
  if (d.drops) {
    const reasons = d.drops.reasons;
    tables.push({
      title: 'Fragment drops by source (host-wide)',
      columns: ['source', 'drops', ...reasons],
      rows: d.drops.sources.map((s) => [s.source, s.drops, ...reasons.map((r) => s.byReason[r] ?? 0)]),
    });
    if (d.drops.flows.length > 0) {
      tables.push({
        title: 'Fragment drops by flow',
        columns: ['source', 'destination', 'protocol', 'reason', 'drops'],
        rows: d.drops.flows.map((f) => [f.source, f.destination, f.protocol, f.reason, f.count]),
      });
    }
    tables.push({
      title: 'Attach',
      columns: ['program', 'method', 'target', 'BTF', 'load ms', 'attach ms'],
      rows: d.drops.attach.map((a) => [a.program, a.method, a.target, a.btf, a.loadMs, a.attachMs]),
    });
    if (d.drops.overhead) tables.push(overheadTable(d.drops.overhead));
  }
  if (d.queues) tables.push(...queueTables(d.queues));
  return tables;
}

function queueTables(q: DefragQueues): TableSpec[] {
  const tables: TableSpec[] = [];
  if (q.attached.length > 0) {
    tables.push({
      title: 'Fragments handed to reassembly (kprobe ip_defrag)',
      columns: ['source', 'destination', 'protocol', 'asked by', 'namespace', 'fragments'],
      rows: q.attemptFlows.map((f) => [f.source, f.destination, f.protocol, f.user, f.netns ?? '(this one)', f.fragments]),
    });
    tables.push({
      title: 'Reassembly queues expired incomplete (kprobe ip_expire)',
      columns: ['source', 'destination', 'IP id', 'protocol', 'asked by', 'namespace', 'received bytes', 'datagram bytes', 'missing', 'expiries'],
      rows: q.expiredQueues.map((e) => [e.source, e.destination, e.id, e.protocol, e.user, e.netns ?? '(this one)', e.receivedBytes, e.totalBytes ?? '?', e.missing, e.expiries]),
    });
  }
  tables.push(kprobeTable(q));
  return tables;
}

export const netDefrag: ProbeDefinition<DefragData> = {
  id: 'net.defrag',
  title: 'IP reassembly: requests, successes, failures, timeouts and fragment drops by source',
  description: `Reads a namespace's IP fragmentation counters at the start and the end of \`duration\` (\`/proc/net/snmp\` \`Ip:\` ReasmReqds, ReasmOKs, ReasmFails, ReasmTimeout, FragOKs, FragFails, FragCreates; their \`Ip6\` twins of \`/proc/net/snmp6\`) and gives the reassembly success ratio. Meanwhile it counts, in the kernel, every fragment freed with a reassembly drop reason of the running kernel (\`FRAG_REASM_TIMEOUT\`: the datagram's other fragments never came within \`net.ipv4.ipfrag_time\`; \`FRAG_TOO_FAR\`: more than \`net.ipv4.ipfrag_max_dist\` other fragments from the same source arrived between two of a datagram's fragments, and its queue was purged; \`DUP_FRAG\`: a fragment whose data was already queued) by source, destination, protocol and reason (\`skb:kfree_skb\`, raw tracepoint → tp_btf → classic tracepoint).

Use it when a VM loses large UDP datagrams or the path has an MTU below the senders': a failed reassembly loses the whole datagram although only one piece was lost, and the source address says which sender's fragments die. \`netns\` selects whose counters are read (\`ip netns exec\`, or \`nsenter\` for a path); the fragment drops are host-wide, since a fragment held for reassembly no longer carries its device: narrow them with \`src_ip\`, \`dst_ip\` and \`protocol\` (applied in the kernel). \`drops: false\` reads the counters only, without BPF.

Where the kernel has kprobes (\`kprobes\`, on by default), two more programs watch IPv4 reassembly itself: \`ip_defrag\` counts every fragment handed to reassembly by source, destination, protocol and who asked (local delivery, conntrack and its zone, IPVS, AF_PACKET, macvlan), and \`ip_expire\` keeps every queue whose timer fired before its datagram was complete, with its source, destination, IP id, the bytes that came, the datagram's length once its last fragment came, and so which end is missing. Where kprobes do not attach, the finding says so and the rest is unchanged. Replaces trace_ip_defrag.py.`,
  normal: `No fragments at all: on a VM network with consistent MTUs (the VM's, its tap's, the bridge's and the uplink's agree, and PMTU discovery works) ReasmReqds and FragCreates stay at 0. Where fragments are expected (large UDP, tunnels without MTU room), ReasmOKs follows ReasmReqds (a success ratio of 1) and ReasmFails, ReasmTimeout and the fragment drops stay at 0. A rising ReasmTimeout with FRAG_REASM_TIMEOUT drops from one source means pieces of that sender's datagrams are lost on the way; FragFails means datagrams with DF set met a smaller MTU. Where the kprobes attach, no reassembly queue expires; an expired queue whose first fragment is missing (or last) says which piece of that sender's datagrams is lost.`,
  replaces: ['trace_ip_defrag.py'],
  params: {
    duration: durationParam('Time between the two counter reads, during which the fragment drops are counted.'),
    netns: {
      type: 'string',
      description: 'Read the counters of this network namespace: an `ip netns` name or a path such as /proc/<pid>/ns/net. Default: the namespace ebpfnet runs in.',
    },
    ...addressParams({ src: 'Only fragment drops from this IPv4 address.', dst: 'Only fragment drops to this IPv4 address.' }),
    protocol: protocolParam('Only IPv4 fragment drops of this L4 protocol.'),
    drops: { type: 'boolean', default: true, description: 'Count the kernel\'s fragment drops by source (BPF); false reads the counters only.' },
    kprobes: {
      type: 'boolean',
      default: true,
      description: 'Also trace the reassembly queues with kprobes on ip_defrag and ip_expire, where the kernel has kprobes: fragments handed to reassembly per source, and each queue that expired incomplete (source, IP id, bytes received). Needs `drops`.',
    },
    top: topParam('How many flows to list.', { default: 10, max: 1000 }),
  },
  ...tracepointRun(['skb:kfree_skb'], DEFRAG_BUDGET),
  data: DATA,
  collect,
  parse,
};
