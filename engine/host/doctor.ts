// `ebpfnet doctor`: what this host can run, what is missing, and how to get it.
import { binaryVersion, findFirstBinary, installHint } from './binaries.js';
import { detectFeatures, type FeatureReport, type FeatureStatus } from './features.js';
import { hostFacts, type HostFacts } from './facts.js';
import { tracepointsIn } from './tracefs.js';
import { describeLast, loadSelftest } from './selftest-state.js';

export type CheckStatus = 'ok' | 'missing' | 'warn';

export interface DoctorCheck {
  id: string;
  label: string;
  status: CheckStatus;
  detail: string;
}

export interface DoctorReport {
  /** False only when something essential is missing: not root, or neither tracepoints nor BTF. */
  ok: boolean;
  checks: DoctorCheck[];
  features: FeatureReport;
  host: HostFacts;
}

/** The tracepoint families (tracefs event categories) the probes hook. */
export const PROBE_TRACEPOINT_FAMILIES = ['skb', 'net', 'napi', 'qdisc', 'irq', 'sched', 'tcp', 'kvm'] as const;

interface BinarySpec {
  id: string;
  /** Names tried in order (chromium ships as chromium or chromium-browser). */
  names: string[];
  purpose: string;
}

/** The host tools ebpfnet drives, with what each is for. */
export const DOCTOR_BINARIES: BinarySpec[] = [
  { id: 'bpftool', names: ['bpftool'], purpose: 'BTF dump (vmlinux.h), feature probes' },
  { id: 'bpftrace', names: ['bpftrace'], purpose: 'bpftrace-driver probes, fentry check' },
  { id: 'clang', names: ['clang'], purpose: "compiles the probes' *.bpf.c" },
  { id: 'tc', names: ['tc'], purpose: 'qdisc counters, lab faults' },
  { id: 'ip', names: ['ip'], purpose: 'interfaces, namespaces, counters' },
  { id: 'ethtool', names: ['ethtool'], purpose: 'NIC statistics' },
  { id: 'ovs-appctl', names: ['ovs-appctl'], purpose: 'OVS datapath flows and coverage' },
  { id: 'ovs-vsctl', names: ['ovs-vsctl'], purpose: 'OVS bridges and ports' },
  { id: 'virsh', names: ['virsh'], purpose: 'libvirt VM discovery' },
  { id: 'qemu-system-x86_64', names: ['qemu-system-x86_64'], purpose: 'lab VMs' },
  { id: 'chromium', names: ['chromium', 'chromium-browser'], purpose: 'PDF reports' },
  { id: 'pdftotext', names: ['pdftotext'], purpose: 'PDF report checks' },
];

function featureCheck(id: string, label: string, f: FeatureStatus): DoctorCheck {
  const status: CheckStatus = f.present === true ? 'ok' : f.present === false ? 'missing' : 'warn';
  return { id, label, status, detail: f.how };
}

async function binaryCheck(spec: BinarySpec): Promise<DoctorCheck> {
  const label = `${spec.names.join(' / ')} (${spec.purpose})`;
  const found = await findFirstBinary(spec.names);
  if (!found) {
    return { id: `binary:${spec.id}`, label, status: 'missing', detail: `not found: ${installHint(spec.names[0]!)}` };
  }
  const version = await binaryVersion(found.path);
  return {
    id: `binary:${spec.id}`,
    label,
    status: 'ok',
    detail: version ? `${found.path}: ${version}` : `${found.path} (version unknown)`,
  };
}

async function tracepointsCheck(features: FeatureReport): Promise<DoctorCheck> {
  const base = featureCheck('tracepoints', 'tracepoints', features.tracepoints);
  if (!features.tracefs.path) return base;
  const have = new Set(features.tracepoints.categories);
  const present = PROBE_TRACEPOINT_FAMILIES.filter((f) => have.has(f));
  const absent = PROBE_TRACEPOINT_FAMILIES.filter((f) => !have.has(f));
  const counts = await Promise.all(present.map(async (f) => `${f}(${(await tracepointsIn(f)).length})`));
  let detail = `${base.detail}; probe families present: ${counts.join(' ') || 'none'}`;
  if (absent.length > 0) detail += `; absent: ${absent.join(' ')}`;
  const status: CheckStatus = base.status === 'ok' && absent.length > 0 ? 'warn' : base.status;
  return { ...base, status, detail };
}

