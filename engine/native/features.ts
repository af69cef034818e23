// Kernel features as the addon finds them by loading and attaching tiny programs: the
// authoritative answer for kprobes and fentry, which file-based detection can only guess.
import { addon, requireRoot, type NativeFeatureReport } from './addon.js';
import { nativeCall } from './errors.js';

export type { NativeFeatureReport } from './addon.js';

/** Probes the kernel through libbpf (needs root). Attach attempts use `vfs_read` unless told. */
export function nativeFeatures(opts: { kprobeFunc?: string; fentryFunc?: string } = {}): NativeFeatureReport {
  requireRoot('probing kernel BPF features');
  return nativeCall(() => addon().features(opts));
}

/** CPUs the kernel may ever bring up (libbpf's count): the size of anything kept per CPU. */
export function possibleCpus(): number {
  return nativeCall(() => addon().possibleCpus());
}
