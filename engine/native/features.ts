// Kernel features as the addon finds them by loading and attaching tiny programs: the
// authoritative answer for kprobes and fentry, which file-based detection can only guess.
import type { FeatureStatus } from '../host/features.js';
import { addon, requireRoot, type NativeFeatureReport } from './addon.js';
import { nativeCall } from './errors.js';

export type { NativeFeatureReport } from './addon.js';

/** Probes the kernel through libbpf (needs root). Attach attempts use `vfs_read` unless told. */
export function nativeFeatures(opts: { kprobeFunc?: string; fentryFunc?: string } = {}): NativeFeatureReport {
  requireRoot('probing kernel BPF features');
  return nativeCall(() => addon().features(opts));
}

/** The report in the shape of engine/host/features.ts, for the features it decides. */
export function featureStatuses(r: NativeFeatureReport): Record<'btf' | 'kprobes' | 'fentry' | 'ringbuf', FeatureStatus> {
  const ringbuf = r.mapTypes.ringbuf.supported;
  return {
    btf: { present: r.btf.present, how: r.btf.present ? 'libbpf loaded the vmlinux BTF' : `libbpf found no vmlinux BTF (${r.btf.errno ?? 'unknown'})` },
    kprobes: { present: r.kprobe.attaches, how: `native probe: ${r.kprobe.how}` },
    fentry: { present: r.fentry.attaches, how: `native probe: ${r.fentry.how}` },
    ringbuf: {
      present: ringbuf,
      how: ringbuf === null ? `libbpf could not probe the ringbuf map type (${r.mapTypes.ringbuf.errno})` : `libbpf probe: ringbuf map type ${ringbuf ? 'loads' : 'refused'}`,
    },
  };
}
