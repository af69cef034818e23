// other.tc's declared data: qdisc changes during the window (creates, destroys, resets) in
// order, what the filters and actions of the ingress/egress hooks did (hits.ts), and the
// filter-chain lookups the kprobes counted (kprobes.ts).
import Type, { type Static } from '#typebox';
import { bytes, DEVICE_LABEL, events, NETNS_LABEL, nullable, packets } from '../lib/data/fields.js';
import { kprobeSessionFields, NETDEV_SESSION_FIELDS, OVERHEAD } from '../lib/data/session.js';

const DIRECTION = Type.Union([Type.Literal('ingress'), Type.Literal('egress')], { description: 'The hook: ingress or egress.' });

const EVENT = Type.Object(
  {
    atMs: Type.Number({ description: 'Time after the programs attached.', unit: 'ms' }),
    type: Type.Union([Type.Literal('create'), Type.Literal('destroy'), Type.Literal('reset')], { description: 'What happened to the qdisc.' }),
    device: DEVICE_LABEL,
    dev: Type.String({ description: 'The device’s name.' }),
    netns: NETNS_LABEL,
    kind: Type.String({ description: 'The qdisc’s kind (`tbf`, `htb`, `fq_codel`, `noqueue`...).' }),
    handle: nullable(Type.String(), { description: 'Its handle in tc’s notation (`5:`; `none` for the kernel’s own qdiscs); null for a create whose handle could not be found.' }),
    handleFrom: Type.Union([Type.Literal('event'), Type.Literal('later event'), Type.Literal('tc'), Type.Null()], {
      description: 'Where the handle comes from: the event, a later destroy or reset of the same qdisc, or tc’s listing at the end; null when unknown.',
    }),
    parent: Type.String({ description: 'Its parent in tc’s notation (`root`, `ingress`, `1:10`).' }),
  },
  { additionalProperties: false },
);

const DEVICE_CHANGES = Type.Object(
  {
    device: DEVICE_LABEL,
    creates: events('Qdiscs created on the device.'),
    destroys: events('Qdiscs destroyed on the device.'),
    resets: events('Qdisc resets (queue flushed) on the device.'),
  },
  { additionalProperties: false },
);

const ACTION_HITS = Type.Object(
  {
    kind: Type.String({ description: 'The action’s kind (`mirred`, `bpf`...).' }),
    index: Type.Integer({ description: 'Its index in the action table (shared by every filter bound to it).' }),
    order: nullable(Type.Integer(), { description: 'Its position in its filter’s action list; null in the action table.' }),
    packets: packets('Packets it ran on in the window.'),
    bytes: bytes('Their bytes.'),
    drops: packets('Packets it dropped in the window.'),
    overlimits: packets('mirred: packets it could not send (its target device gone or down).'),
    mirred: Type.Optional(
      Type.Object(
        {
          action: Type.String({ description: '`redirect` or `mirror`.' }),
          direction: Type.String({ description: 'Where on the target it sends (`egress`, `ingress`).' }),
          device: Type.String({ description: 'The target device (`*` once it is gone).' }),
          missing: Type.Boolean({ description: 'The target device is gone.' }),
        },
        { additionalProperties: false, description: 'What a mirred action does and to which device.' },
      ),
    ),
  },
  { additionalProperties: false },
);

const FILTER_HITS = Type.Object(
  {
    device: Type.String({ description: 'The device: `dev`, or `dev@netns`.' }),
    direction: DIRECTION,
    kind: Type.String({ description: 'The classifier (`u32`, `flower`, `bpf`...).' }),
    pref: Type.Integer({ description: 'Its preference (priority).' }),
    chain: Type.Integer({ description: 'Its chain.' }),
    handle: Type.String({ description: 'Its handle.' }),
    protocol: Type.String({ description: 'The protocol it matches (`all`, `ip`...).' }),
    matches: packets('Packets the filter matched in the window.'),
    matchesFrom: Type.Union([Type.Literal('filter'), Type.Literal('first action'), Type.Literal('none')], {
      description: 'Where `matches` comes from: the filter’s own counter (u32 perf counters), its first action, or nowhere (no action).',
    }),
    lookups: nullable(Type.Integer(), { description: 'Packets the filter looked at (u32 perf counters only); null when tc does not report it.', unit: 'packets' }),
    actions: Type.Array(ACTION_HITS, { description: 'Its actions, with what they did in the window.' }),
    changed: Type.Optional(Type.Union([Type.Literal('added'), Type.Literal('removed')], { description: 'Present at one end of the window only.' })),
  },
  { additionalProperties: false },
);

