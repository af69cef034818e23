// Declared data shared by the findings of BPF probes: how their programs loaded and attached
// (engine/native/attach-plan.ts's LoadedRecord), what they cost (engine/probe/overhead.ts's
// OverheadReport), and the leading fields of the queueing (lib/netdev.ts) and transmit
// (lib/xmit.ts) sessions. Spread the *_FIELDS maps into a probe's Type.Object.
import Type from '#typebox';
import { nullable } from './fields.js';

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
    windowMs: Type.Number({ unit: 'ms', description: 'Time the guard watched the programs.' }),
    sampledMs: Type.Optional(
      Type.Number({
        unit: 'ms',
        description:
          "Time the kernel's statistics were on: the first second, then one interval in four (on, they cost every BPF program of the host two clock reads a run). Absent in recordings from before the guard sampled.",
      }),
    ),
    runCnt: Type.Integer({ unit: 'events', description: 'Program runs while the statistics were on.' }),
    runTimeNs: Type.Integer({ unit: 'ns', description: 'Time spent in the programs while the statistics were on.' }),
    cpu: Type.Number({ unit: 'share', description: 'Average share of one CPU the programs used while sampled.' }),
    peakCpu: Type.Number({ unit: 'share', description: 'Highest share of one CPU over one sampling interval.' }),
    eventsPerSec: Type.Number({ unit: 'events/s', description: 'Average program runs per second.' }),
    peakEventsPerSec: Type.Number({ unit: 'events/s', description: 'Highest program runs per second over one sampling interval.' }),
    nsPerEvent: Type.Union([Type.Number({ unit: 'ns' }), Type.Null()], { description: 'Average cost of one program run; null without runs.' }),
    stopped: Type.Optional(Type.String({ description: 'Why the guard stopped the probe early, when it did.' })),
  },
  { additionalProperties: false, description: 'What the BPF programs cost, and whether the overhead guard stopped them.' },
);

/** The flavours of a tracepoint attach (engine/native/attach-plan.ts, TracepointMethod). */
export const TRACEPOINT_METHOD = Type.Union([Type.Literal('raw_tracepoint'), Type.Literal('tp_btf'), Type.Literal('tracepoint')], {
  description: 'How the programs attached: raw tracepoint, tp_btf or the classic tracepoint.',
});

const BTF = Type.Union([Type.Literal('minimal (cached)'), Type.Literal('vmlinux')], {
  description: "Which BTF the programs' kernel reads were relocated against: the cached minimal one (raw_tracepoint) or the kernel's own.",
});

const ATTACHED_PROGRAM = Type.Object(
  {
    program: Type.String({ description: 'The BPF program.' }),
    target: Type.String({ description: 'Where it attached (a tracepoint or kernel function).' }),
    attachMs: Type.Number({ description: 'Time attaching it took.', unit: 'ms' }),
  },
  { additionalProperties: false },
);

/** The fields of a LoadedRecord as findings repeat them (loadedFields). */
export const LOADED_FIELDS = {
  method: TRACEPOINT_METHOD,
  btf: BTF,
  loadMs: Type.Number({ description: 'Time loading the BPF object into the kernel took.', unit: 'ms' }),
  attach: Type.Array(ATTACHED_PROGRAM, { description: 'Each program attached and where.' }),
  fallback: Type.Optional(Type.String({ description: 'Why the preferred attach methods were not used, when a fallback was.' })),
};

export const STOPPED = Type.String({ description: 'Set when the overhead guard stopped the probe early: the counts cover the time before.' });

/** The leading fields of a queueing probe's data (lib/netdev.ts's sessionData). */
export const NETDEV_SESSION_FIELDS = {
  method: TRACEPOINT_METHOD,
  // Records made before raw_tp was tried have no `btf`: they loaded against vmlinux.
  btf: Type.Optional(BTF),
  attach: LOADED_FIELDS.attach,
  loadMs: LOADED_FIELDS.loadMs,
  fallback: LOADED_FIELDS.fallback,
  filter: Type.Object(
    {
      dev: nullable(Type.String(), { description: 'The device filter (`dev`); null: every device.' }),
      netns: nullable(Type.String(), { description: 'The namespace filter (`netns`); null: every namespace.' }),
    },
    { additionalProperties: false, description: 'The filters the programs applied in the kernel.' },
  ),
  windowMs: Type.Number({ description: 'Time the programs were attached (shorter than `duration` when the guard stopped them).', unit: 'ms' }),
  overhead: Type.Optional(OVERHEAD),
  stopped: Type.Optional(STOPPED),
};

/** The leading fields of a net_dev_start_xmit probe's data (lib/xmit.ts's xmitSessionData). */
export const XMIT_SESSION_FIELDS = {
  ...LOADED_FIELDS,
  filter: Type.Object(
    {
      dev: NETDEV_SESSION_FIELDS.filter.properties.dev,
      netns: NETDEV_SESSION_FIELDS.filter.properties.netns,
      srcIp: nullable(Type.String(), { description: 'Only packets from this IPv4 address; null: any.' }),
      dstIp: nullable(Type.String(), { description: 'Only packets to this IPv4 address; null: any.' }),
      srcPort: nullable(Type.Integer(), { description: 'Only TCP/UDP packets from this port; null: any.' }),
      dstPort: nullable(Type.Integer(), { description: 'Only TCP/UDP packets to this port; null: any.' }),
      protocol: Type.Union([Type.Literal('all'), Type.Literal('any'), Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('icmp')], { description: 'Only packets of this IP protocol (`all` and `any`: every one).' }),
    },
    { additionalProperties: false, description: 'The filters the program applied in the kernel.' },
  ),
  windowMs: NETDEV_SESSION_FIELDS.windowMs,
  overhead: NETDEV_SESSION_FIELDS.overhead,
  stopped: NETDEV_SESSION_FIELDS.stopped,
  notes: Type.Array(Type.String(), { description: 'What limits the finding: an early stop, a fallback, a full map.' }),
};

/** What a kprobe session (probes/lib/kprobe-session.ts) reports of its programs; `example` names one (`kprobe ip_defrag`). */
export const kprobeSessionFields = (example?: string) => ({
  attached: Type.Array(Type.String(), { description: `Programs attached${example ? ` (\`${example}\`)` : ''}.` }),
  failed: Type.Array(Type.String(), { description: 'Programs that did not attach, with why.' }),
  windowMs: Type.Number({ description: 'Time the programs counted.', unit: 'ms' }),
});
