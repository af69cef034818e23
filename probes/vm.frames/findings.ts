// vm.frames' finding from what the session recorded: the VM's frames into and out of its
// switch both ways, what the switch lost of them, the addresses the VM used, the largest
// packets on its path, and how the window's close went.
import { loadedFields, type LoadedRecord } from '../../engine/native/attach-plan.js';
import type { OverheadReport } from '../../engine/probe/overhead.js';
import type { ChartSpec, ProbeResult, Severity, TableSpec } from '../../engine/probe/types.js';
import type { NetdevMethod } from '../lib/netdev.js';
import type { DumpCapture, PacketMax, PairEntry, TotalName } from './dump.js';
import type { FramesData } from './data.js';
import { deviceName, vmLabel, type Scope } from './scope.js';
import { loadedTables } from '../lib/bpf-probe.js';

export interface AttachCapture extends LoadedRecord<NetdevMethod> {
  scope: Scope;
}

/** Packets (GSO segments counted) and wire bytes. */
export interface Count {
  packets: number;
  bytes: number;
}

export interface ByCast {
  unicast: Count;
  multicast: Count;
  broadcast: Count;
}

export interface PortCounts {
  dev: string;
  /**
   * The host's own port of the switch (a Linux bridge's device, an OVS internal port): its
   * frames go the other way round, `entered` being what the host transmitted on it and
   * `forwarded` what the host received on it.
   */
  host: boolean;
  /** Frames for the VM received on this port (on the host's port: transmitted by the host). */
  entered: Count;
  /** Frames of the VM seen leaving on this port, every copy (on the host's port: received by the host). */
  forwarded: Count;
}

export type { FramesData } from './data.js';

const zero = (): Count => ({ packets: 0, bytes: 0 });
const add = (into: Count, c: Count) => {
  into.packets += c.packets;
  into.bytes += c.bytes;
};
const plural = (n: number, word: string, words = `${word}s`) => `${n} ${n === 1 ? word : words}`;
const ms = (ns: number | null) => (ns === null ? null : Math.round(ns / 1000) / 1000);

type Cast = keyof ByCast;
function castOf(mac: string): Cast {
  if (mac === 'ff:ff:ff:ff:ff:ff') return 'broadcast';
  return parseInt(mac.slice(0, 2), 16) & 1 ? 'multicast' : 'unicast';
}

/** What left the switch: each (source, destination) pair counted on the port that saw most of it. */
function forwardedOf(pairs: PairEntry[]): { forwarded: ByCast; copies: number } {
  const best = new Map<string, PairEntry>();
  let raw = 0;
  for (const p of pairs) {
    raw += p.packets;
    const k = `${p.src}>${p.dst}`;
    const b = best.get(k);
    if (!b || p.packets > b.packets) best.set(k, p);
  }
  const forwarded: ByCast = { unicast: zero(), multicast: zero(), broadcast: zero() };
  let once = 0;
  for (const p of best.values()) {
    add(forwarded[castOf(p.dst)], p);
    once += p.packets;
  }
  return { forwarded, copies: raw - once };
}

function count(t: Record<TotalName, number>, prefix: string): Count {
  return { packets: t[`${prefix}Packets` as TotalName], bytes: t[`${prefix}Bytes` as TotalName] };
}

function byPortOf(pairs: PairEntry[], scope: Scope): PortCounts[] {
  const ports = new Map<number, PortCounts>();
  const hosts = new Set((scope.hostPorts ?? []).map((d) => d.ifindex));
  for (const p of pairs) {
    const row = ports.get(p.ifindex) ?? { dev: deviceName(scope, p.ifindex), host: hosts.has(p.ifindex), entered: zero(), forwarded: zero() };
    add(row[p.dir], p);
    ports.set(p.ifindex, row);
  }
  return [...ports.values()].sort((a, b) => b.entered.packets + b.forwarded.packets - (a.entered.packets + a.forwarded.packets) || a.dev.localeCompare(b.dev));
}

function maxOf(m: PacketMax | null, scope: Scope): { bytes: number; dev: string } | null {
  return m === null ? null : { bytes: m.bytes, dev: deviceName(scope, m.ifindex) };
}

