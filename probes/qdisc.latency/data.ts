// qdisc.latency's declared data: how long packets waited in each device's root qdisc (sojourn
// time), per device, and how the bpftrace script ran.
import Type, { type Static } from '#typebox';
import { events, nullable, packets } from '../lib/data/fields.js';
import { OVERHEAD, STOPPED } from '../lib/data/session.js';

const ns = (description: string) => Type.Number({ description, unit: 'ns' });
const msOrNull = (description: string) => nullable(Type.Number(), { description, unit: 'ms' });

const DEVICE = Type.Object(
  {
    ifindex: Type.Integer({ description: 'The device’s ifindex.' }),
    dev: Type.String({ description: 'The device’s name in ebpfnet’s namespace, or `ifindex N` when none has that index there.' }),
    count: packets('Packets timed (enqueued and dequeued within the window).'),
    enqueued: packets('Packets enqueued within the window (some may still be queued or dropped at its end).'),
    bulkUntimed: packets('Packets of bulk dequeues after the first: dequeued but not timed.'),
    p50Ns: ns('Median sojourn, at log2 bucket resolution (the bucket’s upper bound), capped at max.'),
    p95Ns: ns('95th percentile sojourn, at log2 bucket resolution, capped at max.'),
    p99Ns: ns('99th percentile sojourn, at log2 bucket resolution, capped at max (a warning above 1 ms).'),
    maxNs: ns('Longest sojourn seen (exact).'),
    buckets: Type.Array(
      Type.Object(
        {
          lowNs: ns('Inclusive lower bound.'),
          highNs: ns('Inclusive upper bound.'),
          count: packets('Packets in the bucket.'),
        },
        { additionalProperties: false },
      ),
      { description: 'Non-empty log2 buckets of sojourn times.' },
    ),
  },
  { additionalProperties: false },
);

/** engine/probe/bpftrace.ts's BpftraceAttach. */
const BPFTRACE_ATTACH = Type.Object(
  {
    attachMs: msOrNull('Time from spawning bpftrace to its `attached_probes` line (parse, LLVM compile, maps); null when it printed none.'),
    loadedMs: msOrNull('Time from spawning bpftrace until all its programs were seen loaded; null when not seen.'),
    attachedProbes: nullable(Type.Integer(), { description: 'The probes bpftrace said it attached (BEGIN and END included); null when it printed none.' }),
    probes: Type.Array(Type.String(), { description: 'The attach points the script lists, positional arguments filled in.' }),
    programCount: Type.Integer({ description: 'BPF programs bpftrace held loaded while tracing.' }),
    programs: Type.Array(
      Type.Object(
        {
          progId: Type.Integer({ description: 'The kernel’s program id.' }),
          progType: Type.Integer({ description: 'The kernel’s program type number.' }),
          method: Type.String({ description: 'The attach method, from the program type (`tracepoint`, `kprobe`...).' }),
          target: Type.Optional(Type.String({ description: 'The script’s attach point this program runs for, when it can be told.' })),
        },
        { additionalProperties: false },
      ),
      { description: 'The programs bpftrace loaded.' },
    ),
  },
  { additionalProperties: false, description: 'How bpftrace attached.' },
);

export const DATA = Type.Object(
  {
    durationMs: Type.Number({ description: 'The window asked for (`duration`).', unit: 'ms' }),
    filter: Type.Optional(
      Type.Object(
        { dev: Type.String({ description: 'The device asked for.' }), ifindex: Type.Integer({ description: 'Its ifindex.' }) },
        { additionalProperties: false, description: 'The device asked for (`dev`), when one was.' },
      ),
    ),
    devices: Type.Array(DEVICE, { description: 'Devices, most packets timed first.' }),
    totalPackets: packets('Packets timed over every device.'),
    lostEvents: events('Events bpftrace lost.'),
    attach: BPFTRACE_ATTACH,
    windowMs: msOrNull('Time the programs ran: `durationMs`, or less when the overhead guard stopped bpftrace early.'),
    overhead: Type.Optional(OVERHEAD),
    stopped: Type.Optional(STOPPED),
    notes: Type.Array(Type.String(), { description: 'What limits the finding: untimed bulk dequeues, unnamed devices, lost events, an early stop.' }),
  },
  { additionalProperties: false },
);

export type QdiscLatencyData = Static<typeof DATA>;
export type QdiscLatencyDevice = Static<typeof DEVICE>;
