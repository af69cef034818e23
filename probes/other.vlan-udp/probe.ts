// other.vlan-udp: UDP handed to each driver (net:net_dev_start_xmit) per device, VLAN id and
// 5-tuple, counted in the kernel (probes/other.vlan-udp/other.vlan-udp.bpf.c): packets, bytes, rates, how the tag was
// carried, and untagged UDP where a tag was expected. The session is recorded as capture
// records, so a replay re-parses it.
import type { U64 } from '../../engine/native/btf-layout.js';
import { runBpfSession } from '../../engine/probe/bpf-session.js';
import type { BpfObject } from '../../engine/native/object.js';
import { slotTotals } from '../../engine/probe/bpf-values.js';
import type { OverheadBudget } from '../../engine/probe/budget.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, Severity, TableSpec } from '../../engine/probe/types.js';
import { deviceLabel, type NetdevId } from '../lib/netdev.js';
import { round } from '../lib/format.js';
import { sumBy } from '../lib/tally.js';
import { pendingWays, PENDING_WAYS } from '../lib/pending.js';
import { flowText, flowTuple, readXmit, XMIT_PARAMS, XMIT_TRACEPOINT, xmitScope, xmitSession, xmitSessionData, type FlowTuple } from '../lib/xmit.js';
import { durationParam, topParam } from '../lib/params.js';
import { DATA, type UntaggedWhereExpected, type VlanTotals, type VlanUdpData, type VlanUdpFlow } from './data.js';
import { loadedTables, tracepointRun } from '../lib/bpf-probe.js';
export type { VlanUdpData, VlanUdpFlow };

/** probes/other.vlan-udp/other.vlan-udp.h */
const UNTAGGED = 0xffff;
const TOTALS = { seen: 0, unkeyed: 1 };

/**
 * What a session may cost: 5% of one CPU, 1M program runs/s. The program runs once per packet
 * handed to a driver, parses the headers in one read and, for UDP, counts in two cache lines of
 * its CPU's while the flow keeps its way (a hash update when another flow takes it).
 */
export const VLAN_UDP_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 1_000_000 };

export interface FlowEntry extends NetdevId, FlowTuple {
  /** VLAN id, null when untagged. */
  vlan: number | null;
  packets: number;
  bytes: number;
  /** ns between the flow's first and last packet. */
  spanNs: number;
  hwTagged: number;
  inband: number;
}

export interface VlanUdpDump {
  seen: number;
  unkeyed: number;
  entries: FlowEntry[];
}

/** struct vlan_udp_key and struct vlan_udp_value, decoded. */
interface VlanUdpKey {
  dev: NetdevId;
  saddr: Buffer;
  daddr: Buffer;
  sport: number;
  dport: number;
  vlan: number;
  family: number;
}
interface VlanUdpValue {
  packets: number;
  bytes: number;
  first_ns: U64;
  last_ns: U64;
  hw_tagged: number;
  inband: number;
}

/** struct vlan_udp_pending, decoded: a CPU's packets of one flow not in `flows` yet. */
interface VlanUdpPending extends VlanUdpValue {
  key: VlanUdpKey;
  tagging: number;
}

/** XMIT_TAG_HW and XMIT_TAG_INBAND of bpf/include/xmit.h. */
const TAG_HW = 1;
const TAG_INBAND = 2;

const flowId = (k: VlanUdpKey) => `${k.dev.ifindex}/${k.dev.netns}/${k.dev.name}/${k.family}/${k.saddr.toString('hex')}/${k.daddr.toString('hex')}/${k.sport}/${k.dport}/${k.vlan}`;

