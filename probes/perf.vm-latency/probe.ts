// perf.vm-latency: how long a VM's packets spend in each layer of the host, both ways, from
// tracepoints (probes/perf.vm-latency/perf.vm-latency.bpf.c, native driver): the bridge or OVS, the exit device's qdisc,
// the uplink's driver, and the tun ring where packets wait for QEMU to read them. Histograms
// are aggregated in the kernel; what the session saw is recorded as capture records, so a
// replay re-parses it without loading anything.
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { runCommand } from '../../engine/exec.js';
import { sumPerCpu, type U64 } from '../../engine/native/btf-layout.js';
import { u32Key } from '../../engine/native/map.js';
import type { BpfObject } from '../../engine/native/object.js';
import { captureRecord, readBpfSession, runBpfSession } from '../../engine/probe/bpf-session.js';
import { ipv4Bytes } from '../../engine/probe/bpf-values.js';
import { overheadOf, overheadTable, type OverheadBudget } from '../../engine/probe/overhead.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, Severity, TableSpec } from '../../engine/probe/types.js';
import { checkDeviceName, isDeviceName } from '../lib/devices.js';
import { fmtUs, round } from '../lib/format.js';
import { CRITICAL_P99_US, latHistOf, layerStats, WARN_P99_US, type LatHist, type RawLatHist } from '../lib/lathist.js';
import { addressParams, durationParam, protocolNumber, protocolParam } from '../lib/params.js';
import { HOOKS, loadVmlat, type VmlatLink, type VmlatMethod } from './attach.js';
import { DATA, type VmLatencyData } from './data.js';
import { recorded } from '../lib/recorded.js';
import { tracepointRun } from '../lib/bpf-probe.js';

/*
 * Layouts of perf.vm-latency.h.
 */
const LAYER_IDS = ['bridge', 'qdisc', 'driver', 'tun ring', 'total'] as const;
const DIR_IDS = ['to-vm', 'from-vm'] as const;
const C_PER_DIR = 8;
const C_NOT_IPV4 = 16;
const C_STALE = 17;
/** enum vmlat_skb_state. */
const [SKB_QUEUED, SKB_ON_TAP] = [1, 2];

export type Direction = (typeof DIR_IDS)[number];
export type Layer = (typeof LAYER_IDS)[number];

/** The layers each direction crosses, in path order (total last). */
export const LAYERS: Record<Direction, readonly Layer[]> = {
  'to-vm': ['bridge', 'qdisc', 'tun ring', 'total'],
  'from-vm': ['bridge', 'qdisc', 'driver', 'total'],
};

/** Packets left in the tun ring at the end that make it the worst layer by their wait (a stopped VM). */
const PENDING_STOPPED = 3;

/**
 * What a session may cost: 5% of one CPU, 1M program runs/s. The programs run on every packet
 * of every device (netif_receive_skb, net_dev_queue, net_dev_start_xmit, net_dev_xmit) and on
 * every freed skb (consume_skb, kfree_skb). A device that is neither the tap nor an uplink
 * leaves at the ifindex compare (a hash lookup when uplinks are listed); an skb freed that was
 * never on the tap costs one line read. Measured here (BPF run statistics, a UDP flood through
 * a veth taken as the tap, test/bench/cost.ts): ~450 ns a packet the VM gets (five runs: the
 * headers parsed at net_dev_queue, ~175 ns; start_xmit finds the skb by one line, ~120 ns).
 * So ~110k of the VM's packets/s (~550k runs/s) reach the CPU budget; past it the session
 * stops early with the histograms up to then.
 */
export const VM_LATENCY_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 1_000_000 };

interface DeviceRef {
  dev: string;
  ifindex: number;
}

/** The `setup` capture: devices, where the uplinks came from, filters. */
interface SetupCapture {
  tap: DeviceRef;
  netns: number;
  uplinks: DeviceRef[];
  /** `param`: given; `bridge`: the other ports of the tap's bridge; `any`: every other device. */
  uplinksFrom: 'param' | 'bridge' | 'any';
  bridge: { kind: 'linux' | 'ovs'; name: string } | null;
  /** Why the uplinks could not be found on the bridge (uplinksFrom = any). */
  uplinksNote?: string;
  filters: { vmIp: string | null; srcIp: string | null; dstIp: string | null; protocol: string; port: number; direction: string };
}