function notesOf(d: FramesData, dump: DumpCapture, att: AttachCapture): string[] {
  const t = dump.totals;
  const notes: string[] = [];
  const vm = vmLabel(att.scope);
  if (d.stopped) notes.push(`stopped early: ${d.stopped}; the counts cover the ${(d.windowMs / 1000).toFixed(1)}s before, without a grace (frames in flight then may show as lost)`);
  if (att.fallback) notes.push(`attached as ${att.method}: ${att.fallback}`);
  if (d.packets === 0) notes.push(`no frame of ${vm} in the window: the VM was idle, or devs/macs are not its taps and guest MACs`);
  const unkeyed = t.unkeyedEnteredPackets + t.unkeyedForwardedPackets;
  if (unkeyed > 0) notes.push(`${plural(unkeyed, 'frame')} counted without their port and MAC pair (the pairs map was full): forwarded frames among them count once each`);
  if (t.learnUnkeyed > 0) notes.push(`${plural(t.learnUnkeyed, 'frame')} claimed an address the list had no room for (more than 64 address/MAC pairs: a VM that routes or NATs sends others' addresses): the list is partial`);
  if (d.fromVm.foreign > 0) notes.push(`the taps received ${plural(d.fromVm.foreign, 'frame')} from MACs not in macs (a bridge or nested guests inside the VM, or spoofing): not counted`);
  if (d.flooded > 0) notes.push(`${plural(d.flooded, 'copy', 'copies')} of the VM's frames left by more than one port (flooded to every port while the switch did not know the destination, or through stacked devices): each frame counted once`);
  if (d.toVm.otherUnicast.packets > 0) notes.push(`${plural(d.toVm.otherUnicast.packets, 'unicast frame')} for other MACs were flooded to the VM's taps`);
  const surplusIn = d.toVm.delivered.packets - d.toVm.entered.packets;
  if (surplusIn > 0) {
    const hostPort = d.scope.hostPorts.length === 0 ? "the host's own address on the bridge: give the bridge device or OVS internal port in host_ports" : 'a port not listed';
    notes.push(`${plural(surplusIn, 'frame')} more reached the VM than entered by the ports: some come from a port not watched (${hostPort}), or were in flight when the window opened`);
  }
  const leftOut = att.scope.hostPortsLeftOut ?? [];
  if (leftOut.length > 0) notes.push(`${plural(leftOut.length, 'more host port')} found than the probe keeps (${leftOut.slice(0, 4).join(', ')}${leftOut.length > 4 ? ', …' : ''}): watched as plain ports, the host's traffic to the VM through them is not counted as entered; give host_ports`);
  const surplusOut = d.fromVm.forwarded.unicast.packets - d.fromVm.sent.unicast.packets;
  if (surplusOut > 0) notes.push(`${plural(surplusOut, 'unicast frame')} of the VM more left the switch than it sent: frames in flight when the window opened, or a MAC that moved between ports`);
  if (dump.lateNs !== null && dump.graceMs > 0 && dump.lateNs / 1e6 >= 0.8 * dump.graceMs) {
    notes.push(`the last delivery counted came ${ms(dump.lateNs)} ms after the window closed, near the end of the ${dump.graceMs} ms grace: frames slower than the grace count as lost; give a longer grace`);
  }
  if (t.tailUnkeyed > 0) notes.push(`${plural(t.tailUnkeyed, 'frame')} entering during the grace could not be remembered: their deliveries were counted, which may hide as much loss`);
  return notes;
}

function summaryOf(d: FramesData, scope: Scope): string {
  const vm = vmLabel(scope);
  const parts: string[] = [];
  if (d.lost.toVm > 0) parts.push(`${d.lost.toVm} of ${d.toVm.entered.packets} frames to ${vm} lost in the switch`);
  if (d.lost.fromVm > 0) parts.push(`${d.lost.fromVm} of ${d.fromVm.sent.unicast.packets} frames from ${parts.length > 0 ? 'it' : vm} lost in the switch`);
  if (parts.length === 0) {
    const sent = d.fromVm.sent.unicast.packets + d.fromVm.sent.multicast.packets + d.fromVm.sent.broadcast.packets;
    parts.push(`no frame of ${vm} lost in the switch (${d.toVm.entered.packets} to it, ${sent} from it)`);
  }
  const learned = d.learnedAddresses;
  if (learned.length === 0) parts.push('no address learned');
  else {
    const shown = learned.slice(0, 4).map((a) => `${a.address} (${a.via.join(', ')})`);
    parts.push(`learned ${shown.join(', ')}${learned.length > 4 ? `, +${learned.length - 4} more` : ''}`);
  }
  return `${parts.join('; ')}${d.stopped ? ` (stopped: ${d.stopped})` : ''}`;
}

