// perf.vm-latency's finding data: how long a VM's packets spend in each layer of the host,
// both ways, with the slowest layer and what was still on its way at the end.
import Type, { type Static } from '#typebox';
import { LATENCY_SUMMARY_FIELDS, LAYER_STATS_FIELDS } from '../lib/data/histogram.js';
import { OVERHEAD, TRACEPOINT_METHOD } from '../lib/data/session.js';

const DIRECTION = Type.Union([Type.Literal('to-vm'), Type.Literal('from-vm')], { description: 'The direction: to-vm or from-vm.' });
const LAYER = Type.Union([Type.Literal('bridge'), Type.Literal('qdisc'), Type.Literal('driver'), Type.Literal('tun ring'), Type.Literal('total')], {
  description: 'The layer: bridge (or OVS), qdisc, driver, tun ring, or total (the whole path).',
});

const DEVICE = Type.Object(
  {
    dev: Type.String({ description: 'The device.' }),
    ifindex: Type.Integer({ description: 'Its index.' }),
  },
  { additionalProperties: false },
);

const LAYER_STATS = (description: string) => Type.Optional(Type.Object(LAYER_STATS_FIELDS, { additionalProperties: false, description }));

const DIRECTION_DATA = (description: string) =>
  Type.Optional(
    Type.Object(
      {
        layers: Type.Object(
          {
            bridge: LAYER_STATS('Forwarding through the bridge or OVS.'),
            qdisc: LAYER_STATS("The exit device's qdisc."),
            driver: LAYER_STATS("From the uplink's driver taking the packet to its completion."),
            'tun ring': LAYER_STATS("Waiting in the tap's ring until QEMU (or vhost) read it."),
            total: LAYER_STATS('The whole path through the host.'),
          },
          { additionalProperties: false, description: 'Each layer crossed, with packets timed through it.' },
        ),
        packets: Type.Object(
          {
            received: Type.Integer({ unit: 'packets', description: 'Received on the entry device (uplink / tap).' }),
            queued: Type.Integer({ unit: 'packets', description: 'Queued on the exit device (tap / uplink).' }),
            transmitted: Type.Integer({ unit: 'packets', description: 'Transmitted on the exit device.' }),
            delivered: Type.Integer({ unit: 'packets', description: "Read by QEMU / taken by the uplink's driver." }),
          },
          { additionalProperties: false, description: 'Packets seen at each stage.' },
        ),
        unmatched: Type.Object(
          {
            queued: Type.Integer({ unit: 'packets', description: 'Queued on the exit device with no earlier stamp of the same packet.' }),
            transmitted: Type.Integer({ unit: 'packets', description: 'Transmitted on the exit device with no earlier stamp of the same packet.' }),
          },
          { additionalProperties: false, description: 'Packets seen leaving that were not seen entering.' },
        ),
        xmitErrors: Type.Integer({ unit: 'packets', description: 'net_dev_xmit with an error: the driver refused or dropped it (a full tun ring).' }),
        dropped: Type.Integer({ unit: 'packets', description: "To the VM: freed as a drop after the tap's driver took it (tun ring full...)." }),
        incomplete: Type.Object(
          {
            bridge: Type.Integer({ unit: 'packets', description: 'Entered the bridge and had not left it.' }),
            qdisc: Type.Integer({ unit: 'packets', description: 'Entered the qdisc and had not left it.' }),
            'tun ring': Type.Integer({ unit: 'packets', description: 'Left in the tun ring, unread by QEMU.' }),
          },
          { additionalProperties: false, description: 'Entered a layer and had not left it when the window closed: dropped there, sent elsewhere, or still on their way.' },
        ),
      },
      { additionalProperties: false, description },
    ),
  );