/** Adds a way's packets to its flow's entry (a new one when `flows` has none). */
function addWay(byFlow: Map<string, { key: VlanUdpKey; value: VlanUdpValue }>, w: VlanUdpPending): void {
  const id = flowId(w.key);
  const e = byFlow.get(id);
  const tags = { hw_tagged: w.tagging === TAG_HW ? w.packets : 0, inband: w.tagging === TAG_INBAND ? w.packets : 0 };
  if (!e) {
    byFlow.set(id, { key: w.key, value: { packets: w.packets, bytes: w.bytes, first_ns: w.first_ns, last_ns: w.last_ns, ...tags } });
    return;
  }
  const v = e.value;
  v.packets += w.packets;
  v.bytes += w.bytes;
  v.hw_tagged += tags.hw_tagged;
  v.inband += tags.inband;
  if (BigInt(w.first_ns) < BigInt(v.first_ns)) v.first_ns = w.first_ns;
  if (BigInt(w.last_ns) > BigInt(v.last_ns)) v.last_ns = w.last_ns;
}

/** Reads the `flows` map, the ways not moved into it yet and the totals (exported for the tests that load a flavour by hand). */
export function readVlanUdp(o: BpfObject): VlanUdpDump {
  const byFlow = new Map(o.map('flows').readAllDecoded<VlanUdpKey, VlanUdpValue>().map((e) => [flowId(e.key), e]));
  const ways = pendingWays<VlanUdpPending>(o);
  for (const w of ways) addWay(byFlow, w);
  const entries = [...byFlow.values()].map(({ key: k, value: v }): FlowEntry => ({
    ifindex: k.dev.ifindex,
    netns: k.dev.netns,
    name: k.dev.name,
    ...flowTuple(k.family, k.saddr, k.daddr, k.sport, k.dport),
    vlan: k.vlan === UNTAGGED ? null : k.vlan,
    packets: v.packets,
    bytes: v.bytes,
    spanNs: Math.max(0, Number(BigInt(v.last_ns) - BigInt(v.first_ns))),
    hwTagged: v.hw_tagged,
    inband: v.inband,
  }));
  entries.sort((a, b) => b.packets - a.packets || a.ifindex - b.ifindex || (a.vlan ?? -1) - (b.vlan ?? -1) || flowText(a).localeCompare(flowText(b)));
  const totals = slotTotals(o.map('totals'), TOTALS);
  return { seen: totals.seen + sumBy(ways, (w) => w.packets), unkeyed: totals.unkeyed, entries };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const vlan = typeof params.vlan === 'number' ? params.vlan : null;
  await runBpfSession(
    io,
    xmitSession(params, {
      object: 'other.vlan-udp',
      prefix: 'vlan_udp_xmit',
      what: 'other.vlan-udp',
      globals: { targ_vlan_set: vlan !== null, targ_vlan: vlan ?? 0 },
      read: readVlanUdp,
    }),
  );
}

export type Tagging = 'hw' | 'in-band' | 'mixed' | 'none';

const nFlows = (n: number) => `${n} flow${n === 1 ? '' : 's'}`;

function taggingOf(e: FlowEntry): Tagging {
  if (e.hwTagged > 0 && e.inband > 0) return 'mixed';
  return e.hwTagged > 0 ? 'hw' : e.inband > 0 ? 'in-band' : 'none';
}