/** The `attach` capture. */
interface AttachCapture {
  method: VmlatMethod;
  btf: string;
  loadMs: number;
  links: VmlatLink[];
  fallback?: string;
}

interface HistCapture extends LatHist {
  dir: number;
  layer: number;
}

/** The `dump` capture: histograms, counters and what was still on its way, summed over CPUs. */
interface DumpCapture {
  windowMs: number;
  hists: HistCapture[];
  counters: number[];
  /** Packets stamped on entry (or on the exit queue) that had not left that layer at the end. */
  incomplete: Record<Direction, { bridge: number; qdisc: number; oldestMs: number | null }>;
  /** Tap skbs the driver took that QEMU had not read at the end. */
  pending: { count: number; oldestMs: number | null };
}

/** One direction's timings: the data of `directions['to-vm']` or `directions['from-vm']`. */
export type DirectionData = NonNullable<VmLatencyData['directions'][Direction]>;

export type { VmLatencyData } from './data.js';

/** A filter address for the programs: all zeros (any) when none is given. */
function ipBytes(ip: unknown): Uint8Array {
  return ipv4Bytes(ip) ?? new Uint8Array(4);
}

async function ifindexOf(dev: string): Promise<number | null> {
  try {
    return Number((await readFile(`/sys/class/net/${checkDeviceName(dev)}/ifindex`, 'utf8')).trim());
  } catch {
    return null;
  }
}

/** The other ports of the tap's bridge: a Linux bridge from sysfs, else Open vSwitch. */
async function bridgePorts(tap: string): Promise<{ bridge: SetupCapture['bridge']; ports: string[]; why?: string }> {
  let master: string | null = null;
  try {
    master = basename(await readlink(`/sys/class/net/${tap}/master`));
  } catch {
    /* not enslaved: OVS netdev datapath, or no bridge */
  }
  if (master !== null && master !== 'ovs-system') {
    try {
      const ports = (await readdir(`/sys/class/net/${master}/brif`)).filter((p) => p !== tap).sort();
      return { bridge: { kind: 'linux', name: master }, ports };
    } catch {
      return { bridge: null, ports: [], why: `${tap}'s master ${master} is not a Linux bridge` };
    }
  }
  const vsctl = async (...args: string[]) => {
    const r = await runCommand('ovs-vsctl', ['--timeout=3', ...args], { timeoutMs: 5000 });
    return r.exitCode === 0 ? r.stdout.trim() : null;
  };
  const br = await vsctl('port-to-br', tap).catch(() => null);
  if (!br) return { bridge: null, ports: [], why: `${tap} is on no Linux bridge and no Open vSwitch bridge` };
  const list = await vsctl('list-ports', br).catch(() => null);
  const ports = (list ?? '').split('\n').map((p) => p.trim()).filter((p) => p !== '' && p !== tap).sort();
  return { bridge: { kind: 'ovs', name: br }, ports };
}

async function resolveSetup(params: Params): Promise<SetupCapture> {
  const dev = checkDeviceName(String(params.dev ?? ''));
  const tapIndex = await ifindexOf(dev);
  if (tapIndex === null) throw new Error(`no device ${dev} in this network namespace`);
  const netns = (await stat('/proc/self/ns/net')).ino;
  const given = (params.uplinks as string[] | undefined) ?? [];
  const uplinks: DeviceRef[] = [];
  let uplinksFrom: SetupCapture['uplinksFrom'];
  let bridge: SetupCapture['bridge'] = null;
  let uplinksNote: string | undefined;
  if (given.length > 0) {
    uplinksFrom = 'param';
    for (const name of given) {
      const ifindex = await ifindexOf(name);
      if (ifindex === null) throw new Error(`no uplink device ${name} in this network namespace`);
      if (ifindex === tapIndex) throw new Error(`${name} is the VM's tap itself, not an uplink`);
      uplinks.push({ dev: name, ifindex });
    }
    bridge = (await bridgePorts(dev)).bridge;
  } else {
    const found = await bridgePorts(dev);
    bridge = found.bridge;
    for (const name of found.ports) {
      const ifindex = isDeviceName(name) ? await ifindexOf(name) : null;
      if (ifindex !== null) uplinks.push({ dev: name, ifindex });
    }
    uplinksFrom = uplinks.length > 0 ? 'bridge' : 'any';
    if (uplinks.length === 0) {
      uplinksNote = found.why ?? `${bridge?.name ?? 'the bridge'} has no other port that is a device here`;
    }
  }
  const protocol = String(params.protocol ?? 'any');
  return {
    tap: { dev, ifindex: tapIndex },
    netns,
    uplinks,
    uplinksFrom,
    bridge,
    ...(uplinksNote !== undefined ? { uplinksNote } : {}),
    filters: {
      vmIp: (params.vm_ip as string | undefined) || null,
      srcIp: (params.src_ip as string | undefined) || null,
      dstIp: (params.dst_ip as string | undefined) || null,
      protocol,
      port: (params.port as number | undefined) ?? 0,
      direction: String(params.direction ?? 'both'),
    },
  };
}

