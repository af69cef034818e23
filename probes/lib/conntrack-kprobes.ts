// Conntrack's verdicts from its own functions (probes/net.conntrack/net.conntrack.bpf.c, all kprobes): what
// nf_conntrack_in decided per packet (tracked as new/established/related, invalid, dropped,
// untracked), entries __nf_conntrack_confirm could not insert, and the OVS kernel datapath's
// ct() action (ovs_ct_execute) with the conntrack calls it made. Used by net.conntrack and
// other.ovs-ct-invalid. On a kernel without kprobes the programs are not loaded: the
// attach record says so and nothing is counted. The session is recorded as capture records
// (`<prefix>attach|dump|overhead`), so a replay re-parses it without loading anything.
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runBpfSession, type SessionWork } from '../../engine/probe/bpf-session.js';
import { countsOf, ipv4Bytes, slotTotals } from '../../engine/probe/bpf-values.js';
import type { ProbeIO, RawRecord } from '../../engine/probe/types.js';
import type { CtKernelData } from './data/conntrack.js';
import { kprobeLoad, readKprobeSession, type ProgramTarget } from './kprobe-session.js';
import { addCount } from './tally.js';

/** The programs of conntrack.bpf.c and where each attaches. */
export const CT_PROGRAMS = [
  { program: 'ct_in_kprobe', kind: 'kprobe', target: 'nf_conntrack_in' },
  { program: 'ct_in_kretprobe', kind: 'kretprobe', target: 'nf_conntrack_in' },
  { program: 'ct_confirm_kretprobe', kind: 'kretprobe', target: '__nf_conntrack_confirm' },
  { program: 'ovs_ct_kprobe', kind: 'kprobe', target: 'ovs_ct_execute' },
  { program: 'ovs_ct_kretprobe', kind: 'kretprobe', target: 'ovs_ct_execute' },
] as const satisfies readonly ProgramTarget[];

/** The programs of netfilter's own path (no OVS module needed). */
export const NETFILTER_CT_PROGRAMS = CT_PROGRAMS.filter((p) => !p.target.startsWith('ovs_'));

/** `enum ct_hook`, `enum ct_verdict` of bpf/conntrack.h. */
const HOOKS = ['in', 'confirm', 'ovs'] as const;
export const VERDICTS = ['tracked', 'invalid', 'drop', 'untracked', 'other'] as const;
export type Verdict = (typeof VERDICTS)[number];
/** enum ip_conntrack_info (IP_CT_IS_REPLY + n is the reply direction of n). */
const CTINFO = ['established', 'related', 'new', 'established reply', 'related reply', 'new reply', 'new reply', 'untracked'];
/** NFPROTO_* and NF_INET_* names. */
const FAMILIES: Record<number, string> = { 2: 'ipv4', 10: 'ipv6', 7: 'bridge', 3: 'arp', 1: 'inet' };
const INET_HOOKS = ['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress'];

export interface CtFilters {
  saddr?: string;
  daddr?: string;
  /** IP protocol number, 0 for any. */
  proto?: number;
}

/** Opens net.conntrack.bpf.o with its filters set (nothing reaches the kernel before load()). */
export function openConntrackObject(filters: CtFilters = {}): BpfObject {
  return BpfObject.open(bpfObjectPath('net.conntrack'), {
    globals: {
      targ_saddr: ipv4Bytes(filters.saddr) ?? new Uint8Array(4),
      targ_daddr: ipv4Bytes(filters.daddr) ?? new Uint8Array(4),
      targ_proto: filters.proto ?? 0,
    },
  });
}

interface DumpCapture {
  windowMs: number;
  lost: number;
  entries: Array<{ hook: number; verdict: number; ret: number; pf: number; hooknum: number; ovs: number; ctinfo: number; count: number }>;
}

/** struct ct_key, decoded. */
type CtKey = { hook: number; verdict: number; ret: number; pf: number; hooknum: number; ovs: number; ctinfo: number };

/**
 * Loads net.conntrack.bpf.o, attaches `programs` as far as the kernel lets it, runs `window` on
 * the session's IO and reads the counts (captures `<prefix>attach|dump|overhead`).
 */
export async function runConntrackKprobes(io: ProbeIO, prefix: string, filters: CtFilters, programs: readonly ProgramTarget[], window: SessionWork): Promise<void> {
  const readCounts = (o: BpfObject, windowMs: number): DumpCapture => {
    const entries: DumpCapture['entries'] = countsOf(o.map('counts'), ({ hook, verdict, ret, pf, hooknum, ovs, ctinfo }: CtKey) => ({ hook, verdict, ret, pf, hooknum, ovs, ctinfo }));
    entries.sort((a, b) => a.hook - b.hook || b.count - a.count || a.verdict - b.verdict || a.ret - b.ret || a.pf - b.pf || a.hooknum - b.hooknum || a.ovs - b.ovs || a.ctinfo - b.ctinfo);
    return { windowMs, lost: slotTotals(o.map('totals'), { lost: 0 }).lost, entries };
  };
  await runBpfSession(io, { prefix, ...kprobeLoad(() => openConntrackObject(filters), programs), window, read: (o, w) => readCounts(o, Math.round(w.ms)) });
}

export type { CtKernelData } from './data/conntrack.js';
/** Counts of one path (netfilter's hooks, or OVS's ct() action). */
type VerdictCounts = CtKernelData['netfilter'];

const emptyCounts = (): VerdictCounts => ({ byVerdict: { tracked: 0, invalid: 0, drop: 0, untracked: 0, other: 0 }, tracked: {}, byHook: {}, confirmFailures: 0 });

/** The session's finding from its capture records (under `prefix`); null when it did not run. */
export function parseConntrackKprobes(records: RawRecord[], prefix: string): CtKernelData | null {
  const session = readKprobeSession<DumpCapture>(records, prefix);
  if (!session) return null;
  const dump: DumpCapture = session.dump ?? { windowMs: 0, lost: 0, entries: [] };
  const data: CtKernelData = {
    attached: session.attached,
    failed: session.failed,
    attachable: session.failed.length === 0,
    windowMs: dump.windowMs,
    netfilter: emptyCounts(),
    ovs: { ...emptyCounts(), calls: 0, errors: {} },
    lost: dump.lost,
  };
  for (const e of dump.entries) {
    const path = e.ovs ? data.ovs : data.netfilter;
    const hook = HOOKS[e.hook];
    if (hook === 'in') {
      const verdict = VERDICTS[e.verdict] ?? 'other';
      path.byVerdict[verdict] += e.count;
      if (verdict === 'tracked') addCount(path.tracked, CTINFO[e.ctinfo] ?? `ctinfo ${e.ctinfo}`, e.count);
      if (!e.ovs) {
        const where = `${FAMILIES[e.pf] ?? `pf ${e.pf}`} ${INET_HOOKS[e.hooknum] ?? `hook ${e.hooknum}`}`;
        const h = (path.byHook[where] ??= {});
        h[verdict] = (h[verdict] ?? 0) + e.count;
      }
    } else if (hook === 'confirm') {
      path.confirmFailures += e.count;
    } else if (hook === 'ovs') {
      data.ovs.calls += e.count;
      if (e.ret !== 0) addCount(data.ovs.errors, String(e.ret), e.count);
    }
  }
  return data;
}
