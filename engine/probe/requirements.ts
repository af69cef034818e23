// Whether a probe's declared requirements hold on this host, and if not, one line saying what to do.
import { existsSync } from 'node:fs';
import { findBinary, installHint } from '../host/binaries.js';
import { BTF_VMLINUX, detectFeatures, type FeatureReport, type FeatureStatus, type KernelFeature } from '../host/features.js';
import { ensureTracefs, hasTracepoint, parseTracepointName } from '../host/tracefs.js';
import type { Requirement } from './types.js';

/** What each kernel feature is called in a reason, and what its absence means. */
const FEATURE_TEXT: Record<KernelFeature, { name: string; config: string; fix: string }> = {
  btf: { name: 'BTF', config: 'CONFIG_DEBUG_INFO_BTF', fix: 'this probe needs /sys/kernel/btf/vmlinux' },
  tracefs: { name: 'tracefs', config: 'CONFIG_TRACING', fix: 'mount it: mount -t tracefs nodev /sys/kernel/tracing' },
  tracepoints: { name: 'tracepoints', config: 'CONFIG_TRACEPOINTS', fix: 'this probe needs them' },
  kprobes: { name: 'kprobes', config: 'CONFIG_KPROBES', fix: 'this probe needs them' },
  fentry: { name: 'fentry/fexit', config: 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS', fix: 'this probe needs them' },
  uprobes: { name: 'uprobes', config: 'CONFIG_UPROBES', fix: 'this probe needs them' },
  ringbuf: { name: 'the BPF ring buffer', config: 'kernel >= 5.8', fix: 'this probe needs it' },
};

function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

function featureReason(feature: KernelFeature, status: FeatureStatus): string | null {
  if (status.present === true) return null;
  const t = FEATURE_TEXT[feature];
  if (status.present === null) {
    return `cannot tell whether the kernel has ${t.name} (${status.how}): ${t.fix}`;
  }
  if (feature === 'tracefs') return `tracefs not available (${status.how}): ${t.fix}`;
  if (feature === 'fentry') return `kernel refuses fentry/fexit programs: ${t.fix} (${status.how})`;
  const configOff = status.how.includes(`${t.config} is not set`) ? `${t.config} off` : status.how;
  return `kernel has no ${t.name} (${configOff}): ${t.fix}`;
}

async function checkOne(req: Requirement, features: () => Promise<FeatureReport>): Promise<string | null> {
  switch (req.kind) {
    case 'root':
      return isRoot() ? null : 'not root: run ebpfnet as root (sudo)';
    case 'binary': {
      if (await findBinary(req.name)) return null;
      return `binary ${req.name} missing: ${installHint(req.name, req.package)}`;
    }
    case 'kernel': {
      // The full detection loads test programs and runs bpftool (~0.5 s): skip it where a file answers.
      if (req.feature === 'btf' && existsSync(BTF_VMLINUX)) return null;
      if (req.feature === 'tracefs' && (await ensureTracefs()).path) return null;
      const report = await features();
      return featureReason(req.feature, report[req.feature]);
    }
    case 'tracepoint': {
      if (!parseTracepointName(req.name)) return `tracepoint ${req.name} is not of the form category:name`;
      if (await hasTracepoint(req.name)) return null;
      const report = await features();
      if (!report.tracefs.path) return `tracepoint ${req.name} cannot be checked: ${report.tracefs.how}`;
      return `tracepoint ${req.name} missing from ${report.tracefs.path}/events: this kernel does not have it`;
    }
    case 'path':
      return existsSync(req.path) ? null : `${req.path} missing: ${req.why}`;
  }
}

/**
 * Null when every requirement holds, else the reason for the first that does not (root is
 * checked first, since without it the others cannot be told). Kernel features are detected
 * once per process.
 */
export async function checkRequirements(reqs: Requirement[]): Promise<string | null> {
  const ordered = [...reqs.filter((r) => r.kind === 'root'), ...reqs.filter((r) => r.kind !== 'root')];
  const features = () => detectFeatures();
  for (const req of ordered) {
    const reason = await checkOne(req, features);
    if (reason) return reason;
  }
  return null;
}

/** Every unmet requirement with its reason (empty when all hold). */
export async function unmetRequirements(reqs: Requirement[]): Promise<Array<{ requirement: Requirement; reason: string }>> {
  const features = () => detectFeatures();
  const out: Array<{ requirement: Requirement; reason: string }> = [];
  for (const req of reqs) {
    const reason = await checkOne(req, features);
    if (reason) out.push({ requirement: req, reason });
  }
  return out;
}
