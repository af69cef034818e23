// perf.host-metrics: the host's network load over a window. Interface throughput, packet
// rates, drops and errors from the interface counters (lib/iface-counters.ts, sampled every
// interval), beside softirq time per CPU and vector and packets per CPU (probes/perf.host-metrics/perf.host-metrics.bpf.c,
// native driver, aggregated in per-CPU arrays in the kernel). What the session saw is recorded
// as capture records, so a replay re-parses it without loading anything.
import { availableParallelism } from 'node:os';
import type { U64 } from '../../engine/native/btf-layout.js';
import { u32Key } from '../../engine/native/map.js';
import type { BpfObject } from '../../engine/native/object.js';
import { captureRecord, planLoad, readBpfSession, runBpfSession } from '../../engine/probe/bpf-session.js';
import { slotTotals } from '../../engine/probe/bpf-values.js';
import { overheadOf, type OverheadBudget } from '../../engine/probe/overhead.js';
import type { Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord } from '../../engine/probe/types.js';
import { round } from '../lib/format.js';
import { readCounters, sampleCounters, watchedDevices } from '../lib/iface-counters.js';
import { NETDEV_PARAMS, netdevFilter, netdevGlobals } from '../lib/netdev.js';
import { durationParam } from '../lib/params.js';
import { loadHostMetrics, tracepointNames } from './attach.js';
import { DATA } from './data.js';
import { analyse, type AttachCapture, type DumpCapture, type HostMetricsData, type SetupCapture } from './findings.js';
import { recorded } from '../lib/recorded.js';
import { loadedTables, tracepointRun } from '../lib/bpf-probe.js';

/** Layouts of bpf/hostmetrics.h. */
const VECTORS = 10;
const DIRS = ['rx', 'tx'] as const;
const T_EXIT_UNPAIRED = 0;
/** Records of the interface samples: `iface-devices`, `iface-s0`... */
const IFACE_PREFIX = 'iface-';

/**
 * What a session may cost: 5% of one CPU, 2M program runs/s. Two programs run per softirq (a
 * few thousand a second on an idle host) and one per packet received or sent, each a per-CPU
 * array update without atomics; the device filter costs a name compare.
 */
export const HOST_METRICS_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 2_000_000 };

// ---- collect ----

async function resolveSetup(params: Params, io: ProbeIO): Promise<SetupCapture> {
  const filter = await netdevFilter(params);
  const here = await watchedDevices(io, [], IFACE_PREFIX);
  // The counters are read from this namespace's sysfs: a device of another one has none here.
  let devices = here;
  let ifaceSkipped: string | null = null;
  if (filter.netns !== null) {
    devices = [];
    ifaceSkipped = `interface counters are read in ebpfnet's own namespace, not in ${filter.netns}`;
  } else if (filter.dev !== null) {
    devices = here.filter((d) => d === filter.dev);
    if (devices.length === 0) ifaceSkipped = `no device ${filter.dev} in ebpfnet's namespace: its counters were not read (the packet counts cover any namespace)`;
  }
  return {
    filter,
    direction: (params.direction as SetupCapture['direction'] | undefined) ?? 'both',
    onlineCpus: availableParallelism(),
    devices,
    ifaceSkipped,
    durationMs: params.duration as number,
    intervalMs: params.interval as number,
    imbalanceShare: (params.imbalance_pct as number) / 100,
    softirqShare: (params.softirq_pct as number) / 100,
    minPackets: params.min_packets as number,
  };
}

function globalsOf(s: SetupCapture) {
  return { ...netdevGlobals(s.filter), targ_dirs: s.direction === 'rx' ? 1 : s.direction === 'tx' ? 2 : 3 };
}

/** Each CPU's value of a per-CPU array entry, decoded. */
function perCpuValues<V>(o: BpfObject, map: string, key: number): V[] {
  return o.map(map).lookupPerCpu<V>(u32Key(key)) ?? [];
}

/** Reads the per-CPU arrays (programs detached already): the entries that counted something. */
export function dumpMaps(o: BpfObject, windowMs: number): DumpCapture {
  const softirqs: DumpCapture['softirqs'] = [];
  let cpus = 0;
  for (let vector = 0; vector < VECTORS; vector++) {
    const parts = perCpuValues<{ count: number; total_ns: U64; max_ns: U64; slots: number[] }>(o, 'softirqs', vector);
    cpus = Math.max(cpus, parts.length);
    parts.forEach((v, cpu) => {
      if (v.count === 0) return;
      softirqs.push({ cpu, vector, count: v.count, totalNs: Number(v.total_ns), maxNs: Number(v.max_ns), slots: v.slots });
    });
  }
  const packets: DumpCapture['packets'] = [];
  DIRS.forEach((dir, key) => {
    perCpuValues<{ packets: number; bytes: number; failed: number }>(o, 'packets', key).forEach(({ packets: n, bytes, failed }, cpu) => {
      if (n + failed > 0) packets.push({ cpu, dir, packets: n, bytes, failed });
    });
  });
  const { unpaired } = slotTotals(o.map('totals'), { unpaired: T_EXIT_UNPAIRED });
  return { windowMs, possibleCpus: cpus, softirqs, packets, unpaired };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  // The device listing is a readdir record of its own (a replay answers it again); the capture keeps what was resolved.
  const resolved = await resolveSetup(params, io);
  const setup = await recorded<SetupCapture>(io, 'setup', () => resolved);
  await runBpfSession(io, {
    load: planLoad(() => loadHostMetrics(globalsOf(setup))),
    // The window is the counter sampling: every interval until the end (sooner when over budget).
    window: (windowIO) => sampleCounters(windowIO, setup.devices, { durationMs: setup.durationMs, intervalMs: setup.intervalMs, prefix: IFACE_PREFIX }),
    // One consistent reading: nothing counts while the maps are read.
    detachToRead: true,
    read: (o, w) => dumpMaps(o, round(w.ms)),
  });
}