/** Critical when the switch lost at least 1% of the VM's packets (and 10 or more), a warning for any loss. */
function severityOf(d: FramesData): Severity {
  if (d.lost.total >= 10 && d.lost.share >= 0.01) return 'critical';
  return d.lost.total > 0 ? 'warning' : 'info';
}

function tablesOf(d: FramesData, att: AttachCapture, overhead: OverheadReport | null): TableSpec[] {
  const vm = vmLabel(att.scope);
  const row = (what: string, into: Count | null, out: Count, lost: number | string) => [what, into?.packets ?? '', out.packets, lost, into?.bytes ?? '', out.bytes];
  const frames: TableSpec = {
    title: `Frames of ${vm} through its switch`,
    columns: ['direction', 'frames in', 'frames out', 'lost', 'bytes in', 'bytes out'],
    rows: [
      row("to the VM (entered by the ports or from the host's ports → delivered by its taps)", d.toVm.entered, d.toVm.delivered, d.lost.toVm),
      row('to the VM, multicast (delivered)', null, d.toVm.multicast, ''),
      row('to the VM, broadcast (delivered)', null, d.toVm.broadcast, ''),
      row("from the VM, unicast (sent on its taps → forwarded by the ports or up the host's ports)", d.fromVm.sent.unicast, d.fromVm.forwarded.unicast, d.lost.fromVm),
      row('from the VM, multicast', d.fromVm.sent.multicast, d.fromVm.forwarded.multicast, ''),
      row('from the VM, broadcast', d.fromVm.sent.broadcast, d.fromVm.forwarded.broadcast, ''),
    ],
  };
  const ports: TableSpec = {
    title: 'Ports of the switch',
    columns: ['device', 'port', 'frames for the VM entering', 'bytes', 'frames of the VM leaving (every copy)', 'bytes'],
    rows: d.byPort.map((p) => [
      p.dev,
      p.host ? "the host's (entering: sent by the host; leaving: received by the host)" : 'switch port',
      p.entered.packets,
      p.entered.bytes,
      p.forwarded.packets,
      p.forwarded.bytes,
    ]),
  };
  const addresses: TableSpec = {
    title: `Addresses ${vm} uses (from its own frames)`,
    columns: ['address', 'MAC', 'seen in', 'packets'],
    rows: d.learnedAddresses.map((a) => [a.address, a.mac, a.via.join(', '), a.packets]),
  };
  const mtuOf = (dev: string) => [...d.scope.devs, ...(d.scope.ports ?? []), ...d.scope.hostPorts].find((x) => x.name === dev)?.mtu ?? '';
  const largest: TableSpec = {
    title: 'Largest packets on the path (L3 bytes; a GSO packet counts its segments)',
    columns: ['direction', 'bytes', 'seen on', 'MTU of that device'],
    rows: [
      ['to the VM (entering the switch)', d.maxPacket.toVm?.bytes ?? '', d.maxPacket.toVm?.dev ?? '', d.maxPacket.toVm ? mtuOf(d.maxPacket.toVm.dev) : ''],
      ['from the VM (on its taps)', d.maxPacket.fromVm?.bytes ?? '', d.maxPacket.fromVm?.dev ?? '', d.maxPacket.fromVm ? mtuOf(d.maxPacket.fromVm.dev) : ''],
    ],
  };
  const g = d.grace;
  const grace: TableSpec = {
    title: `Closing the window (grace ${d.graceMs} ms)`,
    columns: ['what', 'to the VM', 'from the VM'],
    rows: [
      ['entries after the close (not counted)', g.afterEntered, g.afterSent],
      ['deliveries after the close of frames that entered before (counted)', g.lateDelivered, g.lateForwarded],
      ['deliveries after the close of frames that entered after it (not counted)', g.skippedDelivered, g.skippedForwarded],
      ['slowest crossing during the grace, ms', g.slowestTransitMs ?? '', ''],
      ['last counted delivery after the close, ms', g.lastLateMs ?? '', ''],
    ],
  };
  return [frames, ports, addresses, largest, grace, ...loadedTables(att, overhead)];
}

