// The threads that move a VM's packets: its vCPUs and its vhost-net workers.
//
// vCPU threads are identified, in this order, by libvirt's status file (it asks QEMU for
// them at start), by their names (`CPU n/KVM`, which QEMU gives only with -name
// ...,debug-threads=on), by QEMU's monitor (QMP query-cpus-fast on a socket the command
// line names) and, under KVM, by the guest time the kernel counts only for threads that ran
// guest code. vhost workers are named by the kernel (`vhost-<owner pid>`), whatever QEMU's
// debug-threads says.
import { release as osRelease } from 'node:os';
import { libvirtStatusVcpus } from './libvirt.js';
import { descriptorTargets, guestTime, isKernelThread, isThreadOf, kvmVcpuDescriptors, listPids, readComm, threadsOf } from './proc.js';
import { qemuQmpSockets } from './qemu-cmdline.js';
import { qmpVcpus } from './qmp.js';
import type { SourceAsked, VcpuSource, VcpuThread, VhostThread } from './types.js';

const VCPU_NAME = /^CPU (\d+)\/(KVM|TCG|HVF|WHPX|NVMM)$/;

/** How long QMP may take: a monitor busy with another client never answers (QEMU serves one at a time). */
export const QMP_TIMEOUT_MS = 400;

export async function vcpuThreads(pid: number): Promise<VcpuThread[]> {
  const out: VcpuThread[] = [];
  for (const t of await threadsOf(pid)) {
    const m = VCPU_NAME.exec(t.comm);
    if (m) out.push({ tid: t.tid, index: Number(m[1]), name: t.comm, source: 'name' });
  }
  return out.sort((a, b) => a.index - b.index);
}

export interface VcpuIdentification {
  threads: VcpuThread[];
  asked: SourceAsked[];
  /** Why no vCPU thread was found, when none was. */
  note: string | null;
}

/** Threads given by index and tid, kept when they are threads of `pid`, named as the kernel names them. */
async function knownThreads(pid: number, found: Array<{ index: number; tid: number }>, source: VcpuSource): Promise<VcpuThread[]> {
  const out: VcpuThread[] = [];
  for (const v of found) {
    if (!(await isThreadOf(pid, v.tid))) continue;
    out.push({ tid: v.tid, index: v.index, name: (await readComm(pid, v.tid)) ?? '', source });
  }
  return out;
}

/** KVM's last resort: threads that have run guest code (guest_time > 0), ranked by tid for an index. */
export async function vcpusByGuestTime(pid: number): Promise<{ threads: VcpuThread[]; kvmVcpus: number }> {
  const kvmVcpus = (await kvmVcpuDescriptors(pid)).length;
  if (kvmVcpus === 0) return { threads: [], kvmVcpus };
  const threads = await threadsOf(pid);
  const times = await Promise.all(threads.map((t) => guestTime(pid, t.tid)));
  const guests = threads.filter((_, i) => (times[i] ?? 0) > 0);
  return { threads: guests.map((t, index) => ({ tid: t.tid, index, name: t.comm, source: 'kvm' as const })), kvmVcpus };
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await run();
  return { value, ms: Math.round(performance.now() - start) };
}

/**
 * The vCPU threads of QEMU process `pid`, from the first way that finds any (see the top
 * of this file). `libvirtName`: the domain, for libvirt's status file; `argv`: QEMU's
 * command line, for its QMP sockets.
 */
