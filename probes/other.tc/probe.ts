// other.tc: qdisc configuration changes during the window (qdisc:qdisc_create, qdisc_destroy,
// qdisc_reset): who changed what (device, kind, handle, parent) and when, each change one event
// kept in the kernel (probes/other.tc/other.tc.bpf.c) and read after the window. The churn that explains sudden
// drops or delay: a shaper added, a queue flushed, a qdisc replaced. Beside them, what the
// filters and actions of the devices' ingress and egress hooks did in the window (hits.ts).
import type { U64 } from '../../engine/native/btf-layout.js';
import type { BpfObject } from '../../engine/native/object.js';
import { runBpfSession } from '../../engine/probe/bpf-session.js';
import { inNetns } from '../../engine/probe/netns.js';
import type { OverheadBudget } from '../../engine/probe/budget.js';
import type { Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { deviceLabel, filterScope, namespaceLabel, NETDEV_PARAMS, netdevFilter, netdevSession, readSession, sessionData, sessionNotes, sessionTables, tcHandle, type NamespaceNames, type NetdevDump, type NetdevId } from '../lib/netdev.js';
import { round } from '../lib/format.js';
import { slotTotals } from '../../engine/probe/bpf-values.js';
import { hitsSummary, hitsTables, parseHits, sampleHits } from './hits.js';
import { callTables, parseCalls, runCallSession } from './kprobes.js';
import { durationParam, topParam } from '../lib/params.js';
import { DATA, type TcData, type TcDevice, type TcEvent } from './data.js';
import { tracepointRun } from '../lib/bpf-probe.js';

export type { TcData, TcEvent };

const TRACEPOINTS = { tc_create: 'qdisc:qdisc_create', tc_destroy: 'qdisc:qdisc_destroy', tc_reset: 'qdisc:qdisc_reset' };
/** probes/other.tc/other.tc.h */
const EVENT_TYPES = ['create', 'destroy', 'reset'] as const;
/** Slots of the `totals` array: events seen, events not kept. */
const TOTALS = { seen: 0, lost: 1 };
const TC_TIMEOUT_MS = 10_000;

/** Configuration changes are rare: a session costs nothing measurable. The budget guards against a loop churning qdiscs. */
export const TC_BUDGET: OverheadBudget = { cpu: 0.01, eventsPerSec: 100_000 };

type EventType = (typeof EVENT_TYPES)[number];

export interface DumpEvent extends NetdevId {
  ts: string;
  type: EventType;
  parent: number;
  handle: number;
  kind: string;
}

export interface DumpCapture {
  seen: number;
  lost: number;
  events: DumpEvent[];
}

/**
 * A create or destroy of a qdisc with a handle: one tc configured. The kernel's own qdiscs (the
 * default noqueue or pfifo_fast of a device, a tbf's inner bfifo) have handle 0 (`none`).
 */
function isConfigured(e: TcEvent): boolean {
  return e.type !== 'reset' && e.handle !== null && e.handle !== 'none';
}

/** Reads the `events` map, in time order, and the totals (exported for the test of the classic-tracepoint flavour). */
export function readDump(o: BpfObject): DumpCapture {
  const { seen, lost } = slotTotals(o.map('totals'), TOTALS);
  const keyed = o
    .map('events')
    .readAllDecoded<{ ts_ns: U64; seq: number }, { type: number; parent: number; handle: number; dev: NetdevId; kind: string }>()
    .map(({ key: k, value: v }) => {
      const event: DumpEvent = {
        ts: String(k.ts_ns),
        type: EVENT_TYPES[v.type] ?? 'create',
        parent: v.parent,
        handle: v.handle,
        ifindex: v.dev.ifindex,
        netns: v.dev.netns,
        name: v.dev.name,
        kind: v.kind,
      };
      return { ts: BigInt(k.ts_ns), seq: k.seq, event };
    });
  // In time order; events of one CPU within the same ns in the order they happened.
  keyed.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.seq - b.seq));
  return { seen, lost, events: keyed.map((e) => e.event) };
}

