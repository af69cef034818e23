// qdisc.drops: tc's qdisc counters (the reader qdisc.stats reports) joined with the drops the
// kernel frees with a qdisc/tc drop reason (the kernel drop session), over the same window: the
// BPF programs are attached first, tc is read at the start and the end while they are, and
// the maps are read after. Both halves are the library's (probes/lib/qdiscs.ts, lib/drops/).
import { formatMs } from '../../engine/duration.js';
import type { Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord } from '../../engine/probe/types.js';
import { readDrops } from '../lib/drops/read.js';
import { collectDrops, DROPS_BUDGET, DROPS_REQUIREMENTS } from '../lib/drops/session.js';
import { durationParam } from '../lib/params.js';
import { depths, keyOf, qdiscDeltas, sampleQdiscs, TC_REQUIREMENTS } from '../lib/qdiscs.js';
import { addCount, sortedCounts } from '../lib/tally.js';
import { DATA, type QdiscDropsData } from './data.js';
import { nativeRun } from '../lib/bpf-probe.js';

/** Kernel drop reasons of the queueing layer: QDISC_DROP, QDISC_OVERLIMIT, TC_EGRESS... */
const QDISC_REASON = /^(QDISC_|TC_)/;
/** Enough rows of drops.kernel's (reason, location, device) groups to sum per device. */
const GROUPS = 1000;

export interface QdiscDropsQdisc {
  dev: string;
  kind: string;
  handle: string;
  parent: string;
  /** 0 for a device's top-level qdiscs (root, ingress/clsact). */
  depth: number;
  drops: number;
  overlimits: number;
  backlog_packets: number;
}

export interface QdiscDropsDevice {
  dev: string;
  /** tc's drop delta summed over the device's top-level qdiscs (children's drops are in them). */
  tcDrops: number;
  /** Drops the kernel freed on this device with a QDISC_* / TC_* reason. */
  kernelDrops: number;
  kernelReasons: Record<string, number>;
  /** Drops on this device with any other reason (not the qdisc's doing). */
  otherReasons: Record<string, number>;
  /** tc and the kernel agree within 5% (or 1 packet). */
  agree: boolean;
  /** The qdisc that dropped the most (the innermost on a tie), when one did. */
  dropper?: { kind: string; handle: string; drops: number };
}

export type { QdiscDropsData } from './data.js';

/** The devices whose qdiscs tc reads: `dev`, or every device. */
function tcDevices(params: Params): string[] {
  const dev = typeof params.dev === 'string' ? params.dev : '';
  return dev === '' ? [] : [dev];
}

function dropsParams(params: Params): Params {
  return { duration: params.duration as number, dev: (params.dev as string | undefined) ?? '', stacks: false, top: GROUPS, protocol: 'any', port: 0 };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  if ((params.duration as number) <= 0) throw new Error('duration must be above 0: the join needs a window');
  await collectDrops(dropsParams(params), io, { window: (windowIO) => sampleQdiscs(windowIO, tcDevices(params), params.duration as number) });
}

/** Within 5% of the larger count, or 1 packet. */
export function agrees(a: number, b: number): boolean {
  return Math.abs(a - b) <= Math.max(1, Math.ceil(0.05 * Math.max(a, b)));
}

