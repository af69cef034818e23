// net.defrag's declared data: IP reassembly over the window, from the namespace's SNMP counters,
// the fragments the kernel dropped with a reassembly reason (tracepoint), and the reassembly
// queues themselves (kprobes, where they attach).
import Type, { type Static } from '#typebox';
import { bytes, events, nullable, packets } from '../lib/data/fields.js';
import { kprobeSessionFields, LOADED_FIELDS, OVERHEAD, TRACEPOINT_METHOD } from '../lib/data/session.js';

const perSource = (what: string, description: string) => Type.Record(Type.String(), packets(what), { description });

/** The SNMP counters of IPV4_COUNTERS (probe.ts), as rises over the window. */
const counters = (family: string) =>
  Type.Object(
    {
      ReasmReqds: packets('Fragments received that needed reassembly.'),
      ReasmOKs: packets('Datagrams reassembled.'),
      ReasmFails: packets('Reassembly failures (timeouts, too-far queues, out of memory, malformed).'),
      ReasmTimeout: packets('Datagrams whose fragments did not all arrive within ipfrag_time.'),
      FragOKs: packets('Datagrams this namespace fragmented to send.'),
      FragFails: packets('Datagrams that needed fragmenting but could not be (DF set, or no memory).'),
      FragCreates: packets('Fragments this namespace created.'),
    },
    { additionalProperties: false, description: `${family} counter rises over the window.` },
  );

const DEFRAG_ATTACH = Type.Object(
  {
    program: LOADED_FIELDS.attach.items.properties.program,
    method: TRACEPOINT_METHOD,
    target: LOADED_FIELDS.attach.items.properties.target,
    attachMs: LOADED_FIELDS.attach.items.properties.attachMs,
    loadMs: LOADED_FIELDS.loadMs,
    btf: LOADED_FIELDS.btf,
  },
  { additionalProperties: false },
);

const FLOW = Type.Object(
  {
    source: Type.String({ description: 'Source address of the dropped fragments.' }),
    destination: Type.String({ description: 'Their destination address.' }),
    protocol: Type.String({ description: 'Their protocol (`udp`, `icmp`, `ipv6-frag`, or its number).' }),
    reason: Type.String({ description: 'The drop reason (`FRAG_REASM_TIMEOUT`, `FRAG_TOO_FAR`, `DUP_FRAG`).' }),
    count: packets('Fragments dropped.'),
  },
  { additionalProperties: false },
);

const SOURCE = Type.Object(
  {
    source: Type.String({ description: 'Source address.' }),
    drops: packets('Its fragments dropped.'),
    byReason: perSource('Its fragments dropped for this reason.', 'Its drops by reason.'),
  },
  { additionalProperties: false },
);

const DROPS = Type.Object(
  {
    method: TRACEPOINT_METHOD,
    attach: Type.Array(DEFRAG_ATTACH, { description: 'The program attached to skb:kfree_skb, and how.' }),
    fallback: LOADED_FIELDS.fallback,
    windowMs: Type.Number({ description: 'Time the program was attached.', unit: 'ms' }),
    reasons: Type.Array(Type.String(), { description: 'The drop reasons counted (this kernel’s FRAG_* and DUP_FRAG).' }),
    total: packets('Fragments dropped with a reassembly reason (host-wide).'),
    lost: packets('Drops counted but not attributed to a source (the map was full); included in `total`.'),
    byReason: perSource('Fragments dropped for this reason.', 'Drops by reason, most first.'),
    bySource: perSource('Fragments from this source dropped.', 'Drops per source address, most first.'),
    sources: Type.Array(SOURCE, { description: 'Each source with its drops by reason, most first.' }),
    flows: Type.Array(FLOW, { description: 'Per (source, destination, protocol, reason), most first (the first `top`).' }),
    overhead: Type.Optional(OVERHEAD),
  },
  { additionalProperties: false },
);

const WHO = {
  protocol: Type.String({ description: 'The datagram’s protocol (`udp`, `icmp`, or its number).' }),
  user: Type.String({ description: 'Who asked for the reassembly (`local delivery`, `conntrack in`...).' }),
  netns: nullable(Type.String(), { description: 'The namespace reassembling; null for ebpfnet’s own.' }),
};