const sameQdisc = (a: DumpEvent, b: DumpEvent) => a.name === b.name && a.netns === b.netns && a.kind === b.kind && a.parent === b.parent;

/** The first later destroy or reset of the qdisc event `i` created (same device, kind and parent). */
function laterOf(events: DumpEvent[], i: number): DumpEvent | undefined {
  return events.slice(i + 1).find((e) => e.type !== 'create' && sameQdisc(e, events[i]!));
}

/** The `tc` record name of a device (one listing per device whose creates have no handle yet). */
function tcRecordName(e: Pick<NetdevId, 'name' | 'netns'>): string {
  return `tc-${e.name}-${e.netns}`;
}

/** Devices of creates no later event names, which tc can still list: ebpfnet's namespace or a named one. */
function devicesToList(dump: DumpCapture & NamespaceNames): Array<{ name: string; netns: number; ns: string | undefined }> {
  const out = new Map<string, { name: string; netns: number; ns: string | undefined }>();
  dump.events.forEach((e, i) => {
    if (e.type !== 'create' || laterOf(dump.events, i)) return;
    const ns = namespaceLabel(e.netns, dump);
    if (ns !== null && dump.namespaces[String(e.netns)] === undefined) return; // unnamed: tc cannot enter it
    out.set(tcRecordName(e), { name: e.name, netns: e.netns, ns: ns ?? undefined });
  });
  return [...out.values()];
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const hitsStart = await sampleHits(io, params, 'start');
  // The kprobes attach where the kernel has them; their session runs around the tracepoints'.
  let rec: RawRecord | undefined;
  const tracepoints = async () => {
    rec = await runBpfSession(io, netdevSession(params, { object: 'other.tc', tracepoints: TRACEPOINTS, what: 'other.tc', dump: readDump }));
  };
  if (params.kprobes === false) await tracepoints();
  else await runCallSession(io, await netdevFilter(params), tracepoints);
  await sampleHits(io, params, 'end', hitsStart);
  const dump = JSON.parse(rec!.stdout) as DumpCapture & NetdevDump;
  for (const d of devicesToList(dump)) {
    await io.exec(tcRecordName(d), inNetns(d.ns, ['tc', '-j', 'qdisc', 'show', 'dev', d.name]), { timeoutMs: TC_TIMEOUT_MS, allowFailure: true });
  }
}

/** The handle tc lists for a qdisc of this kind and parent (`parent` as tc prints it). */
function handleFromTc(records: RawRecord[], e: DumpEvent): string | null {
  const rec = records.find((r) => r.name === tcRecordName(e));
  if (!rec || rec.exitCode !== 0) return null;
  let list: Array<{ kind?: string; handle?: string; parent?: string; root?: boolean }>;
  try {
    list = JSON.parse(rec.stdout) as typeof list;
  } catch {
    return null;
  }
  const parent = tcHandle(e.parent);
  const match = list.filter((q) => q.kind === e.kind && (parent === 'root' ? q.root === true : q.parent === parent));
  return match.length === 1 ? (match[0]!.handle ?? null) : null;
}

