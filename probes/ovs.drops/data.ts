// ovs.drops' finding data: where Open vSwitch dropped packets (of a VM, when scoped): its drop
// counters, dropping megaflows traced to their OpenFlow rules, drop rules, port counters, and
// on the kernel datapath what the BPF programs counted.
import Type, { type Static } from '#typebox';
import { countsBy } from '../lib/data/fields.js';
import { kprobeSessionFields, OVERHEAD } from '../lib/data/session.js';

const VM_SCOPE = Type.Union([Type.Literal('vm'), Type.Literal('any'), Type.Literal('other')], {
  description: "Whose packets its match says it carries: the VM's (`vm`), maybe the VM's (`any`: names nothing of it), another's (`other`).",
});

const nullableString = (description: string) => Type.Union([Type.String(), Type.Null()], { description });

const RULE = {
  bridge: Type.String({ description: 'The bridge of the rule.' }),
  table: Type.Integer({ description: 'Its OpenFlow table.' }),
  priority: Type.Union([Type.Integer(), Type.Null()], { description: 'Its priority; null for a table miss.' }),
  match: Type.String({ description: 'Its match.' }),
  cookie: nullableString('Its cookie; null when it has none.'),
  tableMiss: Type.Boolean({ description: "No rule matched: the table's miss behaviour dropped the packet." }),
};

const TRACED_RULE = Type.Object(
  { ...RULE, packets: Type.Optional(Type.Integer({ unit: 'packets', description: "The rule's packet count over the window, when it was found in ovs-ofctl dump-flows." })) },
  { additionalProperties: false, description: 'The OpenFlow rule that decided the drop (ofproto/trace of the key), when traced.' },
);

const DROP_RULE = Type.Object(
  {
    ...RULE,
    actions: Type.String({ description: 'Its actions.' }),
    packets: Type.Integer({ unit: 'packets', description: 'Packets it matched over the window.' }),
    bytes: Type.Integer({ unit: 'bytes', description: 'Bytes it matched over the window.' }),
    scope: VM_SCOPE,
  },
  { additionalProperties: false },
);

const field = (description: string) => Type.Optional(Type.String({ description }));

const DROPPING_FLOW = Type.Object(
  {
    key: Type.String({ description: "The megaflow's key without wildcarded fields, as dpctl/dump-flows prints it." }),
    actions: Type.String({ description: 'Its actions.' }),
    packets: Type.Integer({ unit: 'packets', description: 'Packets it dropped in the window (summed over PMD threads).' }),
    bytes: Type.Integer({ unit: 'bytes', description: 'Bytes it dropped in the window.' }),
    new: Type.Boolean({ description: 'Installed during the window: the packet whose upcall installed it was dropped too, uncounted in `packets`.' }),
    inPort: nullableString('The port the packets came in on; null when unknown.'),
    bridge: nullableString('The bridge of that port; null when unknown.'),
    datapath: Type.String({ description: 'The datapath it is in.' }),
    fields: Type.Object(
      {
        recircId: field('recirc_id.'),
        inPort: field('in_port.'),
        ctState: field('ct_state.'),
        ethSrc: field('Ethernet source.'),
        ethDst: field('Ethernet destination.'),
        ethType: field('Ethernet type.'),
        srcIp: field('IP source.'),
        dstIp: field('IP destination.'),
        proto: Type.Optional(Type.Integer({ description: 'IP protocol number.' })),
        srcPort: field('L4 source port.'),
        dstPort: field('L4 destination port.'),
        icmpType: field('ICMP type.'),
        icmpCode: field('ICMP code.'),
      },
      { additionalProperties: false, description: 'The fields its key matches on (masked ones as value/mask).' },
    ),
    ufid: nullableString('Its unique flow id; null when not shown.'),
    rule: Type.Optional(TRACED_RULE),
    why: Type.Optional(Type.Array(Type.String(), { description: 'Why the translation dropped, as the trace said (`>>` lines).' })),
    scope: VM_SCOPE,
  },
  { additionalProperties: false },
);

const PORT = Type.Object(
  {
    port: Type.String({ description: 'The port.' }),
    bridge: nullableString('Its bridge; null when unknown.'),
    datapath: Type.String({ description: 'Its datapath.' }),
    type: Type.String({ description: 'Its type (internal, tap, system...).' }),
    rxDropped: Type.Integer({ unit: 'packets', description: 'Received packets dropped over the window.' }),
    txDropped: Type.Integer({ unit: 'packets', description: 'Packets dropped on their way out over the window.' }),
    rxErrors: Type.Integer({ unit: 'packets', description: 'Receive errors over the window.' }),
    txErrors: Type.Integer({ unit: 'packets', description: 'Transmit errors over the window.' }),
    rxPackets: Type.Integer({ unit: 'packets', description: 'Packets received over the window.' }),
    txPackets: Type.Integer({ unit: 'packets', description: 'Packets sent over the window.' }),
    downInternal: Type.Boolean({ description: 'An internal port that is down: OVS counts what it floods to it as tx drops (harmless).' }),
  },
  { additionalProperties: false },
);

