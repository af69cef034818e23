// An attached BPF program. detach() (or closeAll(), or garbage collection) removes it.
import type { NativeLink } from './addon.js';

export class BpfLink {
  /** @internal Created by BpfProgram's attach methods. */
  constructor(
    private readonly native: NativeLink,
    /** Milliseconds the attach call took in this process. */
    readonly attachMs: number,
  ) {}

  get program(): string {
    return this.native.info.program;
  }

  /** How it was attached: `auto`, `tracepoint`, `raw_tracepoint`, `trace`, `kprobe`, `uprobe`. */
  get kind(): string {
    return this.native.info.kind;
  }

  /** What it was attached to (`syscalls:sys_enter_getppid`, `vfs_read`, `/lib/...:getuid`). */
  get target(): string {
    return this.native.info.target;
  }

  get detached(): boolean {
    return this.native.detached;
  }

  /** Detaches; false when it already was. */
  detach(): boolean {
    return this.native.detach();
  }
}
