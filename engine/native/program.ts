// One program of a BpfObject: autoload before load, then attach by kind. A link lives as long
// as its object (dropping the BpfLink does not detach it); closing the object detaches it.
import type { NativeAttachSpec, NativeObject, NativeProgramInfo } from './addon.js';
import { nativeCall } from './errors.js';
import { BpfLink } from './link.js';

export interface UprobeTarget {
  /** Path of the executable or library (`/lib/x86_64-linux-gnu/libc.so.6`). */
  binary: string;
  /** Function name, resolved by libbpf from the ELF symbols. */
  func?: string;
  /** Offset in the binary (or within `func`). */
  offset?: number;
  /** Only this process (-1 or absent: every process). */
  pid?: number;
}

export class BpfProgram {
  /** @internal Created by BpfObject.program(); `keep` holds each link as long as the object lives. */
  constructor(
    private readonly native: NativeObject,
    readonly name: string,
    private readonly keep: (link: BpfLink) => void,
  ) {}

  get info(): NativeProgramInfo {
    const info = nativeCall(() => this.native.programs()).find((p) => p.name === this.name);
    if (!info) throw new Error(`program ${this.name} is gone`);
    return info;
  }

  get section(): string {
    return this.info.section;
  }

  get type(): string {
    return this.info.type;
  }

  get autoload(): boolean {
    return this.info.autoload;
  }

  /** Whether load() loads this program (before load only). */
  set autoload(on: boolean) {
    nativeCall(() => this.native.setAutoload(this.name, on));
  }

  /** The kernel function an fentry/fexit program traces, instead of its section's (before load). */
  setAttachTarget(func: string): void {
    nativeCall(() => this.native.setAttachTarget(this.name, func));
  }

  /** Attaches as its section says (`tracepoint/cat/name`, `kprobe/func`, `tp_btf/name`...). */
  attach(): BpfLink {
    return this.attachWith({ kind: 'auto' });
  }

  attachTracepoint(category: string, name: string): BpfLink {
    return this.attachWith({ kind: 'tracepoint', category, name });
  }

  attachRawTracepoint(name: string): BpfLink {
    return this.attachWith({ kind: 'raw_tracepoint', name });
  }

  /** tp_btf, fentry, fexit: the target is the section's (or setAttachTarget's). */
  attachTrace(): BpfLink {
    return this.attachWith({ kind: 'trace' });
  }

  attachKprobe(func: string, opts: { offset?: number } = {}): BpfLink {
    return this.attachWith({ kind: 'kprobe', func, ...opts });
  }

  attachKretprobe(func: string): BpfLink {
    return this.attachWith({ kind: 'kprobe', func, retprobe: true });
  }

  attachUprobe(target: UprobeTarget): BpfLink {
    return this.attachWith({ kind: 'uprobe', ...target });
  }

  attachUretprobe(target: UprobeTarget): BpfLink {
    return this.attachWith({ kind: 'uprobe', ...target, retprobe: true });
  }

  private attachWith(spec: NativeAttachSpec): BpfLink {
    const started = performance.now();
    const link = new BpfLink(
      nativeCall(() => this.native.attach(this.name, spec)),
      performance.now() - started,
    );
    this.keep(link);
    return link;
  }
}