function parse(records: RawRecord[], params: Params): ProbeResult<VlanUdpData> {
  const { attach, dump, overhead } = readXmit<VlanUdpDump>(records);
  const top = Math.max(1, (params.top as number | undefined) ?? 20);
  const vlanFilter = typeof params.vlan === 'number' ? params.vlan : null;
  const session = xmitSessionData(attach, dump, overhead);
  if (dump.unkeyed > 0) session.notes.push(`${dump.unkeyed} packets were counted but not kept per flow: the map was full`);
  const secs = dump.windowMs / 1000;
  const rate = (n: number) => (secs > 0 ? round(n / secs, 1) : 0);

  const all: VlanUdpFlow[] = dump.entries.map((e) => ({
    device: deviceLabel(e, dump),
    vlan: e.vlan,
    family: e.family,
    src: e.src,
    dst: e.dst,
    sport: e.sport,
    dport: e.dport,
    packets: e.packets,
    bytes: e.bytes,
    pps: rate(e.packets),
    bitsPerSec: rate(e.bytes * 8),
    spanMs: round(e.spanNs / 1e6),
    tagging: taggingOf(e),
  }));

  const byVlan = new Map<number, VlanTotals>();
  for (const f of all) {
    if (f.vlan === null) continue;
    const v = byVlan.get(f.vlan) ?? { vlan: f.vlan, packets: 0, bytes: 0, pps: 0, bitsPerSec: 0, flows: 0, devices: [] };
    v.packets += f.packets;
    v.bytes += f.bytes;
    v.flows += 1;
    if (!v.devices.includes(f.device)) v.devices.push(f.device);
    byVlan.set(f.vlan, v);
  }
  const vlans = [...byVlan.values()].map((v) => ({ ...v, pps: rate(v.packets), bitsPerSec: rate(v.bytes * 8), devices: v.devices.sort() }));
  vlans.sort((a, b) => b.packets - a.packets || a.vlan - b.vlan);

  const trunks = new Map<string, Set<number>>();
  for (const f of all) if (f.vlan !== null) trunks.set(f.device, (trunks.get(f.device) ?? new Set()).add(f.vlan));
  const untaggedWhereExpected: UntaggedWhereExpected[] = [];
  const devices = [...new Set(all.filter((f) => f.vlan === null).map((f) => f.device))].sort();
  for (const device of devices) {
    const carried = trunks.get(device);
    const named = vlanFilter !== null && attach.filter.dev !== null && all.some((f) => f.device === device && f.vlan === null);
    if (!carried && !named) continue;
    const flows = all.filter((f) => f.device === device && f.vlan === null);
    const expected = carried ? `carries VLAN ${[...carried].sort((a, b) => a - b).join(', ')} tagged` : `VLAN ${vlanFilter} expected on ${attach.filter.dev}`;
    untaggedWhereExpected.push({ device, packets: sumBy(flows, (f) => f.packets), flows: flows.length, expected });
  }

  const tagged = sumBy(vlans, (v) => v.packets);
  const packets = sumBy(all, (f) => f.packets);
  const data: VlanUdpData = {
    ...session,
    vlanFilter,
    packets,
    bytes: sumBy(all, (f) => f.bytes),
    tagged,
    untagged: packets - tagged,
    vlans,
    flows: all.slice(0, top),
    flowCount: all.length,
    untaggedWhereExpected,
    lost: dump.unkeyed,
  };

  const window = `${secs.toFixed(1)}s`;
  const scope = `${xmitScope(attach.filter)}${vlanFilter !== null ? `, VLAN ${vlanFilter}` : ''}`;
  let summary: string;
  if (packets === 0) summary = `no UDP handed to ${scope} for transmit in ${window} (${attach.method})`;
  else if (vlans.length === 0) summary = `${packets} UDP packets in ${nFlows(all.length)} in ${window}, none VLAN-tagged`;
  else {
    const lead = vlans.slice(0, 3).map((v) => `VLAN ${v.vlan}: ${v.packets} packets (${v.pps}/s) in ${nFlows(v.flows)}`);
    summary = `${lead.join('; ')}${vlans.length > 3 ? `; ${vlans.length} VLANs in all` : ''} in ${window}; ${data.untagged} untagged`;
  }
  if (untaggedWhereExpected.length > 0) summary += ` (untagged where a tag was expected: ${untaggedWhereExpected.map((u) => `${u.packets} on ${u.device}`).join(', ')})`;
  if (session.stopped) summary += ` (stopped: ${session.stopped})`;
  const severity: Severity = untaggedWhereExpected.length > 0 ? 'warning' : 'info';

  const charts: ChartSpec[] = [];
  if (vlans.length > 0) charts.push({ kind: 'bar', title: 'UDP packets per VLAN', unit: 'packets', bars: vlans.map((v) => ({ label: `VLAN ${v.vlan}`, value: v.packets })) });
  if (data.flows.length > 1) charts.push({ kind: 'bar', title: 'UDP packets per flow', unit: 'packets', bars: data.flows.map((f) => ({ label: `${f.vlan === null ? 'untagged' : `VLAN ${f.vlan}`} ${flowText(f)}`, value: f.packets })) });
  const tables: TableSpec[] = [
    { title: 'UDP per VLAN', columns: ['VLAN', 'packets', 'bytes', 'packets/s', 'bits/s', 'flows', 'devices'], rows: vlans.map((v) => [v.vlan, v.packets, v.bytes, v.pps, v.bitsPerSec, v.flows, v.devices.join(', ')]) },
    {
      title: 'UDP flows handed to drivers',
      columns: ['device', 'VLAN', 'flow', 'packets', 'bytes', 'packets/s', 'bits/s', 'span ms', 'tagging'],
      rows: data.flows.map((f) => [f.device, f.vlan ?? 'untagged', flowText(f), f.packets, f.bytes, f.pps, f.bitsPerSec, f.spanMs, f.tagging]),
    },
    ...(untaggedWhereExpected.length > 0 ? [{ title: 'Untagged UDP where a tag was expected', columns: ['device', 'packets', 'flows', 'why a tag was expected'], rows: untaggedWhereExpected.map((u) => [u.device, u.packets, u.flows, u.expected]) }] : []),
    ...loadedTables(attach, overhead),
  ];
  return { data, summary, severity, charts, tables };
}

