// vm.frames: one VM's own frames through its switch, counted in the kernel by the native
// driver (probes/vm.frames/vm.frames.bpf.c): what entered toward it and what its taps delivered, what it
// sent and what left by the switch's ports, the addresses it used, the largest packets. The
// devices of ebpfnet's namespace and its inode are recorded as exec records, the session as
// capture records: a replay re-parses both.
import { loadedRecord } from '../../engine/native/attach-plan.js';
import type { BpfObject } from '../../engine/native/object.js';
import { u32Key } from '../../engine/native/map.js';
import { readBpfSession, runBpfSession, type SessionWindow } from '../../engine/probe/bpf-session.js';
import type { OverheadBudget } from '../../engine/probe/budget.js';
import type { Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord } from '../../engine/probe/types.js';
import { loadTracepoints, netdevPlan } from '../lib/netdev.js';
import { readDump, type DumpCapture } from './dump.js';
import { DATA } from './data.js';
import { framesFinding, type AttachCapture, type FramesData } from './findings.js';
import { findsHostPorts, OVS_INTERNAL_ARGV, resolveScope, scopeGlobals } from './scope.js';
import { durationParam } from '../lib/params.js';
import { tracepointRun } from '../lib/bpf-probe.js';

/** Handlers by prefix, in attach order: deliveries first, so that a frame whose entry was counted is not missed on its way out. */
export const TRACEPOINTS = { frames_xmit: 'net:net_dev_start_xmit', frames_receive: 'net:netif_receive_skb' };
export const attachPlan = () => netdevPlan(TRACEPOINTS);

const COMMAND_TIMEOUT_MS = 15_000;
/**
 * Measured (test/probe/vm-frames-grace.test.ts): a Linux bridge delivers in microseconds; OVS's
 * userspace datapath in a few ms, up to ~80 ms on a loaded 2-CPU machine. Frames entering during the
 * grace are left out by fingerprint, so a longer grace costs only time.
 */
export const DEFAULT_GRACE_MS = 250;

/**
 * What a session may cost: 5% of one CPU, 1M program runs/s. Both tracepoints fire for every
 * packet the host receives or sends: the programs compare the device's ifindex with the VM's
 * taps and ports first and leave; with `ports` empty they read every frame's MAC addresses.
 */
export const FRAMES_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 1_000_000 };

/** CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns (libuv's hrtime reads it too). */
const monotonicNs = () => process.hrtime.bigint();

/** Closes the window: from now on entries are not counted, deliveries of what entered before still are. */
export function closeWindow(o: BpfObject): void {
  const v = Buffer.alloc(8);
  v.writeBigUInt64LE(monotonicNs());
  o.map('phase').update(u32Key(0), v);
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  // Read side by side, started in a fixed order (a replay answers them in that order).
  const [links, netns, ovsInternal] = await Promise.all([
    io.exec('links', ['ip', '-j', '-d', 'link', 'show'], { timeoutMs: COMMAND_TIMEOUT_MS, allowFailure: true }),
    io.exec('netns', ['readlink', '/proc/self/ns/net'], { timeoutMs: COMMAND_TIMEOUT_MS }),
    // Without OVS (no ovs-vsctl, no database) the record says so and the rest is found without it.
    findsHostPorts(params) ? io.exec('ovs-internal', OVS_INTERNAL_ARGV, { timeoutMs: COMMAND_TIMEOUT_MS, allowFailure: true }) : null,
  ]);
  const scope = resolveScope(params, links, netns, ovsInternal);
  const durationMs = params.duration as number;
  const graceMs = (params.grace as number | undefined) ?? DEFAULT_GRACE_MS;

  // Set by a live run only: a replay loads nothing and answers the captures from the recording.
  let obj: BpfObject | undefined;
  let attachedAt = 0;
  let closedAt: number | undefined;
  const load = async () => {
    const loaded = await loadTracepoints('vm.frames', TRACEPOINTS, scopeGlobals(scope), 'vm.frames');
    obj = loaded.obj;
    attachedAt = performance.now();
    const record: AttachCapture = { ...loadedRecord(loaded), scope };
    return { obj: loaded.obj, record };
  };
  // The grace is taken inside `duration` (at most half of it), so the probe ends with the
  // others of its step: entries stop `grace` before the end, deliveries are counted to the end.
  const grace = Math.min(graceMs, durationMs / 2);
  const window = async (windowIO: ProbeIO) => {
    await windowIO.sleep(durationMs - grace);
    if (obj) {
      closeWindow(obj);
      closedAt = performance.now();
    }
    await windowIO.sleep(grace);
  };
  // An overhead guard that stops the programs ends both sleeps at once: the grace is then ~0.
  const read = (o: BpfObject, sinceAttach: SessionWindow) => {
    if (closedAt === undefined) return readDump(o, { windowMs: sinceAttach.ms, graceMs: 0 });
    return readDump(o, { windowMs: closedAt - attachedAt, graceMs: performance.now() - closedAt });
  };
  await runBpfSession(io, { load, window, read });
}

function parse(records: RawRecord[]): ProbeResult<FramesData> {
  const { attach, dump, overhead } = readBpfSession<AttachCapture, DumpCapture>(records);
  return framesFinding(attach, dump, overhead);
}

