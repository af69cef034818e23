// drops.eth: a device's drops as its driver and the kernel count them, over one window:
// /sys/class/net/<dev>/statistics deltas (the interface reader net.iface reports), `ethtool -S`
// deltas where the driver has them, and the kernel drop session filtered to the device.
import { formatMs } from '../../engine/duration.js';
import type { Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord } from '../../engine/probe/types.js';
import { readDrops } from '../lib/drops/read.js';
import { collectDrops, DROPS_BUDGET, DROPS_REQUIREMENTS } from '../lib/drops/session.js';
import { readInterfaces, sampleInterfaces, type IfaceSampling } from '../lib/iface.js';
import { durationParam } from '../lib/params.js';
import { DATA, type DropsEthData } from './data.js';
import { nativeRun } from '../lib/bpf-probe.js';

/** ethtool's exit status when the driver has no statistics (EOPNOTSUPP). */
const NO_STATS = 95;

export interface EthtoolDelta {
  /** The driver answers `ethtool -S`. */
  supported: boolean;
  /** Why not, when not. */
  reason?: string;
  /** Every counter's delta over the window (peer_ifindex and other non-counters included as 0). */
  deltas: Record<string, number>;
  /** The counters that moved, largest first. */
  changed: Record<string, number>;
  /** Moved counters whose name says drop, error, discard, miss, fail or overrun. */
  dropCounters: Record<string, number>;
}

export type { DropsEthData } from './data.js';

const DROPPY = /drop|err|discard|miss|fail|overrun|timeout|bad|invalid/i;

/** The device's counters at the window's start and end, and its queues. */
function ifaceSampling(params: Params): IfaceSampling {
  const d = params.duration as number;
  return { devices: [params.dev as string], durationMs: d, intervalMs: d, queues: true };
}

function dropsParams(params: Params): Params {
  return { duration: params.duration as number, dev: params.dev as string, stacks: false, top: 10, protocol: 'any', port: 0 };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const dev = params.dev as string;
  const ethtool = (phase: string) => io.exec(`ethtool-${phase}`, ['ethtool', '-S', dev], { allowFailure: true, timeoutMs: 10_000 });
  await collectDrops(dropsParams(params), io, {
    window: async (windowIO) => {
      await ethtool('start');
      await sampleInterfaces(windowIO, ifaceSampling(params));
      await ethtool('end');
    },
  });
}

/** `     rx_queue_0_drops: 12` lines of `ethtool -S` (the header line is skipped). */
export function parseEthtoolStats(stdout: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of stdout.split('\n')) {
    const m = /^\s+([^:]+?):\s*(\d+)\s*$/.exec(line);
    if (m) out.set(m[1]!, BigInt(m[2]!));
  }
  return out;
}

function ethtoolDelta(records: RawRecord[]): EthtoolDelta {
  const rec = (phase: string) => records.find((r) => r.op === 'exec' && r.name === `ethtool-${phase}`);
  const start = rec('start');
  const end = rec('end');
  const unsupported = (reason: string): EthtoolDelta => ({ supported: false, reason, deltas: {}, changed: {}, dropCounters: {} });
  if (!start || !end) return unsupported('ethtool was not run');
  for (const r of [start, end]) {
    if (r.exitCode === 127) return unsupported('ethtool is not installed (apt-get install ethtool)');
    if (r.exitCode === NO_STATS || /no stats available|not supported/i.test(r.stderr)) return unsupported('the driver has no ethtool statistics');
    if (r.exitCode !== 0) return unsupported(`ethtool -S failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n')[0] ?? ''}`);
  }
  const a = parseEthtoolStats(start.stdout);
  const b = parseEthtoolStats(end.stdout);
  const deltas: Record<string, number> = {};
  for (const [name, after] of b) {
    if (name === 'peer_ifindex') continue;
    const before = a.get(name) ?? 0n;
    deltas[name] = Number(after >= before ? after - before : after);
  }
  const changed = Object.fromEntries(Object.entries(deltas).filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0])));
  const dropCounters = Object.fromEntries(Object.entries(changed).filter(([k]) => DROPPY.test(k)));
  return { supported: true, deltas, changed, dropCounters };
}