function chartsOf(d: FramesData, vm: string): ChartSpec[] {
  if (d.packets === 0) return [];
  return [
    {
      kind: 'bar',
      title: `Frames of ${vm} into and out of its switch`,
      unit: 'frames',
      bars: [
        { label: 'to the VM: entered', value: d.toVm.entered.packets },
        { label: 'to the VM: delivered', value: d.toVm.delivered.packets },
        { label: 'to the VM: lost', value: d.lost.toVm },
        { label: 'from the VM: sent (unicast)', value: d.fromVm.sent.unicast.packets },
        { label: 'from the VM: forwarded (unicast)', value: d.fromVm.forwarded.unicast.packets },
        { label: 'from the VM: lost', value: d.lost.fromVm },
      ],
    },
  ];
}

/** The finding of one session: its attach record (with the scope), its dump and overhead. */
export function framesFinding(att: AttachCapture, dump: DumpCapture, overhead: OverheadReport | null): ProbeResult<FramesData> {
  const t = dump.totals;
  const scope = att.scope;
  const entered = zero();
  for (const p of dump.pairs) if (p.dir === 'entered') add(entered, p);
  add(entered, count(t, 'unkeyedEntered'));
  const { forwarded, copies } = forwardedOf(dump.pairs.filter((p) => p.dir === 'forwarded'));
  // Frames not kept per pair are counted once, as unicast (the frames a loss is about).
  add(forwarded.unicast, count(t, 'unkeyedForwarded'));
  const sent: ByCast = { unicast: count(t, 'sentUnicast'), multicast: count(t, 'sentMulticast'), broadcast: count(t, 'sentBroadcast') };
  const toVm = {
    entered,
    delivered: count(t, 'deliveredUnicast'),
    multicast: count(t, 'deliveredMulticast'),
    broadcast: count(t, 'deliveredBroadcast'),
    otherUnicast: count(t, 'deliveredOther'),
  };
  const lostToVm = Math.max(0, toVm.entered.packets - toVm.delivered.packets);
  const lostFromVm = Math.max(0, sent.unicast.packets - forwarded.unicast.packets);
  const packets = toVm.entered.packets + toVm.multicast.packets + toVm.broadcast.packets + sent.unicast.packets + sent.multicast.packets + sent.broadcast.packets;
  const stopped = overhead?.stopped;
  const data: FramesData = {
    ...loadedFields(att),
    windowMs: dump.windowMs,
    graceMs: dump.graceMs,
    ...(overhead ? { overhead } : {}),
    ...(stopped ? { stopped } : {}),
    scope: {
      vm: scope.vm,
      devs: scope.devs,
      macs: scope.macs,
      ports: scope.ports,
      anyPort: scope.ports === null,
      hostPorts: scope.hostPorts ?? [],
      hostPortsFrom: scope.hostPortsFrom ?? 'none',
    },
    toVm,
    fromVm: { sent, forwarded, foreign: t.foreignSent },
    lost: { toVm: lostToVm, fromVm: lostFromVm, total: lostToVm + lostFromVm, share: packets === 0 ? 0 : Math.round(((lostToVm + lostFromVm) / packets) * 1e6) / 1e6 },
    packets,
    learnedAddresses: dump.learned
      .map((a) => ({ address: a.address, mac: a.mac, via: a.via, packets: a.packets }))
      .sort((a, b) => b.packets - a.packets || a.address.localeCompare(b.address) || a.mac.localeCompare(b.mac)),
    maxPacket: { toVm: maxOf(dump.maxPacket.toVm, scope), fromVm: maxOf(dump.maxPacket.fromVm, scope) },
    byPort: byPortOf(dump.pairs, scope),
    flooded: copies,
    grace: {
      lateDelivered: t.lateDelivered,
      lateForwarded: t.lateForwarded,
      skippedDelivered: t.skippedDelivered,
      skippedForwarded: t.skippedForwarded,
      afterEntered: t.afterEntered,
      afterSent: t.afterSent,
      slowestTransitMs: ms(dump.transitNs),
      lastLateMs: ms(dump.lateNs),
    },
    notes: [],
  };
  data.notes = notesOf(data, dump, att);
  return { data, summary: summaryOf(data, scope), severity: severityOf(data), charts: chartsOf(data, vmLabel(scope)), tables: tablesOf(data, att, overhead) };
}
