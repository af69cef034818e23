// other.offload's declared data: segmentation (GSO/TSO) and checksum offload of the packets
// each driver was handed, and the abnormal ones.
import Type, { type Static } from '#typebox';
import { bytes, NETDEV_FIELDS, packets } from '../lib/data/fields.js';
import { SIZE_BUCKET } from '../lib/data/histogram.js';
import { XMIT_SESSION_FIELDS } from '../lib/data/session.js';

const CHECKSUM_FIELDS = {
  none: packets('CHECKSUM_NONE: no checksum offload asked.'),
  unnecessary: packets('CHECKSUM_UNNECESSARY.'),
  complete: packets('CHECKSUM_COMPLETE.'),
  partial: packets('CHECKSUM_PARTIAL: the device (or segmentation) finishes the checksum.'),
};
const checksum = (description: string) => Type.Object(CHECKSUM_FIELDS, { additionalProperties: false, description });

const ANOMALY_KIND = Type.Union(
  [Type.Literal('unsupportedType'), Type.Literal('sizeWithoutType'), Type.Literal('checksumMismatch'), Type.Literal('sizeOverMtu'), Type.Literal('oversize')],
  { description: 'unsupportedType, sizeWithoutType and checksumMismatch are critical; sizeOverMtu and oversize a warning.' },
);

const ANOMALY = Type.Object(
  {
    kind: ANOMALY_KIND,
    device: Type.String({ description: 'The device the packets were handed to.' }),
    packets: packets('Abnormal packets of this kind on the device.'),
    detail: Type.String({ description: 'What is wrong, with the numbers that show it.' }),
  },
  { additionalProperties: false },
);

const DEVICE = Type.Object(
  {
    ...NETDEV_FIELDS,
    mtu: bytes('The device’s MTU.'),
    features: Type.String({ description: 'dev->features (netdev_features_t), hex.' }),
    packets: packets('Packets handed to the driver.'),
    bytes: bytes('Their bytes.'),
    gsoPackets: packets('GSO packets (each carries several segments).'),
    gsoBytes: bytes('Bytes of the GSO packets.'),
    nonGsoPackets: packets('Packets that are not GSO.'),
    nonGsoBytes: bytes('Bytes of the packets that are not GSO.'),
    gsoSegments: packets('Segments the GSO packets become on the wire (sum of gso_segs).'),
    meanGsoSegs: Type.Number({ description: 'Mean segments per GSO packet.', unit: 'packets' }),
    maxGsoSize: bytes('Largest gso_size seen.'),
    maxLen: bytes('Longest non-GSO packet.'),
    gsoTypes: Type.Record(Type.String(), packets('GSO packets with this gso_type bit.'), {
      description: 'GSO packets per gso_type bit, by name (`TCPV4`; a packet counts under each of its bits).',
    }),
    gsoTypeSets: Type.Record(Type.String(), packets('GSO packets with exactly this gso_type.'), {
      description: 'GSO packets per whole gso_type, its bits joined by `|` (`TCPV4|TCP_ECN`).',
    }),
    gsoSize: Type.Array(SIZE_BUCKET, { description: 'Non-empty log2 buckets of the GSO packets’ gso_size.' }),
    gsoSegs: Type.Array(SIZE_BUCKET, { description: 'Non-empty log2 buckets of the GSO packets’ gso_segs (bounds are segments, not bytes).' }),
    p50GsoSize: bytes('Median gso_size, at log2 bucket resolution (the bucket’s upper bound).'),
    p50GsoSegs: packets('Median gso_segs, at log2 bucket resolution (the bucket’s upper bound).'),
    checksum: checksum('Packets per ip_summed state.'),
    gsoChecksum: checksum('GSO packets per ip_summed state (segmentation wants CHECKSUM_PARTIAL).'),
    anomalies: Type.Object(
      {
        unsupportedType: packets('GSO packets of a type the device does not offload.'),
        sizeWithoutType: packets('Packets with a gso_size but no gso_type.'),
        checksumMismatch: packets('GSO packets in CHECKSUM_NONE or CHECKSUM_COMPLETE.'),
        sizeOverMtu: packets('GSO packets whose gso_size is larger than the MTU.'),
        oversize: packets('Non-GSO packets longer than the MTU plus the link header.'),
      },
      { additionalProperties: false, description: 'Abnormal packets per kind.' },
    ),
    unsupportedTypes: Type.Array(Type.String(), { description: 'GSO types that reached the driver without the device offloading them.' }),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    ...XMIT_SESSION_FIELDS,
    packets: packets('Packets handed to drivers, over every device.'),
    bytes: bytes('Their bytes.'),
    gsoPackets: packets('GSO packets over every device.'),
    nonGsoPackets: packets('Packets that are not GSO, over every device.'),
    gsoSegments: packets('Segments the GSO packets become on the wire, over every device.'),
    gsoTypes: Type.Record(Type.String(), packets('GSO packets with this gso_type bit.'), { description: 'GSO packets per gso_type bit over every device.' }),
    checksum: checksum('Packets per ip_summed state over every device.'),
    anomalies: Type.Array(ANOMALY, { description: 'Abnormal packets, one entry per kind and device, worst first.' }),
    anomalyPackets: packets('Abnormal packets in all.'),
    devices: Type.Array(DEVICE, { description: 'Devices, busiest first (the first `top`).' }),
    deviceCount: Type.Integer({ description: 'Devices seen (all of them, not only the listed `top`).' }),
    lost: packets('Packets counted but not kept per device (the map was full).'),
  },
  { additionalProperties: false },
);

export type OffloadData = Static<typeof DATA>;
export type OffloadDevice = Static<typeof DEVICE>;
export type OffloadAnomaly = Static<typeof ANOMALY>;