const TC_HITS = Type.Object(
  {
    skipped: Type.Optional(Type.String({ description: 'Why the counters could not be read (a namespace given by inode).' })),
    filters: Type.Array(FILTER_HITS, { description: 'Every filter of the ingress and egress hooks, with its matches in the window.' }),
    actions: Type.Array(ACTION_HITS, { description: 'The action table’s mirred entries, with what they did in the window.' }),
    idle: Type.Integer({ description: 'Filters that matched nothing in the window.' }),
    missingTargets: Type.Integer({ description: 'mirred actions whose target device is gone (a warning).' }),
    mirredFailures: packets('Packets a mirred action could not send (target gone or down) in the window (a warning).'),
  },
  { additionalProperties: false },
);

const HOOK_CALLS = Type.Object(
  {
    device: Type.String({ description: 'The device: `dev`, or `dev@namespace`.' }),
    direction: DIRECTION,
    lookups: packets('Packets looked up in the hook’s filter chain (tcf_classify).'),
    firstFilter: Type.String({ description: 'The chain’s first filter kind (`u32`, `bpf`).' }),
    actionRuns: Type.Record(Type.String(), events('Runs of actions of this kind.'), { description: 'Runs of matching filters’ actions, by first action kind (tcf_action_exec).' }),
  },
  { additionalProperties: false },
);

const TC_CALLS = Type.Object(
  {
    ...kprobeSessionFields('kprobe tcf_classify'),
    hooks: Type.Array(HOOK_CALLS, { description: 'Per device and hook, most lookups first.' }),
    lost: events('Calls counted but not by device (the map was full).'),
    overhead: Type.Optional(OVERHEAD),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    ...NETDEV_SESSION_FIELDS,
    events: Type.Array(EVENT, { description: 'Qdisc changes in the order they happened (the first `top`).' }),
    eventCount: events('Qdisc changes seen (all of them, not only the listed `top`).'),
    configured: events('Creates and destroys of qdiscs with a handle: tc configured them (a warning when above 0).'),
    creates: events('Qdiscs created.'),
    destroys: events('Qdiscs destroyed.'),
    resets: events('Qdisc resets (a queue flushed: a device going down, a graft).'),
    devices: Type.Array(DEVICE_CHANGES, { description: 'Changes per device, most first.' }),
    lost: events('Changes counted but not kept (the kernel’s event map, 4096 entries, was full).'),
    hits: nullable(TC_HITS, { description: 'What the ingress/egress filters and their actions did in the window (`tc -s`); null in evidence recorded without them.' }),
    calls: nullable(TC_CALLS, { description: 'Filter-chain lookups and action runs per hook (kprobes); null when not tried (`kprobes: false`).' }),
    notes: Type.Array(Type.String(), { description: 'What limits the finding: an early stop, unknown handles, mirred to a gone device, kprobes that did not attach.' }),
  },
  { additionalProperties: false },
);

export type TcData = Static<typeof DATA>;
export type TcEvent = Static<typeof EVENT>;
export type TcDevice = Static<typeof DEVICE_CHANGES>;
export type TcHits = Static<typeof TC_HITS>;
export type FilterHits = Static<typeof FILTER_HITS>;
export type ActionHits = Static<typeof ACTION_HITS>;
export type TcCalls = Static<typeof TC_CALLS>;
export type HookCalls = Static<typeof HOOK_CALLS>;
