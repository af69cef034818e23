// Declared-data fields several probes' findings share (probes/<id>/data.ts): the overhead
// guard's report, a drops.kernel session's attach record, an interface's kernel counters.
import Type, { type TSchema } from 'typebox';

/** A count per key (reason, device, function...): `{ NETFILTER_DROP: 12 }`. */
export const countsBy = (description: string, unit = 'packets') => Type.Record(Type.String(), Type.Integer({ unit }), { description });

/** What the overhead guard measured of a probe's BPF programs (engine/probe/overhead.ts, OverheadReport). */
export const OVERHEAD = Type.Object(
  {
    budget: Type.Object(
      {
        cpu: Type.Number({ unit: 'share', description: 'Share of one CPU the programs may use on average.' }),
        eventsPerSec: Type.Number({ unit: 'events/s', description: 'Program runs per second allowed.' }),
      },
      { description: 'The budget in force: the probe\'s declared one with `--budget` on top.' },
    ),
    stats: Type.String({ description: 'How run statistics were counted (`BPF_ENABLE_STATS`...), or `unavailable`.' }),
    windowMs: Type.Number({ unit: 'ms', description: 'Time the statistics cover.' }),
    runCnt: Type.Integer({ unit: 'events', description: 'Program runs in the window.' }),
    runTimeNs: Type.Integer({ unit: 'ns', description: 'Time spent in the programs in the window.' }),
    cpu: Type.Number({ unit: 'share', description: 'Average share of one CPU the programs used.' }),
    peakCpu: Type.Number({ unit: 'share', description: 'Highest share of one CPU over one sampling interval.' }),
    eventsPerSec: Type.Number({ unit: 'events/s', description: 'Average program runs per second.' }),
    peakEventsPerSec: Type.Number({ unit: 'events/s', description: 'Highest program runs per second over one sampling interval.' }),
    nsPerEvent: Type.Union([Type.Number({ unit: 'ns' }), Type.Null()], { description: 'Average cost of one program run; null without runs.' }),
    stopped: Type.Optional(Type.String({ description: 'Why the guard stopped the probe early, when it did.' })),
  },
  { additionalProperties: false, description: 'What the BPF programs cost, and whether the overhead guard stopped them.' },
);

/** How a drops.kernel session attached its program (drops.kernel and the probes that run its session). */
export const DROPS_ATTACH = Type.Object(
  {
    program: Type.String({ description: 'The BPF program attached.' }),
    method: Type.Union([Type.Literal('raw_tracepoint'), Type.Literal('tp_btf'), Type.Literal('tracepoint'), Type.Literal('kprobe')], {
      description: 'How it attached to skb:kfree_skb.',
    }),
    target: Type.String({ description: 'What it attached to.' }),
    attachMs: Type.Number({ unit: 'ms', description: 'Time the attach took.' }),
    loadMs: Type.Optional(Type.Number({ unit: 'ms', description: 'In-process load time of the object.' })),
    btf: Type.Optional(Type.String({ description: 'The BTF CO-RE reads were relocated against.' })),
  },
  { additionalProperties: false },
);

export const DROPS_METHOD = Type.Union([DROPS_ATTACH.properties.method, Type.Null()], { description: 'How the drop program attached; null when nothing attached.' });

/** What each counter of /sys/class/net/<dev>/statistics counts (as deltas over the window). */
const INTERFACE_COUNTER_TEXT = {
  rx_packets: ['packets', 'Packets received.'],
  tx_packets: ['packets', 'Packets sent.'],
  rx_bytes: ['bytes', 'Bytes received.'],
  tx_bytes: ['bytes', 'Bytes sent.'],
  rx_dropped: ['packets', 'Received packets the driver or the stack dropped (no buffer, unknown protocol...).'],
  tx_dropped: ['packets', 'Packets dropped on their way out (on a tap: towards the VM).'],
  rx_errors: ['packets', 'Bad packets received.'],
  tx_errors: ['packets', 'Packets that could not be sent.'],
  rx_missed_errors: ['packets', 'Packets the device missed for want of room in its ring or FIFO.'],
  rx_fifo_errors: ['packets', 'Receive FIFO overruns.'],
  rx_over_errors: ['packets', 'Receive ring overflows.'],
  rx_crc_errors: ['packets', 'Frames received with a bad CRC.'],
  rx_frame_errors: ['packets', 'Frames received with an alignment error.'],
  rx_length_errors: ['packets', 'Frames received with a bad length.'],
  tx_fifo_errors: ['packets', 'Transmit FIFO underruns.'],
  tx_carrier_errors: ['packets', 'Frames lost for loss of carrier while sending.'],
  tx_aborted_errors: ['packets', 'Transmits the device aborted.'],
  collisions: ['events', 'Collisions on the medium.'],
  multicast: ['packets', 'Multicast packets received.'],
} as const;

/** The deltas of an interface's kernel counters over the window, one field per counter. */
export const INTERFACE_COUNTERS = Type.Object(
  Object.fromEntries(Object.entries(INTERFACE_COUNTER_TEXT).map(([name, [unit, description]]) => [name, Type.Integer({ unit, description })])) as {
    [K in keyof typeof INTERFACE_COUNTER_TEXT]: ReturnType<typeof Type.Integer>;
  },
  { additionalProperties: false, description: 'Deltas of /sys/class/net/<dev>/statistics over the window.' },
);

/** The flavours of a tracepoint attach (engine/native/attach-plan.ts, TracepointMethod). */
export const TRACEPOINT_METHOD = Type.Union([Type.Literal('raw_tracepoint'), Type.Literal('tp_btf'), Type.Literal('tracepoint')], {
  description: 'How the programs attached: raw tracepoint, tp_btf or the classic tracepoint.',
});

/** How a probe's programs loaded and attached (engine/native/attach-plan.ts, LoadedRecord), for a data object to spread. */
export const loadedFields = <M extends TSchema>(method: M) => ({
  method,
  btf: Type.String({ description: "The BTF CO-RE reads were relocated against: `minimal (cached)` or the kernel's `vmlinux`." }),
  loadMs: Type.Number({ unit: 'ms', description: 'Time the object took to load.' }),
  attach: Type.Array(
    Type.Object(
      {
        program: Type.String({ description: 'The BPF program.' }),
        target: Type.String({ description: 'What it attached to.' }),
        attachMs: Type.Number({ unit: 'ms', description: 'Time the attach took.' }),
      },
      { additionalProperties: false },
    ),
    { description: 'Each program attached.' },
  ),
  fallback: Type.Optional(Type.String({ description: 'Why the preferred flavours were not used, when another one was.' })),
});

/** A log2 histogram's non-empty buckets, bounds in µs. */
export const log2Buckets = (count: { unit: string; description: string }, description: string) =>
  Type.Array(
    Type.Object(
      {
        lowUs: Type.Number({ unit: 'µs', description: 'Inclusive lower bound.' }),
        highUs: Type.Number({ unit: 'µs', description: 'Exclusive upper bound.' }),
        count: Type.Integer(count),
      },
      { additionalProperties: false },
    ),
    { description },
  );
