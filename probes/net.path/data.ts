// net.path's finding data: the L3 facts along a VM's path: devices and their MTUs, the
// mismatches of MTU with the packets that cross them, routes, reverse-path checks,
// neighbours, forwarding, and the IP fragmentation counters over the window.
import Type, { type Static } from '#typebox';

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T, description: string) => Type.Union([schema, Type.Null()], { description });

const DEVICE = Type.Object(
  {
    dev: Type.String({ description: 'The device.' }),
    ifindex: Type.Integer({ description: 'Its index.' }),
    mtu: Type.Integer({ unit: 'bytes', description: 'Its MTU.' }),
    kind: nullable(Type.String(), '`veth`, `bridge`, `tun`, `vlan`...; null for a plain device.'),
    operstate: Type.String({ description: 'Its operational state.' }),
    master: nullable(Type.String(), 'The bridge (or switch) it is a port of; null when none.'),
    l3dev: nullable(Type.String(), "The device where IP sees this device's packets: itself, or the bridge it is a port of."),
    ipv4: Type.Array(Type.String(), { description: 'Its IPv4 addresses.' }),
    peer: nullable(Type.String(), 'The other end of a veth; null when not a veth.'),
    peerMtu: nullable(Type.Integer({ unit: 'bytes' }), "The peer's MTU."),
    peerNetns: nullable(Type.String(), 'The namespace the peer lives in, when another.'),
    ports: Type.Array(Type.String(), { description: "A bridge's ports." }),
  },
  { additionalProperties: false },
);

const RELATION = Type.Union(
  [Type.Literal('veth-peer'), Type.Literal('bridge'), Type.Literal('bridge-port'), Type.Literal('lower'), Type.Literal('switch'), Type.Literal('route')],
  { description: 'How the two devices are joined: veth-peer, bridge, bridge-port, lower, switch (another switch\'s port), route (a routed device).' },
);

const MTU_MISMATCH = Type.Object(
  {
    dev: Type.String({ description: 'The device too small.' }),
    mtu: Type.Integer({ unit: 'bytes', description: 'Its MTU.' }),
    packetBytes: Type.Optional(Type.Integer({ unit: 'bytes', description: 'The largest L3 packet that must cross it (measured mismatches only).' })),
    direction: Type.Optional(Type.Union([Type.Literal('to-vm'), Type.Literal('from-vm')], { description: 'Which way that packet went (measured mismatches only).' })),
    relation: RELATION,
    peer: nullable(Type.String(), 'The device the packets reach it from, or the device joined to a routed one; null when none is one device.'),
    peerMtu: nullable(Type.Integer({ unit: 'bytes' }), "The peer's MTU."),
    devNetns: Type.Optional(Type.String({ description: '`dev` lives in another namespace (a veth end).' })),
    peerNetns: Type.Optional(Type.String({ description: '`peer` lives in another namespace.' })),
  },
  { additionalProperties: false },
);

const MTU_DIFFERENCE = Type.Object(
  {
    dev: Type.String({ description: 'The device.' }),
    mtu: Type.Integer({ unit: 'bytes', description: 'Its MTU.' }),
    peer: Type.String({ description: 'The device joined to it.' }),
    peerMtu: Type.Integer({ unit: 'bytes', description: "The peer's MTU." }),
    relation: Type.Union([Type.Literal('veth-peer'), Type.Literal('bridge'), Type.Literal('bridge-port'), Type.Literal('lower')], { description: 'How they are joined.' }),
    peerNetns: Type.Optional(Type.String({ description: 'The peer lives in another namespace.' })),
  },
  { additionalProperties: false },
);

const ROUTE = Type.Object(
  {
    ip: Type.String({ description: 'The address routed to.' }),
    dev: nullable(Type.String(), 'The device the route leaves by; null when none.'),
    via: nullable(Type.String(), 'The gateway; null when direct.'),
    src: nullable(Type.String(), 'The source address the kernel picks; null when none.'),
    type: nullable(Type.String(), '`unicast`, `local`, `unreachable`, `blackhole`, `prohibit`...'),
    error: Type.Optional(Type.String({ description: 'What `ip route get` said when the kernel has no usable route ("No route to host").' })),
    matched: Type.Optional(Type.String({ description: 'The route entry that matched, when the lookup failed (`unreachable 10.1.2.3`).' })),
    offPath: nullable(Type.Boolean(), 'The route leaves by a device off the watched path; null when no devices are watched.'),
  },
  { additionalProperties: false },
);

const RP_CHECK = Type.Object(
  {
    ip: Type.String({ description: 'A VM address, as the source of a packet arriving on `dev`.' }),
    dev: Type.String({ description: 'The device it arrives on.' }),
    dst: Type.String({ description: 'The destination the check routed to (a local address).' }),
    rpFilter: Type.Integer({ description: 'The effective rp_filter: 0 off, 1 strict, 2 loose.' }),
    ok: Type.Boolean({ description: 'The kernel accepts the source.' }),
    error: Type.Optional(Type.String({ description: 'What the check said when it failed.' })),
    reason: Type.Optional(Type.String({ description: 'Why the kernel refuses the source, in words.' })),
  },
  { additionalProperties: false },
);

