// The data of a kfree_skb drop session's finding (lib/drops/read.ts): the packets the kernel
// freed as drops, by reason, location, device, subsystem and family, with what was counted
// apart and the busiest groups. drops.kernel reports it as is; composite probes embed parts.
import Type, { type Static } from '#typebox';
import { countsBy } from './fields.js';
import { OVERHEAD } from './session.js';

/** How a drops.kernel session attached its program (drops.kernel and the probes that run its session). */
const DROPS_ATTACH = Type.Object(
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

const DROPS_METHOD = Type.Union([DROPS_ATTACH.properties.method, Type.Null()], { description: 'How the drop program attached; null when nothing attached.' });

/** How the drop program attached, as every finding that runs the session reports it. */
export const DROPS_ATTACH_FIELDS = {
  method: DROPS_METHOD,
  attach: Type.Array(DROPS_ATTACH, { description: 'How the drop program attached.' }),
};

const FAMILIES = 'tun, netfilter, qdisc, ovs, l3, socket or other';

/** Drops counted apart from `total`. */
const apart = (description: string) =>
  Type.Object(
    {
      total: Type.Integer({ unit: 'packets', description: 'How many.' }),
      byReason: countsBy('By drop reason.'),
      byDevice: countsBy('By device.'),
    },
    { additionalProperties: false, description },
  );

/** The key of a breakdown with the most drops, with its count and share; null without drops. */
const dominant = <K extends string>(key: K, keyDescription: string, description: string) =>
  Type.Union(
    [
      Type.Object(
        {
          ...({ [key]: Type.String({ description: keyDescription }) } as Record<K, ReturnType<typeof Type.String>>),
          count: Type.Integer({ unit: 'packets', description: 'Its drops.' }),
          share: Type.Number({ unit: 'share', description: 'Its share of `total`, 0..1.' }),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ],
    { description },
  );

export const DROPS_DATA = Type.Object(
  {
    ...DROPS_ATTACH_FIELDS,
    fallback: Type.Optional(Type.String({ description: 'Why the preferred program was not used, when another one was.' })),
    reasonsFrom: Type.Optional(
      Type.Union([Type.Literal('kernel'), Type.Literal('location')], {
        description: "Where the reasons come from: `kernel` (5.17+ gives each drop one), `location`: inferred from the dropping function, as a later kernel names a drop there (nf_hook_slow NETFILTER_DROP, tun_net_xmit FULL_RING, a qdisc's QDISC_DROP, another host's frame at IP's receive OTHERHOST; NOT_SPECIFIED elsewhere).",
      }),
    ),
    windowMs: Type.Number({ unit: 'ms', description: 'Time the program counted, from attach to the read of its maps.' }),
    overhead: Type.Optional(OVERHEAD),
    total: Type.Integer({ unit: 'packets', description: 'Packets the kernel freed as drops (of the VM, when scoped), host copies and other taps apart.' }),
    ignored: countsBy('Drops of the reasons the `ignore` param named, by reason: not in `total`.'),
    lost: Type.Optional(Type.Integer({ unit: 'packets', description: 'Drops counted but not aggregated (the map was full); in `total`.' })),
    byReason: countsBy('Drops by kernel drop reason (NETFILTER_DROP, FULL_RING...), most first.'),
    byLocation: countsBy('Drops by the kernel function that dropped (symbol+offset), most first.'),
    byDevice: countsBy('Drops by device (`if<n>@<netns>` outside ebpfnet\'s namespace), most first.'),
    bySubsystem: countsBy('Drops by the subsystem of their reason: `core`, `openvswitch`...'),
    byFamily: countsBy(`Drops by family of reason: ${FAMILIES}.`),
    dominant: dominant('reason', 'The reason.', 'The reason with the most drops; null without drops.'),
    dominantFamily: dominant('family', `The family: ${FAMILIES}.`, 'The family of reasons with the most drops; null without drops.'),
    scope: Type.Union(
      [
        Type.Object(
          {
            macs: Type.Array(Type.String(), { description: "The VM's MACs." }),
            ips: Type.Array(Type.String(), { description: "The VM's addresses." }),
            devs: Type.Array(Type.String(), { description: "The VM's devices given (its taps)." }),
            missingDevs: Type.Optional(Type.Array(Type.String(), { description: 'Devices given that did not exist when the session started (not matched).' })),
            matchedBy: Type.Object(
              {
                dev: Type.Integer({ unit: 'packets', description: 'Drops matched by device.' }),
                mac: Type.Integer({ unit: 'packets', description: 'Drops matched by MAC.' }),
                ip: Type.Integer({ unit: 'packets', description: 'Drops matched by address.' }),
              },
              { additionalProperties: false, description: 'How many drops matched each way.' },
            ),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: 'The VM scope the drops were counted in; null: every drop.' },
    ),
    hostCopies: apart("Copies of bridged frames the host's own stack discarded (broadcast, multicast, other-host): not loss, not in `total`."),
    atOtherTaps: apart("Scoped to a VM: its frames dropped at another VM's tap (that neighbour's path): not in `total`."),
    topStacks: Type.Array(
      Type.Object(
        {
          count: Type.Integer({ unit: 'packets', description: 'Sampled drops with this stack.' }),
          reason: Type.String({ description: 'Their drop reason.' }),
          location: Type.String({ description: 'The dropping function (symbol+offset).' }),
          frames: Type.Array(Type.String(), { description: 'The kernel stack from the dropping function outwards.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'The most frequent kernel stacks of the drops (sampled).' },
    ),
    top: Type.Array(
      Type.Object(
        {
          reason: Type.String({ description: 'The drop reason.' }),
          family: Type.String({ description: `Its family: ${FAMILIES}.` }),
          location: Type.String({ description: 'The dropping function (symbol+offset).' }),
          device: Type.String({ description: 'The device.' }),
          count: Type.Integer({ unit: 'packets', description: 'Drops of the group.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'The busiest (reason, location, device) groups, most drops first.' },
    ),
  },
  { additionalProperties: false },
);

export type DropsData = Static<typeof DROPS_DATA>;