// ---- parse ----

function parse(records: RawRecord[]): ProbeResult<HostMetricsData> {
  const setup = JSON.parse(captureRecord(records, 'setup').stdout) as SetupCapture;
  const { attach: att, dump } = readBpfSession<AttachCapture, DumpCapture>(records);
  const overhead = overheadOf(records);
  const result = analyse(setup, att, dump, readCounters(records, IFACE_PREFIX), overhead);
  const tables = [...(result.tables ?? []), ...loadedTables(att, overhead)];
  return { ...result, tables };
}

export const perfHostMetrics: ProbeDefinition<HostMetricsData> = {
  id: 'perf.host-metrics',
  title: 'Host network load: throughput, softirq time and packets per CPU',
  description: `Watches the host's network load for \`duration\`: each interface's throughput (bits/s), packet rate, drops and errors from its counters (\`/sys/class/net/<dev>/statistics\`, read every \`interval\` as \`net.iface\` does), the time every CPU spends in each softirq vector (\`irq:softirq_entry\`/\`softirq_exit\`: runs, total and max time, a log2 histogram of run times; NET_RX and NET_TX are the network's), and the packets each CPU receives (\`net:netif_receive_skb\`) and hands to a driver (\`net:net_dev_xmit\`), aggregated per CPU in the kernel.

It answers "is one CPU doing all the network work?": a CPU taking most of the packets or most of the NET_RX/NET_TX time (one RX queue, RSS or RPS steering everything there, a sender pinned to one CPU, a veth or tap whose packets are processed on the sending CPU) becomes the bottleneck long before the host is busy; and "is softirq eating a CPU?": a CPU spending more than \`softirq_pct\` of the window in network softirqs drops or delays packets (ksoftirqd takes over, latency grows). Findings: \`imbalance\` (the CPU and its share, per metric), \`softirqHot\` (CPUs over the threshold), \`dropping\` (interfaces whose drops or errors rose).

Filters: \`dev\` (and \`netns\`) restrict the packet counts to one device (by name; the classic-tracepoint fallback matches TX by name only) and the interface counters to it; \`direction\` counts only received or only sent packets. Softirq time is never filtered: it is the CPU's. Tracepoints only (tp_btf, whose skb fields are plain loads, else raw_tp with a cached minimal BTF, else the classic tracepoints); without \`dev\` or \`netns\` no device is read at all. Past its overhead budget (5% of a CPU, 2M program runs/s; \`--budget\` changes it) the session stops early and keeps what it counted.

Replaces the seed's \`system_network_perfomance_metrics.py\` (PROBES.md row 34; the typo is the seed's). The seed traced each packet's stages through the host stack and OVS with kprobes; its per-stage latencies are \`perf.vm-latency\`'s and \`perf.icmp-rtt\`'s, this probe measures the load. The seed's IP, port and protocol filters do not apply: the counts here are per CPU and device, and at \`net_dev_xmit\` the packet may be freed already.`,
  normal: `On an idle host softirq time is well under 1% of each CPU; under load NET_RX time grows with the packet rate (a few µs per run of a few packets on a VM host, up to the 2 ms / 300-packet budget of one net_rx_action). With several RX queues or RPS, packets and NET_RX time spread over CPUs; one CPU taking ≥ 80% of ≥ 100 packets (on a host with several CPUs) is an imbalance, a warning. A CPU over \`softirq_pct\` (default 50%) of its time in NET_RX + NET_TX is a warning; rising drops or errors on an interface are critical.`,
  replaces: ['system_network_perfomance_metrics.py'],
  params: {
    ...NETDEV_PARAMS,
    direction: { type: 'string', enum: ['both', 'rx', 'tx'], default: 'both', description: 'Count received packets (rx), sent (tx) or both (the seed\'s --direction).' },
    duration: durationParam('How long to watch.', { min: 200, max: 3_600_000 }),
    interval: { type: 'duration', default: '1s', min: 100, description: 'Time between two reads of the interface counters (the rate series).', cliOption: 'interval' },
    imbalance_pct: { type: 'number', default: 80, min: 1, max: 100, description: 'A CPU taking at least this share (%) of the packets or of the NET_RX/NET_TX time is an imbalance.' },
    softirq_pct: { type: 'number', default: 50, min: 1, max: 100, description: 'A CPU spending at least this share (%) of the window in NET_RX + NET_TX softirqs is hot.' },
    min_packets: { type: 'integer', default: 100, min: 1, description: 'Fewer packets than this (per direction) are too few to call an imbalance.' },
  },
  ...tracepointRun(tracepointNames(), HOST_METRICS_BUDGET),
  data: DATA,
  collect,
  parse,
};