const ATTEMPT_FLOW = Type.Object(
  {
    source: Type.String({ description: 'Source address.' }),
    destination: Type.String({ description: 'Destination address.' }),
    ...WHO,
    fragments: packets('Fragments handed to reassembly.'),
  },
  { additionalProperties: false },
);

const EXPIRED_QUEUE = Type.Object(
  {
    source: Type.String({ description: 'Source address.' }),
    destination: Type.String({ description: 'Destination address.' }),
    id: Type.Integer({ description: 'The datagram’s IP ID.' }),
    ...WHO,
    expiries: events('Times this queue key expired in the window (above 1: the sender reused the ID).'),
    receivedBytes: bytes('Bytes of data that arrived.'),
    totalBytes: nullable(Type.Integer(), { description: 'The datagram’s data length, known once its last fragment came; null before.', unit: 'bytes' }),
    firstIn: Type.Boolean({ description: 'Its first fragment arrived.' }),
    lastIn: Type.Boolean({ description: 'Its last fragment arrived.' }),
    missing: Type.Union([Type.Literal('first'), Type.Literal('last'), Type.Literal('first and last'), Type.Literal('middle')], {
      description: 'Which fragments never came, as far as the queue can tell.',
    }),
  },
  { additionalProperties: false },
);

const QUEUES = Type.Object(
  {
    ...kprobeSessionFields('kprobe ip_defrag'),
    attempts: packets('Fragments handed to IPv4 reassembly (ip_defrag).'),
    attemptsBySource: perSource('Fragments from this source handed to reassembly.', 'Fragments handed to reassembly per source address, most first.'),
    attemptFlows: Type.Array(ATTEMPT_FLOW, { description: 'Per (source, destination, protocol, user, namespace), most first (the first `top`).' }),
    expired: events('Incomplete queues that expired (ip_expire): reassembly timeouts, one per datagram (critical).'),
    expiredBySource: Type.Record(Type.String(), Type.Integer({ unit: 'events' }), { description: 'Expired queues per source address, most first.' }),
    expiredQueues: Type.Array(EXPIRED_QUEUE, { description: 'Each expired queue, most expiries first (the first `top`).' }),
    lost: events('Fragments or expiries counted but not kept (a map was full); included in the totals.'),
    overhead: Type.Optional(OVERHEAD),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    durationMs: Type.Number({ description: 'Time between the two reads of the counters.', unit: 'ms' }),
    netns: nullable(Type.String(), { description: 'The namespace whose counters were read; null: ebpfnet’s own.' }),
    ipv4: counters('IPv4 (/proc/net/snmp Ip:)'),
    ipv6: counters('IPv6 (/proc/net/snmp6 Ip6*; all 0 where IPv6 is off)'),
    requests: packets('Both families: fragments received for reassembly (ReasmReqds).'),
    reassembled: packets('Both families: datagrams reassembled (ReasmOKs).'),
    failures: packets('Both families: reassembly failures (ReasmFails; critical).'),
    timeouts: packets('Both families: reassembly timeouts (ReasmTimeout).'),
    successRatio: nullable(Type.Number(), {
      description: 'reassembled / (reassembled + failures), 0..1; null when nothing was reassembled or failed.',
      unit: 'share',
    }),
    fragments: Type.Boolean({ description: 'Fragments arrived or were made in the window (a warning: fragmentation costs).' }),
    drops: nullable(DROPS, { description: 'The kernel’s reassembly drops (host-wide, by address); null when not traced (see `dropsSkipped`).' }),
    dropsSkipped: Type.Optional(Type.String({ description: 'Why the drops were not traced, when they were not.' })),
    queues: nullable(QUEUES, { description: 'The reassembly queues from kprobes on ip_defrag and ip_expire; null when not tried (`kprobes: false`, `drops: false`).' }),
    notes: Type.Array(Type.String(), { description: 'What limits the finding: unreadable counters, full maps, kprobes that did not attach.' }),
  },
  { additionalProperties: false },
);

export type DefragData = Static<typeof DATA>;
export type DefragAttach = Static<typeof DEFRAG_ATTACH>;
export type DefragDrops = Static<typeof DROPS>;
export type DefragFlow = Static<typeof FLOW>;
export type DefragQueues = Static<typeof QUEUES>;
export type ExpiredQueue = Static<typeof EXPIRED_QUEUE>;
