// What the maps of probes/vm.frames/vm.frames.bpf.c hold at the end of a session, decoded into the `dump`
// capture (layouts of probes/vm.frames/vm.frames.h). A replay parses this record; nothing reads maps there.
import type { U64 } from '../../engine/native/btf-layout.js';
import { u32Key } from '../../engine/native/map.js';
import type { BpfObject } from '../../engine/native/object.js';
import { addressText, slotTotals } from '../../engine/probe/bpf-values.js';

/** The slots of the per-CPU `totals` array, in enum vmf_total order. */
export const TOTAL_NAMES = [
  'sentUnicastPackets', 'sentUnicastBytes', 'sentMulticastPackets', 'sentMulticastBytes', 'sentBroadcastPackets', 'sentBroadcastBytes',
  'deliveredUnicastPackets', 'deliveredUnicastBytes', 'deliveredMulticastPackets', 'deliveredMulticastBytes',
  'deliveredBroadcastPackets', 'deliveredBroadcastBytes', 'deliveredOtherPackets', 'deliveredOtherBytes',
  'unkeyedEnteredPackets', 'unkeyedEnteredBytes', 'unkeyedForwardedPackets', 'unkeyedForwardedBytes',
  'lateDelivered', 'lateForwarded', 'skippedDelivered', 'skippedForwarded', 'afterEntered', 'afterSent',
  'learnUnkeyed', 'tailUnkeyed', 'foreignSent',
] as const;
export type TotalName = (typeof TOTAL_NAMES)[number];

/** enum vmf_via bits, in the order findings list them. */
export const VIAS = ['arp', 'ipv4', 'ipv6', 'nd'] as const;
export type Via = (typeof VIAS)[number];

/** enum vmf_maximum. */
const MAXIMUM = { toVm: 0, fromVm: 1, transitNs: 2, lateNs: 3 } as const;

/** One `pairs` entry: frames to the VM received on a port (`entered`), or frames from it seen leaving on one (`forwarded`). */
export interface PairEntry {
  ifindex: number;
  dir: 'entered' | 'forwarded';
  src: string;
  dst: string;
  packets: number;
  bytes: number;
}

/** One `learned` entry. */
export interface LearnedEntry {
  address: string;
  family: 4 | 6;
  mac: string;
  via: Via[];
  packets: number;
}

export interface PacketMax {
  /** L3 bytes. */
  bytes: number;
  ifindex: number;
}

/** The `dump` capture. */
export interface DumpCapture {
  /** From attach to when the probe closed the window (or the guard stopped the programs), ms. */
  windowMs: number;
  /** From the close to the dump: how long deliveries were still counted, ms. */
  graceMs: number;
  totals: Record<TotalName, number>;
  pairs: PairEntry[];
  learned: LearnedEntry[];
  maxPacket: { toVm: PacketMax | null; fromVm: PacketMax | null };
  /** Slowest switch crossing of a frame that entered during the grace, ns (null: none). */
  transitNs: number | null;
  /** How long after the close the last counted delivery came, ns (null: none). */
  lateNs: number | null;
}

export const macText = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** struct vmf_pair_key and struct vmf_count, decoded. */
type PairKey = { ifindex: number; dir: number; src: Buffer; dst: Buffer };
type Count = { packets: number; bytes: number };

function decodePair(k: PairKey, v: Count): PairEntry {
  return {
    ifindex: k.ifindex,
    dir: k.dir === 0 ? 'entered' : 'forwarded',
    src: macText(k.src),
    dst: macText(k.dst),
    packets: v.packets,
    bytes: v.bytes,
  };
}

/** struct vmf_addr_key and struct vmf_addr_val, decoded. */
type AddrKey = { addr: Buffer; mac: Buffer; family: number };
type AddrValue = { packets: number; via: number };

function decodeLearned(k: AddrKey, v: AddrValue): LearnedEntry {
  const family = k.family === 6 ? 6 : 4;
  return {
    address: addressText(k.addr, family),
    family,
    mac: macText(k.mac),
    via: VIAS.filter((_, i) => v.via & (1 << i)),
    packets: v.packets,
  };
}

/** The largest value of a per-CPU `maxima` slot over the CPUs. */
function maximum(o: BpfObject, slot: number): bigint {
  const values = o.map('maxima').lookupPerCpu<U64>(u32Key(slot)) ?? [];
  return values.reduce<bigint>((m, v) => (BigInt(v) > m ? BigInt(v) : m), 0n);
}

function packetMax(packed: bigint): PacketMax | null {
  return packed === 0n ? null : { bytes: Number(packed >> 32n), ifindex: Number(packed & 0xffffffffn) };
}

/** The maps as the `dump` capture records them (exported for tests that load a flavour by hand). */
export function readDump(o: BpfObject, times: { windowMs: number; graceMs: number }): DumpCapture {
  const slots = Object.fromEntries(TOTAL_NAMES.map((n, i) => [n, i])) as Record<TotalName, number>;
  const pairs = o
    .map('pairs')
    .readAllDecoded<PairKey, Count>()
    .map((e) => decodePair(e.key, e.value))
    .sort((a, b) => a.dir.localeCompare(b.dir) || a.ifindex - b.ifindex || a.src.localeCompare(b.src) || a.dst.localeCompare(b.dst));
  const learned = o
    .map('learned')
    .readAllDecoded<AddrKey, AddrValue>()
    .map((e) => decodeLearned(e.key, e.value))
    .sort((a, b) => a.family - b.family || a.address.localeCompare(b.address) || a.mac.localeCompare(b.mac));
  const transit = maximum(o, MAXIMUM.transitNs);
  const late = maximum(o, MAXIMUM.lateNs);
  return {
    windowMs: round3(times.windowMs),
    graceMs: round3(times.graceMs),
    totals: slotTotals(o.map('totals'), slots),
    pairs,
    learned,
    maxPacket: { toVm: packetMax(maximum(o, MAXIMUM.toVm)), fromVm: packetMax(maximum(o, MAXIMUM.fromVm)) },
    transitNs: transit === 0n ? null : Number(transit),
    lateNs: late === 0n ? null : Number(late),
  };
}
