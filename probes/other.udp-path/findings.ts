// other.udp-path's finding from what the session recorded: the hops ordered into the flow's
// path (per way), the time between consecutive hops, where packets stopped (drops by place and
// reason, packets that vanished between two hops), the sampled packets' journeys, and verdicts
// a runbook can branch on.
import { type LoadedRecord } from '../../engine/native/attach-plan.js';
import { captureRecord, readBpfSession } from '../../engine/probe/bpf-session.js';
import { overheadOf, type OverheadReport } from '../../engine/probe/overhead.js';
import type { ChartSpec, ProbeResult, RawRecord, Severity, TableSpec } from '../../engine/probe/types.js';
import { parseReasonNames } from '../lib/drop-reasons.js';
import { fmtUs } from '../lib/format.js';
import { percentiles, usBuckets } from '../lib/histogram.js';
import { HOOKS, type UdpPathMethod } from './attach.js';
import type { DeviceNames, DumpCapture, FlowSetup, HopEntry, HopKey } from './collect.js';
import type { UdpPathData, UdpPathDrop, UdpPathHop, UdpPathLoss, UdpPathPair, UdpPathSample } from './data.js';
import { loadedTables } from '../lib/bpf-probe.js';

export type { UdpPathData };

const WAYS = ['forward', 'reverse'] as const;
export type Way = (typeof WAYS)[number];
/** Hooks after which a packet has no next hop. */
const TERMINAL = new Set(['sock_recv_length', 'kfree_skb', 'consume_skb']);

const hopId = (h: HopKey) => `${h.way}/${h.hook}/${h.netns}/${h.ifindex}`;
const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** Orders hops by the mean number of hops their packets had passed before, then by first sight. */
function ordered(entries: HopEntry[]): HopEntry[] {
  const mean = (h: HopEntry) => (h.packets > 0 ? h.stepSum / h.packets : 0);
  return [...entries].sort((a, b) => a.way - b.way || mean(a) - mean(b) || a.firstNs - b.firstNs || a.hook - b.hook);
}

function namer(names: DeviceNames) {
  const netns = (inode: number) => (inode === 0 ? '-' : (names.namespaces[inode] ?? `netns:${inode}`));
  const device = (h: HopKey) => (h.ifindex === 0 ? '-' : (names.devices[`${h.netns}/${h.ifindex}`] ?? `if${h.ifindex}`));
  const hook = (h: HopKey) => HOOKS[h.hook]?.tracepoint ?? `hook${h.hook}`;
  const label = (h: HopKey) => `${hook(h)} ${device(h)}@${netns(h.netns)}`;
  return { netns, device, hook, label };
}

