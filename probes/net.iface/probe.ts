// net.iface: interface counters and rates from /sys/class/net/<dev>/statistics, sampled
// at a fixed interval so that drops, errors and packet rates form a time series.
import { constants as osConstants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { formatMs } from '../../engine/duration.js';
import { fileReadings } from '../../engine/probe/file-readings.js';
import type {
  ChartSpec,
  Params,
  ProbeDefinition,
  ProbeResult,
  RawRecord,
  TableSpec,
  TimeSeriesChart,
} from '../../engine/probe/types.js';

const SYS_NET = '/sys/class/net';
/** Entries of /sys/class/net that are not devices. */
const NOT_DEVICES = new Set(['bonding_masters']);
/** More samples than this make evidence nobody reads: use a longer interval. */
const MAX_SAMPLES = 1000;

export const COUNTERS = [
  'rx_packets',
  'tx_packets',
  'rx_bytes',
  'tx_bytes',
  'rx_dropped',
  'tx_dropped',
  'rx_errors',
  'tx_errors',
  'rx_missed_errors',
  'rx_fifo_errors',
  'rx_over_errors',
  'rx_crc_errors',
  'rx_frame_errors',
  'rx_length_errors',
  'tx_fifo_errors',
  'tx_carrier_errors',
  'tx_aborted_errors',
  'collisions',
  'multicast',
] as const;
export type Counter = (typeof COUNTERS)[number];

const ATTRIBUTES = ['ifindex', 'mtu', 'operstate', 'carrier', 'address'] as const;
type Attribute = (typeof ATTRIBUTES)[number];

export interface IfaceDevice {
  name: string;
  ifindex: number | null;
  mtu: number | null;
  operstate: string | null;
  /** Null when the kernel cannot tell (a device that is administratively down). */
  carrier: boolean | null;
  address: string | null;
  /** The device disappeared during the sample (its deltas cover the time it was there). */
  vanished: boolean;
  deltas: Record<Counter, number>;
  /** rx_dropped + tx_dropped */
  drops: number;
  /** rx_errors + tx_errors */
  errors: number;
  /** Averages over the window: packets/s and bits/s. */
  rates: { rx_pps: number; tx_pps: number; rx_bps: number; tx_bps: number };
}

export interface IfaceData {
  [key: string]: unknown;
  /** Time between the first and the last sample, from the reads' timestamps. */
  durationMs: number;
  intervalMs: number;
  /** How many times the counters were read. */
  samples: number;
  devices: IfaceDevice[];
  totals: {
    drops: number;
    errors: number;
    rx_dropped: number;
    tx_dropped: number;
    rx_errors: number;
    tx_errors: number;
    rx_packets: number;
    tx_packets: number;
    rx_bytes: number;
    tx_bytes: number;
  };
  /** Devices whose drops or errors rose. */
  dropping: string[];
  /** The device with the most drops + errors; only when something dropped. */
  worst?: { name: string; drops: number; errors: number; direction: 'rx' | 'tx' | 'rx+tx' };
  /** Things worth knowing about the sample: vanished devices, counter resets, unreadable files. */
  notes: string[];
}

/** When each sample is read, in ms from the first: 0, every interval, and the end. */
export function sampleOffsets(durationMs: number, intervalMs: number): number[] {
  const offsets = [0];
  for (let t = intervalMs; t < durationMs; t += intervalMs) offsets.push(t);
  if (durationMs > 0) offsets.push(durationMs);
  return offsets;
}

function statPath(dev: string, counter: Counter): string {
  return `${SYS_NET}/${dev}/statistics/${counter}`;
}

function attrPath(dev: string, attr: Attribute): string {
  return `${SYS_NET}/${dev}/${attr}`;
}

async function collect(params: Params, io: Parameters<ProbeDefinition['collect']>[1]): Promise<void> {
  const durationMs = params.duration as number;
  const intervalMs = params.interval as number;
  const offsets = sampleOffsets(durationMs, intervalMs);
  if (offsets.length > MAX_SAMPLES) {
    throw new Error(
      `interval ${formatMs(intervalMs)} over ${formatMs(durationMs)} makes ${offsets.length} samples; use a longer interval (at most ${MAX_SAMPLES} samples)`,
    );
  }
  const listing = await io.readDir('devices', SYS_NET);
  const present = lines(listing.stdout).filter((d) => !NOT_DEVICES.has(d));
  const wanted = [...new Set(params.devices as string[])];
  const unknown = wanted.filter((d) => !present.includes(d));
  if (unknown.length > 0) {
    const what = unknown.length === 1 ? `no device ${unknown[0]}` : `no devices ${unknown.join(', ')}`;
    throw new Error(`${what} on this host; devices here: ${present.join(', ') || '(none)'}`);
  }
  const devices = wanted.length > 0 ? wanted : present;
  const start = performance.now();
  for (let k = 0; k < offsets.length; k++) {
    if (k > 0) await io.sleep(start + offsets[k]! - performance.now());
    const withAttributes = k === 0 || k === offsets.length - 1;
    // One observation per sample: every counter of every device, read together.
    const paths: string[] = [];
    for (const dev of devices) {
      for (const c of COUNTERS) paths.push(statPath(dev, c));
      if (withAttributes) for (const a of ATTRIBUTES) paths.push(attrPath(dev, a));
    }
    await io.readFiles(`s${k}`, paths);
  }
}

/** A sample's batch as one read record per file, the shape the parser works on. */
function perFileReads(records: RawRecord[]): RawRecord[] {
  return records.flatMap((rec) => {
    if (rec.op !== 'readfiles') return [rec];
    return fileReadings(rec).map((f) => ({
      ...rec,
      op: 'read' as const,
      name: `${rec.name}-${f.path}`,
      path: f.path,
      stdout: f.text ?? '',
      exitCode: f.errno ?? (f.error !== undefined ? 1 : 0),
      ...(f.error !== undefined ? { error: f.error } : {}),
    }));
  });
}

/** One device's reads in one sample. */
interface Reading {
  at: number;
  counters: Map<Counter, bigint>;
  attributes: Map<Attribute, string | null>;
  gone: boolean;
  failures: string[];
}

const STAT_RE = /^\/sys\/class\/net\/([^/]+)\/statistics\/([a-z_]+)$/;
const ATTR_RE = /^\/sys\/class\/net\/([^/]+)\/([a-z_]+)$/;
const SAMPLE_RE = /^s(\d+)-/;
const ENOENT = osConstants.errno.ENOENT;
const ENODEV = osConstants.errno.ENODEV;

function parse(records: RawRecord[], params: Params): ProbeResult<IfaceData> {
  const intervalMs = params.interval as number;
  const requestedMs = params.duration as number;
  const byDevice = new Map<string, Map<number, Reading>>();
  const sampleAt = new Map<number, number>();
  const counterSet = new Set<string>(COUNTERS);
  const attributeSet = new Set<string>(ATTRIBUTES);

  for (const rec of perFileReads(records)) {
    const sample = rec.op === 'read' ? SAMPLE_RE.exec(rec.name) : null;
    if (!sample || rec.path === undefined) continue;
    const k = Number(sample[1]);
    const stat = STAT_RE.exec(rec.path);
    const attr = stat ? null : ATTR_RE.exec(rec.path);
    const dev = stat?.[1] ?? attr?.[1];
    const field = stat?.[2] ?? attr?.[2];
    if (dev === undefined || field === undefined) continue;
    if (stat ? !counterSet.has(field) : !attributeSet.has(field)) continue;
    let samples = byDevice.get(dev);
    if (!samples) byDevice.set(dev, (samples = new Map()));
    let reading = samples.get(k);
    if (!reading) samples.set(k, (reading = { at: rec.at, counters: new Map(), attributes: new Map(), gone: false, failures: [] }));
    const failed = rec.error !== undefined || rec.exitCode !== 0;
    const gone = failed && (rec.exitCode === ENOENT || rec.exitCode === ENODEV);
    if (stat) {
      reading.at = Math.min(reading.at, rec.at);
      sampleAt.set(k, Math.min(sampleAt.get(k) ?? rec.at, rec.at));
      const value = failed ? undefined : parseCounter(rec.stdout);
      if (value !== undefined) reading.counters.set(field as Counter, value);
      else if (gone) reading.gone = true;
      else reading.failures.push(`${field}: ${rec.error ?? `not a number: ${JSON.stringify(rec.stdout.trim().slice(0, 40))}`}`);
    } else {
      // Attributes may be unreadable for good reasons (carrier of a device that is down: EINVAL).
      reading.attributes.set(field as Attribute, failed ? null : rec.stdout.trim());
    }
  }

  const sampleCount = sampleAt.size;
  const ats = [...sampleAt.values()];
  const durationMs = ats.length > 1 ? Math.max(...ats) - Math.min(...ats) : 0;
  const notes: string[] = [];
  const devices: IfaceDevice[] = [];
  const pointsOf = new Map<string, { drops: Array<[number, number]>; rx: Array<[number, number]>; tx: Array<[number, number]> }>();

  for (const [name, samples] of byDevice) {
    const ordered = [...samples.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
    const complete = ordered.filter((r) => !r.gone && r.failures.length === 0 && r.counters.size === COUNTERS.length);
    const goneCount = ordered.filter((r) => r.gone).length;
    const vanished = goneCount > 0;
    if (vanished) {
      const firstGone = ordered.findIndex((r) => r.gone);
      const cameBack = ordered.slice(firstGone).some((r) => !r.gone);
      notes.push(
        complete.length === 0
          ? `${name} vanished before it could be read`
          : cameBack
            ? `${name} was missing in ${goneCount} of ${ordered.length} samples (removed and re-created?)`
            : `${name} vanished after sample ${firstGone} of ${ordered.length}; its counts cover the time before`,
      );
    }
    const failures = ordered.flatMap((r) => r.failures);
    if (failures.length > 0) notes.push(`${name}: ${failures.length} counter read(s) failed, e.g. ${failures[0]}`);

    const deltas = Object.fromEntries(COUNTERS.map((c) => [c, 0n])) as Record<Counter, bigint>;
    const points = { drops: [] as Array<[number, number]>, rx: [] as Array<[number, number]>, tx: [] as Array<[number, number]> };
    const resets = new Set<Counter>();
    for (let i = 1; i < complete.length; i++) {
      const a = complete[i - 1]!;
      const b = complete[i]!;
      const step = {} as Record<Counter, bigint>;
      for (const c of COUNTERS) {
        const before = a.counters.get(c)!;
        const after = b.counters.get(c)!;
        // A counter that went down was reset (device re-created, driver reset) or wrapped: count from 0.
        if (after < before) resets.add(c);
        step[c] = after >= before ? after - before : after;
        deltas[c] += step[c];
      }
      const seconds = (b.at - a.at) / 1000;
      const perSecond = (n: bigint) => (seconds > 0 ? round2(Number(n) / seconds) : 0);
      points.drops.push([b.at, perSecond(step.rx_dropped + step.tx_dropped + step.rx_errors + step.tx_errors)]);
      points.rx.push([b.at, perSecond(step.rx_packets)]);
      points.tx.push([b.at, perSecond(step.tx_packets)]);
    }
    if (resets.size > 0) notes.push(`${name}: ${[...resets].join(', ')} went down during the sample (counter reset); counted from 0 after it`);
    pointsOf.set(name, points);

    const d = Object.fromEntries(COUNTERS.map((c) => [c, Number(deltas[c])])) as Record<Counter, number>;
    const seconds = complete.length > 1 ? (complete.at(-1)!.at - complete[0]!.at) / 1000 : 0;
    const rate = (n: number) => (seconds > 0 ? round2(n / seconds) : 0);
    const attrs = lastAttributes(ordered);
    devices.push({
      name,
      ifindex: toInt(attrs.get('ifindex')),
      mtu: toInt(attrs.get('mtu')),
      operstate: attrs.get('operstate') ?? null,
      carrier: attrs.get('carrier') === '1' ? true : attrs.get('carrier') === '0' ? false : null,
      address: attrs.get('address') ?? null,
      vanished,
      deltas: d,
      drops: d.rx_dropped + d.tx_dropped,
      errors: d.rx_errors + d.tx_errors,
      rates: { rx_pps: rate(d.rx_packets), tx_pps: rate(d.tx_packets), rx_bps: rate(d.rx_bytes * 8), tx_bps: rate(d.tx_bytes * 8) },
    });
  }

  const sum = (f: (d: IfaceDevice) => number) => devices.reduce((n, d) => n + f(d), 0);
  const totals = {
    drops: sum((d) => d.drops),
    errors: sum((d) => d.errors),
    rx_dropped: sum((d) => d.deltas.rx_dropped),
    tx_dropped: sum((d) => d.deltas.tx_dropped),
    rx_errors: sum((d) => d.deltas.rx_errors),
    tx_errors: sum((d) => d.deltas.tx_errors),
    rx_packets: sum((d) => d.deltas.rx_packets),
    tx_packets: sum((d) => d.deltas.tx_packets),
    rx_bytes: sum((d) => d.deltas.rx_bytes),
    tx_bytes: sum((d) => d.deltas.tx_bytes),
  };
  const droppingDevices = devices.filter((d) => d.drops + d.errors > 0);
  const worstDevice = [...droppingDevices].sort((a, b) => b.drops + b.errors - (a.drops + a.errors))[0];
  const data: IfaceData = {
    durationMs,
    intervalMs,
    samples: sampleCount,
    devices,
    totals,
    dropping: droppingDevices.map((d) => d.name),
    ...(worstDevice ? { worst: { name: worstDevice.name, drops: worstDevice.drops, errors: worstDevice.errors, direction: directionOf(worstDevice) } } : {}),
    notes,
  };
  return {
    data,
    summary: summarize(data, requestedMs),
    severity: droppingDevices.length > 0 ? 'critical' : 'info',
    charts: charts(data, pointsOf, requestedMs),
    tables: activityTable(devices),
  };
}

function directionOf(d: IfaceDevice): 'rx' | 'tx' | 'rx+tx' {
  const rx = d.deltas.rx_dropped + d.deltas.rx_errors;
  const tx = d.deltas.tx_dropped + d.deltas.tx_errors;
  return rx > 0 && tx > 0 ? 'rx+tx' : rx > 0 ? 'rx' : 'tx';
}

function summarize(data: IfaceData, requestedMs: number): string {
  const span = formatMs(requestedMs);
  const watched = `${data.devices.length} ${plural(data.devices.length, 'device')} watched`;
  const vanished = data.devices.filter((d) => d.vanished).length;
  const tail = vanished > 0 ? `; ${vanished} vanished` : '';
  const w = data.worst;
  if (w) {
    const what =
      w.drops > 0
        ? `dropped ${w.drops} ${plural(w.drops, 'packet')}${w.errors > 0 ? ` and had ${w.errors} ${plural(w.errors, 'error')}` : ''}`
        : `had ${w.errors} ${plural(w.errors, 'error')}`;
    const others = data.dropping.length > 1 ? `${data.dropping.length} devices dropping, ` : '';
    return `${w.name} ${what} (${w.direction}) in ${span}; ${others}${watched}${tail}`;
  }
  const busiest = [...data.devices].sort((a, b) => b.rates.rx_pps + b.rates.tx_pps - (a.rates.rx_pps + a.rates.tx_pps))[0];
  const busy = busiest && busiest.rates.rx_pps + busiest.rates.tx_pps > 0 ? `; busiest ${busiest.name} at ${round2(busiest.rates.rx_pps + busiest.rates.tx_pps)} pps` : '';
  return `no drops or errors on ${data.devices.length} ${plural(data.devices.length, 'device')} in ${span}${busy}${tail}`;
}

function charts(
  data: IfaceData,
  pointsOf: Map<string, { drops: Array<[number, number]>; rx: Array<[number, number]>; tx: Array<[number, number]> }>,
  requestedMs: number,
): ChartSpec[] {
  const out: ChartSpec[] = [];
  if (data.dropping.length > 0) {
    const dropSeries: TimeSeriesChart = {
      kind: 'timeseries',
      title: 'Drops + errors per second, dropping devices',
      unit: 'packets/s',
      series: data.dropping.map((name) => ({ name, points: pointsOf.get(name)?.drops ?? [] })),
    };
    out.push(dropSeries);
    out.push({
      kind: 'bar',
      title: `Dropped packets by device in ${formatMs(requestedMs)}`,
      unit: 'packets',
      bars: data.devices.filter((d) => d.drops > 0).map((d) => ({ label: d.name, value: d.drops })),
    });
  }
  const busiest = [...data.devices]
    .filter((d) => d.deltas.rx_packets + d.deltas.tx_packets > 0)
    .sort((a, b) => b.deltas.rx_packets + b.deltas.tx_packets - (a.deltas.rx_packets + a.deltas.tx_packets))
    .slice(0, 3);
  if (busiest.length > 0) {
    out.push({
      kind: 'timeseries',
      title: 'Packets per second, busiest devices',
      unit: 'packets/s',
      series: busiest.flatMap((d) => [
        { name: `${d.name} rx`, points: pointsOf.get(d.name)?.rx ?? [] },
        { name: `${d.name} tx`, points: pointsOf.get(d.name)?.tx ?? [] },
      ]),
    });
  }
  return out;
}

/** A table of the devices whose counters moved (none when nothing did). */
function activityTable(devices: IfaceDevice[]): TableSpec[] {
  const active = devices.filter((d) => Object.values(d.deltas).some((v) => v > 0));
  if (active.length === 0) return [];
  const table: TableSpec = {
    title: 'Interfaces with traffic, drops or errors',
    columns: ['device', 'state', 'mtu', 'rx packets', 'tx packets', 'rx pps', 'tx pps', 'rx Mbit/s', 'tx Mbit/s', 'rx dropped', 'tx dropped', 'rx errors', 'tx errors'],
    rows: active.map((d) => [
      d.name,
      d.operstate ?? '?',
      d.mtu ?? '?',
      d.deltas.rx_packets,
      d.deltas.tx_packets,
      d.rates.rx_pps,
      d.rates.tx_pps,
      round3(d.rates.rx_bps / 1e6),
      round3(d.rates.tx_bps / 1e6),
      d.deltas.rx_dropped,
      d.deltas.tx_dropped,
      d.deltas.rx_errors,
      d.deltas.tx_errors,
    ]),
  };
  return [table];
}

/** A device's attributes from its last sample that has them, else its first. */
function lastAttributes(ordered: Reading[]): Map<Attribute, string | null> {
  const withAttrs = ordered.filter((r) => r.attributes.size > 0);
  const last = withAttrs.at(-1);
  const first = withAttrs[0];
  const out = new Map<Attribute, string | null>();
  for (const a of ATTRIBUTES) {
    const value = last?.attributes.get(a) ?? first?.attributes.get(a) ?? null;
    out.set(a, value);
  }
  return out;
}

function parseCounter(text: string): bigint | undefined {
  const t = text.trim();
  return /^\d+$/.test(t) ? BigInt(t) : undefined;
}

function toInt(text: string | null | undefined): number | null {
  if (text === null || text === undefined || !/^-?\d+$/.test(text)) return null;
  return Number(text);
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

export const netIface: ProbeDefinition = {
  id: 'net.iface',
  title: 'Interface counters and rates',
  description: `Reads every watched interface's kernel counters (\`/sys/class/net/<dev>/statistics/*\`: packets, bytes, drops, errors and their detailed causes) at the start, every \`interval\` and at the end of \`duration\`, and reports what changed: per-device deltas, average packet and bit rates, and a time series of drops, errors and packets per second.

Use it first when packets are lost or slow: it costs nothing (no program is loaded into the kernel) and tells which interface drops, in which direction. On a VM's tap, **tx** means towards the VM: tx drops there are packets the VM did not take (full ring, MTU smaller inside the VM than on the tap). On a veth, a peer whose MTU is lower than the packets sent to it makes the sending side count \`tx_dropped\`.

Replaces the counter and rate part of the seed's \`performance/iface_netstat.py\` (PROBES.md row 44). The seed's per-queue packet-size buckets come from tracepoints and belong to a tracing probe.`,
  normal: `Drops and errors stay at 0 on every interface. \`rx_dropped\` creeping up slowly on a physical NIC is often harmless (frames for protocols nobody listens to, counted by some drivers); anything rising in step with the traffic, any \`tx_dropped\` on a tap or veth, and any \`*_errors\` are not.`,
  replaces: ['performance/iface_netstat.py'],
  params: {
    devices: {
      type: 'string[]',
      default: [],
      description: 'Interfaces to watch; empty means every interface of this network namespace.',
      cliOption: 'dev',
    },
    duration: {
      type: 'duration',
      default: '5s',
      min: 100,
      description: 'How long to watch.',
      cliOption: 'duration',
    },
    interval: {
      type: 'duration',
      default: '1s',
      min: 50,
      description: 'Time between two reads of the counters.',
      cliOption: 'interval',
    },
  },
  requirements: [],
  overhead: 'none',
  driver: 'command',
  collect,
  parse: parse as ProbeDefinition['parse'],
};
