// Every shipped probe. A probe lives in probes/<id>/probe.ts; add it here.
import { ProbeRegistry } from '../engine/probe/registry.js';
import type { ProbeDefinition } from '../engine/probe/types.js';
import { netIface } from './net.iface/probe.js';
import { qdiscStats } from './qdisc.stats/probe.js';
import { qdiscLatency } from './qdisc.latency/probe.js';
import { dropsKernel } from './drops.kernel/probe.js';
import { qdiscDrops } from './qdisc.drops/probe.js';
import { dropsEth } from './drops.eth/probe.js';
import { dropsMonitor } from './drops.monitor/probe.js';
import { netNft } from './net.nft/probe.js';
import { netPath } from './net.path/probe.js';
import { netConntrack } from './net.conntrack/probe.js';
import { cpuRunqlat } from './cpu.runqlat/probe.js';
import { perfVmLatency } from './perf.vm-latency/probe.js';
import { perfIcmpRtt } from './perf.icmp-rtt/probe.js';
import { perfHostLatency } from './perf.host-latency/probe.js';
import { ovsDrops } from './ovs.drops/probe.js';
import { ovsMegaflow } from './ovs.megaflow/probe.js';
import { otherArp } from './other.arp/probe.js';
import { netDefrag } from './net.defrag/probe.js';
import { otherQdiscDequeue } from './other.qdisc-dequeue/probe.js';
import { otherDevQueue } from './other.dev-queue/probe.js';
import { otherTc } from './other.tc/probe.js';
import { otherUdpPath } from './other.udp-path/probe.js';
import { perfHostMetrics } from './perf.host-metrics/probe.js';
import { otherOvsCtInvalid } from './other.ovs-ct-invalid/probe.js';
import { otherOffload } from './other.offload/probe.js';
import { otherVlanUdp } from './other.vlan-udp/probe.js';
import { vmFrames } from './vm.frames/probe.js';

export const allProbes: ProbeDefinition[] = [netIface, qdiscStats, qdiscLatency, dropsKernel as ProbeDefinition];
allProbes.push(qdiscDrops as ProbeDefinition, dropsEth as ProbeDefinition, dropsMonitor as ProbeDefinition);
allProbes.push(cpuRunqlat as ProbeDefinition);
allProbes.push(perfVmLatency as ProbeDefinition);
allProbes.push(perfIcmpRtt as ProbeDefinition);
allProbes.push(perfHostLatency as ProbeDefinition);
allProbes.push(netNft);
allProbes.push(netPath);
allProbes.push(netConntrack as ProbeDefinition);
allProbes.push(ovsDrops as ProbeDefinition, ovsMegaflow as ProbeDefinition);
allProbes.push(otherArp as ProbeDefinition);
allProbes.push(netDefrag as ProbeDefinition);
allProbes.push(otherQdiscDequeue as ProbeDefinition, otherDevQueue as ProbeDefinition, otherTc as ProbeDefinition);
allProbes.push(otherUdpPath as ProbeDefinition);
allProbes.push(perfHostMetrics as ProbeDefinition);
allProbes.push(otherOvsCtInvalid as ProbeDefinition);
allProbes.push(otherOffload as ProbeDefinition, otherVlanUdp as ProbeDefinition);
allProbes.push(vmFrames as ProbeDefinition);

let shipped: ProbeRegistry | undefined;

/** The registry of every shipped probe, built once: the commands hand it to the engine. */
export function probeRegistry(): ProbeRegistry {
  shipped ??= new ProbeRegistry(allProbes);
  return shipped;
}