export const DATA = Type.Object(
  {
    tap: Type.Object(DEVICE.properties, { additionalProperties: false, description: "The VM's tap." }),
    uplinks: Type.Array(DEVICE, { description: 'The devices packets enter and leave the host by.' }),
    uplinksFrom: Type.Union([Type.Literal('param'), Type.Literal('bridge'), Type.Literal('any')], {
      description: "Where the uplinks came from: `param` (given), `bridge` (the tap's bridge's other ports), `any` (every other device).",
    }),
    bridge: Type.Union(
      [
        Type.Object(
          {
            kind: Type.Union([Type.Literal('linux'), Type.Literal('ovs')], { description: 'A Linux bridge or Open vSwitch.' }),
            name: Type.String({ description: 'Its name.' }),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: "The tap's bridge; null when it has none." },
    ),
    direction: Type.String({ description: 'The directions timed: to-vm, from-vm or both.' }),
    filters: Type.Object(
      {
        vmIp: Type.Union([Type.String(), Type.Null()], { description: "The VM's IPv4 address the packets were matched by." }),
        srcIp: Type.Union([Type.String(), Type.Null()], { description: 'Only packets from this address.' }),
        dstIp: Type.Union([Type.String(), Type.Null()], { description: 'Only packets to this address.' }),
        protocol: Type.String({ description: 'Only packets of this protocol (any, icmp, tcp, udp).' }),
        port: Type.Integer({ description: 'Only packets with this port (0: any).' }),
        direction: Type.String({ description: 'The directions timed.' }),
      },
      { additionalProperties: false, description: 'The filters the programs applied.' },
    ),
    method: TRACEPOINT_METHOD,
    btf: Type.String({ description: "The BTF CO-RE reads were relocated against: `minimal (cached)` or the kernel's `vmlinux`." }),
    loadMs: Type.Number({ unit: 'ms', description: 'Time the object took to load.' }),
    attachMs: Type.Number({ unit: 'ms', description: "Sum of the programs' attach times." }),
    attach: Type.Array(
      Type.Object(
        {
          program: Type.String({ description: 'The BPF program.' }),
          method: TRACEPOINT_METHOD,
          target: Type.String({ description: 'The tracepoint, `category:name`.' }),
          attachMs: Type.Number({ unit: 'ms', description: 'Time the attach took.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Each program attached.' },
    ),
    fallback: Type.Optional(Type.String({ description: 'Why the preferred flavours were not used, when another one was.' })),
    windowMs: Type.Number({ unit: 'ms', description: 'Time the programs timed packets.' }),
    overhead: Type.Optional(OVERHEAD),
    directions: Type.Object(
      { 'to-vm': DIRECTION_DATA('Packets to the VM.'), 'from-vm': DIRECTION_DATA('Packets from the VM.') },
      { additionalProperties: false, description: 'Each direction timed.' },
    ),
    layers: Type.Array(Type.Object({ direction: DIRECTION, layer: LAYER, ...LATENCY_SUMMARY_FIELDS }, { additionalProperties: false }), {
      description: 'Every (direction, layer) with packets, in path order.',
    }),
    worst: Type.Union(
      [
        Type.Object(
          {
            direction: DIRECTION,
            layer: LAYER,
            p99: Type.Number({ unit: 'µs', description: 'Its P99 (or how long the oldest packet left in the tun ring had waited).' }),
            basis: Type.Union([Type.Literal('p99'), Type.Literal('waiting')], { description: '`p99`, or `waiting`: packets left unread in the tun ring (a stopped VM).' }),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: 'The layer that adds the most delay (highest P99, total excluded); null with no packet.' },
    ),
    waitingInTunRing: Type.Object(
      {
        count: Type.Integer({ unit: 'packets', description: 'Tap skbs still unread by QEMU at the end.' }),
        oldestMs: Type.Union([Type.Number({ unit: 'ms' }), Type.Null()], { description: 'How long the oldest had waited; null when none.' }),
      },
      { additionalProperties: false, description: 'What QEMU had not read from the tap at the end.' },
    ),
    notes: Type.Array(Type.String(), { description: 'What a reader needs to trust the numbers: unmatched packets, drops, an early stop...' }),
  },
  { additionalProperties: false },
);

export type VmLatencyData = Static<typeof DATA>;