function dirMask(direction: string): number {
  return direction === 'to-vm' ? 1 : direction === 'from-vm' ? 2 : 3;
}

function globalsOf(s: SetupCapture) {
  return {
    targ_tap: s.tap.ifindex,
    targ_netns: s.netns,
    targ_any_uplink: s.uplinksFrom === 'any' ? 1 : 0,
    targ_vm_ip: ipBytes(s.filters.vmIp),
    targ_saddr: ipBytes(s.filters.srcIp),
    targ_daddr: ipBytes(s.filters.dstIp),
    targ_proto: protocolNumber(s.filters.protocol),
    targ_port: s.filters.port,
    targ_dirs: dirMask(s.filters.direction),
  };
}

/** Reads the maps (programs detached already): histograms, counters, what was left on its way. */
function dumpMaps(o: BpfObject, windowMs: number): DumpCapture {
  const cpus = o.map('cpus').readAllDecoded<number, { counters: number[]; hists: RawLatHist[] }>().map((e) => e.value);
  const hists: HistCapture[] = [];
  for (let dir = 0; dir < DIR_IDS.length; dir++) {
    for (let layer = 0; layer < LAYER_IDS.length; layer++) {
      const h = latHistOf(cpus.map((c) => c.hists[dir * LAYER_IDS.length + layer]!));
      if (h) hists.push({ dir, layer, ...h });
    }
  }
  const counters = sumPerCpu(cpus.map((c) => c.counters)).map(Number);

  const nowNs = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
  const ageMs = (ts: bigint) => Number(nowNs - ts) / 1e6;
  const incomplete: DumpCapture['incomplete'] = {
    'to-vm': { bridge: 0, qdisc: 0, oldestMs: null },
    'from-vm': { bridge: 0, qdisc: 0, oldestMs: null },
  };
  const oldest = (entry: { oldestMs: number | null }, ts: bigint) => {
    entry.oldestMs = Math.max(entry.oldestMs ?? 0, Math.round(ageMs(ts) * 1000) / 1000);
  };
  // Stamped on entry, not queued yet: by key. (A key queued stays for a segment of it: its skb says where it is.)
  for (const { value } of o.map('flows').readAllDecoded<unknown, { key: { dir: number }; rx_ts: U64; queue_ts: U64 }>()) {
    const dir = DIR_IDS[value.key.dir];
    if (!dir || value.rx_ts === 0 || value.queue_ts !== 0) continue;
    incomplete[dir].bridge++;
    oldest(incomplete[dir], BigInt(value.rx_ts));
  }
  const pending: DumpCapture['pending'] = { count: 0, oldestMs: null };
  for (const { value } of o.map('skbs').readAllDecoded<unknown, { queue_ts: U64; xmit_ts: U64; rx_ts: U64; state: number; dir: number }>()) {
    const dir = DIR_IDS[value.dir];
    if (value.state === SKB_QUEUED && dir) {
      incomplete[dir].qdisc++;
      oldest(incomplete[dir], BigInt(value.rx_ts !== 0 ? value.rx_ts : value.queue_ts));
    } else if (value.state === SKB_ON_TAP) {
      pending.count++;
      oldest(pending, BigInt(value.xmit_ts));
    }
  }
  return { windowMs, hists, counters, incomplete, pending };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const setup = await recorded<SetupCapture>(io, 'setup', () => resolveSetup(params));
  const hooks = setup.filters.direction === 'from-vm' ? HOOKS.filter((h) => h.category === 'net') : HOOKS;

  await runBpfSession(io, {
    load: async () => {
      const loaded = await loadVmlat(globalsOf(setup), hooks, (o) => {
        const m = o.map('uplinks');
        for (const u of setup.uplinks) m.update(u32Key(u.ifindex), Uint8Array.of(1));
      });
      const attachedAt = performance.now();
      const record: AttachCapture = {
        method: loaded.method,
        btf: loaded.btf,
        loadMs: round(loaded.loadMs),
        links: loaded.links.map((l) => ({ ...l, attachMs: round(l.attachMs) })),
        ...(loaded.fallbacks.length > 0 ? { fallback: loaded.fallbacks.join('; ') } : {}),
      };
      return { obj: loaded.obj, record, attachedAt };
    },
    // Over budget the window ends early (the guard does not detach the programs here); they are
    // detached right after it either way.
    detachOnAbort: false,
    window: params.duration as number,
    detachToRead: true,
    read: (o, w) => dumpMaps(o, round(w.ms)),
  });
}

