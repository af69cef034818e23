// What the probes on net:net_dev_start_xmit share (other.offload, other.vlan-udp; BPF side
// bpf/include/xmit.h): the device, address, port and protocol filters, the one-handler attach plan
// (tp_btf → raw_tp with a cached minimal BTF → classic tracepoint), the windowed session whose
// dump (read detached: the per-CPU ways, probes/lib/pending.ts) carries the namespace names a
// replay labels devices with, and the 5-tuple as a map key holds it. Device filters and labels are the queueing probes' (probes/lib/netdev.ts).
import { loadedFields, loadFirstWorking, loadedRecord, tracepointPlan, type LoadedRecord, type PlanStep, type TracepointMethod } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { bpfObjectPath, type BpfObject } from '../../engine/native/object.js';
import { readBpfSession, type BpfSessionOptions } from '../../engine/probe/bpf-session.js';
import { addressText, ipv4Bytes } from '../../engine/probe/bpf-values.js';
import type { OverheadReport } from '../../engine/probe/overhead.js';
import type { Params, ParamSpec, RawRecord } from '../../engine/probe/types.js';
import { round } from './format.js';
import { pendingMaxEntries } from './pending.js';
import { filterScope, namespaceNames, netdevFilter, netdevGlobals, NETDEV_PARAMS, type NamespaceNames, type NetdevFilter } from './netdev.js';
import { addressParams, protocolName, protocolParam, PROTOCOLS, type ProtocolName } from './params.js';

export const XMIT_TRACEPOINT = 'net:net_dev_start_xmit';

const SUFFIX: Record<TracepointMethod, string> = { raw_tracepoint: 'raw_tp', tp_btf: 'tp_btf', tracepoint: 'tracepoint' };


/** The device filters and the 5-tuple filters of the seed tools (IPv4 addresses). */
export const XMIT_PARAMS: Record<string, ParamSpec> = {
  ...NETDEV_PARAMS,
  ...addressParams({ src: 'Only packets from this IPv4 address.', dst: 'Only packets to this IPv4 address.' }),
  src_port: { type: 'integer', min: 1, max: 65535, description: 'Only TCP/UDP packets from this port.' },
  dst_port: { type: 'integer', min: 1, max: 65535, description: 'Only TCP/UDP packets to this port.' },
};

export const PROTOCOL_PARAM = protocolParam('Only packets of this IP protocol.', 'all');

/** The filters as the attach capture records them. */
export interface XmitFilter extends NetdevFilter {
  srcIp: string | null;
  dstIp: string | null;
  srcPort: number | null;
  dstPort: number | null;
  protocol: ProtocolName;
}

const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
const port = (v: unknown) => (typeof v === 'number' && v > 0 ? v : null);

export async function xmitFilter(params: Params): Promise<XmitFilter> {
  const protocol = protocolName(params.protocol, 'all');
  return { ...(await netdevFilter(params)), srcIp: text(params.src_ip), dstIp: text(params.dst_ip), srcPort: port(params.src_port), dstPort: port(params.dst_port), protocol };
}

/** The filter globals of bpf/include/xmit.h. */
export function xmitGlobals(f: XmitFilter): Record<string, GlobalValue> {
  return {
    ...netdevGlobals(f),
    targ_saddr: ipv4Bytes(f.srcIp) ?? new Uint8Array(4),
    targ_daddr: ipv4Bytes(f.dstIp) ?? new Uint8Array(4),
    targ_sport: f.srcPort ?? 0,
    targ_dport: f.dstPort ?? 0,
    targ_proto: PROTOCOLS[f.protocol],
  };
}

/** `<prefix>_raw_tp`, `<prefix>_tp_btf`, `<prefix>_tracepoint`: XMIT_PROGRAMS of bpf/include/xmit.h. */
export function xmitProgram(prefix: string, method: TracepointMethod): string {
  return `${prefix}_${SUFFIX[method]}`;
}

/**
 * The attach plan of XMIT_PROGRAMS: tp_btf first (plain loads of the skb and device; libbpf
 * parses vmlinux BTF, ~8 ms more load, worth it on a per-packet hook), raw_tp with a cached
 * minimal BTF, the classic tracepoint.
 */
export function xmitPlan(prefix: string): Array<PlanStep<TracepointMethod>> {
  return tracepointPlan('net', ['net_dev_start_xmit'], (_tp, m) => xmitProgram(prefix, m), { prefer: 'tp_btf' });
}

/** How an XMIT_PROGRAMS object opens: its globals, its `pending` ways sized to the CPUs. */
export function xmitOpen(globals: Record<string, GlobalValue>): { globals: Record<string, GlobalValue>; maxEntries: Record<string, number> } {
  return { globals, maxEntries: pendingMaxEntries('pending') };
}