export async function identifyVcpus(pid: number, opts: { libvirtName?: string | null; argv?: string[] | null; qmpTimeoutMs?: number } = {}): Promise<VcpuIdentification> {
  const asked: SourceAsked[] = [];
  const why: string[] = [];
  const done = (threads: VcpuThread[]) => ({ threads, asked, note: null });

  if (opts.libvirtName) {
    const { value, ms } = await timed(() => libvirtStatusVcpus(opts.libvirtName!, pid));
    const threads = 'vcpus' in value ? await knownThreads(pid, value.vcpus, 'libvirt') : [];
    const note = 'error' in value ? value.error : threads.length ? null : "libvirt's status file lists no vCPU thread of this process";
    asked.push({ source: 'vcpus:libvirt', found: threads.length, ms, note });
    if (threads.length) return done(threads);
    why.push(note!);
  }

  const named = await timed(() => vcpuThreads(pid));
  asked.push({ source: 'vcpus:name', found: named.value.length, ms: named.ms, note: named.value.length ? null : 'no thread is named CPU n/...' });
  if (named.value.length) return done(named.value);
  why.unshift(`the vCPU threads of pid ${pid} are not named (QEMU names them with -name ...,debug-threads=on)`);

  const sockets = qemuQmpSockets(opts.argv ?? []);
  const usable = sockets.filter((s) => s.server && s.path);
  if (usable.length === 0) {
    const note = sockets.length ? 'its QMP monitor is not a socket ebpfnet can open (a descriptor libvirt holds, or QEMU is the client)' : 'no QMP socket on its command line';
    asked.push({ source: 'vcpus:qmp', found: 0, ms: 0, note });
    why.push(note);
  }
  for (const socket of usable) {
    const timeoutMs = opts.qmpTimeoutMs ?? QMP_TIMEOUT_MS;
    const { value, ms } = await timed(() => qmpVcpus(socket.path!, timeoutMs).then((v) => ({ vcpus: v }), (err: Error) => ({ error: err.message })));
    const threads = 'vcpus' in value ? await knownThreads(pid, value.vcpus, 'qmp') : [];
    let note: string | null = null;
    if ('error' in value) {
      // No greeting in time, or (EAGAIN) a full backlog: QEMU is serving someone else, or
      // gets no CPU itself (the VM whose vCPUs starve is the one whose monitor is late).
      note = /within \d+ ms|EAGAIN/.test(value.error)
        ? `QMP ${value.error.replace(/^cannot connect to (\S+): EAGAIN$/, 'monitor $1 is busy')} (QEMU serves one monitor client at a time and another may hold it, or QEMU itself gets no CPU)`
        : `QMP: ${value.error}`;
    } else if (!threads.length) note = `QMP on ${socket.path} named no thread of this process`;
    asked.push({ source: 'vcpus:qmp', found: threads.length, ms, note });
    if (threads.length) return done(threads);
    why.push(note!);
  }

  const kvm = await timed(() => vcpusByGuestTime(pid));
  const { threads, kvmVcpus } = kvm.value;
  let kvmNote: string | null = null;
  if (kvmVcpus === 0) kvmNote = 'not a KVM guest (no kvm-vcpu descriptor), so guest time cannot tell';
  else if (threads.length === 0) kvmNote = `none of its threads has run guest code yet (${kvmVcpus} KVM vCPUs)`;
  else if (threads.length < kvmVcpus) kvmNote = `only ${threads.length} of ${kvmVcpus} KVM vCPUs have run guest code; the others are not found`;
  asked.push({ source: 'vcpus:kvm', found: threads.length, ms: kvm.ms, note: kvmNote });
  if (threads.length) return { threads, asked, note: kvmNote };
  why.push(kvmNote!);
  return { threads: [], asked, note: why.join('; ') };
}

/** Kernel threads by name, gathered once per discovery: scanning /proc is the costly part. */
export class KernelThreadIndex {
  private byName?: Promise<Map<string, number[]>>;

  named(name: string): Promise<number[]> {
    this.byName ??= this.scan();
    return this.byName.then((m) => m.get(name) ?? []);
  }

  private async scan(): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    const pids = await listPids();
    const comms = await Promise.all(pids.map((pid) => readComm(pid)));
    for (const [i, comm] of comms.entries()) {
      const pid = pids[i]!;
      // Only vhost workers are looked up here; skip reading stat for everything else.
      if (comm === null || !comm.startsWith('vhost-') || !(await isKernelThread(pid))) continue;
      out.set(comm, [...(out.get(comm) ?? []), pid]);
    }
    return out;
  }
}

/** Kernels before 6.4 run vhost-net workers as kernel threads (`release`: `uname -r`). */
export function kernelRunsVhostAsKthreads(release = osRelease()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return true; // unknown: look
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major < 6 || (major === 6 && minor < 4);
}

/**
 * vhost-net workers of QEMU process `pid`. The kernel names each `vhost-<tid>` after
 * the QEMU thread that set it up (usually the main one), in every version and whatever
 * QEMU's debug-threads says (drivers/vhost/vhost.c, vhost_worker_create). Since Linux 6.4
 * they are threads of the QEMU process itself; older kernels run them as kernel threads,
 * and so do newer ones whose owner asked for that (the VHOST_FORK_FROM_OWNER ioctl, 2025):
 * kernel threads are looked for before 6.4, or when the process holds /dev/vhost-net
 * but has no vhost thread of its own.
 */
export async function vhostThreads(pid: number, kernel: KernelThreadIndex): Promise<VhostThread[]> {
  const threads = await threadsOf(pid);
  const own = threads.filter((t) => /^vhost-\d+$/.test(t.comm)).map((t) => ({ tid: t.tid, name: t.comm, kernelThread: false }));
  const kthreads: VhostThread[] = [];
  const lookForKthreads = kernelRunsVhostAsKthreads() || (own.length === 0 && (await descriptorTargets(pid)).includes('/dev/vhost-net'));
  if (!lookForKthreads) return own;
  for (const t of threads) {
    const name = `vhost-${t.tid}`;
    for (const tid of await kernel.named(name)) kthreads.push({ tid, name, kernelThread: true });
  }
  return [...own, ...kthreads].sort((a, b) => a.tid - b.tid);
}