export function udpPathFinding(records: RawRecord[]): ProbeResult<UdpPathData> {
  const setup = JSON.parse(captureRecord(records, 'setup').stdout) as FlowSetup;
  const { attach: att, dump } = readBpfSession<LoadedRecord<UdpPathMethod>, DumpCapture>(records);
  const names = JSON.parse(captureRecord(records, 'devices').stdout) as DeviceNames;
  const syms = JSON.parse(captureRecord(records, 'symbols').stdout) as Record<string, string>;
  const reasons = parseReasonNames(captureRecord(records, 'reasons').stdout);
  const overhead = overheadOf(records);
  const n = namer(names);
  const way = (h: HopKey): Way => WAYS[h.way] ?? 'forward';

  const path = ordered(dump.hops);
  const index = new Map(path.map((h, i) => [hopId(h), i]));
  const hops: UdpPathHop[] = path.map((h, i) => ({
    index: i,
    way: way(h),
    hook: n.hook(h),
    direction: HOOKS[h.hook]?.direction ?? '?',
    device: n.device(h),
    ifindex: h.ifindex,
    netns: n.netns(h.netns),
    packets: h.packets,
    label: n.label(h),
  }));

  const pairs: UdpPathPair[] = dump.pairs
    .map((p) => {
      // The slots are log2 ns buckets laid out as cpu.runqlat's µs ones: read in ns, shown in µs.
      const pct = percentiles(p.slots, p.maxNs);
      return {
        from: index.get(hopId(p.from)) ?? -1,
        to: index.get(hopId(p.to)) ?? -1,
        fromLabel: n.label(p.from),
        toLabel: n.label(p.to),
        way: way(p.to),
        count: p.count,
        meanUs: round3(p.count > 0 ? p.sumNs / p.count / 1000 : 0),
        maxUs: round3(p.maxNs / 1000),
        p50Us: round3(pct.p50Us / 1000),
        p99Us: round3(pct.p99Us / 1000),
        buckets: usBuckets(p.slots).map((b) => ({ lowUs: b.lowUs / 1000, highUs: b.highUs / 1000, count: b.count })),
      };
    })
    .sort((a, b) => a.from - b.from || a.to - b.to);

  const mostFrequentInto = (to: number) => [...pairs].filter((p) => p.to === to).sort((a, b) => b.count - a.count)[0]?.fromLabel ?? null;
  const drops: UdpPathDrop[] = dump.drops
    .map((d) => {
      const i = index.get(hopId(d.at)) ?? -1;
      return {
        way: way(d.at),
        hop: i,
        device: n.device(d.at),
        netns: n.netns(d.at.netns),
        reason: reasons.get(d.reason) ?? `REASON_${d.reason}`,
        location: (syms[d.location] ?? d.location).replace(/\+0x[0-9a-f]+.*$/, ''),
        count: d.count,
        after: mostFrequentInto(i),
      };
    })
    .sort((a, b) => b.count - a.count || a.hop - b.hop);

  // Before 6.3 the kernel has no socket tracepoints: a datagram the application read ends freed by
  // its read (consume_skb, the device cleared by UDP); one still queued is seen last at its receive.
  const socketStage = setup.socketStage !== false;
  const delivery = (h: UdpPathHop) => (socketStage ? h.hook === 'sock_recv_length' : h.hook === 'consume_skb' && h.ifindex === 0);

  // Packets that passed a non-terminal hop and no other after it: gone without a drop.
  const lost: UdpPathLoss[] = [];
  for (const h of hops) {
    if (TERMINAL.has(h.hook)) continue;
    const onward = pairs.filter((p) => p.from === h.index).reduce((s, p) => s + p.count, 0);
    if (h.packets <= onward) continue;
    const next = hops.find((x) => x.index > h.index && x.way === h.way && !TERMINAL.has(x.hook)) ?? hops.find((x) => x.index > h.index && x.way === h.way && delivery(x));
    // Queued on a socket nobody read: the read that did not come is the next hop.
    // (Before 6.3, one received and not read went to a socket the kernel cannot show.)
    const unread = h.hook === 'sk_data_ready' ? `sock_recv_length -@${h.netns}` : !socketStage && h.hook === 'netif_receive_skb' && onward === 0 ? `a socket read @${h.netns} (not seen before 6.3)` : null;
    lost.push({ way: h.way, after: h.label, before: next?.label ?? unread, count: h.packets - onward });
  }

  const firstHops = (w: Way) => path.filter((h) => way(h) === w && !pairs.some((p) => index.get(hopId(h)) === p.to)).reduce((s, h) => s + h.packets, 0);
  const deliveredOn = (w: Way) => hops.filter((h) => h.way === w && delivery(h)).reduce((s, h) => s + h.packets, 0);
  const packets = { forward: firstHops('forward'), reverse: firstHops('reverse') };
  const delivered = { forward: deliveredOn('forward'), reverse: deliveredOn('reverse') };
  const dropped = drops.reduce((s, d) => s + d.count, 0);
  const lostCount = lost.reduce((s, l) => s + l.count, 0);
  const slowestPair = [...pairs].filter((p) => p.count > 0).sort((a, b) => b.meanUs - a.meanUs || b.maxUs - a.maxUs)[0];
  const slowest = slowestPair ? { from: slowestPair.fromLabel, to: slowestPair.toLabel, meanUs: slowestPair.meanUs, maxUs: slowestPair.maxUs } : null;
  const verdict: UdpPathData['verdict'] = hops.length === 0 ? 'not_seen' : dropped > 0 ? 'dropped' : lostCount > 0 ? 'lost' : 'delivered';

  const findings: string[] = [];
  if (verdict === 'delivered') findings.push('delivered');
  for (const d of drops) findings.push(`dropped at ${hops[d.hop]?.label ?? `kfree_skb ${d.device}@${d.netns}`} (${d.reason})`);
  for (const l of lost) findings.push(`lost between ${l.after} and ${l.before ?? 'the next hop'}`);
  if (slowest) findings.push(`slowest ${slowest.from} → ${slowest.to}`);

  const samples = samplesOf(dump, n, reasons);
  const notes = socketStage ? [] : ['this kernel has no sock:sk_data_ready (6.3+): the socket is not a hop; a datagram the application read ends at the consume_skb of its read, one it did not read at its last netif_receive_skb'];
  const data: UdpPathData = {
    flow: { srcIp: setup.srcIp, dstIp: setup.dstIp, srcPort: setup.srcPort, dstPort: setup.dstPort, both: setup.both },
    method: att.method,
    btf: att.btf,
    loadMs: att.loadMs,
    attach: att.attach,
    ...(att.fallback !== undefined ? { fallback: att.fallback } : {}),
    windowMs: round3(dump.windowMs),
    ...(overhead ? { overhead } : {}),
    hops,
    pairs,
    drops,
    lost,
    packets,
    delivered,
    dropped,
    lostCount,
    verdict,
    findings,
    notes,
    slowest,
    samples,
    lostEvents: dump.lostEvents,
    skipped: { noEntry: dump.noEntry, short: dump.short, queueFull: dump.queueFull },
  };
  return { data, summary: summaryOf(data, setup), severity: severityOf(data), charts: chartsOf(data), tables: tablesOf(data, att, overhead) };
}

