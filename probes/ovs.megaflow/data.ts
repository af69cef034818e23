// ovs.megaflow's finding data: how well Open vSwitch's datapaths served packets from the
// megaflow cache over the window, per datapath, per userspace thread, per port and per VM.
import Type, { type Static } from '#typebox';

const rate = (description: string) => Type.Union([Type.Number({ unit: 'share' }), Type.Null()], { description });

const DATAPATH = Type.Object(
  {
    id: Type.String({ description: 'The datapath (`system@ovs-system`, `netdev@ovs-netdev`).' }),
    type: Type.String({ description: 'Its type: system (kernel) or netdev (userspace).' }),
    bridges: Type.Array(Type.String(), { description: 'The bridges on it.' }),
    hits: Type.Integer({ unit: 'packets', description: 'Lookups that hit a megaflow over the window (all its bridges together).' }),
    missed: Type.Integer({ unit: 'packets', description: 'Lookups that missed (upcalls to ovs-vswitchd) over the window.' }),
    lost: Type.Integer({ unit: 'packets', description: 'Packets lost on their way to ovs-vswitchd over the window.' }),
    hitRate: rate('hits / (hits + missed); null without lookups.'),
    missPerSec: Type.Number({ unit: 'events/s', description: 'Misses per second.' }),
    lostPerSec: Type.Number({ unit: 'pps', description: 'Lost packets per second.' }),
    flows: Type.Union(
      [
        Type.Object(
          {
            current: Type.Integer({ description: 'Megaflows now.' }),
            avg: Type.Integer({ description: 'Average megaflows.' }),
            max: Type.Integer({ description: 'Most megaflows.' }),
            limit: Type.Integer({ description: 'The (dynamic) flow limit.' }),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: 'upcall/show at the end; null when unread.' },
    ),
    flowLimitPressure: rate('current / limit: near 1, new flows are refused and packets take the slow path; null when unread.'),
    dumpDurationMs: Type.Union([Type.Number({ unit: 'ms' }), Type.Null()], { description: 'How long a dump of the megaflows takes; null when unread.' }),
    megaflows: Type.Integer({ description: 'Megaflows in the dump at the end.' }),
    installed: Type.Integer({ description: 'Megaflows installed between the two dumps.' }),
    removed: Type.Integer({ description: 'Megaflows removed between the two dumps.' }),
  },
  { additionalProperties: false },
);

const PMD = Type.Object(
  {
    thread: Type.String({ description: 'The thread (`pmd thread numa_id 0 core_id 1`, `main thread`).' }),
    packets: Type.Integer({ unit: 'packets', description: 'Packets it received over the window.' }),
    recirculations: Type.Integer({ unit: 'packets', description: 'Packet recirculations.' }),
    emcHits: Type.Integer({ unit: 'packets', description: 'Exact-match cache hits.' }),
    smcHits: Type.Integer({ unit: 'packets', description: 'Signature-match cache hits.' }),
    megaflowHits: Type.Integer({ unit: 'packets', description: 'Megaflow (dpcls) hits.' }),
    simpleMatchHits: Type.Integer({ unit: 'packets', description: 'Simple match hits.' }),
    phwolHits: Type.Integer({ unit: 'packets', description: 'Hardware offload hits.' }),
    upcallsOk: Type.Integer({ unit: 'packets', description: 'Misses whose upcall worked.' }),
    upcallsFailed: Type.Integer({ unit: 'packets', description: 'Misses whose upcall failed (the packet was dropped).' }),
    hitRate: rate('Cache hits / lookups; null without lookups.'),
    cyclesPerPacket: Type.Union([Type.Number(), Type.Null()], { description: 'Processing cycles per packet (PMD threads only); null otherwise.' }),
    busy: rate("Share of the thread's cycles spent processing (PMD threads only); null otherwise."),
  },
  { additionalProperties: false },
);

const TOP_FLOW = Type.Object(
  {
    key: Type.String({ description: "The megaflow's match, compacted." }),
    inPort: Type.Union([Type.String(), Type.Null()], { description: 'The port it matches packets from; null when it names none.' }),
    bridge: Type.Union([Type.String(), Type.Null()], { description: 'The bridge of that port; null when unknown.' }),
    actions: Type.String({ description: 'Its actions.' }),
    drop: Type.Boolean({ description: 'Its action is drop.' }),
    packets: Type.Integer({ unit: 'packets', description: 'Packets it matched over the window.' }),
    bytes: Type.Integer({ unit: 'bytes', description: 'Bytes it matched over the window.' }),
    new: Type.Boolean({ description: 'Installed during the window (its first packet was a miss).' }),
    scope: Type.Optional(
      Type.Union([Type.Literal('vm'), Type.Literal('any'), Type.Literal('other')], {
        description: "Scoped to a VM: whose packets its key says it carries: the VM's (`vm`), anyone's (`any`), another's (`other`).",
      }),
    ),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    durationMs: Type.Number({ unit: 'ms', description: 'Time between the two reads.' }),
    scope: Type.Object(
      {
        bridge: Type.Union([Type.String(), Type.Null()], { description: 'The bridge asked for; null: every bridge.' }),
        dev: Type.Union([Type.String(), Type.Null()], { description: 'The port asked for; null: none.' }),
        bridges: Type.Array(Type.String(), { description: 'The bridges in scope.' }),
      },
      { additionalProperties: false, description: 'What was measured.' },
    ),
    datapath: Type.Array(Type.String(), { description: 'The types of the datapaths of the host (system, netdev).' }),
    datapaths: Type.Array(DATAPATH, { description: 'Each datapath in scope, over the window.' }),
    hits: Type.Integer({ unit: 'packets', description: 'Megaflow hits of the datapaths in scope.' }),
    missed: Type.Integer({ unit: 'packets', description: 'Misses (upcalls) of the datapaths in scope.' }),
    lost: Type.Integer({ unit: 'packets', description: 'Packets lost on their way to ovs-vswitchd.' }),
    hitRate: rate('hits / (hits + missed) of the datapaths in scope; null without lookups.'),
    missPerSec: Type.Number({ unit: 'events/s', description: 'Misses per second.' }),
    failedUpcalls: Type.Integer({ unit: 'packets', description: 'Upcalls that failed (userspace datapath) plus lost packets (kernel datapath).' }),
    upcalls: Type.Integer({ unit: 'packets', description: "Upcalls that worked (userspace datapath; the kernel datapath's misses are its upcalls)." }),
    pmd: Type.Array(PMD, { description: "The userspace datapath's threads over the window (pmd-stats-show)." }),
    churn: Type.Object(
      {
        installed: Type.Integer({ description: 'Megaflows installed between the two dumps.' }),
        removed: Type.Integer({ description: 'Megaflows removed between the two dumps.' }),
        puts: Type.Integer({ unit: 'events', description: 'Flow puts through the dpif layer (the kernel datapath\'s installs).' }),
        deletes: Type.Integer({ unit: 'events', description: 'Flow deletes through the dpif layer.' }),
        putsPerSec: Type.Number({ unit: 'events/s', description: 'Flow puts per second.' }),
        flushes: Type.Integer({ unit: 'events', description: "Times the datapath's megaflows were all flushed." }),
      },
      { additionalProperties: false, description: 'How much the megaflows changed over the window.' },
    ),
    flowLimit: Type.Object(
      {
        pressure: rate('The highest flow-limit pressure (flows / limit) of the datapaths; null when unread.'),
        hits: Type.Integer({ unit: 'events', description: 'Times the flow limit was hit.' }),
        kills: Type.Integer({ unit: 'events', description: 'Flows killed for the limit.' }),
      },
      { additionalProperties: false, description: 'How close the flow table is to its limit.' },
    ),
    counters: Type.Record(Type.String(), Type.Integer({ unit: 'events' }), { description: 'Coverage counters about flows and upcalls that moved (coverage/show deltas).' }),
    topFlows: Type.Array(TOP_FLOW, { description: 'Busiest megaflows in scope (of `dev`, or of the VM) over the window.' }),
    port: Type.Optional(
      Type.Object(
        {
          name: Type.String({ description: 'The port.' }),
          hits: Type.Integer({ unit: 'packets', description: 'Packets on its existing megaflows.' }),
          misses: Type.Integer({ description: 'Megaflows installed for it (at least one miss each).' }),
          hitRate: rate('hits / (hits + misses); null without lookups.'),
          megaflows: Type.Integer({ description: 'Its megaflows.' }),
        },
        { additionalProperties: false, description: 'The port\'s share, with `dev`.' },
      ),
    ),
    vm: Type.Optional(
      Type.Object(
        {
          macs: Type.Array(Type.String(), { description: "The VM's MACs." }),
          ips: Type.Array(Type.String(), { description: "The VM's addresses." }),
          hits: Type.Integer({ unit: 'packets', description: 'Packets that hit its megaflows over the window.' }),
          misses: Type.Integer({ description: 'Its megaflows installed in the window (at least one miss each).' }),
          megaflows: Type.Integer({ description: 'Megaflows whose key names the VM.' }),
          dropped: Type.Integer({ unit: 'packets', description: 'Packets of its megaflows whose action is drop.' }),
          anyMegaflows: Type.Integer({ description: 'Megaflows that can carry its packets but name nothing of it.' }),
          anyPackets: Type.Integer({ unit: 'packets', description: 'Their packets.' }),
          hitRate: rate('hits / (hits + misses); null without lookups.'),
        },
        { additionalProperties: false, description: 'Scoped to a VM (vm_macs, vm_ips): its megaflows, from it and to it.' },
      ),
    ),
    assessment: Type.Array(Type.String(), { description: 'What the numbers mean, against what normal looks like.' }),
    notes: Type.Array(Type.String(), { description: 'What could not be read.' }),
  },
  { additionalProperties: false },
);

export type OvsMegaflowData = Static<typeof DATA>;