function parse(records: RawRecord[], params: Params): ProbeResult<DropsEthData> {
  const dev = params.dev as string;
  const iface = readInterfaces(records);
  const kernel = readDrops(records, dropsParams(params)).data;
  const d = iface.devices.find((x) => x.name === dev);
  if (!d) throw new Error(`no counters of ${dev} in the evidence`);
  const ethtool = ethtoolDelta(records);
  const notes = [...iface.notes];
  if (!ethtool.supported) notes.push(`ethtool: ${ethtool.reason}`);
  const data: DropsEthData = {
    dev,
    durationMs: iface.durationMs,
    mtu: d.mtu,
    operstate: d.operstate,
    statistics: d.deltas,
    rx_dropped: d.deltas.rx_dropped,
    tx_dropped: d.deltas.tx_dropped,
    rx_errors: d.deltas.rx_errors,
    tx_errors: d.deltas.tx_errors,
    ethtool,
    kernel: { method: kernel.method, attach: kernel.attach, total: kernel.total, byReason: kernel.byReason, byLocation: kernel.byLocation },
    notes,
  };

  const span = formatMs(params.duration as number);
  const parts: string[] = [];
  for (const c of ['rx_dropped', 'tx_dropped', 'rx_errors', 'tx_errors'] as const) if (d.deltas[c] > 0) parts.push(`${c} ${d.deltas[c]}`);
  const eth = Object.entries(ethtool.dropCounters).slice(0, 3).map(([k, v]) => `${k} ${v}`);
  const reasons = Object.entries(kernel.byReason).slice(0, 3).map(([k, v]) => `${k} ${v}`);
  const dropping = parts.length > 0 || eth.length > 0 || kernel.total > 0;
  const summary = dropping
    ? `${dev} in ${span}: ${parts.join(', ') || 'no counter drops'}; ethtool: ${ethtool.supported ? eth.join(', ') || 'no drop counter moved' : 'n/a'}; kernel: ${kernel.total} drop${kernel.total === 1 ? '' : 's'}${reasons.length ? ` (${reasons.join(', ')})` : ''}`
    : `no drops on ${dev} in ${span} (statistics, ${ethtool.supported ? 'ethtool, ' : ''}kernel)`;
  const statsRows = Object.entries(d.deltas).filter(([, v]) => v > 0).map(([k, v]) => ['statistics', k, v] as Array<string | number>);
  const ethRows = Object.entries(ethtool.changed).map(([k, v]) => ['ethtool -S', k, v] as Array<string | number>);
  const kRows = Object.entries(kernel.byReason).map(([k, v]) => ['kernel reason', k, v] as Array<string | number>);
  return {
    data,
    summary,
    severity: dropping ? 'critical' : 'info',
    charts: dropping
      ? [
          {
            kind: 'bar',
            title: `${dev}: drops in ${span} by source`,
            unit: 'packets',
            bars: [
              { label: 'rx_dropped', value: d.deltas.rx_dropped },
              { label: 'tx_dropped', value: d.deltas.tx_dropped },
              ...Object.entries(ethtool.dropCounters).map(([k, v]) => ({ label: `ethtool ${k}`, value: v })),
              ...Object.entries(kernel.byReason).map(([k, v]) => ({ label: `kernel ${k}`, value: v })),
            ],
          },
        ]
      : [],
    tables: [{ title: `${dev}: counters that moved in ${span}`, columns: ['source', 'counter', 'delta'], rows: [...statsRows, ...ethRows, ...kRows] }],
  };
}

export const dropsEth: ProbeDefinition<DropsEthData> = {
  id: 'drops.eth',
  title: 'NIC and driver drops of one device',
  description: `Watches one device for \`duration\` from three sides at once: its kernel counters (\`/sys/class/net/<dev>/statistics\`, read as net.iface does), its driver's own counters (\`ethtool -S\`, where the driver has them: veth, virtio_net, most physical NICs; reported as unsupported otherwise), and drops.kernel's \`skb:kfree_skb\` program filtered to the device (drop reasons and code locations). Reports the deltas of all three.

Use it when net.iface points at one device: the driver counters say which queue or ring dropped (\`rx_queue_0_drops\`, \`rx_missed_errors\`, \`tx_timeout\`), the kernel reasons say why packets that reached the stack were freed. A veth or tap whose peer has a smaller MTU counts \`tx_dropped\` on the sending side.

Replaces the seed's \`packet-drop/eth_drop.py\` (PROBES.md row 27).`,
  normal: `All three stay at 0. Some physical NICs count a trickle of \`rx_dropped\` for frames of protocols nobody listens to; any driver error counter, any \`tx_dropped\`, and kernel drops in step with the traffic are not normal.`,
  replaces: ['packet-drop/eth_drop.py'],
  params: {
    dev: { type: 'string', required: true, description: 'The device to watch (of this network namespace).', cliOption: 'dev' },
    duration: durationParam('How long to watch.'),
  },
  requirements: DROPS_REQUIREMENTS,
  memory: { objects: ['drops.kernel'] },
  ...nativeRun(DROPS_BUDGET),
  data: DATA,
  collect,
  parse,
};
