// The interface counter reader: /sys/class/net/<dev>/statistics/* of every watched device,
// read as one observation per sample (at 0, every interval and the end), and turned into
// per-device deltas, rates and per-interval series. net.iface reports them; other probes
// (perf.host-metrics) sample them beside their own measurements. `prefix` names the records,
// so that one probe's evidence can hold these samples beside its own.
import { constants as osConstants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { formatMs } from '../../engine/duration.js';
import { fileReadings } from '../../engine/probe/file-readings.js';
import type { ProbeIO, RawRecord } from '../../engine/probe/types.js';

export const SYS_NET = '/sys/class/net';
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

export interface IfaceTotals {
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
}

/** Per-interval rates of one device: [time, value per second] at the end of each interval. */
export interface DevicePoints {
  drops: Array<[number, number]>;
  rx: Array<[number, number]>;
  tx: Array<[number, number]>;
  rxBps: Array<[number, number]>;
  txBps: Array<[number, number]>;
}

export interface CounterReadings {
  /** Time between the first and the last sample, from the reads' timestamps. */
  durationMs: number;
  /** How many times the counters were read. */
  samples: number;
  devices: IfaceDevice[];
  pointsOf: Map<string, DevicePoints>;
  /** Vanished devices, counter resets, unreadable files. */
  notes: string[];
}

/** When each sample is read, in ms from the first: 0, every interval, and the end. */
export function sampleOffsets(durationMs: number, intervalMs: number): number[] {
  const offsets = [0];
  for (let t = intervalMs; t < durationMs; t += intervalMs) offsets.push(t);
  if (durationMs > 0) offsets.push(durationMs);
  return offsets;
}

/** Fails before anything is read when the sampling would make too many samples. */
export function checkSampling(durationMs: number, intervalMs: number): number[] {
  const offsets = sampleOffsets(durationMs, intervalMs);
  if (offsets.length > MAX_SAMPLES) {
    throw new Error(
      `interval ${formatMs(intervalMs)} over ${formatMs(durationMs)} makes ${offsets.length} samples; use a longer interval (at most ${MAX_SAMPLES} samples)`,
    );
  }
  return offsets;
}

function statPath(dev: string, counter: Counter): string {
  return `${SYS_NET}/${dev}/statistics/${counter}`;
}

function attrPath(dev: string, attr: Attribute): string {
  return `${SYS_NET}/${dev}/${attr}`;
}

/** The devices to watch: `wanted` (all must exist), or every device of this namespace when empty. */
export async function watchedDevices(io: ProbeIO, wanted: string[], prefix = ''): Promise<string[]> {
  const listing = await io.readDir(`${prefix}devices`, SYS_NET);
  const present = lines(listing.stdout).filter((d) => !NOT_DEVICES.has(d));
  const unique = [...new Set(wanted)];
  const unknown = unique.filter((d) => !present.includes(d));
  if (unknown.length > 0) {
    const what = unknown.length === 1 ? `no device ${unknown[0]}` : `no devices ${unknown.join(', ')}`;
    throw new Error(`${what} on this host; devices here: ${present.join(', ') || '(none)'}`);
  }
  return unique.length > 0 ? unique : present;
}

export interface SampleOptions {
  durationMs: number;
  intervalMs: number;
  prefix?: string;
  /** More files to read with the first and the last sample (e.g. queue attributes). */
  extraPaths?: (devices: string[]) => string[];
  /** Runs right before the first sample and right after the last one. */
  atEnds?: (end: 'start' | 'end') => Promise<void>;
}

/** Reads every counter of `devices` at 0, every interval and the end (records `<prefix>s<k>`). */
export async function sampleCounters(io: ProbeIO, devices: string[], opts: SampleOptions): Promise<void> {
  const offsets = checkSampling(opts.durationMs, opts.intervalMs);
  const prefix = opts.prefix ?? '';
  await opts.atEnds?.('start');
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
    if (withAttributes && opts.extraPaths) paths.push(...opts.extraPaths(devices));
    await io.readFiles(`${prefix}s${k}`, paths);
  }
  await opts.atEnds?.('end');
}

/** A sample's batch as one read record per file, the shape the parser works on. */
export function perFileReads(records: RawRecord[]): RawRecord[] {
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
const ENOENT = osConstants.errno.ENOENT;
const ENODEV = osConstants.errno.ENODEV;

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The deltas, rates and series of the samples `<prefix>s<k>` among `records`. */
export function readCounters(records: RawRecord[], prefix = ''): CounterReadings {
  const sampleRe = new RegExp(`^${escapeRe(prefix)}s(\\d+)-`);
  const byDevice = new Map<string, Map<number, Reading>>();
  const sampleAt = new Map<number, number>();
  const counterSet = new Set<string>(COUNTERS);
  const attributeSet = new Set<string>(ATTRIBUTES);

  for (const rec of perFileReads(records)) {
    const sample = rec.op === 'read' ? sampleRe.exec(rec.name) : null;
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

  const ats = [...sampleAt.values()];
  const notes: string[] = [];
  const devices: IfaceDevice[] = [];
  const pointsOf = new Map<string, DevicePoints>();
  for (const [name, samples] of byDevice) {
    const ordered = [...samples.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
    const { device, points } = deviceOf(name, ordered, notes);
    devices.push(device);
    pointsOf.set(name, points);
  }
  return { durationMs: ats.length > 1 ? Math.max(...ats) - Math.min(...ats) : 0, samples: sampleAt.size, devices, pointsOf, notes };
}

function deviceOf(name: string, ordered: Reading[], notes: string[]): { device: IfaceDevice; points: DevicePoints } {
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
  const points: DevicePoints = { drops: [], rx: [], tx: [], rxBps: [], txBps: [] };
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
    points.rxBps.push([b.at, perSecond(step.rx_bytes * 8n)]);
    points.txBps.push([b.at, perSecond(step.tx_bytes * 8n)]);
  }
  if (resets.size > 0) notes.push(`${name}: ${[...resets].join(', ')} went down during the sample (counter reset); counted from 0 after it`);

  const d = Object.fromEntries(COUNTERS.map((c) => [c, Number(deltas[c])])) as Record<Counter, number>;
  const seconds = complete.length > 1 ? (complete.at(-1)!.at - complete[0]!.at) / 1000 : 0;
  const rate = (n: number) => (seconds > 0 ? round2(n / seconds) : 0);
  const attrs = lastAttributes(ordered);
  const device: IfaceDevice = {
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
  };
  return { device, points };
}

export function totalsOf(devices: IfaceDevice[]): IfaceTotals {
  const sum = (f: (d: IfaceDevice) => number) => devices.reduce((n, d) => n + f(d), 0);
  return {
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
}

/** The devices whose drops or errors rose, worst first. */
export function droppingDevices(devices: IfaceDevice[]): IfaceDevice[] {
  return devices.filter((d) => d.drops + d.errors > 0);
}

export function directionOf(d: IfaceDevice): 'rx' | 'tx' | 'rx+tx' {
  const rx = d.deltas.rx_dropped + d.deltas.rx_errors;
  const tx = d.deltas.tx_dropped + d.deltas.tx_errors;
  return rx > 0 && tx > 0 ? 'rx+tx' : rx > 0 ? 'rx' : 'tx';
}

/** A table of the devices whose counters moved (none when nothing did). */
export function activityRows(devices: IfaceDevice[]): { columns: string[]; rows: Array<Array<string | number>> } | null {
  const active = devices.filter((d) => Object.values(d.deltas).some((v) => v > 0));
  if (active.length === 0) return null;
  return {
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

export function parseCounter(text: string): bigint | undefined {
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

export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
