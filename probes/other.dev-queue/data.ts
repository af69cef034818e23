// other.dev-queue's declared data: what each device was handed to transmit (net_dev_queue) and
// what its driver answered (net_dev_xmit).
import Type, { type Static } from '#typebox';
import { bytes, events, NETDEV_FIELDS, packets } from '../lib/data/fields.js';
import { SIZE_BUCKET } from '../lib/data/histogram.js';
import { NETDEV_SESSION_FIELDS } from '../lib/data/session.js';

const DEVICE = Type.Object(
  {
    ...NETDEV_FIELDS,
    ifindex: Type.Integer({ description: 'Its ifindex (0 for driver results matched by name only).' }),
    packets: packets('Packets handed to the device for transmit (net_dev_queue).'),
    bytes: bytes('Their bytes (the frame with its link-layer header; a GSO packet whole).'),
    meanBytes: Type.Number({ description: 'Mean packet size.', unit: 'bytes' }),
    p99Bytes: bytes('99th percentile packet size, at log2 bucket resolution (the bucket’s upper bound).'),
    l3: Type.Object(
      { ipv4: packets('IPv4 packets.'), ipv6: packets('IPv6 packets.'), arp: packets('ARP packets.'), other: packets('Packets of another L3 protocol.') },
      { additionalProperties: false, description: 'Packets by L3 protocol.' },
    ),
    l4: Type.Object(
      {
        tcp: packets('TCP packets.'),
        udp: packets('UDP packets.'),
        icmp: packets('ICMP packets.'),
        otherIp: packets('IP packets of another protocol.'),
        notIp: packets('Packets that are not IP.'),
      },
      { additionalProperties: false, description: 'Packets by L4 protocol.' },
    ),
    gsoPackets: packets('Packets with a GSO size (segmented later, by the device or the stack).'),
    gsoAnomalies: packets('Packets with a GSO size but no GSO type (critical).'),
    xmit: Type.Object(
      {
        ok: packets('NETDEV_TX_OK: the driver took the packet.'),
        busy: packets('NETDEV_TX_BUSY: the driver’s ring was full.'),
        drop: packets('NET_XMIT_DROP: dropped on the way to the driver.'),
        congested: packets('NET_XMIT_CN: taken, but the queue is congested.'),
        error: packets('Negative errors the driver returned.'),
        other: packets('Other return codes.'),
      },
      { additionalProperties: false, description: 'What the driver returned per packet handed to it (net_dev_xmit).' },
    ),
    xmitBytes: bytes('Bytes the driver took.'),
    buckets: Type.Array(SIZE_BUCKET, { description: 'Non-empty log2 buckets of packet sizes.' }),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    ...NETDEV_SESSION_FIELDS,
    packets: packets('Packets handed to devices for transmit, over every device.'),
    bytes: bytes('Their bytes.'),
    busy: packets('NETDEV_TX_BUSY results over every device (a full driver ring).'),
    dropped: packets('NET_XMIT_DROP results over every device.'),
    congested: packets('NET_XMIT_CN results over every device.'),
    errors: packets('Driver errors and other return codes over every device.'),
    gsoAnomalies: packets('Packets with a GSO size but no GSO type, over every device (critical).'),
    devices: Type.Array(DEVICE, { description: 'Devices, busiest first (the first `top`).' }),
    deviceCount: Type.Integer({ description: 'Devices seen (all of them, not only the listed `top`).' }),
    lost: events('Events counted but not kept per device (the map was full).'),
    notes: Type.Array(Type.String(), { description: 'What limits the finding: an early stop, a fallback, a full map, results matched by name.' }),
  },
  { additionalProperties: false },
);

export type DevQueueData = Static<typeof DATA>;
export type DevQueueDevice = Static<typeof DEVICE>;
export type SizeBucket = Static<typeof SIZE_BUCKET>;