const DIR_TEXT: Record<Direction, string> = { 'to-vm': 'to the VM', 'from-vm': 'from the VM' };

function why(layer: Layer, dir: Direction, d: VmLatencyData): string {
  switch (layer) {
    case 'tun ring':
      return 'QEMU not reading the tap';
    case 'qdisc':
      return dir === 'to-vm' ? `a queue or shaper on ${d.tap.dev}` : 'a queue or shaper on the uplink';
    case 'bridge':
      return d.bridge?.kind === 'ovs' ? 'OVS forwarding' : 'bridge forwarding';
    case 'driver':
      return "the uplink's driver";
    default:
      return '';
  }
}

function layerName(layer: Layer, d: VmLatencyData): string {
  return layer === 'bridge' && d.bridge?.kind === 'ovs' ? 'OVS' : layer;
}

function parse(records: RawRecord[]): ProbeResult<VmLatencyData> {
  const setup = JSON.parse(captureRecord(records, 'setup').stdout) as SetupCapture;
  const { attach: att, dump } = readBpfSession<AttachCapture, DumpCapture>(records);
  const overhead = overheadOf(records);
  const mask = dirMask(setup.filters.direction);
  const notes: string[] = [];

  const directions: VmLatencyData['directions'] = {};
  const flat: VmLatencyData['layers'] = [];
  DIR_IDS.forEach((dir, di) => {
    if (!(mask & (1 << di))) return;
    const c = (i: number) => dump.counters[di * C_PER_DIR + i] ?? 0;
    const layers: DirectionData['layers'] = {};
    for (const layer of LAYERS[dir]) {
      const h = dump.hists.find((x) => x.dir === di && x.layer === LAYER_IDS.indexOf(layer));
      if (!h) continue;
      const s = layerStats(h);
      layers[layer] = s;
      flat.push({ direction: dir, layer, count: s.count, p50: s.p50, p95: s.p95, p99: s.p99, max: s.max, mean: s.mean });
    }
    const inc = dump.incomplete[dir];
    directions[dir] = {
      layers,
      packets: { received: c(0), queued: c(1), transmitted: c(2), delivered: c(3) },
      unmatched: { queued: c(4), transmitted: c(5) },
      xmitErrors: c(6),
      dropped: c(7),
      incomplete: { bridge: inc.bridge, qdisc: inc.qdisc, 'tun ring': dir === 'to-vm' ? dump.pending.count : 0 },
    };
  });

  const data: VmLatencyData = {
    tap: setup.tap,
    uplinks: setup.uplinks,
    uplinksFrom: setup.uplinksFrom,
    bridge: setup.bridge,
    direction: setup.filters.direction,
    filters: setup.filters,
    method: att.method,
    btf: att.btf,
    loadMs: att.loadMs,
    attachMs: round(att.links.reduce((s, l) => s + l.attachMs, 0)),
    attach: att.links,
    ...(att.fallback !== undefined ? { fallback: att.fallback } : {}),
    windowMs: dump.windowMs,
    ...(overhead ? { overhead } : {}),
    directions,
    layers: flat,
    worst: null,
    waitingInTunRing: dump.pending,
    notes,
  };

  // The worst layer: highest P99 of a layer (total is their sum). Packets still waiting in the
  // tun ring at the end (a VM stopped through the window) count with how long they had waited;
  // one or two stragglers (a packet QEMU's queue held back) do not make a stopped VM.
  const candidates: Array<NonNullable<VmLatencyData['worst']>> = flat
    .filter((l) => l.layer !== 'total' && l.count > 0)
    .map((l) => ({ direction: l.direction, layer: l.layer, p99: l.p99, basis: 'p99' as const }));
  if (mask & 1 && dump.pending.count > 0 && dump.pending.oldestMs !== null) {
    const stopped = dump.pending.count >= PENDING_STOPPED;
    const waited = Math.round(dump.pending.oldestMs * 1000 * 10) / 10;
    const ring = candidates.find((x) => x.direction === 'to-vm' && x.layer === 'tun ring');
    if (stopped && (!ring || waited > ring.p99)) candidates.push({ direction: 'to-vm', layer: 'tun ring', p99: waited, basis: 'waiting' });
    notes.push(`${dump.pending.count} packet${dump.pending.count === 1 ? '' : 's'} still waiting in ${setup.tap.dev}'s tun ring at the end (the oldest for ${fmtUs(waited)}): QEMU had not read them`);
  }
  const order = (x: { direction: Direction; layer: Layer }) => DIR_IDS.indexOf(x.direction) * 10 + LAYER_IDS.indexOf(x.layer);
  candidates.sort((a, b) => b.p99 - a.p99 || order(a) - order(b));
  data.worst = candidates[0] ?? null;

  // Notes a reader needs to trust the numbers.
  if (setup.uplinksFrom === 'any') {
    notes.push(`uplinks: every other device of the namespace (${setup.uplinksNote ?? 'none given'}); pass \`uplinks\` to name them`);
  }
  for (const dir of DIR_IDS) {
    const d = directions[dir];
    if (!d) continue;
    if (d.dropped > 0) notes.push(`${DIR_TEXT[dir]}: ${d.dropped} packets dropped after ${setup.tap.dev}'s driver took them (tun ring full?)`);
    if (d.xmitErrors > 0) notes.push(`${DIR_TEXT[dir]}: the driver refused ${d.xmitErrors} packets (net_dev_xmit error)`);
    if (d.unmatched.queued > 0) {
      const other = dir === 'to-vm' ? `not received on an uplink (from the host, or a path not watched)` : 'not received from the VM';
      notes.push(`${DIR_TEXT[dir]}: ${d.unmatched.queued} packets queued on the exit device ${other}: no bridge time for them`);
    }
    if (d.incomplete.qdisc > 0) notes.push(`${DIR_TEXT[dir]}: ${d.incomplete.qdisc} packets entered the qdisc and never left it in the window (dropped there, or still queued)`);
  }
  const stale = dump.counters[C_STALE] ?? 0;
  if (stale > 0) notes.push(`${stale} tracked tap skbs were freed on another device and not counted`);
  if (overhead?.stopped) notes.push(`stopped early: ${overhead.stopped}`);

  // Summary: the worst direction first, its worst layer first, then the others in path order.
  const secs = `${(dump.windowMs / 1000).toFixed(1)}s`;
  let summary: string;
  if (flat.length === 0 && data.worst === null) {
    summary = `no IPv4 packet of ${setup.tap.dev} matched in ${secs}`;
  } else {
    const dirs = [...DIR_IDS].filter((d) => directions[d]).sort((a, b) => (data.worst?.direction === b ? 1 : 0) - (data.worst?.direction === a ? 1 : 0));
    const parts: string[] = [];
    for (const dir of dirs) {
      const d = directions[dir]!;
      const list = LAYERS[dir]
        .filter((l) => l !== 'total')
        .flatMap((l) => {
          const s = d.layers[l];
          const isWorst = data.worst?.direction === dir && data.worst.layer === l;
          if (!s && !isWorst) return [];
          const value = isWorst ? data.worst!.p99 : s!.p99;
          const label = isWorst && data.worst!.basis === 'waiting' ? 'waiting' : 'p99';
          const hint = isWorst && value >= WARN_P99_US ? ` (${why(l, dir, data)})` : '';
          return [{ l, isWorst, text: `${layerName(l, data)} ${label} ${fmtUs(value)}${hint}` }];
        });
      list.sort((a, b) => Number(b.isWorst) - Number(a.isWorst));
      // A full ring takes no packet in: nothing is timed through it, yet the VM waits.
      if (dir === 'to-vm' && d.dropped > 0) list.push({ l: 'tun ring', isWorst: false, text: `${d.dropped} dropped at ${setup.tap.dev} (tun ring full?)` });
      if (list.length === 0) continue;
      // Packets timed through the direction (and, to the VM, those still waiting for QEMU).
      const n = Math.max(0, ...Object.values(d.layers).map((s) => s?.count ?? 0)) + (dir === 'to-vm' ? dump.pending.count : 0);
      parts.push(`${DIR_TEXT[dir]} (${n} packet${n === 1 ? '' : 's'}): ${list.map((x) => x.text).join(', ')}`);
    }
    summary = parts.join('; ');
  }
  if (overhead?.stopped) summary += ` (stopped: ${overhead.stopped})`;

  const worstUs = data.worst?.p99 ?? 0;
  const dropped = directions['to-vm']?.dropped ?? 0;
  const severity: Severity = worstUs >= CRITICAL_P99_US || dropped * 10 > (directions['to-vm']?.packets.queued ?? 0) ? 'critical' : worstUs >= WARN_P99_US || dropped > 0 ? 'warning' : 'info';

  const charts: ChartSpec[] = [];
  for (const dir of DIR_IDS) {
    for (const layer of LAYERS[dir]) {
      const s = directions[dir]?.layers[layer];
      if (!s) continue;
      charts.push({
        kind: 'histogram',
        title: `${DIR_TEXT[dir]}: ${layerName(layer, data)} latency (log2 buckets)`,
        unit: 'µs',
        buckets: s.buckets.map((b) => ({ low: b.lowUs, high: b.highUs, count: b.count })),
        percentiles: { P50: s.p50, P95: s.p95, P99: s.p99, max: s.max },
      });
    }
  }
  // Where the time goes, per direction: the mean time in each layer (means add up, percentiles
  // do not). One layer list for both rows; a layer a direction does not cross is 0 there.
  const names = [...new Set(DIR_IDS.flatMap((dir) => LAYERS[dir].filter((l) => l !== 'total')))];
  const rows = DIR_IDS.flatMap((dir) => {
    const d = directions[dir];
    return d && Object.keys(d.layers).length > 0 ? [{ label: DIR_TEXT[dir], values: names.map((l) => d.layers[l]?.mean ?? 0) }] : [];
  });
  if (rows.length > 0) charts.unshift({ kind: 'layers', title: 'Mean time per layer', unit: 'µs', layers: names.map((l) => layerName(l, data)), rows });
  const tables: TableSpec[] = [
    {
      title: 'Latency per layer (µs; percentiles within ~25%, max exact)',
      columns: ['direction', 'layer', 'packets', 'P50', 'P95', 'P99', 'max', 'mean'],
      rows: flat.map((l) => [DIR_TEXT[l.direction], layerName(l.layer, data), l.count, l.p50, l.p95, l.p99, l.max, l.mean]),
    },
    {
      title: 'Packets per stage',
      columns: ['direction', 'received', 'queued', 'transmitted', 'delivered', 'unmatched (queued / transmitted)', 'dropped', 'incomplete (bridge / qdisc / tun ring)'],
      rows: DIR_IDS.flatMap((dir) => {
        const d = directions[dir];
        if (!d) return [];
        return [
          [
            DIR_TEXT[dir],
            d.packets.received,
            d.packets.queued,
            d.packets.transmitted,
            d.packets.delivered,
            `${d.unmatched.queued} / ${d.unmatched.transmitted}`,
            d.dropped,
            `${d.incomplete.bridge} / ${d.incomplete.qdisc} / ${d.incomplete['tun ring']}`,
          ],
        ];
      }),
    },
    {
      title: 'Devices',
      columns: ['role', 'device', 'ifindex'],
      rows: [['tap', setup.tap.dev, setup.tap.ifindex] as Array<string | number>].concat(
        setup.uplinks.map((u) => [`uplink (${setup.uplinksFrom === 'param' ? 'given' : `port of ${setup.bridge?.name ?? '?'}`})`, u.dev, u.ifindex]),
      ),
    },
    {
      title: 'Attach',
      columns: ['program', 'method', 'target', 'BTF', 'attach ms'],
      rows: att.links.map((l) => [l.program, l.method, l.target, att.btf, l.attachMs]),
    },
  ];
  if (overhead) tables.push(overheadTable(overhead));
  return { data, summary, severity, charts, tables };
}

