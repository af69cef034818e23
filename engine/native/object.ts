// A BPF object file (`build/bpf/<name>.bpf.o`) opened through the addon: set its
// `const volatile` globals and which programs load, load it, attach its programs, read its
// maps, close it.
import { join } from 'node:path';
import { packageRoot } from '../package-info.js';
import { addon, requireRoot, type NativeGlobalInfo, type NativeMapInfo, type NativeObject } from './addon.js';
import { compileLayout, type Decoded, type Decoder } from './btf-layout.js';
import { nativeCall } from './errors.js';
import { encodeGlobal, type GlobalValue } from './globals.js';
import type { BpfLink } from './link.js';
import { BpfMap } from './map.js';
import { BpfProgram } from './program.js';

export interface OpenOptions {
  /** Initial values of global variables (`const volatile` filters), by name. */
  globals?: Record<string, GlobalValue>;
  /** Programs to load or not, by name (others keep their default: on, or off for `SEC("?...")`). */
  autoload?: Record<string, boolean>;
  /** Map sizes to override, by map name (ring buffer bytes, hash entries). */
  maxEntries?: Record<string, number>;
  /** fentry/fexit targets to override, program name → kernel function. */
  attachTargets?: Record<string, string>;
  /** External BTF for CO-RE relocations on kernels without /sys/kernel/btf/vmlinux. */
  btfPath?: string;
  objectName?: string;
  /** libbpf output kept for errors: 0 warnings, 1 info (default), 2 debug. */
  captureLevel?: 0 | 1 | 2;
}

/** Path of a compiled object shipped with ebpfnet (`selftest` → build/bpf/selftest.bpf.o). */
export function bpfObjectPath(name: string): string {
  return join(packageRoot(), 'build', 'bpf', `${name}.bpf.o`);
}

/**
 * The maps an object file declares, as libbpf reads them before load (sizes the loader may
 * still change). Opening a file loads nothing into the kernel, so this needs no root.
 */
export function declaredMaps(path: string): NativeMapInfo[] {
  const lib = addon();
  const native = nativeCall(() => new lib.NativeObject(path, { captureLevel: 0 }));
  try {
    return nativeCall(() => native.maps());
  } finally {
    native.close();
  }
}

export class BpfObject {
  private readonly native: NativeObject;
  /** Links of this object's programs: kept from garbage collection while the object lives. */
  private readonly links = new Set<BpfLink>();
  private readonly keep = (link: BpfLink) => {
    for (const l of this.links) if (l.detached) this.links.delete(l);
    this.links.add(link);
  };
  /** Handed out once per name, so that each map compiles its BTF layout once. */
  private readonly mapsByName = new Map<string, BpfMap>();
  private readonly recordDecoders = new Map<string, Decoder<unknown>>();
  /** Milliseconds load() took, once loaded. */
  loadMs: number | null = null;

  private constructor(
    readonly path: string,
    opts: OpenOptions,
  ) {
    requireRoot('loading BPF programs');
    const lib = addon();
    this.native = nativeCall(
      () =>
        new lib.NativeObject(path, {
          objectName: opts.objectName,
          btfCustomPath: opts.btfPath,
          captureLevel: opts.captureLevel,
        }),
    );
    try {
      for (const [name, value] of Object.entries(opts.globals ?? {})) this.setGlobal(name, value);
      for (const [name, on] of Object.entries(opts.autoload ?? {})) this.program(name).autoload = on;
      for (const [name, n] of Object.entries(opts.maxEntries ?? {})) nativeCall(() => this.native.setMaxEntries(name, n));
      for (const [name, func] of Object.entries(opts.attachTargets ?? {})) this.program(name).setAttachTarget(func);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Opens an object file and applies the options; nothing reaches the kernel before load(). */
  static open(path: string, opts: OpenOptions = {}): BpfObject {
    return new BpfObject(path, opts);
  }

  get name(): string {
    return nativeCall(() => this.native.name);
  }

  get loaded(): boolean {
    return this.native.loaded;
  }

  get closed(): boolean {
    return this.native.closed;
  }

  programs(): BpfProgram[] {
    return nativeCall(() => this.native.programs()).map((p) => new BpfProgram(this.native, p.name, this.keep));
  }

  program(name: string): BpfProgram {
    if (!nativeCall(() => this.native.programs()).some((p) => p.name === name)) {
      throw new Error(`no program named ${name} in ${this.path}`);
    }
    return new BpfProgram(this.native, name, this.keep);
  }

  maps(): NativeMapInfo[] {
    return nativeCall(() => this.native.maps());
  }

  map(name: string): BpfMap {
    let map = this.mapsByName.get(name);
    if (!map) {
      map = new BpfMap(nativeCall(() => this.native.map(name)), name);
      this.mapsByName.set(name, map);
    }
    return map;
  }

  /**
   * A decoder of records laid out as the struct (union, typedef) `type` of the object's BTF: a
   * ring buffer's events. The source puts the type in its BTF with BTF_RECORD_TYPE
   * (bpf/include/btf-record.h) when no map or global uses it.
   */
  recordDecoder<T = Decoded>(type: string): Decoder<T> {
    let decoder = this.recordDecoders.get(type);
    if (!decoder) {
      const layout = nativeCall(() => this.native.btfType(type));
      if (!layout) throw new Error(`no type named ${type} in the BTF of ${this.path} (BTF_RECORD_TYPE puts it there)`);
      decoder = compileLayout(layout, type);
      this.recordDecoders.set(type, decoder);
    }
    return decoder as Decoder<T>;
  }

  /** Global variables with their section, offset and size, from the object's BTF. */
  globals(): NativeGlobalInfo[] {
    return nativeCall(() => this.native.globals());
  }

  /** Sets a global's initial value (before load). */
  setGlobal(name: string, value: GlobalValue): void {
    const global = this.globals().find((g) => g.name === name);
    if (!global) throw new Error(`no global variable named ${name} in ${this.path}`);
    const bytes = encodeGlobal(global, value);
    nativeCall(() => this.native.setGlobal(name, bytes));
  }

  /**
   * Loads the programs whose autoload is on and creates the maps. On failure throws a
   * BpfError whose `log` holds libbpf's output and `verifierLog` the verifier's.
   */
  load(): void {
    const started = performance.now();
    nativeCall(() => this.native.load());
    this.loadMs = performance.now() - started;
  }

  /** Detaches every link of this object's programs; the maps stay readable until close(). */
  detach(): number {
    let n = 0;
    for (const link of this.links) if (link.detach()) n++;
    this.links.clear();
    return n;
  }

  /** Closes the object: stops its ring readers, detaches its links, frees its maps. */
  close(): void {
    this.native.close();
    this.links.clear();
  }
}
