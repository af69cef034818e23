// qdisc.stats: the counters of every queueing discipline (`tc -s -j qdisc show`), read at
// the start and the end of a window; drops, overlimits and requeues over that window.
import { formatMs } from '../../engine/duration.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord } from '../../engine/probe/types.js';
import { depths, keyOf, qdiscDeltas, sampleQdiscs, TC_REQUIREMENTS, type QdiscEntry } from '../lib/qdiscs.js';
import { DATA, type QdiscData } from './data.js';

export type { QdiscData } from './data.js';

async function collect(params: Params, io: ProbeIO): Promise<void> {
  await sampleQdiscs(io, params.devices as string[], params.duration as number);
}

function parse(records: RawRecord[], params: Params): ProbeResult<QdiscData> {
  const requestedMs = params.duration as number;
  const { qdiscs, notes, cumulative, durationMs, last } = qdiscDeltas(records);

  const depth = depths(last);
  const isTop = (q: QdiscEntry) => (depth.get(keyOf(q)) ?? 0) === 0;
  const sum = (c: 'drops' | 'overlimits' | 'requeues' | 'packets') => qdiscs.filter(isTop).reduce((n, q) => n + q[c], 0);
  const totals = { drops: sum('drops'), overlimits: sum('overlimits'), requeues: sum('requeues'), packets: sum('packets') };
  const dropped = qdiscs
    .filter((q) => q.drops > 0)
    .sort((a, b) => b.drops - a.drops || (depth.get(keyOf(b)) ?? 0) - (depth.get(keyOf(a)) ?? 0) || b.overlimits - a.overlimits);
  const topQ = dropped[0];
  const data: QdiscData = {
    durationMs,
    cumulative,
    qdiscs,
    totals,
    dropping: dropped.map((q) => ({ dev: q.dev, kind: q.kind, handle: q.handle, drops: q.drops })),
    ...(topQ ? { top: { dev: topQ.dev, kind: topQ.kind, handle: topQ.handle, drops: topQ.drops, overlimits: topQ.overlimits } } : {}),
    notes,
  };

  const devCount = new Set(qdiscs.map((q) => q.dev)).size;
  const inventory = `${qdiscs.length} ${qdiscs.length === 1 ? 'qdisc' : 'qdiscs'} on ${devCount} ${devCount === 1 ? 'device' : 'devices'}`;
  const when = cumulative ? 'since creation' : `in ${formatMs(requestedMs)}`;
  const summary = topQ
    ? `${topQ.kind} ${topQ.handle} on ${topQ.dev} dropped ${topQ.drops} packets ${when} (${totals.drops} on all qdiscs, ${totals.overlimits} overlimits); ${inventory}`
    : `no qdisc dropped ${when}${totals.overlimits > 0 ? ` (${totals.overlimits} overlimits: shaping at work)` : ''}; ${inventory}`;

  const charts: ChartSpec[] = dropped.length
    ? [
        {
          kind: 'bar',
          title: `Drops by qdisc ${when}`,
          unit: 'packets',
          bars: dropped.map((q) => ({ label: `${q.dev} ${q.kind} ${q.handle}`, value: q.drops })),
        },
      ]
    : [];
  return {
    data,
    summary,
    severity: topQ ? (cumulative ? 'warning' : 'critical') : 'info',
    charts,
    tables: [
      {
        title: cumulative ? 'Qdiscs (counters since creation)' : `Qdiscs (counters over ${formatMs(requestedMs)})`,
        columns: ['device', 'kind', 'handle', 'parent', 'packets', 'bytes', 'drops', 'overlimits', 'requeues', 'backlog bytes', 'backlog packets'],
        rows: qdiscs.map((q) => [q.dev, q.kind, q.handle, q.parent, q.packets, q.bytes, q.drops, q.overlimits, q.requeues, q.backlog_bytes, q.backlog_packets]),
      },
    ],
  };
}

export const qdiscStats: ProbeDefinition = {
  id: 'qdisc.stats',
  title: 'Queueing discipline counters',
  description: `Reads the statistics of every queueing discipline (\`tc -s -j qdisc show\`) at the start and the end of \`duration\` and reports, per qdisc, the packets it sent and the packets it **dropped**, its **overlimits** (a shaper held packets back) and **requeues** (the driver pushed back) over that window, with its backlog at the end. \`duration: 0\` reads once and reports the counters since each qdisc was created (\`cumulative: true\`).

Use it when packets are lost or delayed on their way out of an interface: a shaper (tbf, htb) whose rate is below the traffic, or a queue whose limit is too small, drops here before the driver sees the packet. It costs nothing: tc reads counters over netlink.

Replaces the \`tc -s qdisc\` counter part of the seed's \`packet-drop/qdisc_drop_trace.py\` (PROBES.md row 29); the per-packet drop events come from the \`qdisc.drops\` tracing probe.`,
  normal: `Drops stay at 0. Overlimits on a shaping qdisc (tbf, htb) are normal while it shapes; drops there mean the traffic exceeds its rate for longer than its queue can hold. A backlog that stays high means packets wait in the queue (latency).`,
  replaces: ['packet-drop/qdisc_drop_trace.py'],
  params: {
    devices: {
      type: 'string[]',
      default: [],
      description: 'Devices whose qdiscs to read; empty means every device.',
      cliOption: 'dev',
    },
    duration: {
      type: 'duration',
      default: '5s',
      description: 'Time between the two reads; 0 reads once (counters since creation).',
      cliOption: 'duration',
    },
  },
  requirements: TC_REQUIREMENTS,
  overhead: 'none',
  driver: 'command',
  data: DATA,
  collect,
  parse,
};
