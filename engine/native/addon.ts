// Loads the compiled libbpf addon (build/Release/ebpfnet.node) and describes what it exports.
// Everything else in engine/native/ goes through `addon()`.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../package-info.js';

export interface NativeProgramInfo {
  name: string;
  section: string;
  /** libbpf's name of the program type: `tracepoint`, `kprobe`, `tracing`... */
  type: string;
  /** For BTF-based programs: `trace_fentry`, `trace_raw_tp`...; null otherwise. */
  attachType: string | null;
  autoload: boolean;
  fd: number | null;
}

export interface NativeMapInfo {
  name: string;
  /** libbpf's name of the map type: `hash`, `ringbuf`, `percpu_array`, `stack_trace`... */
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  perCpu: boolean;
  /** Maps libbpf made for data sections (`.rodata`, `.bss`). */
  internal: boolean;
  fd: number | null;
}

export interface NativeGlobalInfo {
  name: string;
  section: string;
  offset: number;
  size: number;
  kind: 'int' | 'bool' | 'char' | 'enum' | 'array' | 'struct' | 'union' | 'pointer' | 'other';
  signed: boolean;
}

/** A BTF type as native/btf-layout.cc describes it (decoded by engine/native/btf-layout.ts). */
export interface BtfLayout {
  kind: 'int' | 'char' | 'bool' | 'enum' | 'float' | 'pointer' | 'array' | 'struct' | 'union' | 'other';
  /** The outermost typedef's name (`__u64`), else the type's own; '' when anonymous. */
  name: string;
  size: number;
  /** int, char, enum. */
  signed?: boolean;
  /** int: a network-order typedef (__be16, __be32, __be64). */
  bigEndian?: boolean;
  /** array: element count and type. */
  length?: number;
  element?: BtfLayout;
  /** struct, union; `bitSize` is 0 unless the member is a bitfield. */
  members?: Array<{ name: string; bitOffset: number; bitSize: number; type: BtfLayout }>;
}

export type NativeAttachSpec =
  | { kind: 'auto' }
  | { kind: 'tracepoint'; category: string; name: string }
  | { kind: 'raw_tracepoint'; name: string }
  | { kind: 'trace' }
  | { kind: 'kprobe'; func: string; retprobe?: boolean; offset?: number }
  | { kind: 'uprobe'; binary: string; func?: string; offset?: number; pid?: number; retprobe?: boolean };

export interface NativeLink {
  detach(): boolean;
  readonly detached: boolean;
  readonly info: { program: string; kind: string; target: string };
}

export interface NativeMap {
  lookup(key: Uint8Array): Buffer | null;
  update(key: Uint8Array, value: Uint8Array, flags?: number): void;
  delete(key: Uint8Array): boolean;
  nextKey(key: Uint8Array | null): Buffer | null;
  readAll(): { keys: Buffer; values: Buffer; count: number; batched: boolean };
  /** The BTF types the map was declared with; null for a side declared by size only. */
  layout(): { key: BtfLayout | null; value: BtfLayout | null };
  readonly info: NativeMapInfo & { lookupSize: number };
}

export interface NativeObject {
  programs(): NativeProgramInfo[];
  maps(): NativeMapInfo[];
  globals(): NativeGlobalInfo[];
  setGlobal(name: string, bytes: Uint8Array): void;
  setAutoload(program: string, on: boolean): void;
  setAttachTarget(program: string, func: string): void;
  setMaxEntries(map: string, count: number): void;
  load(): void;
  attach(program: string, spec: NativeAttachSpec): NativeLink;
  map(name: string): NativeMap;
  /** A named struct, union, typedef or enum of the object's BTF; null when there is none. */
  btfType(name: string): BtfLayout | null;
  close(): boolean;
  readonly loaded: boolean;
  readonly closed: boolean;
  readonly name: string;
}

export interface NativeRingReader {
  stop(): { data: Buffer; ends: Uint32Array } | null;
  pause(): void;
  resume(): void;
  readonly stats: { events: number; batches: number; bytes: number; running: boolean; paused: boolean };
}

export interface TypeProbe {
  supported: boolean | null;
  errno?: string;
}

export interface AttachAttempt {
  loads: boolean;
  attaches: boolean;
  errno?: number;
  code?: string;
  how: string;
}

export interface NativeFeatureReport {
  btf: { present: boolean; errno?: string };
  progTypes: Record<'kprobe' | 'tracepoint' | 'raw_tracepoint' | 'tracing' | 'perf_event', TypeProbe>;
  mapTypes: Record<'ringbuf' | 'stack_trace' | 'percpu_array', TypeProbe>;
  kprobe: AttachAttempt;
  fentry: AttachAttempt;
}

export interface HandleCounts {
  readers: number;
  links: number;
  objects: number;
}

export interface NativeAddon {
  NativeObject: new (
    path: string,
    opts: { objectName?: string; btfCustomPath?: string; kconfig?: string; captureLevel?: number },
  ) => NativeObject;
  NativeRingReader: new (
    map: NativeMap,
    onBatch: (data: Buffer, ends: Uint32Array) => void,
    onError: (err: Error) => void,
    onEnd: () => void,
    opts?: { maxBatch?: number; maxBytes?: number },
  ) => NativeRingReader;
  closeAll(): HandleCounts;
  detachAll(): HandleCounts;
  liveHandles(): HandleCounts;
  features(opts?: { kprobeFunc?: string; fentryFunc?: string }): NativeFeatureReport;
  setLogCallback(fn: ((level: number, text: string) => void) | null, maxLevel?: number): void;
  libbpfVersion(): string;
  possibleCpus(): number;
  /** BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): run statistics are counted while the returned fd is open. */
  enableStats(): number;
}

/** Where `npm run build` puts the addon. */
export function addonPath(): string {
  return join(packageRoot(), 'build', 'Release', 'ebpfnet.node');
}

let loaded: NativeAddon | undefined;

/** The addon, loaded once; throws a one-line error when it was not built. */
export function addon(): NativeAddon {
  if (loaded) return loaded;
  const path = addonPath();
  if (!existsSync(path)) throw new Error(`native addon missing: run npm run build (no ${path})`);
  try {
    loaded = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(`native addon ${path} does not load: ${why} (rebuild with npm run build)`);
  }
  return loaded;
}

/** Whether the addon was loaded by this process (closeAll() need not load it to find nothing). */
export function addonLoaded(): boolean {
  return loaded !== undefined;
}

/** Loading BPF programs needs root (CAP_BPF + CAP_PERFMON at least); say so in one line. */
export function requireRoot(what: string): void {
  if (process.geteuid?.() !== 0) throw new Error(`not root: ${what} needs root (run ebpfnet as root)`);
}