export const vmFrames: ProbeDefinition<FramesData> = {
  id: 'vm.frames',
  title: "A VM's own frames through its switch: loss both ways, its addresses, its largest packets",
  description: `Counts, in the kernel, one VM's frames where they enter and leave its switch, whatever the switch is (a Linux bridge, Open vSwitch on the kernel or the userspace datapath): frames **to the VM** received on the switch's other \`ports\` for one of its \`macs\` (**entered**, unicast) against those its taps (\`devs\`) transmitted (**delivered**); frames **from the VM** its taps received from its MACs (**sent**: unicast, multicast and broadcast apart) against those the ports transmitted (**forwarded**). The switch's own port to the host (\`host_ports\`: a Linux bridge's device, an Open vSwitch internal port, where the host has its address when it is the VMs' gateway) counts the other way round: a frame the host **transmits** on it for the VM entered the switch, a frame of the VM the host **receives** on it was forwarded (to the host). The differences are what the switch lost: \`lost.toVm\` = entered − delivered, \`lost.fromVm\` = unicast sent − unicast forwarded, whoever dropped them: a netfilter bridge rule, a full queue, an OpenFlow rule in OVS's userspace datapath that the kernel never sees. \`packets\` is what the VM was offered plus what it sent, the denominator for shares (\`lost.share\`).

From the VM's own frames it also learns the **addresses the VM uses** (\`learnedAddresses\`: ARP senders, IPv4 and IPv6 sources, the targets of its duplicate address detection, each with where it was seen), needing no address on the host's bridge, no neighbour entry and no inventory; and the **largest packets** (L3 bytes) that entered the switch toward the VM and that left the VM (\`maxPacket\`), for an MTU check against the devices of its path (their MTUs are in \`scope\`).

Both hooks are \`net:netif_receive_skb\` and \`net:net_dev_start_xmit\` (raw_tp with a cached minimal BTF, else tp_btf, else the classic tracepoints): every packet of the host runs one program, which compares the device's ifindex with the VM's taps and ports first and leaves. GSO packets count their segments; bytes are wire bytes. A frame from the VM that leaves by several ports (flooded while the switch did not know its destination, or through stacked devices such as a VLAN on a bond) counts once per MAC pair. The window closes in two steps within \`duration\`: \`grace\` before its end (at most half of it) entries stop counting, and deliveries of what entered before are still counted to the end; frames entering during the grace are remembered by fingerprint and their deliveries left out, so that traffic crossing the window's end is neither lost nor counted twice.

Give \`devs\` (the VM's taps, as \`ip link\` in ebpfnet's namespace names them), \`macs\` (its guest MACs), \`ports\` (the switch's other ports: uplinks and other VMs' taps) and \`host_ports\` (the host's own ports of the switch: \`target.path.hostPorts\`). A frame the host's stack drops after its port received it (an \`input\` rule, no socket) is not the switch's loss: the kernel's drop reasons tell it. With \`ports\` and \`host_ports\` empty, every device of the namespace but the taps is a port (each frame's MACs are read then: more cost on a busy host), and the host's ports are found: the Linux bridges the taps are plugged into, and every OVS internal port (kernel devices of kind \`openvswitch\`, and the interfaces OVS's database lists as \`internal\`: on the userspace datapath they are taps).`,
  normal: `A healthy switch loses nothing of a VM: \`lost.toVm\` and \`lost.fromVm\` are 0, entered equals delivered and unicast sent equals forwarded. Multicast and broadcast reach the VM from its neighbours (ARP, IPv6 neighbour discovery, MLD) and are counted apart. The learned addresses are the VM's IPv4 address, its IPv6 link-local and global addresses (a router or NAT VM sends others' too). The largest packets fit the smallest MTU on the path (1500 on a plain network; GSO packets are counted by their segments). Any loss is a warning; 1% or more of \`packets\` (and at least 10) is critical.`,
  params: {
    devs: { type: 'string[]', required: true, description: "The VM's taps (names in ebpfnet's network namespace), e.g. vnet3." },
    macs: { type: 'string[]', required: true, description: "The VM's guest MACs, e.g. 52:54:00:12:34:56." },
    ports: { type: 'string[]', default: [], description: "The other ports of the VM's bridge(s): uplinks and other VMs' taps (target.path.ports). Empty: every device of ebpfnet's namespace but the taps and the host's ports." },
    host_ports: {
      type: 'string[]',
      default: [],
      description: "The host's own ports of the VM's bridge(s): a Linux bridge's device, OVS internal ports (target.path.hostPorts). What the host receives on one left the switch, what it transmits on one entered it. Empty with ports empty: found (the taps' Linux bridges, every OVS internal port); empty with ports given: none.",
    },
    duration: durationParam('How long to count.', { default: '10s', max: 3_600_000 }),
    grace: { type: 'duration', default: `${DEFAULT_GRACE_MS}ms`, min: 0, max: 10_000, description: 'The end of the window (at most half of `duration`) when only deliveries of frames that entered before are counted (frames slower through the switch count as lost).' },
    vm: { type: 'string', description: "The VM's name, for the summary." },
  },
  ...tracepointRun(Object.values(TRACEPOINTS), FRAMES_BUDGET, { more: [{ kind: 'binary', name: 'ip', package: 'iproute2' }] }),
  data: DATA,
  collect,
  parse,
};