function parse(records: RawRecord[], params: Params): ProbeResult<TcData> {
  const { attach: att, dump, overhead } = readSession<DumpCapture>(records);
  const top = Math.max(1, (params.top as number | undefined) ?? 100);
  const notes = sessionNotes(att, overhead, dump.windowMs);
  const origin = BigInt(dump.attachedNs);

  const events: TcEvent[] = dump.events.map((e, i) => {
    let handle: string | null = null;
    let handleFrom: TcEvent['handleFrom'] = null;
    if (e.type !== 'create') [handle, handleFrom] = [tcHandle(e.handle), 'event'];
    else {
      const later = laterOf(dump.events, i);
      const listed = later ? null : handleFromTc(records, e);
      if (later) [handle, handleFrom] = [tcHandle(later.handle), 'later event'];
      else if (listed !== null) [handle, handleFrom] = [listed, 'tc'];
    }
    return {
      atMs: round(Number(BigInt(e.ts) - origin) / 1e6, 1),
      type: e.type,
      device: deviceLabel(e, dump),
      dev: e.name,
      netns: namespaceLabel(e.netns, dump),
      kind: e.kind,
      handle,
      handleFrom,
      parent: tcHandle(e.parent),
    };
  });

  const byDevice = new Map<string, TcDevice>();
  for (const e of events) {
    const d = byDevice.get(e.device) ?? { device: e.device, creates: 0, destroys: 0, resets: 0 };
    d[e.type === 'create' ? 'creates' : e.type === 'destroy' ? 'destroys' : 'resets']++;
    byDevice.set(e.device, d);
  }
  const devices = [...byDevice.values()].sort((a, b) => b.creates + b.destroys + b.resets - (a.creates + a.destroys + a.resets) || a.device.localeCompare(b.device));
  const count = (t: EventType) => events.filter((e) => e.type === t).length;
  const lost = dump.lost;
  if (lost > 0) notes.push(`${lost} qdisc events were counted but not kept: the event map was full`);
  const unnamed = events.filter((e) => e.type === 'create' && e.handle === null).length;
  if (unnamed > 0) notes.push(`${unnamed} created qdisc${unnamed === 1 ? ' has' : 's have'} no known handle (the create tracepoint carries none, and tc does not list ${unnamed === 1 ? 'it' : 'them'}: a shaper's inner qdisc, or a namespace without a name)`);

  const ns = typeof params.netns === 'string' && params.netns !== '' ? params.netns : null;
  const hits = parseHits(records, params, (dev) => (ns === null ? dev : `${dev}@${ns}`));
  if (hits?.skipped) notes.push(`filter and action hits not read: ${hits.skipped}`);
  for (const a of hits?.filters.flatMap((f) => f.actions.filter((x) => x.mirred?.missing).map((x) => ({ f, x }))) ?? []) {
    notes.push(`${a.f.kind} filter pref ${a.f.pref} on ${a.f.device} ${a.f.direction}: mirred ${a.x.mirred!.action} to a device that no longer exists (${a.x.overlimits} packets not sent in the window)`);
  }

  const calls = parseCalls(records);
  if (calls && calls.failed.length > 0) notes.push(`filter-chain lookups not traced (${calls.attached.length === 0 ? 'no kprobe attached' : 'partly'}): ${calls.failed.join('; ')}`);

  const configured = events.filter(isConfigured);
  const data: TcData = {
    ...sessionData(att, dump, overhead),
    configured: configured.length,
    events: events.slice(0, top),
    eventCount: events.length,
    creates: count('create'),
    destroys: count('destroy'),
    resets: count('reset'),
    devices,
    lost,
    hits,
    calls,
    notes,
  };

  const secs = `${(dump.windowMs / 1000).toFixed(1)}s`;
  let summary: string;
  if (events.length === 0) summary = `no qdisc change on ${filterScope(att.filter)} in ${secs} (${att.method})`;
  else {
    const what = (e: TcEvent) => `${e.type} ${e.kind} ${e.handle ?? '?'} on ${e.device}`;
    // Lead with what tc configured; the kernel's default and inner qdiscs and resets follow it.
    const lead = [configured, events.filter((e) => e.type !== 'reset'), events].find((l) => l.length > 0)!;
    const more = events.length > Math.min(3, lead.length) ? ` (${data.creates} creates, ${data.destroys} destroys, ${data.resets} resets in all)` : '';
    summary = `qdiscs changed in ${secs}: ${lead.slice(0, 3).map(what).join(', ')}${more}`;
  }
  summary += hitsSummary(hits);
  if (overhead?.stopped) summary += ` (stopped: ${overhead.stopped})`;
  const severity = configured.length > 0 || (hits?.missingTargets ?? 0) > 0 || (hits?.mirredFailures ?? 0) > 0 ? 'warning' : 'info';

  const tables: TableSpec[] = [
    {
      title: 'qdisc changes in order (handles of creates come from a later event of the same qdisc, or from tc at the end)',
      columns: ['ms', 'event', 'device', 'kind', 'handle', 'parent'],
      rows: events.slice(0, top).map((e) => [e.atMs, e.type, e.device, e.kind, e.handle ?? '?', e.parent]),
    },
    ...hitsTables(hits),
    ...callTables(calls),
    ...sessionTables(att, overhead),
  ];
  const charts = devices.length > 0 ? [{ kind: 'bar' as const, title: 'qdisc changes per device', unit: 'events', bars: devices.map((d) => ({ label: d.device, value: d.creates + d.destroys + d.resets })) }] : [];
  return { data, summary, severity, charts, tables };
}