function samplesOf(dump: DumpCapture, n: ReturnType<typeof namer>, reasons: Map<number, string>): UdpPathSample[] {
  const byPacket = new Map<number, DumpCapture['events']>();
  for (const e of dump.events) byPacket.set(e.firstNs, [...(byPacket.get(e.firstNs) ?? []), e]);
  return [...byPacket.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([first, events], i) => ({
      packet: i + 1,
      way: WAYS[events[0]!.hop.way] ?? 'forward',
      hops: events
        .sort((a, b) => a.step - b.step)
        .map((e) => ({
          hop: n.label(e.hop),
          atUs: round3((e.ns - first) / 1000),
          len: e.len,
          ...(HOOKS[e.hop.hook]?.tracepoint === 'kfree_skb' ? { reason: reasons.get(e.reason) ?? `REASON_${e.reason}` } : {}),
        })),
    }));
}

function flowText(f: FlowSetup): string {
  return `${f.srcIp}:${f.srcPort} → ${f.dstIp}:${f.dstPort}${f.both ? ' (both ways)' : ''}`;
}

function summaryOf(d: UdpPathData, setup: FlowSetup): string {
  const flow = flowText(setup);
  if (d.verdict === 'not_seen') return `UDP ${flow}: no packet seen in ${(d.windowMs / 1000).toFixed(1)}s`;
  const seen = d.hops.filter((h) => h.way === 'forward').length;
  const head = `UDP ${flow}: ${d.packets.forward} packet${d.packets.forward === 1 ? '' : 's'} over ${seen} hop${seen === 1 ? '' : 's'}`;
  const slowest = d.slowest ? `; slowest ${d.slowest.from} → ${d.slowest.to} (mean ${fmtUs(d.slowest.meanUs)})` : '';
  const first = d.findings[0]!;
  const verdict = d.verdict === 'delivered' ? `${d.delivered.forward} delivered` : first;
  const extra = d.drops.length + d.lost.length > 1 ? ` (+${d.drops.length + d.lost.length - 1} more)` : '';
  const stopped = d.overhead?.stopped ? ` (stopped: ${d.overhead.stopped})` : '';
  return `${head}, ${verdict}${d.verdict === 'delivered' ? '' : extra}${slowest}${stopped}`;
}