export type XmitAttach = LoadedRecord<TracepointMethod> & { filter: XmitFilter };

/** What every dump holds besides the probe's maps. */
export interface XmitDump extends NamespaceNames {
  /** Time the program was attached, from attach to dump (or to the guard's early stop), ms. */
  windowMs: number;
}

export interface XmitSessionOptions<D> {
  /** `other.offload` → build/bpf/other.offload.bpf.o */
  object: string;
  /** The handler's prefix in XMIT_PROGRAMS. */
  prefix: string;
  /** The probe's id, for the error when nothing attaches. */
  what: string;
  /** Globals of the object besides the filters. */
  globals?: Record<string, GlobalValue>;
  /** Reads the maps after the window. */
  read: (obj: BpfObject) => D;
}

/** The session for runBpfSession: load + attach (capture `attach`), the window of `params.duration`, the maps (capture `dump`). */
export function xmitSession<D extends object>(params: Params, opts: XmitSessionOptions<D>): BpfSessionOptions & { attached?: undefined } {
  return {
    load: async () => {
      const filter = await xmitFilter(params);
      const loaded = await loadFirstWorking(bpfObjectPath(opts.object), xmitPlan(opts.prefix), { what: opts.what, open: xmitOpen({ ...xmitGlobals(filter), ...opts.globals }) });
      const record: XmitAttach = { ...loadedRecord(loaded), filter };
      return { obj: loaded.obj, record };
    },
    window: params.duration as number,
    // The ways' counts stand still once detached (probes/lib/pending.ts).
    detachToRead: true,
    read: async (o, w) => ({ ...opts.read(o), windowMs: round(w.ms), ...(await namespaceNames()) }),
  };
}

export function readXmit<D extends object>(records: RawRecord[]): { attach: XmitAttach; dump: D & XmitDump; overhead: OverheadReport | null } {
  return readBpfSession<XmitAttach, D & XmitDump>(records);
}

/** What every finding's data starts with: how the session attached, its filters and window. */
export interface XmitSessionData {
  [key: string]: unknown;
  method: TracepointMethod;
  btf: XmitAttach['btf'];
  loadMs: number;
  attach: XmitAttach['attach'];
  fallback?: string;
  filter: Omit<XmitFilter, 'netnsInode'>;
  windowMs: number;
  overhead?: OverheadReport;
  stopped?: string;
  notes: string[];
}

export function xmitSessionData(attach: XmitAttach, dump: XmitDump, overhead: OverheadReport | null): XmitSessionData {
  const { netnsInode: _inode, ...filter } = attach.filter;
  const notes: string[] = [];
  if (overhead?.stopped) notes.push(`stopped early: ${overhead.stopped}; the counts cover the ${(dump.windowMs / 1000).toFixed(1)}s before`);
  if (attach.fallback) notes.push(`attached as ${attach.method}: ${attach.fallback}`);
  return {
    ...loadedFields(attach),
    filter,
    windowMs: dump.windowMs,
    ...(overhead ? { overhead } : {}),
    ...(overhead?.stopped ? { stopped: overhead.stopped } : {}),
    notes,
  };
}


/** What the filters let through, for a summary: `eth0, udp to 10.0.0.2:53`. */
export function xmitScope(f: XmitFilter): string {
  const flow = [
    PROTOCOLS[f.protocol] !== 0 ? f.protocol : '',
    f.srcIp !== null || f.srcPort !== null ? `from ${f.srcIp ?? '*'}${f.srcPort !== null ? `:${f.srcPort}` : ''}` : '',
    f.dstIp !== null || f.dstPort !== null ? `to ${f.dstIp ?? '*'}${f.dstPort !== null ? `:${f.dstPort}` : ''}` : '',
  ].filter((s) => s !== '');
  return [filterScope(f), ...(flow.length > 0 ? [flow.join(' ')] : [])].join(', ');
}

/** A flow's addresses and ports as a map key holds them (16-byte addresses, IPv4 in the first 4). */
export interface FlowTuple {
  family: 4 | 6;
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

export function flowTuple(family: number, saddr: Buffer, daddr: Buffer, sport: number, dport: number): FlowTuple {
  const fam = family === 6 ? 6 : 4;
  return { family: fam, src: addressText(saddr, fam), dst: addressText(daddr, fam), sport, dport };
}

/** `10.0.0.1:5000 → 10.0.0.2:9`, IPv6 in brackets. */
export function flowText(f: FlowTuple): string {
  const ep = (a: string, p: number) => (f.family === 6 ? `[${a}]:${p}` : `${a}:${p}`);
  return `${ep(f.src, f.sport)} → ${ep(f.dst, f.dport)}`;
}