export const otherTc: ProbeDefinition<TcData> = {
  id: 'other.tc',
  title: 'tc: qdisc changes (churn) and filter/action hits',
  description: `Records every qdisc change during \`duration\`: a qdisc created by tc (\`qdisc:qdisc_create\`: \`tc qdisc add\`, or \`replace\` with another kind), destroyed (\`qdisc:qdisc_destroy\`: deleted, replaced, or its device gone) or reset (\`qdisc:qdisc_reset\`: its queue flushed, as when a device goes down or a qdisc is grafted), each with its time, device, namespace, kind, handle and parent, in order. \`dev\` and \`netns\` filter in the kernel. The create tracepoint carries no handle: a create's handle comes from a later destroy or reset of the same qdisc, or from \`tc qdisc show\` at the end of the window when it still exists. \`tc qdisc change\` (or \`replace\` with the same kind) changes parameters in place and fires none of these. The kernel's own qdiscs show too: a device's default (noqueue, pfifo_fast) destroyed when a root qdisc is added and created again when it is deleted, a shaper's inner bfifo; they have handle \`none\`, and \`configured\` counts only the others.

Use it when drops or delay started suddenly: an orchestrator adding a shaper, a script replacing a root qdisc in a loop, or a device flapping (resets) is configuration churn, not load. Loads raw_tp programs with a cached minimal BTF (falls back to tp_btf, then to the classic tracepoints, where devices are known by name only). Each change is one event kept in the kernel (up to 4096; the rest counted as lost).

It also reads the counters of the filters on the ingress and egress hooks (clsact or ingress qdisc) of the devices in scope (\`dev\`, or every device of \`netns\` or of ebpfnet's namespace; \`tc -s -j filter show\`) and of the mirred actions (\`tc -s -j actions ls\`) at the start and the end of the window: per filter (device, hook, kind, pref, handle) the packets it matched (u32's own \`success\` counter and its lookups, \`rule_hit\`, where the kernel keeps u32 perf counters; otherwise the packets of its first action), per action its packets, bytes, drops and the packets mirred could not send, and mirred's target device (gone: \`*\`). A filter that matched nothing and a mirred to a device that no longer exists are called out. Where the kernel has kprobes (\`kprobes\`, on by default), \`tcf_classify\` and \`tcf_action_exec\` count every filter-chain lookup and every action run per device and hook in the kernel (the lookups u32 only counts with perf counters built in); where they do not attach, the finding says so.

Replaces the seed's \`other/trace_tc_qdisc.bt\` (PROBES.md row 54).`,
  normal: `No qdisc changes during an incident window: configuration is set once. A create or destroy of a qdisc with a handle is a warning (somebody or something changed the queueing of a device); the kernel's default qdiscs coming and going and resets alone come with devices going up, down or away. Filters that steer traffic match what they were written for; a mirred whose target device is gone (a VM's tap deleted under a mirror) is a warning: its packets are not sent.`,
  replaces: ['other/trace_tc_qdisc.bt'],
  params: {
    duration: durationParam('How long to watch.', { max: 3_600_000 }),
    ...NETDEV_PARAMS,
    top: topParam('How many events to list (the first ones).', { default: 100, max: 4096 }),
    kprobes: {
      type: 'boolean',
      default: true,
      description: 'Also count every filter-chain lookup and action run per device and hook with kprobes on tcf_classify and tcf_action_exec, where the kernel has kprobes.',
    },
  },
  ...tracepointRun(Object.values(TRACEPOINTS), TC_BUDGET, { overhead: 'none' }),
  data: DATA,
  collect,
  parse,
};