function parse(records: RawRecord[], params: Params): ProbeResult<QdiscDropsData> {
  const tc = qdiscDeltas(records);
  const kernel = readDrops(records, dropsParams(params)).data;
  const notes = [...tc.notes];
  const depth = depths(tc.qdiscs);
  const qdiscs: QdiscDropsQdisc[] = tc.qdiscs.map((q) => ({
    dev: q.dev,
    kind: q.kind,
    handle: q.handle,
    parent: q.parent,
    depth: depth.get(keyOf(q)) ?? 0,
    drops: q.drops,
    overlimits: q.overlimits,
    backlog_packets: q.backlog_packets,
  }));

  const kernelBy = new Map<string, { qdisc: Record<string, number>; other: Record<string, number> }>();
  for (const g of kernel.top) {
    let k = kernelBy.get(g.device);
    if (!k) kernelBy.set(g.device, (k = { qdisc: {}, other: {} }));
    addCount(QDISC_REASON.test(g.reason) ? k.qdisc : k.other, g.reason, g.count);
  }
  const listed = kernel.top.reduce((n, g) => n + g.count, 0);
  if (listed < kernel.total) notes.push(`${kernel.total - listed} kernel drops were not attributed to a device (too many groups or a full map)`);

  const names = [...new Set([...qdiscs.map((q) => q.dev), ...[...kernelBy.entries()].filter(([, k]) => Object.keys(k.qdisc).length > 0).map(([d]) => d)])].sort();
  const devices: QdiscDropsDevice[] = names.map((dev) => {
    const mine = qdiscs.filter((q) => q.dev === dev);
    const tcDrops = mine.filter((q) => q.depth === 0).reduce((n, q) => n + q.drops, 0);
    const k = kernelBy.get(dev) ?? { qdisc: {}, other: {} };
    const kernelDrops = Object.values(k.qdisc).reduce((n, v) => n + v, 0);
    const top = mine.filter((q) => q.drops > 0).sort((a, b) => b.drops - a.drops || b.depth - a.depth)[0];
    if (mine.length === 0) notes.push(`${dev}: the kernel counted qdisc drops but tc showed no qdisc there (another namespace?)`);
    return {
      dev,
      tcDrops,
      kernelDrops,
      kernelReasons: sortedCounts(k.qdisc),
      otherReasons: sortedCounts(k.other),
      agree: agrees(tcDrops, kernelDrops),
      ...(top ? { dropper: { kind: top.kind, handle: top.handle, drops: top.drops } } : {}),
    };
  });
  const kernelReasons: Record<string, number> = {};
  for (const d of devices) for (const [r, n] of Object.entries(d.kernelReasons)) addCount(kernelReasons, r, n);
  const totals = {
    tcDrops: devices.reduce((n, d) => n + d.tcDrops, 0),
    kernelDrops: devices.reduce((n, d) => n + d.kernelDrops, 0),
    kernelReasons: sortedCounts(kernelReasons),
  };
  const data: QdiscDropsData = {
    durationMs: tc.durationMs,
    method: kernel.method,
    attach: kernel.attach,
    devices,
    qdiscs,
    totals,
    agree: devices.every((d) => d.agree),
    notes,
  };

  const span = formatMs(params.duration as number);
  const dropping = devices.filter((d) => d.tcDrops + d.kernelDrops > 0).sort((a, b) => b.tcDrops + b.kernelDrops - (a.tcDrops + a.kernelDrops));
  const reasons = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k} ${v}`).join(', ');
  let summary: string;
  if (dropping.length === 0) summary = `no qdisc drops in ${span} on ${devices.length} device${devices.length === 1 ? '' : 's'} (tc and kernel agree)`;
  else {
    const w = dropping[0]!;
    const who = w.dropper ? `${w.dropper.kind} ${w.dropper.handle} on ${w.dev}` : w.dev;
    const verdict = w.agree ? 'agree' : 'DISAGREE';
    summary = `${who}: tc counted ${w.tcDrops} drops in ${span}, the kernel ${w.kernelDrops} (${reasons(w.kernelReasons) || 'no QDISC_* reason'}): ${verdict}${dropping.length > 1 ? `; ${dropping.length} devices dropping` : ''}`;
  }
  const disagree = devices.filter((d) => !d.agree);
  return {
    data,
    summary,
    severity: dropping.length > 0 ? 'critical' : disagree.length > 0 ? 'warning' : 'info',
    charts: dropping.length
      ? [
          {
            kind: 'bar',
            title: `Qdisc drops in ${span}: tc vs kernel`,
            unit: 'packets',
            bars: dropping.flatMap((d) => [
              { label: `${d.dev} tc`, value: d.tcDrops },
              { label: `${d.dev} kernel`, value: d.kernelDrops },
            ]),
          },
        ]
      : [],
    tables: [
      {
        title: 'Per device: tc drops vs kernel QDISC_*/TC_* drop reasons',
        columns: ['device', 'dropping qdisc', 'tc drops', 'kernel drops', 'kernel reasons', 'agree', 'other reasons'],
        rows: devices.map((d) => [d.dev, d.dropper ? `${d.dropper.kind} ${d.dropper.handle}` : '-', d.tcDrops, d.kernelDrops, reasons(d.kernelReasons) || '-', d.agree ? 'yes' : 'NO', reasons(d.otherReasons) || '-']),
      },
      {
        title: 'Qdiscs',
        columns: ['device', 'kind', 'handle', 'parent', 'depth', 'drops', 'overlimits', 'backlog packets'],
        rows: qdiscs.map((q) => [q.dev, q.kind, q.handle, q.parent, q.depth, q.drops, q.overlimits, q.backlog_packets]),
      },
    ],
  };
}

export const qdiscDrops: ProbeDefinition<QdiscDropsData> = {
  id: 'qdisc.drops',
  title: 'Qdisc drops: tc counters joined with kernel drop reasons',
  description: `Attaches drops.kernel's \`skb:kfree_skb\` program (filtered to \`dev\` when given), reads \`tc -s -j qdisc show\` at the start and the end of \`duration\` while it is attached, and joins the two per device: each qdisc's drop delta as tc counts it next to the packets the kernel freed with a queueing-layer drop reason (\`QDISC_DROP\`, \`QDISC_OVERLIMIT\`, \`QDISC_CONGESTED\`, \`TC_EGRESS\`... names from the running kernel's tracepoint format), and whether they agree (within 5%).

Use it when qdisc.stats shows drops and you need to know how the qdisc dropped them (limit reached, overlimit, congestion signal, a tc filter), or to check that a qdisc's counters tell the whole story: drops with a \`QDISC_*\` reason that tc does not count point at a qdisc that was replaced, or at one in another namespace.

Replaces the seed's \`packet-drop/qdisc_drop_trace.py\` (PROBES.md row 29): its per-packet qdisc drop trace and its \`tc -s qdisc\` counters, joined.`,
  normal: `No drops on any qdisc, and the kernel counts no \`QDISC_*\` reason. When a shaper drops, tc's delta and the kernel's \`QDISC_*\` count agree: a disagreement means drops the counters do not explain.`,
  replaces: ['packet-drop/qdisc_drop_trace.py'],
  params: {
    dev: { type: 'string', default: '', description: 'Device whose qdiscs to watch (of this network namespace); empty means every device.', cliOption: 'dev' },
    duration: durationParam('How long to watch.'),
  },
  requirements: [...DROPS_REQUIREMENTS, ...TC_REQUIREMENTS],
  memory: { objects: ['drops.kernel'] },
  ...nativeRun(DROPS_BUDGET),
  data: DATA,
  collect,
  parse,
};
