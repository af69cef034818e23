// Every shipped probe. A probe lives in probes/<id>/probe.ts; add it here.
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
import { ovsDrops } from './ovs.drops/probe.js';
import { ovsMegaflow } from './ovs.megaflow/probe.js';

export const allProbes: ProbeDefinition[] = [netIface, qdiscStats, qdiscLatency, dropsKernel as ProbeDefinition];
allProbes.push(qdiscDrops as ProbeDefinition, dropsEth as ProbeDefinition, dropsMonitor as ProbeDefinition);
allProbes.push(cpuRunqlat as ProbeDefinition);
allProbes.push(perfVmLatency as ProbeDefinition);
allProbes.push(perfIcmpRtt as ProbeDefinition);
allProbes.push(netNft);
allProbes.push(netPath);
allProbes.push(netConntrack as ProbeDefinition);
allProbes.push(ovsDrops as ProbeDefinition, ovsMegaflow as ProbeDefinition);
