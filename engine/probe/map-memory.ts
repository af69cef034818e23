// What a BPF map may hold in kernel memory, from its declaration (type, entries, key and value
// sizes): an upper bound in two parts, fixed bytes and bytes per possible CPU, so that a probe's
// README states it for any host. The bounds follow the kernel's own accounting (the map types'
// map_mem_usage, which fdinfo reports as `memlock`) rounded up; test/probe/map-memory.test.ts
// loads every shipped object and checks each bound against that report.
import type { NativeMapInfo } from '../native/addon.js';

export interface MapMemory {
  name: string;
  type: string;
  entries: number;
  keySize: number;
  valueSize: number;
  /** Bytes whatever the host. */
  fixedBytes: number;
  /** Bytes more per possible CPU. */
  perCpuBytes: number;
}

/** The map's bookkeeping: its struct, rounded up to a page. */
const MAP_STRUCT = 4096;
/** A hash element's header (struct htab_elem: list node, LRU node, hash) before its key. */
const HTAB_ELEM = 48;
/** A hash bucket (list head and lock), one per entry rounded up to a power of two. */
const HTAB_BUCKET = 16;
/** A stack map bucket's header (struct stack_map_bucket) before its frames. */
const STACK_BUCKET = 32;
const PAGE = 4096;

const up8 = (n: number) => Math.ceil(n / 8) * 8;
const pageUp = (n: number) => Math.ceil(n / PAGE) * PAGE;
const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** The bound of one map (memory the kernel allocates for it, at most). */
export function mapMemory(m: NativeMapInfo): MapMemory {
  const base = { name: m.name, type: m.type, entries: m.maxEntries, keySize: m.keySize, valueSize: m.valueSize };
  const key = up8(m.keySize);
  const value = up8(m.valueSize);
  switch (m.type) {
    case 'hash':
    case 'lru_hash':
      // Preallocated elements, plus one spare per CPU for a plain hash (htab's extra_elems).
      return { ...base, fixedBytes: MAP_STRUCT + HTAB_BUCKET * pow2(m.maxEntries) + (HTAB_ELEM + key + value) * m.maxEntries, perCpuBytes: HTAB_ELEM + key + value };
    case 'percpu_hash':
    case 'lru_percpu_hash':
      return { ...base, fixedBytes: MAP_STRUCT + HTAB_BUCKET * pow2(m.maxEntries) + (HTAB_ELEM + key + 8) * m.maxEntries, perCpuBytes: value * m.maxEntries };
    case 'array':
      // Mmapable arrays (data sections among them) are page-aligned; others are not, by less
      // than a page.
      return { ...base, fixedBytes: MAP_STRUCT + pageUp(value * m.maxEntries), perCpuBytes: 0 };
    case 'percpu_array':
      return { ...base, fixedBytes: MAP_STRUCT + 8 * m.maxEntries, perCpuBytes: value * m.maxEntries };
    case 'ringbuf':
      // The data pages, the consumer and producer pages in front of them, and the page array
      // that maps the data twice (so a record may wrap).
      return { ...base, fixedBytes: MAP_STRUCT + m.maxEntries + 3 * PAGE + 16 * (m.maxEntries / PAGE + 2), perCpuBytes: 0 };
    case 'stack_trace':
      return { ...base, fixedBytes: MAP_STRUCT + pow2(m.maxEntries) * (8 + STACK_BUCKET + m.valueSize), perCpuBytes: 0 };
    default:
      // Types no probe declares today (perf_event_array, prog_array...): entries of key and value.
      return { ...base, fixedBytes: MAP_STRUCT + (key + value) * m.maxEntries, perCpuBytes: 0 };
  }
}

/** The bound of an ARRAY map sized at open to `perCpu` entries per possible CPU (per-CPU ways). */
export function perCpuArrayMemory(m: NativeMapInfo, perCpu: number): MapMemory {
  return { name: m.name, type: m.type, entries: perCpu, keySize: m.keySize, valueSize: m.valueSize, fixedBytes: MAP_STRUCT + PAGE, perCpuBytes: up8(m.valueSize) * perCpu };
}

/** Bytes as the READMEs print them: `12 KiB`, `1.3 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.ceil(n / 1024)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** `1.3 MiB + 4 KiB per CPU` */
export function formatBound(fixedBytes: number, perCpuBytes: number): string {
  return perCpuBytes > 0 ? `${formatBytes(fixedBytes)} + ${formatBytes(perCpuBytes)} per CPU` : formatBytes(fixedBytes);
}
