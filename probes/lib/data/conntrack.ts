// Declared data of conntrack's verdicts counted with kprobes (lib/conntrack-kprobes.ts's
// CtKernelData), which net.conntrack and other.ovs-ct-invalid report.
import Type, { type Static } from '#typebox';
import { events, packets } from './fields.js';
import { kprobeSessionFields } from './session.js';

const VERDICT_FIELDS = {
  tracked: packets('Tracked (new, established or related).'),
  invalid: packets('Found invalid.'),
  drop: packets('Dropped by conntrack (NF_DROP).'),
  untracked: packets('Not tracked (notrack).'),
  other: packets('Any other verdict.'),
};

const VERDICT_COUNTS_FIELDS = {
  byVerdict: Type.Object(VERDICT_FIELDS, { additionalProperties: false, description: 'nf_conntrack_in calls by verdict.' }),
  tracked: Type.Record(Type.String(), packets('Tracked packets in this state.'), {
    description: 'Tracked packets by ctinfo (`new`, `established`, `established reply`...).',
  }),
  byHook: Type.Record(
    Type.String(),
    Type.Object(
      {
        tracked: Type.Optional(VERDICT_FIELDS.tracked),
        invalid: Type.Optional(VERDICT_FIELDS.invalid),
        drop: Type.Optional(VERDICT_FIELDS.drop),
        untracked: Type.Optional(VERDICT_FIELDS.untracked),
        other: Type.Optional(VERDICT_FIELDS.other),
      },
      { additionalProperties: false },
    ),
    { description: 'Verdicts by where (`ipv4 prerouting`): netfilter path only.' },
  ),
  confirmFailures: packets('__nf_conntrack_confirm returned NF_DROP: entries not inserted (a full table, a race).'),
};

export const CT_KERNEL = Type.Object(
  {
    ...kprobeSessionFields('kprobe nf_conntrack_in'),
    attachable: Type.Boolean({ description: 'Every program attached (else the counts miss what the others would have seen).' }),
    netfilter: Type.Object(VERDICT_COUNTS_FIELDS, { additionalProperties: false, description: 'Netfilter’s own conntrack (its hooks).' }),
    ovs: Type.Object(
      {
        ...VERDICT_COUNTS_FIELDS,
        calls: events('ovs_ct_execute calls (ct() actions of the OVS kernel datapath).'),
        errors: Type.Record(Type.String(), Type.Integer({ unit: 'events' }), { description: 'ovs_ct_execute errors by return value (`-12`).' }),
      },
      { additionalProperties: false, description: 'The OVS kernel datapath’s ct() action and the conntrack calls it made.' },
    ),
    lost: events('Events not counted: the kernel map was full.'),
  },
  { additionalProperties: false, description: 'Conntrack’s verdicts counted with kprobes.' },
);

export type CtKernelData = Static<typeof CT_KERNEL>;