export const otherVlanUdp: ProbeDefinition<VlanUdpData> = {
  id: 'other.vlan-udp',
  title: 'UDP per VLAN and flow, as handed to drivers',
  description: `Counts every UDP packet handed to a driver (\`net:net_dev_start_xmit\`) for \`duration\`, in the kernel per device, VLAN id and 5-tuple (IPv4 and IPv6): packets, bytes (\`skb->len\`: the frame), packets and bits per second over the window, the span between a flow's first and last packet, and how the tag was carried: in \`skb->vlan_tci\` (hardware-accelerated tagging, the device inserts it) or in an 802.1Q/802.1ad header in the frame (the lower device does not offload tagging). A VLAN device's own transmit is untagged; its lower device (the trunk) carries the tag. **Untagged UDP where a tag was expected** is reported: untagged UDP on a device that carried tagged UDP in the window, or on \`dev\` when \`vlan\` is given.

Use it for VMs on VLANs: which VLAN and flow a UDP workload really leaves by, at what rate, and whether some of it leaves untagged. \`vlan\` keeps that VLAN id (untagged UDP is kept too, for the check above), \`dev\`/\`netns\` and the address and port filters apply in the kernel. Attaches one tp_btf program, whose reads are plain loads (falls back to raw_tp with a cached minimal BTF, then the classic tracepoint); it runs once per packet handed to a driver. A CPU counts a flow in a cache line of its own (four flows at a time) and moves the counts to the flow's entry when another flow takes its place. Past the overhead budget (5% of a CPU, 1M runs/s) the session stops early and keeps its counts.

Replaces the seed's \`other/trace_vlanvm_udp_workload.bt\` (PROBES.md row 50), which dumped skb headers, GSO fields and device features of each packet on a hard-coded list of devices at kprobes along the tunnel and segmentation path.`,
  normal: `Each VLAN's UDP appears tagged on its trunk device with the rate the workload sends (the VLAN device itself shows it untagged), with one tagging method per device (\`hw\` on devices that offload tagging: veth, most NICs). Untagged UDP on a trunk is a warning: a VM or a bridge port not in the VLAN it should be, or a misconfigured VLAN filter.`,
  replaces: ['other/trace_vlanvm_udp_workload.bt'],
  memory: { resized: { pending: { perCpu: PENDING_WAYS } } },
  params: {
    duration: durationParam('How long to count.', { max: 3_600_000 }),
    ...XMIT_PARAMS,
    vlan: { type: 'integer', min: 0, max: 4095, description: 'Only this VLAN id (untagged UDP is kept too).' },
    top: topParam('How many flows to list (busiest first).', { default: 20, max: 10_000 }),
  },
  ...tracepointRun([XMIT_TRACEPOINT], VLAN_UDP_BUDGET),
  data: DATA,
  collect,
  parse,
};
