// What the queueing probes (other.qdisc-dequeue, other.dev-queue, other.tc) share: the device
// filters they pass to their BPF programs, the device identity their maps are keyed by
// (bpf/include/netdev.h), how a device and a tc handle are named in a finding, and how their handlers
// load: the shared tracepointPlan (raw_tp with a cached minimal BTF, tp_btf, classic tracepoint).
import { stat } from 'node:fs/promises';
import { loadedRecord, loadFirstWorking, tracepointPlan, type LoadedRecord, type PlanLoaded, type PlanStep, type TracepointMethod } from '../../engine/native/attach-plan.js';
import { bpfObjectPath } from '../../engine/native/object.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import type { BpfObject } from '../../engine/native/object.js';
import { readBpfSession, type BpfSessionOptions } from '../../engine/probe/bpf-session.js';
import type { OverheadReport } from '../../engine/probe/overhead.js';
import type { Params, ParamSpec, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { checkDeviceName } from './devices.js';
import { loadedTables } from './bpf-probe.js';
import { round } from './format.js';
import { namedNamespaces, netnsInode } from './netns.js';

/** NETDEV_NAME_LEN of bpf/include/netdev.h: the `targ_dev` filter's size. */
export const NETDEV_NAME_LEN = 16;

export type NetdevMethod = TracepointMethod;

/** A device as the programs key it (`struct netdev_id`, decoded). */
export interface NetdevId {
  ifindex: number;
  /** Inode of its network namespace. */
  netns: number;
  name: string;
}

/** The device filters every queueing probe takes. */
export const NETDEV_PARAMS: Record<string, ParamSpec> = {
  dev: { type: 'string', description: 'Only this device (by name; in any namespace unless `netns` is given).', cliOption: 'dev' },
  netns: { type: 'string', description: 'Only devices of this network namespace: an `ip netns` name, a path, or an inode number.' },
};

/** The filters as recorded in the attach capture. */
export interface NetdevFilter {
  dev: string | null;
  netns: string | null;
  /** The namespace's inode, 0 for any. */
  netnsInode: number;
}

/** Resolves `dev` and `netns` (throws on a malformed name or a namespace that does not exist). */
export async function netdevFilter(params: Params): Promise<NetdevFilter> {
  const dev = typeof params.dev === 'string' && params.dev !== '' ? params.dev : null;
  if (dev !== null) checkDeviceName(dev);
  const netns = typeof params.netns === 'string' && params.netns !== '' ? params.netns : null;
  return { dev, netns, netnsInode: netns === null ? 0 : await netnsInode(netns) };
}

/** The `targ_dev` and `targ_netns` globals of a program including bpf/include/netdev.h. */
export function netdevGlobals(f: NetdevFilter): Record<string, GlobalValue> {
  const name = new Uint8Array(NETDEV_NAME_LEN);
  if (f.dev !== null) name.set(Buffer.from(f.dev, 'latin1'));
  return { targ_dev: name, targ_netns: f.netnsInode };
}

/** Which namespace is which, recorded with a dump so that a replay names devices the same way. */
export interface NamespaceNames {
  /** The namespace ebpfnet runs in. */
  hostNetns: number;
  /** Named namespaces (ip netns): inode → name. */
  namespaces: Record<string, string>;
}

export async function namespaceNames(): Promise<NamespaceNames> {
  return { hostNetns: (await stat('/proc/self/ns/net')).ino, namespaces: await namedNamespaces() };
}

/** `eth0` in ebpfnet's namespace, `veth1@blue` in a named one, `veth1@netns:4026532` otherwise. */
export function deviceLabel(id: NetdevId, names: NamespaceNames): string {
  const name = id.name !== '' ? id.name : `if${id.ifindex}`;
  if (id.netns === names.hostNetns || id.netns === 0) return name;
  return `${name}@${names.namespaces[String(id.netns)] ?? `netns:${id.netns}`}`;
}

/** The namespace part of a device label: null for ebpfnet's own. */
export function namespaceLabel(netns: number, names: NamespaceNames): string | null {
  if (netns === names.hostNetns || netns === 0) return null;
  return names.namespaces[String(netns)] ?? `netns:${netns}`;
}

/** A tc handle or parent as tc prints it: `root`, `ingress`, `1:`, `1:10`, `none`. */
export function tcHandle(n: number): string {
  const u = n >>> 0;
  if (u === 0xffffffff) return 'root';
  if (u === 0xfffffff1) return 'ingress';
  if (u === 0) return 'none';
  const minor = u & 0xffff;
  return `${(u >>> 16).toString(16)}:${minor === 0 ? '' : minor.toString(16)}`;
}

/** The suffix of a handler's program name in each flavour (`qdisc_dequeue_raw_tp`). */
const FLAVOUR_SUFFIX: Record<NetdevMethod, string> = { raw_tracepoint: 'raw_tp', tp_btf: 'tp_btf', tracepoint: 'tracepoint' };

/**
 * Loads `<object>.bpf.o` with one handler per tracepoint, by the shared plan (tracepointPlan):
 * `<prefix>_raw_tp` with a cached minimal BTF, else `<prefix>_tp_btf`, else the classic
 * `<prefix>_tracepoint`. `tracepoints`: prefix → `category:event`, all of one category. All
 * handlers of one flavour attach together.
 */
export async function loadTracepoints(
  object: string,
  tracepoints: Record<string, string>,
  globals: Record<string, GlobalValue>,
  what: string,
  opts: NetdevLoadOptions = {},
): Promise<PlanLoaded<NetdevMethod>> {
  const open = { globals, ...(opts.maxEntries ? { maxEntries: opts.maxEntries } : {}) };
  return loadFirstWorking(bpfObjectPath(object), netdevPlan(tracepoints, opts), { what, open });
}

/** What a probe may ask of loadTracepoints besides the shared plan. */
export interface NetdevLoadOptions {
  /** tp_btf first (plain loads; ~8 ms more load while libbpf parses vmlinux BTF): per-packet hooks. */
  prefer?: 'tp_btf';
  /** Map sizes set at open (per-CPU ways: probes/lib/pending.ts). */
  maxEntries?: Record<string, number>;
}

/** The plan loadTracepoints follows (tracepointPlan with `<prefix>_<flavour>` programs). */
export function netdevPlan(tracepoints: Record<string, string>, opts: Pick<NetdevLoadOptions, 'prefer'> = {}): Array<PlanStep<NetdevMethod>> {
  const entries = Object.entries(tracepoints).map(([prefix, tp]) => ({ prefix, category: tp.split(':')[0]!, event: tp.split(':')[1]! }));
  const categories = [...new Set(entries.map((e) => e.category))];
  if (categories.length !== 1) throw new Error(`tracepoints of one category expected, got ${categories.join(', ')}`);
  const prefixOf = new Map(entries.map((e) => [e.event, e.prefix]));
  return tracepointPlan(categories[0]!, entries.map((e) => e.event), (event, method) => `${prefixOf.get(event)}_${FLAVOUR_SUFFIX[method]}`, opts);
}

/** How a session attached, as its findings report it. */
export interface NetdevAttach extends Omit<LoadedRecord<NetdevMethod>, 'btf'> {
  /** Which BTF the CO-RE reads were relocated against; absent in records made before raw_tp was tried. */
  btf?: LoadedRecord<NetdevMethod>['btf'];
  filter: NetdevFilter;
}

export function attachRecord(loaded: PlanLoaded<NetdevMethod>, filter: NetdevFilter): NetdevAttach {
  return { ...loadedRecord(loaded), filter };
}

/** What every queueing probe's dump holds besides its own maps. */
export interface NetdevDump extends NamespaceNames {
  /** Time the programs were attached, from attach to dump (or to the guard's early stop). */
  windowMs: number;
  /** CLOCK_MONOTONIC (bpf_ktime_get_ns) at attach, ns as a decimal string: event times count from it. */
  attachedNs: string;
}

export interface NetdevSessionOptions<D> {
  /** The object's name (`other.qdisc-dequeue` → build/bpf/other.qdisc-dequeue.bpf.o). */
  object: string;
  /** Handler prefix → `category:event`, as loadTracepoints takes them. */
  tracepoints: Record<string, string>;
  /** The probe's id, for the error when nothing attaches. */
  what: string;
  /** Reads the maps after the window. */
  dump: (obj: BpfObject) => D;
  /** The plan's preference and map sizes (loadTracepoints). */
  load?: NetdevLoadOptions;
  /** Detach before the last reading (per-CPU ways hold counts that move while attached). */
  detachToRead?: boolean;
}

/**
 * The session of a queueing probe, for runBpfSession: filters, load + attach (capture
 * `attach`), the window of `params.duration`, the maps (capture `dump`, with the window and
 * namespace names). Read it back with `readSession`.
 */
export function netdevSession<D extends object>(params: Params, opts: NetdevSessionOptions<D>): BpfSessionOptions & { attached?: undefined } {
  let attachedNs = 0n;
  return {
    load: async () => {
      const filter = await netdevFilter(params);
      const loaded = await loadTracepoints(opts.object, opts.tracepoints, netdevGlobals(filter), opts.what, opts.load);
      attachedNs = process.hrtime.bigint(); // CLOCK_MONOTONIC on Linux, as bpf_ktime_get_ns
      return { obj: loaded.obj, record: attachRecord(loaded, filter) };
    },
    window: params.duration as number,
    ...(opts.detachToRead ? { detachToRead: true } : {}),
    read: async (o, w) => ({ ...opts.dump(o), windowMs: round(w.ms), attachedNs: String(attachedNs), ...(await namespaceNames()) }),
  };
}

/** A recorded session: how it attached, its dump and what it cost. */
export function readSession<D extends object>(records: RawRecord[]): { attach: NetdevAttach; dump: D & NetdevDump; overhead: OverheadReport | null } {
  return readBpfSession<NetdevAttach, D & NetdevDump>(records);
}

/** Notes every queueing finding carries: an early stop, a flavour that was refused. */
export function sessionNotes(attach: NetdevAttach, overhead: OverheadReport | null, windowMs: number): string[] {
  const notes: string[] = [];
  if (overhead?.stopped) notes.push(`stopped early: ${overhead.stopped}; the counts cover the ${(windowMs / 1000).toFixed(1)}s before`);
  if (attach.fallback) notes.push(`attached as ${attach.method}: ${attach.fallback}`);
  return notes;
}

/** What every queueing finding's data starts with: how the session attached, its filters and window. */
export interface SessionData {
  [key: string]: unknown;
  method: NetdevMethod;
  /** Which BTF the CO-RE reads were relocated against (the cached minimal one with raw_tp). */
  btf?: NetdevAttach['btf'];
  attach: NetdevAttach['attach'];
  loadMs: number;
  fallback?: string;
  filter: { dev: string | null; netns: string | null };
  /** Time the programs were attached, ms (shorter than `duration` when the guard stopped them). */
  windowMs: number;
  /** What the programs cost and whether the overhead guard stopped them. */
  overhead?: OverheadReport;
  stopped?: string;
}

export function sessionData(attach: NetdevAttach, dump: NetdevDump, overhead: OverheadReport | null): SessionData {
  return {
    method: attach.method,
    ...(attach.btf !== undefined ? { btf: attach.btf } : {}),
    attach: attach.attach,
    loadMs: attach.loadMs,
    ...(attach.fallback !== undefined ? { fallback: attach.fallback } : {}),
    filter: { dev: attach.filter.dev, netns: attach.filter.netns },
    windowMs: dump.windowMs,
    ...(overhead ? { overhead } : {}),
    ...(overhead?.stopped ? { stopped: overhead.stopped } : {}),
  };
}

/** The tables every queueing finding ends with: how it attached and what it cost. */
export function sessionTables(attach: NetdevAttach, overhead: OverheadReport | null): TableSpec[] {
  // Records made before raw_tp was tried have no `btf`: they loaded against vmlinux.
  return loadedTables({ ...attach, btf: attach.btf ?? 'vmlinux' }, overhead);
}

/** What the filters let through, for a summary: `eth0`, `netns blue`, `any device`. */
export function filterScope(f: NetdevFilter): string {
  if (f.dev !== null) return f.netns !== null ? `${f.dev} in netns ${f.netns}` : f.dev;
  return f.netns !== null ? `netns ${f.netns}` : 'any device';
}
