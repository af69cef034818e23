// other.ovs-ct-invalid's declared data: packets OVS's connection tracker found invalid
// (ct_state=+inv) over the window, by rule, zone and datapath flow, with the tracker's counters.
import Type, { type Static } from '#typebox';
import { nullable, packets } from '../lib/data/fields.js';
import { CT_KERNEL } from '../lib/data/conntrack.js';

const ZONE = nullable(Type.Integer(), { description: 'The conntrack zone of its packets; null: several or unknown.' });

const INVALID_RULE = Type.Object(
  {
    bridge: Type.String({ description: 'The OVS bridge.' }),
    table: Type.Integer({ description: 'Its OpenFlow table.' }),
    priority: Type.Integer({ description: 'Its priority.' }),
    match: Type.String({ description: 'Its match, as ovs-ofctl prints it.' }),
    actions: Type.String({ description: 'Its actions.' }),
    packets: packets('Packets it matched in the window.'),
    drops: Type.Boolean({ description: 'Its actions drop the packet.' }),
    zone: ZONE,
  },
  { additionalProperties: false },
);

const INVALID_MEGAFLOW = Type.Object(
  {
    datapath: Type.String({ description: 'The datapath (`netdev@ovs-netdev`, `system@ovs-system`).' }),
    bridge: nullable(Type.String(), { description: 'The bridge of its in_port; null when unknown.' }),
    inPort: nullable(Type.String(), { description: 'The port the packets came in on; null when unknown.' }),
    zone: ZONE,
    ctState: Type.String({ description: 'ct_state as matched (`+inv+trk`).' }),
    key: Type.String({ description: 'The flow’s key, compacted.' }),
    actions: Type.String({ description: 'The flow’s actions.' }),
    drop: Type.Boolean({ description: 'Its actions drop the packet.' }),
    packets: packets('Packets in the window (a flow installed in it counts from 0).'),
    new: Type.Boolean({ description: 'Installed during the window.' }),
  },
  { additionalProperties: false },
);

const counts = (what: string, description: string) => Type.Record(Type.String(), Type.Integer({ description: what }), { description });

export const DATA = Type.Object(
  {
    durationMs: Type.Number({ description: 'Time between the two reads of the counters.', unit: 'ms' }),
    datapath: Type.Array(Type.String(), { description: 'The datapath types in scope (`system`: kernel, `netdev`: userspace).' }),
    bridges: Type.Array(Type.String(), { description: 'The OVS bridges in scope.' }),
    invalid: packets('Packets that hit an OpenFlow rule matching ct_state=+inv (every bridge in scope).'),
    byBridge: Type.Record(Type.String(), packets('Invalid packets on this bridge.'), { description: 'Invalid packets by bridge.' }),
    byZone: Type.Record(Type.String(), packets('Invalid packets in this zone.'), { description: 'Invalid packets by conntrack zone (`unknown` when the rule’s zone could not be told).' }),
    rules: Type.Array(INVALID_RULE, { description: 'Every rule matching +inv in scope, busiest first (the first `top`).' }),
    droppingRule: nullable(INVALID_RULE, { description: 'The dropping +inv rule that matched the most packets; null when none did.' }),
    megaflows: Type.Array(INVALID_MEGAFLOW, { description: 'Datapath flows matching +inv that carried packets in the window (the first `top`).' }),
    counters: counts('Rise over the window.', 'Rises of ovs-vswitchd’s conntrack coverage counters (`conntrack_invalid_tcp_flags`...; all of ovs-vswitchd).'),
    connections: nullable(
      Type.Object(
        {
          total: Type.Integer({ description: 'Connections in the userspace tracker.' }),
          byProtocol: counts('Connections of this protocol.', 'Connections by protocol.'),
          tcpStates: counts('TCP connections in this state.', 'TCP connections by state.'),
        },
        { additionalProperties: false },
      ),
      { description: 'Connections in the userspace tracker at the end (dpctl/ct-stats-show); null when not read.' },
    ),
    connectionsByZone: counts('Connections in this zone.', 'Connections at the end by zone (dpctl/dump-conntrack).'),
    kernel: nullable(CT_KERNEL, { description: 'The kernel datapath’s ct() calls and verdicts (kprobes); null without a kernel datapath in scope.' }),
    notes: Type.Array(Type.String(), { description: 'What limits the finding: no +inv rule, kprobes that did not attach.' }),
  },
  { additionalProperties: false },
);

export type OvsCtInvalidData = Static<typeof DATA>;
export type InvalidRule = Static<typeof INVALID_RULE>;
export type InvalidMegaflow = Static<typeof INVALID_MEGAFLOW>;
