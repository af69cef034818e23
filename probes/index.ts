// Every shipped probe. A probe lives in probes/<id>/probe.ts; add it here.
import type { ProbeDefinition } from '../engine/probe/types.js';
import { netIface } from './net.iface/probe.js';
import { qdiscStats } from './qdisc.stats/probe.js';
import { qdiscLatency } from './qdisc.latency/probe.js';
import { dropsKernel } from './drops.kernel/probe.js';
import { qdiscDrops } from './qdisc.drops/probe.js';
import { dropsEth } from './drops.eth/probe.js';
import { dropsMonitor } from './drops.monitor/probe.js';

export const allProbes: ProbeDefinition[] = [netIface, qdiscStats, qdiscLatency, dropsKernel as ProbeDefinition];
allProbes.push(qdiscDrops as ProbeDefinition, dropsEth as ProbeDefinition, dropsMonitor as ProbeDefinition);
