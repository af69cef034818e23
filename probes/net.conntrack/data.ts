// net.conntrack's finding data: the connection tracker's statistics over the window against
// the table's fill, its events, the netfilter drop reasons, and nf_conntrack_in's verdicts.
import Type, { type Static } from '#typebox';
import { countsBy } from '../lib/data/fields.js';
import { CT_KERNEL } from '../lib/data/conntrack.js';

const TYPE_COUNTS = (description: string) =>
  Type.Object(
    {
      NEW: Type.Integer({ unit: 'events', description: 'NEW events.' }),
      UPDATE: Type.Integer({ unit: 'events', description: 'UPDATE events.' }),
      DESTROY: Type.Integer({ unit: 'events', description: 'DESTROY events.' }),
    },
    { additionalProperties: false, description },
  );

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T, description: string) => Type.Union([schema, Type.Null()], { description });

/** The tracker's events over the window (events.ts). */
export const EVENTS = Type.Object(
  {
    listened: Type.Boolean({ description: 'The listener (`conntrack -E`) ran over the window.' }),
    error: Type.Optional(Type.String({ description: 'Why it did not.' })),
    total: Type.Integer({ unit: 'events', description: 'Events that matched the filters.' }),
    byType: TYPE_COUNTS('Events by type.'),
    byProtocol: Type.Record(Type.String(), TYPE_COUNTS('Events of the protocol by type.'), { description: 'Events by protocol, then type.' }),
    byState: countsBy('Events by the protocol state they carried (`tcp SYN_SENT`).', 'events'),
    topFlows: Type.Array(
      Type.Object(
        {
          flow: Type.String({ description: '`tcp 10.0.0.1:42732 > 10.0.0.2:22` (the original direction).' }),
          proto: Type.String({ description: 'Its protocol.' }),
          events: Type.Integer({ unit: 'events', description: 'Its events.' }),
          byType: TYPE_COUNTS('Its events by type.'),
          lastState: nullable(Type.String(), 'The state of its last event (TCP...); null when none carried one.'),
          assured: Type.Boolean({ description: 'It was seen [ASSURED] (traffic both ways).' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Entries with the most events, most first.' },
    ),
    destroyedEarly: Type.Integer({ unit: 'events', description: 'Entries destroyed without ever being assured (no answer, reset, evicted by early_drop...).' }),
    destroyedEarlyByProtocol: countsBy('Those by protocol.', 'events'),
    earlyDestroys: Type.Array(
      Type.Object(
        {
          flow: Type.String({ description: 'The entry (original direction).' }),
          proto: Type.String({ description: 'Its protocol.' }),
          state: nullable(Type.String(), 'Its state when destroyed (TCP...); null when none.'),
          lifetimeMs: nullable(Type.Number({ unit: 'ms' }), 'From its NEW event to its DESTROY, when both were in the window.'),
        },
        { additionalProperties: false },
      ),
      { description: 'The first entries destroyed early.' },
    ),
    overflows: Type.Integer({ unit: 'events', description: "Times the listener's socket overflowed: its counts miss events." }),
    unparsed: Type.Integer({ unit: 'events', description: 'Lines of `conntrack -E` that could not be read.' }),
  },
  { additionalProperties: false, description: "The tracker's events over the window; null with no window or `events: false`." },
);

export const DATA = Type.Object(
  {
    durationMs: Type.Number({ unit: 'ms', description: 'Time between the two reads (0 with one read).' }),
    cumulative: Type.Boolean({ description: 'One read only (duration 0): statistics are totals since boot.' }),
    netns: nullable(Type.String(), "The network namespace read; null: ebpfnet's."),
    loaded: Type.Boolean({ description: 'Connection tracking is active in the namespace (its files exist).' }),
    count: Type.Integer({ description: 'Entries in the table at the end.' }),
    max: Type.Integer({ description: 'The table\'s limit (nf_conntrack_max; 0: unlimited).' }),
    buckets: nullable(Type.Integer(), 'The hash table\'s buckets; null when unreadable.'),
    fillPct: Type.Number({ unit: '%', description: 'count / max in percent (0 when max is 0: unlimited).' }),
    full: Type.Boolean({ description: 'The table is full or within 1% of it.' }),
    stats: Type.Record(Type.String(), Type.Integer({ unit: 'events' }), {
      description: 'Every statistic of /proc/net/stat/nf_conntrack over the window (found, invalid, insert_failed, drop, early_drop...), summed over CPUs.',
    }),
    drops: Type.Integer({ unit: 'packets', description: 'Packets the tracker dropped because it could not make a new entry (the `drop` statistic).' }),
    losses: Type.Array(
      Type.Object(
        {
          stat: Type.String({ description: 'The statistic (drop, early_drop, insert_failed, invalid).' }),
          delta: Type.Integer({ unit: 'events', description: 'Its rise.' }),
          meaning: Type.String({ description: 'What it means.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Rises of the loss statistics, largest first.' },
    ),
    events: Type.Union([EVENTS, Type.Null()], { description: "The tracker's events over the window; null with no window or `events: false`." }),
    dropReasons: Type.Union(
      [
        Type.Object(
          {
            total: Type.Integer({ unit: 'packets', description: 'Drops with a netfilter or conntrack reason.' }),
            byReason: countsBy('Those by reason.'),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: 'Packets the kernel freed with a netfilter/conntrack drop reason in the namespace; null: not counted.' },
    ),
    kprobes: Type.Union([CT_KERNEL, Type.Null()], { description: "nf_conntrack_in verdicts from kprobes; null: not run." }),
    vmIps: nullable(Type.Array(Type.String()), "The VM's addresses the events are scoped to (vm_ips); null when none is given."),
    notes: Type.Array(Type.String(), { description: 'What could not be read or counted.' }),
  },
  { additionalProperties: false },
);

export type ConntrackData = Static<typeof DATA>;
export type ConntrackEventsData = Static<typeof EVENTS>;
export type { CtKernelData } from '../lib/data/conntrack.js';
