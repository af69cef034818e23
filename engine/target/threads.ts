// The threads that move a VM's packets: its vCPUs (named by QEMU when
// `-name ...,debug-threads=on`, which libvirt always sets) and its vhost-net
// workers (`vhost-<qemu pid>`).
import { release as osRelease } from 'node:os';
import { isKernelThread, listPids, readComm, threadsOf } from './proc.js';
import type { VcpuThread, VhostThread } from './types.js';

const VCPU_NAME = /^CPU (\d+)\/(KVM|TCG|HVF|WHPX|NVMM)$/;

export async function vcpuThreads(pid: number): Promise<VcpuThread[]> {
  const out: VcpuThread[] = [];
  for (const t of await threadsOf(pid)) {
    const m = VCPU_NAME.exec(t.comm);
    if (m) out.push({ tid: t.tid, index: Number(m[1]), name: t.comm });
  }
  return out.sort((a, b) => a.index - b.index);
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
    // Since Linux 6.4 vhost workers are threads of QEMU itself: no kernel thread to find.
    if (!kernelRunsVhostAsKthreads()) return out;
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
 * vhost-net workers of QEMU process `pid`. The kernel names each `vhost-<tid>`
 * after the QEMU thread that set it up (usually the main one). Since Linux 6.4
 * they are threads of the QEMU process itself; older kernels run them as kernel
 * threads.
 */
export async function vhostThreads(pid: number, kernel: KernelThreadIndex): Promise<VhostThread[]> {
  const threads = await threadsOf(pid);
  const own = threads.filter((t) => /^vhost-\d+$/.test(t.comm)).map((t) => ({ tid: t.tid, name: t.comm, kernelThread: false }));
  const kthreads: VhostThread[] = [];
  for (const t of threads) {
    const name = `vhost-${t.tid}`;
    for (const tid of await kernel.named(name)) kthreads.push({ tid, name, kernelThread: true });
  }
  return [...own, ...kthreads].sort((a, b) => a.tid - b.tid);
}