const NEIGHBOUR = Type.Object(
  {
    ip: Type.String({ description: 'The neighbour address.' }),
    dev: nullable(Type.String(), 'The device of the entry; null when the kernel has none.'),
    state: Type.String({ description: 'NUD state (`REACHABLE`, `STALE`, `FAILED`, `INCOMPLETE`...), `NONE` when the kernel has no entry.' }),
    mac: nullable(Type.String(), 'Its MAC; null when unresolved.'),
    for: Type.Optional(Type.String({ description: 'The VM address this neighbour is the gateway for.' })),
  },
  { additionalProperties: false },
);

const FRAG_TEXT = {
  ReasmFails: 'IPv4 reassemblies that failed.',
  FragFails: 'IPv4 packets that needed fragmenting but could not be (DF set).',
  ReasmTimeout: 'IPv4 reassemblies that timed out.',
  ReasmReqds: 'IPv4 fragments received that needed reassembly.',
  ReasmOKs: 'IPv4 packets reassembled.',
  FragOKs: 'IPv4 packets fragmented.',
  FragCreates: 'IPv4 fragments created.',
  Ip6ReasmFails: 'IPv6 reassemblies that failed.',
  Ip6FragFails: 'IPv6 packets that could not be fragmented.',
  Ip6ReasmTimeout: 'IPv6 reassemblies that timed out.',
} as const;

export const DATA = Type.Object(
  {
    netns: nullable(Type.String(), "The network namespace read; null: ebpfnet's."),
    durationMs: Type.Number({ unit: 'ms', description: 'Time between the two reads of the counters (0 with one read).' }),
    cumulative: Type.Boolean({ description: 'One read of the fragment counters (duration 0): totals since boot.' }),
    devices: Type.Array(DEVICE, { description: 'The devices of the path.' }),
    mtuMismatches: Type.Array(MTU_MISMATCH, { description: 'Devices smaller than the packets that must cross them.' }),
    mtuDifferences: Type.Array(MTU_DIFFERENCE, { description: 'Every pair of joined devices whose MTUs differ: information.' }),
    mtuCheck: Type.Object(
      {
        taps: Type.Array(Type.String(), { description: "The VM's taps that exist here." }),
        uplinks: Type.Array(Type.String(), { description: 'The uplinks that exist here.' }),
        packetsToVm: nullable(Type.Integer({ unit: 'bytes' }), 'The packet size to the VM checked against; null: not given.'),
        packetsFromVm: nullable(Type.Integer({ unit: 'bytes' }), 'The packet size from the VM checked against; null: not given.'),
      },
      { additionalProperties: false, description: 'What the MTU check looked at.' },
    ),
    routes: Type.Array(ROUTE, { description: "The route to each of the VM's addresses." }),
    rules: Type.Array(
      Type.Object(
        {
          priority: Type.Integer({ description: "The rule's priority." }),
          text: Type.String({ description: 'The rule as `ip rule` prints it.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Policy routing rules beyond the three default ones.' },
    ),
    rpFilter: Type.Array(
      Type.Object(
        {
          dev: Type.String({ description: 'The device.' }),
          value: nullable(Type.Integer(), "The device's own rp_filter; null when unreadable."),
          all: nullable(Type.Integer(), "`all`'s rp_filter; null when unreadable."),
          effective: Type.Integer({ description: 'max(all, dev): 0 off, 1 strict, 2 loose.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Reverse-path filtering of each device.' },
    ),
    reversePathChecks: Type.Array(RP_CHECK, { description: 'The reverse-path check the kernel would make on packets from the VM\'s addresses.' }),
    rpFilterDrops: Type.Array(RP_CHECK, { description: 'Checks the kernel fails: packets from that IP on that device are dropped as martians.' }),
    rpFilterDropped: Type.Integer({ unit: 'packets', description: 'Packets dropped for failing the reverse-path check over the window, any source (TcpExt IPReversePathFilter).' }),
    neighbours: Type.Array(NEIGHBOUR, { description: 'Neighbour entries of the addresses, their gateways and the watched devices.' }),
    failedNeighbours: Type.Array(NEIGHBOUR, { description: 'FAILED or INCOMPLETE entries among them.' }),
    ipForward: nullable(Type.Boolean(), 'IPv4 forwarding (net.ipv4.ip_forward); null when unread.'),
    ip6Forward: nullable(Type.Boolean(), 'IPv6 forwarding (net.ipv6.conf.all.forwarding); null when IPv6 is off or was not read.'),
    frag: Type.Object(
      Object.fromEntries(Object.entries(FRAG_TEXT).map(([name, description]) => [name, Type.Integer({ unit: 'packets', description })])) as {
        [K in keyof typeof FRAG_TEXT]: ReturnType<typeof Type.Integer>;
      },
      { additionalProperties: false, description: 'IP fragment counters over the window (totals since boot when `cumulative`).' },
    ),
    fragFailures: Type.Integer({ unit: 'packets', description: 'ReasmFails + FragFails (IPv4 and IPv6).' }),
    problems: Type.Array(
      Type.Object(
        {
          kind: Type.Union(
            [Type.Literal('route'), Type.Literal('rp_filter'), Type.Literal('neighbour'), Type.Literal('mtu'), Type.Literal('off_path'), Type.Literal('fragmentation')],
            { description: 'What kind of problem.' },
          ),
          text: Type.String({ description: 'The problem, in words.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Every problem found, most telling first.' },
    ),
    notes: Type.Array(Type.String(), { description: 'What could not be read.' }),
  },
  { additionalProperties: false },
);

export type PathData = Static<typeof DATA>;
