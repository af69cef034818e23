// other.vlan-udp's declared data: UDP handed to drivers per device, VLAN and 5-tuple, and
// untagged UDP where a tag was expected.
import Type, { type Static } from '#typebox';
import { DEVICE_LABEL, bytes, nullable, packets } from '../lib/data/fields.js';
import { XMIT_SESSION_FIELDS } from '../lib/data/session.js';

const pps = Type.Number({ description: 'Packets per second over the window.', unit: 'pps' });
const bps = Type.Number({ description: 'Bits per second over the window.', unit: 'bps' });

const FLOW = Type.Object(
  {
    device: DEVICE_LABEL,
    vlan: nullable(Type.Integer(), { description: 'The VLAN id; null when untagged.' }),
    family: Type.Union([Type.Literal(4), Type.Literal(6)], { description: 'IP version.' }),
    src: Type.String({ description: 'Source address.' }),
    dst: Type.String({ description: 'Destination address.' }),
    sport: Type.Integer({ description: 'Source port.' }),
    dport: Type.Integer({ description: 'Destination port.' }),
    packets: packets('Packets of the flow.'),
    bytes: bytes('Their bytes.'),
    pps,
    bitsPerSec: bps,
    spanMs: Type.Number({ description: 'Time between the flow’s first and last packet.', unit: 'ms' }),
    tagging: Type.Union([Type.Literal('hw'), Type.Literal('in-band'), Type.Literal('mixed'), Type.Literal('none')], {
      description: 'How the tag was carried: hw (skb->vlan_tci, accelerated), in-band (an 802.1Q/802.1ad header in the frame), mixed, or none.',
    }),
  },
  { additionalProperties: false },
);

const VLAN_TOTALS = Type.Object(
  {
    vlan: Type.Integer({ description: 'The VLAN id.' }),
    packets: packets('UDP packets tagged with it.'),
    bytes: bytes('Their bytes.'),
    pps,
    bitsPerSec: bps,
    flows: Type.Integer({ description: 'Flows in the VLAN.' }),
    devices: Type.Array(Type.String(), { description: 'Devices that carried it.' }),
  },
  { additionalProperties: false },
);

const UNTAGGED_WHERE_EXPECTED = Type.Object(
  {
    device: Type.String({ description: 'The device that sent untagged UDP.' }),
    packets: packets('Untagged UDP packets on it.'),
    flows: Type.Integer({ description: 'Untagged flows on it.' }),
    expected: Type.String({ description: 'Why a tag was expected there: the VLANs the device carried tagged, or the `vlan` filter.' }),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    ...XMIT_SESSION_FIELDS,
    vlanFilter: nullable(Type.Integer(), { description: 'The `vlan` filter; null: every VLAN and untagged.' }),
    packets: packets('UDP packets handed to drivers.'),
    bytes: bytes('Their bytes.'),
    tagged: packets('Of those, VLAN-tagged.'),
    untagged: packets('Of those, untagged.'),
    vlans: Type.Array(VLAN_TOTALS, { description: 'Per VLAN id, busiest first.' }),
    flows: Type.Array(FLOW, { description: 'Flows per device and VLAN, busiest first (the first `top`).' }),
    flowCount: Type.Integer({ description: 'Flows seen (all of them, not only the listed `top`).' }),
    untaggedWhereExpected: Type.Array(UNTAGGED_WHERE_EXPECTED, {
      description: 'Untagged UDP on devices that carried tagged UDP (trunks), or on `dev` when `vlan` is given (a warning).',
    }),
    lost: packets('Packets counted but not kept per flow (the map was full).'),
  },
  { additionalProperties: false },
);

export type VlanUdpData = Static<typeof DATA>;
export type VlanUdpFlow = Static<typeof FLOW>;
export type VlanTotals = Static<typeof VLAN_TOTALS>;
export type UntaggedWhereExpected = Static<typeof UNTAGGED_WHERE_EXPECTED>;