function severityOf(d: UdpPathData): Severity {
  if (d.verdict === 'dropped' || d.verdict === 'lost') {
    const seen = d.packets.forward + d.packets.reverse;
    return seen > 0 && (d.dropped + d.lostCount) * 2 >= seen ? 'critical' : 'warning';
  }
  return 'info';
}

function chartsOf(d: UdpPathData): ChartSpec[] {
  const charts: ChartSpec[] = [];
  for (const w of WAYS) {
    const chain = d.pairs.filter((p) => p.way === w && p.to === p.from + 1);
    if (chain.length === 0) continue;
    charts.push({
      kind: 'layers',
      title: `UDP path ${w}: mean time between consecutive hops`,
      unit: 'µs',
      layers: chain.map((p) => `${p.fromLabel} → ${p.toLabel}`),
      rows: [{ label: w, values: chain.map((p) => p.meanUs) }],
    });
  }
  if (d.slowest) {
    const p = d.pairs.find((x) => x.fromLabel === d.slowest!.from && x.toLabel === d.slowest!.to)!;
    charts.push({
      kind: 'histogram',
      title: `${p.fromLabel} → ${p.toLabel} (slowest hop pair, log2 buckets)`,
      unit: 'µs',
      buckets: p.buckets.map((b) => ({ low: b.lowUs, high: b.highUs, count: b.count })),
      percentiles: { P50: p.p50Us, P99: p.p99Us, max: p.maxUs },
    });
  }
  return charts;
}

function tablesOf(d: UdpPathData, att: LoadedRecord<UdpPathMethod>, overhead: OverheadReport | null): TableSpec[] {
  const tables: TableSpec[] = [
    {
      title: 'Path (hops in order)',
      columns: ['#', 'way', 'hook', 'direction', 'device', 'netns', 'packets'],
      rows: d.hops.map((h) => [h.index, h.way, h.hook, h.direction, h.device, h.netns, h.packets]),
    },
    {
      title: 'Time between consecutive hops (µs; P50/P99 at log2 bucket resolution, capped at max)',
      columns: ['from', 'to', 'packets', 'mean', 'P50', 'P99', 'max'],
      rows: d.pairs.map((p) => [p.fromLabel, p.toLabel, p.count, p.meanUs, p.p50Us, p.p99Us, p.maxUs]),
    },
  ];
  if (d.drops.length > 0 || d.lost.length > 0) {
    tables.push({
      title: 'Where packets stopped',
      columns: ['way', 'where', 'after', 'reason', 'location', 'packets'],
      rows: [
        ...d.drops.map((x) => [x.way, d.hops[x.hop]?.label ?? `kfree_skb ${x.device}@${x.netns}`, x.after ?? '-', x.reason, x.location, x.count]),
        ...d.lost.map((x) => [x.way, `between ${x.after} and ${x.before ?? 'the next hop'}`, x.after, 'lost (no drop seen)', '-', x.count]),
      ],
    });
  }
  if (d.samples.length > 0) {
    tables.push({
      title: `Sampled packets (${d.samples.length}; µs since each packet's first hop${d.lostEvents > 0 ? `; ${d.lostEvents} events lost` : ''})`,
      columns: ['packet', 'way', 'hop', 'at µs', 'len', 'reason'],
      rows: d.samples.flatMap((s) => s.hops.map((h) => [s.packet, s.way, h.hop, h.atUs, h.len, h.reason ?? ''])),
    });
  }
  tables.push(...loadedTables(att, overhead));
  return tables;
}