/** Runs every check: privileges, kernel features, tracepoint families and host tools. */
export async function runDoctor(): Promise<DoctorReport> {
  const [features, host] = await Promise.all([detectFeatures(), hostFacts()]);
  const checks: DoctorCheck[] = [];

  checks.push(
    host.root
      ? { id: 'root', label: 'running as root', status: 'ok', detail: 'uid 0' }
      : { id: 'root', label: 'running as root', status: 'missing', detail: `uid ${host.uid ?? '?'}: run ebpfnet as root (sudo)` },
  );
  checks.push({
    id: 'kernel',
    label: 'kernel',
    status: 'ok',
    detail: `${features.kernel} ${host.kernelVersion} (${host.arch}, ${host.os ?? 'unknown OS'})`,
  });
  checks.push({
    id: 'kernel-config',
    label: 'kernel config',
    status: features.config.available ? 'ok' : 'warn',
    detail: features.config.available ? `read from ${features.config.source}` : `${features.config.how} (features are detected without it)`,
  });
  checks.push(featureCheck('btf', 'kernel BTF (CO-RE)', features.btf));
  checks.push(featureCheck('tracefs', 'tracefs', features.tracefs));
  checks.push(await tracepointsCheck(features));
  checks.push(featureCheck('kprobes', 'kprobes / kretprobes', features.kprobes));
  checks.push(featureCheck('fentry', 'fentry / fexit', features.fentry));
  checks.push(featureCheck('uprobes', 'uprobes', features.uprobes));
  checks.push(featureCheck('ringbuf', 'BPF ring buffer', features.ringbuf));
  checks.push(...(await Promise.all(DOCTOR_BINARIES.map(binaryCheck))));
  checks.push({ id: 'selftest', label: 'last ebpfnet selftest', ...describeLast(await loadSelftest()) });

  const ok = host.root && (features.tracepoints.present === true || features.btf.present === true);
  return { ok, checks, features, host };
}

const COLOURS: Record<CheckStatus, string> = { ok: '\x1b[32m', missing: '\x1b[31m', warn: '\x1b[33m' };
const RESET = '\x1b[0m';

/**
 * The report as an aligned plain-text table (CHECK / STATUS / DETAIL) and a verdict line.
 * Colours only when asked, or by default when stdout is a TTY and NO_COLOR is unset.
 */
export function formatDoctorTable(report: DoctorReport, opts: { color?: boolean } = {}): string {
  const color = opts.color ?? (Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
  const rows = report.checks.map((c) => [c.id, c.status, c.detail] as const);
  const header = ['CHECK', 'STATUS', 'DETAIL'] as const;
  const w0 = Math.max(header[0].length, ...rows.map((r) => r[0].length));
  const w1 = Math.max(header[1].length, ...rows.map((r) => r[1].length));
  const lines = [`${header[0].padEnd(w0)}  ${header[1].padEnd(w1)}  ${header[2]}`];
  for (const [id, status, detail] of rows) {
    const padded = status.padEnd(w1);
    const shown = color ? `${COLOURS[status]}${status}${RESET}${padded.slice(status.length)}` : padded;
    lines.push(`${id.padEnd(w0)}  ${shown}  ${detail.replace(/\s*\n\s*/g, ' ')}`);
  }
  const essentials = report.checks.filter(
    (c) => (c.id === 'root' && c.status !== 'ok') || ((c.id === 'btf' || c.id === 'tracepoints') && c.status === 'missing'),
  );
  lines.push('');
  lines.push(
    report.ok
      ? 'ebpfnet can run here.'
      : `ebpfnet cannot run here: ${essentials.map((c) => `${c.id} ${c.status}`).join(', ') || 'essential checks failed'}.`,
  );
  return `${lines.join('\n')}\n`;
}
