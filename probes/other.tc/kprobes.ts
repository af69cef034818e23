// other.tc's kprobe flavour (probes/other.tc/other.tc.kprobe.bpf.c): every filter-chain lookup (tcf_classify) and
// every run of a matching filter's actions (tcf_action_exec), counted in the kernel per device,
// direction and first filter or action kind. It gives each hook's lookups whatever the
// classifier counts itself (u32 counts them only with perf counters built in). Kprobes only: on
// a kernel without them (this project's lab) the programs are not loaded, and the
// finding says so (`kprobe-attach`).
import type { BpfObject } from '../../engine/native/object.js';
import { slotTotals } from '../../engine/probe/bpf-values.js';
import type { ProbeIO, RawRecord, TableSpec } from '../../engine/probe/types.js';
import type { SessionWork } from '../../engine/probe/bpf-session.js';
import { KPROBE_PREFIX, kprobeObjectOpener, kprobeTable, readKprobeSession, runDeviceKprobeSession, type KprobeProgram } from '../lib/kprobe-session.js';
import { deviceLabel, type NamespaceNames, type NetdevFilter, netdevGlobals, type NetdevId } from '../lib/netdev.js';
import type { HookCalls, TcCalls } from './data.js';

export const TC_KPROBES: readonly KprobeProgram[] = [
  { program: 'tc_classify_kprobe', kind: 'kprobe', target: 'tcf_classify' },
  { program: 'tc_action_exec_kprobe', kind: 'kprobe', target: 'tcf_action_exec' },
];

/** enum tc_kp_call of bpf/tc.h. */
const CALLS = ['classify', 'actions'] as const;
const TOTALS = { seen: 0, unkeyed: 1 };

export interface CallEntry extends NetdevId {
  call: (typeof CALLS)[number];
  ingress: boolean;
  kind: string;
  count: number;
}

/** The `kprobe-dump` capture record. */
export interface CallDump extends NamespaceNames {
  windowMs: number;
  entries: CallEntry[];
  totals: Record<keyof typeof TOTALS, number>;
}

/** Reads the maps (exported for the test that fills them as the kernel would). */
export function readCallMaps(o: BpfObject): Pick<CallDump, 'entries' | 'totals'> {
  const entries = o
    .map('calls')
    .readAllDecoded<{ dev: NetdevId; call: number; ingress: number; kind: string }, number>()
    .map(({ key: k, value: count }) => ({
      ifindex: k.dev.ifindex,
      netns: k.dev.netns,
      name: k.dev.name,
      call: CALLS[k.call] ?? 'classify',
      ingress: k.ingress !== 0,
      kind: k.kind,
      count,
    }));
  entries.sort((a, b) => b.count - a.count || a.name.localeCompare(b.name) || a.call.localeCompare(b.call) || a.kind.localeCompare(b.kind));
  return { entries, totals: slotTotals(o.map('totals'), TOTALS) };
}

/** The opener of other.tc.kprobe.bpf.o with its device filters set. */
export function callObjectOpener(filter: NetdevFilter): Promise<() => BpfObject> {
  return kprobeObjectOpener('other.tc.kprobe', netdevGlobals(filter));
}

/**
 * Loads the kprobes and attaches each that attaches, recording which did not and why
 * (`kprobe-*`), while `window` runs; then reads the calls.
 */
export async function runCallSession(io: ProbeIO, filter: NetdevFilter, window: SessionWork): Promise<void> {
  await runDeviceKprobeSession(io, await callObjectOpener(filter), TC_KPROBES, window, readCallMaps);
}

/** The kprobe session's part of the finding; null when it did not run. */
export function parseCalls(records: RawRecord[]): TcCalls | null {
  const k = readKprobeSession<CallDump>(records, KPROBE_PREFIX);
  if (!k) return null;
  const hooks = new Map<string, HookCalls>();
  for (const e of k.dump?.entries ?? []) {
    const device = deviceLabel(e, k.dump!);
    const direction = e.ingress ? 'ingress' : 'egress';
    const key = `${device}|${direction}`;
    const h = hooks.get(key) ?? { device, direction, lookups: 0, firstFilter: '', actionRuns: {} };
    if (e.call === 'classify') {
      h.lookups += e.count;
      h.firstFilter ||= e.kind;
    } else h.actionRuns[e.kind] = (h.actionRuns[e.kind] ?? 0) + e.count;
    hooks.set(key, h);
  }
  return {
    attached: k.attached,
    failed: k.failed,
    windowMs: k.dump?.windowMs ?? 0,
    hooks: [...hooks.values()].sort((a, b) => b.lookups - a.lookups || a.device.localeCompare(b.device) || a.direction.localeCompare(b.direction)),
    lost: k.dump?.totals.unkeyed ?? 0,
    ...(k.overhead ? { overhead: k.overhead } : {}),
  };
}

export function callTables(c: TcCalls | null): TableSpec[] {
  if (!c) return [];
  const tables: TableSpec[] = [];
  if (c.attached.length > 0) {
    tables.push({
      title: 'tc filter-chain lookups and action runs (kprobes tcf_classify, tcf_action_exec)',
      columns: ['device', 'hook', 'first filter', 'lookups', 'action runs'],
      rows: c.hooks.map((h) => [h.device, h.direction, h.firstFilter, h.lookups, Object.entries(h.actionRuns).map(([k, n]) => `${k} ${n}`).join(', ')]),
    });
  }
  tables.push(kprobeTable(c));
  return tables;
}
