// Reading perf.host-latency.bpf.c's maps (layouts of perf.host-latency.h), programs detached:
// each CPU's counters and histograms summed, its pending drops added to the `drops` hash, and
// the skbs still tracked in the direct-mapped table.
import type { U64 } from '../../engine/native/btf-layout.js';
import { sumPerCpu } from '../../engine/native/btf-layout.js';
import type { BpfObject } from '../../engine/native/object.js';
import { countsOf } from '../../engine/probe/bpf-values.js';
import { latHistOf, type LatHist, type RawLatHist } from '../lib/lathist.js';

interface DropKey {
  reason: number;
  dir: number;
  stage: number;
}

/** struct hostlat_cpu. */
interface CpuEntry {
  counters: number[];
  pend_count: U64;
  pend_key: DropKey;
  hists: RawLatHist[];
}

/** struct hostlat_path. */
interface PathEntry {
  first_ts: U64;
  stage: number;
}

export interface CpuTotals {
  /** Counters by slot (enum hostlat_stage, then per direction). */
  counters: number[];
  /** By hist index; null when empty. */
  hists: Array<LatHist | null>;
  drops: Array<DropKey & { count: number }>;
}

/** enum hostlat_stage and enum hostlat_dir_counter (perf.host-latency.h). */
const STAGES = 8;
const FIRST_STAGE = [0, 5]; // by direction: net_dev_queue, the rx entry
const RX_RECEIVE = 6;
const C_PER_DIR = 6;
const [C_STARTED, C_DONE, C_DROPPED] = [0, 1, 2];

/**
 * Counters and histograms summed over CPUs; drops by key, the CPUs' pending counts included.
 * The counters the kernel leaves to the reader are derived here: a timed stage's packets are
 * its histogram's count (plus, at netif_receive_skb, the packets that start there), a
 * direction's started packets its first stages', completed its total's count, dropped its drops.
 */
export function readCpuTotals(o: BpfObject): CpuTotals {
  const cpus = o.map('cpus').readAllDecoded<number, CpuEntry>().map((e) => e.value);
  const kernel = sumPerCpu(cpus.map((c) => c.counters)).map(Number);
  const hists = cpus[0]!.hists.map((_, i) => latHistOf(cpus.map((c) => c.hists[i]!)));
  const byKey = new Map<string, DropKey & { count: number }>();
  const add = (k: DropKey, count: number) => {
    const id = `${k.reason}/${k.dir}/${k.stage}`;
    const known = byKey.get(id);
    if (known) known.count += count;
    else byKey.set(id, { reason: k.reason, dir: k.dir, stage: k.stage, count });
  };
  for (const d of countsOf(o.map('drops'), (k: DropKey) => k)) add(d, d.count);
  for (const c of cpus) if (Number(c.pend_count) > 0) add(c.pend_key, Number(c.pend_count));
  const drops = [...byKey.values()];

  const counters = [...kernel];
  for (let stage = 0; stage < STAGES; stage++) counters[stage] = kernel[stage]! + (hists[stage]?.count ?? 0);
  FIRST_STAGE.forEach((first, dir) => {
    const base = STAGES + dir * C_PER_DIR;
    counters[base + C_STARTED] = kernel[first]! + (dir === 1 ? kernel[RX_RECEIVE]! : 0);
    counters[base + C_DONE] = hists[STAGES + dir]?.count ?? 0;
    counters[base + C_DROPPED] = drops.filter((d) => d.dir === dir).reduce((n, d) => n + d.count, 0);
  });
  return { counters, hists, drops };
}

/** The paths still tracked in each direction (index 0: TX, 1: RX): latest stage and first stamp. */
export function trackedPaths(o: BpfObject): Array<Array<{ stage: number; firstTs: bigint }>> {
  const out: Array<Array<{ stage: number; firstTs: bigint }>> = [[], []];
  for (const { value } of o.map('skbs').readAllDecoded<number, { skb: U64; path: PathEntry[] }>()) {
    if (BigInt(value.skb) === 0n) continue;
    value.path.forEach((p, dir) => {
      if (BigInt(p.first_ts) !== 0n) out[dir]!.push({ stage: p.stage, firstTs: BigInt(p.first_ts) });
    });
  }
  return out;
}
