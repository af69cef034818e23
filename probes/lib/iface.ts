// Interfaces watched over a window, as net.iface reports them and drops.eth reads them beside
// its drop session: every counter of each device sampled at 0, every interval and the end
// (iface-counters.ts), and its queues read at the window's ends (iface-queues.ts).
import type { ProbeIO, RawRecord } from '../../engine/probe/types.js';
import { readCounters, sampleCounters, watchedDevices, type CounterReadings, type IfaceDevice as CounterDevice } from './iface-counters.js';
import { queueAttributePaths, readQueueLayout, readQueues, readQueueStats, type IfaceQueues } from './iface-queues.js';

export interface IfaceDevice extends CounterDevice {
  /** Its RX/TX queues and what each counted; absent with `queues: false`. */
  queues?: IfaceQueues;
}

export interface IfaceSampling {
  /** The devices to watch; empty for every device of this namespace. */
  devices: string[];
  durationMs: number;
  intervalMs: number;
  /** Read the queues too (layout, TX timeouts, BQL, per-queue ethtool counters). */
  queues: boolean;
}

/** Samples the counters of the watched devices over the window, and their queues at its ends. */
export async function sampleInterfaces(io: ProbeIO, s: IfaceSampling): Promise<void> {
  const devices = await watchedDevices(io, s.devices);
  const layout = s.queues ? await readQueueLayout(io, devices) : new Map<string, string[]>();
  await sampleCounters(io, devices, {
    durationMs: s.durationMs,
    intervalMs: s.intervalMs,
    extraPaths: () => queueAttributePaths(layout),
    atEnds: (end) => readQueueStats(io, layout, end),
  });
}

/** What sampleInterfaces recorded: each device's deltas and rates with its queues, and the notes. */
export function readInterfaces(records: RawRecord[]): CounterReadings & { devices: IfaceDevice[] } {
  const readings = readCounters(records);
  const queues = readQueues(records, readings.notes);
  const devices: IfaceDevice[] = readings.devices.map((d) => {
    const q = queues.get(d.name);
    return q ? { ...d, queues: q } : d;
  });
  return { ...readings, devices };
}