export const perfVmLatency: ProbeDefinition<VmLatencyData> = {
  id: 'perf.vm-latency',
  title: "Latency of a VM's packets per host layer",
  description: `Times a VM's IPv4 packets through each layer of the host, both ways, for \`duration\`, and names the layer that adds the most delay (\`worst\`) with P50/P95/P99/max per layer:

- **to the VM**: uplink \`netif_receive_skb\` → **bridge** (Linux bridge or OVS) → tap \`net_dev_queue\` → **qdisc** → tap \`net_dev_start_xmit\` → **tun ring** → \`consume_skb\` when QEMU read it;
- **from the VM**: tap \`netif_receive_skb\` → **bridge** → uplink \`net_dev_queue\` → **qdisc** → uplink \`net_dev_start_xmit\` → **driver** → \`net_dev_xmit\`;
- **total**: first stamp to delivered, per direction.

Across the bridge a packet is matched by its headers (addresses, protocol, IP id, ports or ICMP id/seq, TCP seq/ack, the first payload bytes), since OVS's userspace datapath re-injects a new skb; within one device by its skb. \`uplinks\` are the devices toward the network: by default the other ports of the tap's Linux or OVS bridge (every other device when there is none). Filters (\`vm_ip\`, the \`src_ip\`↔\`dst_ip\` conversation both ways, \`protocol\`, \`port\`, \`direction\`) apply in the kernel; histograms are aggregated there (log-linear buckets: percentiles within ~25%, max exact).

Use it when a VM sees latency or jitter: a tun ring of milliseconds means QEMU (or vhost) is not reading the tap (a stopped or starved VM, a busy I/O thread), a qdisc of milliseconds a shaper or a deep queue, a bridge of milliseconds slow forwarding (OVS upcalls). The guest's own stack and the wire beyond the uplink are not seen. Tracepoints only (tp_btf, else raw_tp with a cached minimal BTF, else classic tracepoints); past its overhead budget (5% of a CPU, 1M program runs/s; \`--budget\` changes it) the session stops early and keeps the histograms up to then.

Replaces the seed's \`vm_network_latency_details.py\` and \`vm_network_latency_summary.py\` (PROBES.md rows 35 and 36).`,
  normal: `Bridge and qdisc layers of a few to some tens of µs, a driver layer of a few µs, a tun ring under ~100 µs with vhost-net (QEMU reading the tap itself, or a VM under emulation, takes longer: up to a few ms). A layer with a P99 of milliseconds is where the delay comes from (flagged above 1 ms, critical above 10 ms); packets still waiting in the tun ring at the end mean the VM is not reading at all, and packets dropped at the tap mean its ring is full: none of them is timed through it, so the other layers can look fast (flagged; critical past a tenth of the packets to the VM).`,
  replaces: ['vm_network_latency_details.py', 'vm_network_latency_summary.py'],
  // attach.ts sizes `cpus` to the possible CPUs: one entry (counters, histograms) each.
  memory: { resized: { cpus: { perCpu: 1 } } },
  params: {
    dev: { type: 'string', required: true, description: "The VM's tap device (vnetN).", cliOption: 'dev' },
    uplinks: { type: 'string[]', description: "Devices toward the network (default: the other ports of the tap's bridge)." },
    vm_ip: { type: 'ip', description: "The VM's IPv4 address: only packets to it (to the VM) and from it (from the VM)." },
    ...addressParams({ src: 'Only the conversation between src_ip and dst_ip (both ways).', dst: 'Only the conversation between src_ip and dst_ip (both ways).' }),
    protocol: protocolParam('Only IPv4 packets of this L4 protocol.'),
    port: { type: 'integer', min: 0, max: 65535, default: 0, description: 'Only TCP/UDP packets with this source or destination port (0 = any).' },
    direction: { type: 'string', enum: ['both', 'to-vm', 'from-vm'], default: 'both', description: 'Which way to time.' },
    duration: durationParam('How long to time packets.', { max: 3_600_000 }),
  },
  ...tracepointRun(HOOKS.map((h) => `${h.category}:${h.name}`), VM_LATENCY_BUDGET, { overhead: 'medium' }),
  data: DATA,
  collect,
  parse,
};