/** What the kernel-datapath programs counted (kernel.ts). */
export const KERNEL = Type.Object(
  {
    ...kprobeSessionFields(),
    received: countsBy('Packets that entered the datapath, by device.'),
    lookups: Type.Integer({ unit: 'events', description: 'Flow-table lookups (a recirculation counts again).' }),
    upcalls: countsBy('Misses sent to ovs-vswitchd, by device.'),
    upcallErrors: countsBy('Upcalls that failed (the packet was lost), by errno name.'),
    dropReasons: countsBy('Drops with an OVS drop reason (6.4+), by reason.'),
    dropsAfterReceive: Type.Array(
      Type.Object(
        {
          reason: Type.String({ description: 'The drop reason.' }),
          location: Type.String({ description: 'The dropping function.' }),
          device: Type.String({ description: 'The device the packets came in on.' }),
          count: Type.Integer({ unit: 'packets', description: 'Drops.' }),
          inOvs: Type.Boolean({
            description: "The dropping function is the openvswitch module's: a drop inside OVS. False: freed after OVS handed the packet on (the output device, the receiver's stack), not OVS's drop.",
          }),
        },
        { additionalProperties: false },
      ),
      { description: 'Other drops of packets that had entered OVS in the last second.' },
    ),
    drops: Type.Integer({ unit: 'packets', description: 'upcallErrors + dropReasons + the dropsAfterReceive inside OVS (inOvs).' }),
    lost: Type.Optional(Type.Integer({ unit: 'events', description: 'Events not counted: the kernel map was full.' })),
    overhead: Type.Optional(OVERHEAD),
  },
  { additionalProperties: false, description: "The kernel-datapath programs' counts (only where openvswitch.ko is loaded)." },
);

export const DATA = Type.Object(
  {
    durationMs: Type.Number({ unit: 'ms', description: 'Time between the two reads.' }),
    scope: Type.Object(
      {
        bridge: nullableString('The bridge asked for; null: every bridge.'),
        dev: nullableString('The port asked for; null: none.'),
        srcIp: nullableString('Only flows from this address; null: any.'),
        dstIp: nullableString('Only flows to this address; null: any.'),
        protocol: Type.String({ description: 'Only flows of this protocol (any, icmp, tcp, udp).' }),
        bridges: Type.Array(Type.String(), { description: 'The bridges in scope.' }),
        vmMacs: Type.Array(Type.String(), { description: "The VM's MACs (vm_macs, and the port's attached-mac)." }),
        vmIps: Type.Array(Type.String(), { description: "The VM's addresses (vm_ips)." }),
      },
      { additionalProperties: false, description: 'What was looked at.' },
    ),
    datapath: Type.Array(Type.String(), { description: 'Datapath types found (`netdev` userspace, `system` kernel).' }),
    datapaths: Type.Array(
      Type.Object(
        {
          id: Type.String({ description: 'The datapath.' }),
          type: Type.String({ description: 'Its type.' }),
          bridges: Type.Array(Type.String(), { description: 'Its bridges.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'The datapaths of the host.' },
    ),
    total: Type.Integer({ unit: 'packets', description: 'Packets OVS dropped in the window within the scope: the largest of what each source saw.' }),
    totalSource: Type.Union([Type.Literal('megaflows'), Type.Literal('rules'), Type.Literal('kernel'), Type.Literal('coverage'), Type.Literal('none')], {
      description: 'Which source `total` comes from.',
    }),
    coverageDrops: Type.Integer({ unit: 'packets', description: 'Sum of `byCause` (all of ovs-vswitchd: these counters cannot be scoped).' }),
    flowDrops: Type.Integer({ unit: 'packets', description: "Dropping megaflows' packets, plus one per megaflow installed in the window." }),
    ruleDrops: Type.Integer({ unit: 'packets', description: 'Packets of OpenFlow rules whose action is drop, on the bridges in scope.' }),
    byCause: countsBy("ovs-vswitchd's drop counters that moved, and a kernel datapath's lost upcalls."),
    related: countsBy('Counters that explain drops without counting them (`upcall_flow_limit_hit`, `conntrack_full`).', 'events'),
    droppingFlows: Type.Array(DROPPING_FLOW, { description: "Dropping megaflows in scope: the VM's first, then by packets (another VM's are in `otherFlows`)." }),
    dropRules: Type.Array(DROP_RULE, { description: "OpenFlow rules with a drop action whose packet count moved (another VM's are in `otherRules`)." }),
    vmFlows: Type.Array(DROPPING_FLOW, { description: 'The dropping megaflows whose match names the VM (its port, MAC or address).' }),
    vmRules: Type.Array(DROP_RULE, { description: 'The drop rules whose match names the VM.' }),
    vmTotal: Type.Integer({ unit: 'packets', description: "Packets of the VM's flows and rules (the larger of the two counts)." }),
    anyTotal: Type.Integer({ unit: 'packets', description: 'The same for flows and rules that can carry the VM\'s packets but name nothing of it.' }),
    otherFlows: Type.Array(DROPPING_FLOW, { description: 'Dropping megaflows whose match excludes the VM: listed, never counted.' }),
    otherRules: Type.Array(DROP_RULE, { description: 'Drop rules whose match excludes the VM: listed, never counted.' }),
    ports: Type.Array(PORT, { description: 'Ports in scope whose drop or error counters moved.' }),
    portDrops: Type.Integer({ unit: 'packets', description: 'rx+tx drops of those ports, except internal ports that are down.' }),
    megaflows: Type.Integer({ description: 'Megaflows in scope at the end of the window.' }),
    flushes: Type.Integer({ unit: 'events', description: "Times ovs-vswitchd flushed the datapath's megaflows in the window: their counts are then incomplete." }),
    kernel: Type.Optional(KERNEL),
    notes: Type.Array(Type.String(), { description: 'What could not be read or traced, rules that changed, flows listed apart.' }),
  },
  { additionalProperties: false },
);

export type OvsDropsData = Static<typeof DATA>;
export type KernelDropsData = Static<typeof KERNEL>;
