// vm.frames' finding data: the VM's frames into and out of its switch both ways, what the
// switch lost of them, the addresses the VM used, the largest packets, and the window's close.
import Type, { type Static } from '#typebox';
import { LOADED_FIELDS, OVERHEAD, STOPPED } from '../lib/data/session.js';

const count = (description: string) =>
  Type.Object(
    {
      packets: Type.Integer({ unit: 'packets', description: 'Frames (GSO segments counted).' }),
      bytes: Type.Integer({ unit: 'bytes', description: 'Wire bytes.' }),
    },
    { additionalProperties: false, description },
  );

const byCast = (description: string) =>
  Type.Object(
    { unicast: count('Unicast frames.'), multicast: count('Multicast frames.'), broadcast: count('Broadcast frames.') },
    { additionalProperties: false, description },
  );

const DEVICE = Type.Object(
  {
    name: Type.String({ description: 'The device.' }),
    ifindex: Type.Integer({ description: "Its index in ebpfnet's namespace." }),
    mtu: Type.Union([Type.Integer({ unit: 'bytes' }), Type.Null()], { description: 'Its MTU; null when unreadable.' }),
  },
  { additionalProperties: false },
);

const largest = (description: string) =>
  Type.Union(
    [
      Type.Object(
        {
          bytes: Type.Integer({ unit: 'bytes', description: 'Its L3 size (a GSO packet counts its segments).' }),
          dev: Type.String({ description: 'The device it was seen on.' }),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ],
    { description },
  );

export const DATA = Type.Object(
  {
    ...LOADED_FIELDS,
    windowMs: Type.Number({ unit: 'ms', description: 'The window: entries counted from attach until then.' }),
    graceMs: Type.Number({ unit: 'ms', description: 'Deliveries were counted this much longer.' }),
    overhead: Type.Optional(OVERHEAD),
    stopped: Type.Optional(STOPPED),
    scope: Type.Object(
      {
        vm: Type.Union([Type.String(), Type.Null()], { description: "The VM's name (the `vm` param); null when not given." }),
        devs: Type.Array(DEVICE, { description: "The VM's taps." }),
        macs: Type.Array(Type.String(), { description: "The VM's MACs." }),
        ports: Type.Union([Type.Array(DEVICE), Type.Null()], { description: "The switch's other ports; null: any device but the taps and the host's ports." }),
        anyPort: Type.Boolean({ description: 'Any device counted as a port (`ports` was not given).' }),
        hostPorts: Type.Array(DEVICE, { description: "The host's own ports of the switch (a bridge device, OVS internal ports)." }),
        hostPortsFrom: Type.Union([Type.Literal('params'), Type.Literal('found'), Type.Literal('none')], {
          description: '`params` (host_ports), `found` (ports and host_ports empty), `none` (ports given alone).',
        }),
      },
      { additionalProperties: false, description: 'What the session watched.' },
    ),
    toVm: Type.Object(
      {
        entered: count("Unicast frames for the VM's MACs received on the ports, or sent by the host on its ports."),
        delivered: count("Unicast frames for its MACs its taps sent to it."),
        multicast: count('Multicast frames its taps sent to it.'),
        broadcast: count('Broadcast frames its taps sent to it.'),
        otherUnicast: count('Unicast frames for other MACs its taps sent to it (flooded).'),
      },
      { additionalProperties: false, description: 'Frames to the VM.' },
    ),
    fromVm: Type.Object(
      {
        sent: byCast("What the VM's taps received from its MACs."),
        forwarded: byCast("What left the switch by the ports (or up the host's ports), each frame once."),
        foreign: Type.Integer({ unit: 'packets', description: 'Frames its taps received from MACs not in `macs` (not counted).' }),
      },
      { additionalProperties: false, description: 'Frames from the VM.' },
    ),
    lost: Type.Object(
      {
        toVm: Type.Integer({ unit: 'packets', description: 'Frames to the VM that entered the switch and were not delivered: max(0, entered − delivered).' }),
        fromVm: Type.Integer({ unit: 'packets', description: 'Unicast frames the VM sent that did not leave the switch: max(0, sent − forwarded).' }),
        total: Type.Integer({ unit: 'packets', description: 'toVm + fromVm.' }),
        share: Type.Number({ unit: 'share', description: 'total / packets (0 without packets).' }),
      },
      { additionalProperties: false, description: "What the switch lost of the VM's frames." },
    ),
    packets: Type.Integer({ unit: 'packets', description: 'What the VM was offered (entered, and multicast/broadcast delivered) plus what it sent.' }),
    learnedAddresses: Type.Array(
      Type.Object(
        {
          address: Type.String({ description: 'IPv4 dotted, IPv6 in canonical compressed form.' }),
          mac: Type.String({ description: 'The MAC that claimed it.' }),
          via: Type.Array(Type.Union([Type.Literal('arp'), Type.Literal('ipv4'), Type.Literal('ipv6'), Type.Literal('nd')]), {
            description: 'Where it was seen: arp, ipv4, ipv6, nd.',
          }),
          packets: Type.Integer({ unit: 'packets', description: 'Frames that carried it.' }),
        },
        { additionalProperties: false },
      ),
      { description: "Addresses the VM used in its own frames, most frames first." },
    ),
    maxPacket: Type.Object(
      {
        toVm: largest('The largest packet to the VM entering the switch; null when none.'),
        fromVm: largest('The largest packet from the VM on its taps; null when none.'),
      },
      { additionalProperties: false, description: 'The largest packets on the path.' },
    ),
    byPort: Type.Array(
      Type.Object(
        {
          dev: Type.String({ description: 'The port.' }),
          host: Type.Boolean({ description: "The host's own port of the switch (its frames go the other way round)." }),
          entered: count('Frames for the VM received on this port (on the host\'s port: sent by the host).'),
          forwarded: count("Frames of the VM seen leaving on this port, every copy (on the host's port: received by the host)."),
        },
        { additionalProperties: false },
      ),
      { description: 'Per port of the switch, busiest first.' },
    ),
    flooded: Type.Integer({ unit: 'packets', description: "Copies of the VM's frames beyond one per frame on the ports (flooding, stacked devices)." }),
    grace: Type.Object(
      {
        lateDelivered: Type.Integer({ unit: 'packets', description: 'Unicast deliveries to the VM counted after the window closed (they entered before).' }),
        lateForwarded: Type.Integer({ unit: 'packets', description: 'Frames of the VM forwarded after the close (sent before), counted.' }),
        skippedDelivered: Type.Integer({ unit: 'packets', description: 'Deliveries after the close of frames that entered after it (not counted).' }),
        skippedForwarded: Type.Integer({ unit: 'packets', description: 'Forwards after the close of frames sent after it (not counted).' }),
        afterEntered: Type.Integer({ unit: 'packets', description: 'Entries after the close (not counted).' }),
        afterSent: Type.Integer({ unit: 'packets', description: 'Frames the VM sent after the close (not counted).' }),
        slowestTransitMs: Type.Union([Type.Number({ unit: 'ms' }), Type.Null()], { description: 'Slowest crossing of the switch by a frame that entered during the grace.' }),
        lastLateMs: Type.Union([Type.Number({ unit: 'ms' }), Type.Null()], { description: 'How long after the close the last counted delivery came.' }),
      },
      { additionalProperties: false, description: 'How the close of the window went.' },
    ),
    notes: Type.Array(Type.String(), { description: 'What limits the counts: unkeyed frames, foreign MACs, flooding, a short grace...' }),
  },
  { additionalProperties: false },
);

export type FramesData = Static<typeof DATA>;
