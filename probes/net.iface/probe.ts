// net.iface: interface counters and rates from /sys/class/net/<dev>/statistics, sampled
// at a fixed interval so that drops, errors and packet rates form a time series; and per
// queue, what each RX/TX queue counted (ethtool -S) and its TX watchdog and BQL state.
import { formatMs } from '../../engine/duration.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, Severity, TableSpec, TimeSeriesChart } from '../../engine/probe/types.js';
import { readInterfaces, sampleInterfaces } from '../lib/iface.js';
import { activityRows, directionOf, droppingDevices, round2, totalsOf, type DevicePoints } from '../lib/iface-counters.js';
import { queueProblems, queueSkews } from '../lib/iface-queues.js';
import { DATA, type IfaceData } from './data.js';

export type { IfaceData } from './data.js';

async function collect(params: Params, io: ProbeIO): Promise<void> {
  await sampleInterfaces(io, { devices: params.devices as string[], durationMs: params.duration as number, intervalMs: params.interval as number, queues: params.queues !== false });
}

function parse(records: RawRecord[], params: Params): ProbeResult<IfaceData> {
  const intervalMs = params.interval as number;
  const requestedMs = params.duration as number;
  const readings = readInterfaces(records);
  const { devices, notes } = readings;
  const dropping = droppingDevices(devices);
  const worstDevice = [...dropping].sort((a, b) => b.drops + b.errors - (a.drops + a.errors))[0];
  const data: IfaceData = {
    durationMs: readings.durationMs,
    intervalMs,
    samples: readings.samples,
    devices,
    totals: totalsOf(devices),
    dropping: dropping.map((d) => d.name),
    ...(worstDevice ? { worst: { name: worstDevice.name, drops: worstDevice.drops, errors: worstDevice.errors, direction: directionOf(worstDevice) } } : {}),
    queueSkew: queueSkews(devices),
    queueDrops: queueProblems(devices, (q) => q.drops),
    txTimeouts: queueProblems(devices, (q) => q.txTimeouts),
    notes,
  };
  return {
    data,
    summary: summarize(data, requestedMs),
    severity: severityOf(data),
    charts: charts(data, readings.pointsOf, requestedMs),
    tables: tablesOf(data),
  };
}

function severityOf(data: IfaceData): Severity {
  if (data.dropping.length > 0 || data.queueDrops.length > 0 || data.txTimeouts.length > 0) return 'critical';
  return data.queueSkew.length > 0 ? 'warning' : 'info';
}

const queueName = (q: { device: string; direction: string; queue: number }) => `${q.device} ${q.direction} queue ${q.queue}`;

function queueNotes(data: IfaceData): string {
  const parts = [
    ...data.queueDrops.map((q) => `${queueName(q)} dropped ${q.count}`),
    ...data.txTimeouts.map((q) => `${queueName(q)} timed out ${q.count}×`),
    ...data.queueSkew.map((q) => `${queueName(q)} took ${Math.round(q.share * 100)}% of ${q.packets} packets (${q.queues} queues)`),
  ];
  return parts.length > 0 ? `; ${parts.join('; ')}` : '';
}

function summarize(data: IfaceData, requestedMs: number): string {
  const span = formatMs(requestedMs);
  const watched = `${data.devices.length} ${plural(data.devices.length, 'device')} watched`;
  const vanished = data.devices.filter((d) => d.vanished).length;
  const tail = `${vanished > 0 ? `; ${vanished} vanished` : ''}${queueNotes(data)}`;
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

function charts(data: IfaceData, pointsOf: Map<string, DevicePoints>, requestedMs: number): ChartSpec[] {
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
  for (const d of data.devices) {
    const counted = (d.queues?.queues ?? []).filter((q) => q.packets !== null && q.packets > 0);
    if (counted.length === 0) continue;
    out.push({
      kind: 'bar',
      title: `${d.name}: packets per queue in ${formatMs(requestedMs)}`,
      unit: 'packets',
      bars: (d.queues?.queues ?? []).filter((q) => q.packets !== null).map((q) => ({ label: `${q.direction}-${q.queue}`, value: q.packets! })),
    });
  }
  return out;
}

function tablesOf(data: IfaceData): TableSpec[] {
  const tables: TableSpec[] = [];
  const activity = activityRows(data.devices);
  if (activity) tables.push({ title: 'Interfaces with traffic, drops or errors', ...activity });
  const rows = data.devices.flatMap((d) =>
    (d.queues?.queues ?? [])
      .filter(() => d.queues!.counted || d.queues!.queues.some((q) => (q.txTimeouts ?? 0) > 0 || q.bql))
      .map((q) => [d.name, `${q.direction}-${q.queue}`, q.packets ?? '-', q.bytes ?? '-', q.drops ?? '-', q.errors ?? '-', q.txTimeouts ?? '-', q.bql?.inflight ?? '-', q.bql?.limit ?? '-']),
  );
  if (rows.length > 0) {
    tables.push({
      title: 'Queues (ethtool -S deltas; tx timeouts and BQL from sysfs)',
      columns: ['device', 'queue', 'packets', 'bytes', 'drops', 'errors', 'tx timeouts', 'BQL inflight', 'BQL limit'],
      rows,
    });
  }
  return tables;
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}

export const netIface: ProbeDefinition = {
  id: 'net.iface',
  title: 'Interface counters and rates',
  description: `Reads every watched interface's kernel counters (\`/sys/class/net/<dev>/statistics/*\`: packets, bytes, drops, errors and their detailed causes) at the start, every \`interval\` and at the end of \`duration\`, and reports what changed: per-device deltas, average packet and bit rates, and a time series of drops, errors and packets per second.

Use it first when packets are lost or slow: it costs nothing (no program is loaded into the kernel) and tells which interface drops, in which direction. On a VM's tap, **tx** means towards the VM: tx drops there are packets the VM did not take (full ring, MTU smaller inside the VM than on the tap). On a veth, a peer whose MTU is lower than the packets sent to it makes the sending side count \`tx_dropped\`.

Per queue (\`queues\`, on by default): the queue layout of each device (\`/sys/class/net/<dev>/queues/{rx,tx}-N\`), each TX queue's transmit watchdog timeouts (\`tx_timeout\`) and byte queue limits (\`inflight\`, \`limit\`, where the driver has BQL), and on multi-queue devices the per-queue packet, byte, drop and error counters the driver gives through \`ethtool -S\` (veth with GRO or XDP: \`rx_queue_N_xdp_packets\`; virtio_net: \`rx_queue_N_packets\`, \`tx_queue_N_packets\`; i40e \`tx-N.packets\`; mlx5 \`rxN_packets\`), as deltas over the window. It flags a queue that takes ≥ 90% of a device's packets in one direction (≥ 100 packets) while its other queues idle (RSS/XPS steering everything to one CPU: that queue's CPU becomes the bottleneck), a queue whose drop counters rose, and a TX queue whose watchdog fired.

Replaces the seed's \`performance/iface_netstat.py\` (PROBES.md row 44), which counted packets per TX/RX queue of one device with tracepoints: here the driver's own per-queue counters are read, which costs nothing and also covers drops.`,
  normal: `Drops and errors stay at 0 on every interface. \`rx_dropped\` creeping up slowly on a physical NIC is often harmless (frames for protocols nobody listens to, counted by some drivers); anything rising in step with the traffic, any \`tx_dropped\` on a tap or veth, and any \`*_errors\` are not. On a multi-queue device with many flows, traffic spreads over the queues; one queue carrying everything is normal for a single flow, a problem when many flows should spread (check RSS with \`ethtool -x\` and XPS in \`queues/tx-N/xps_cpus\`). Per-queue drops and TX timeouts stay at 0.`,
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
    queues: {
      type: 'boolean',
      default: true,
      description: 'Read the queue layout, TX timeouts and BQL (sysfs) and, on multi-queue devices, per-queue counters (ethtool -S).',
    },
  },
  requirements: [],
  overhead: 'none',
  driver: 'command',
  data: DATA,
  collect,
  parse: parse as ProbeDefinition['parse'],
};
