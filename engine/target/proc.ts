// Small readers over /proc: processes, their threads and the taps their file
// descriptors hold. Every reader tolerates a process vanishing under it.
import { readdir, readFile, readlink } from 'node:fs/promises';

const PROC = '/proc';

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/** Every numeric entry of /proc (processes, not threads). */
export async function listPids(): Promise<number[]> {
  const names = await readdir(PROC).catch(() => [] as string[]);
  return names.filter((n) => /^\d+$/.test(n)).map(Number);
}

/** A process's argv, or null when it is gone or a kernel thread (whose cmdline is empty). */
export async function readCmdline(pid: number): Promise<string[] | null> {
  const raw = await readText(`${PROC}/${pid}/cmdline`);
  if (!raw) return null;
  const argv = raw.split('\0');
  if (argv.at(-1) === '') argv.pop();
  return argv.length ? argv : null;
}

export async function readComm(pid: number, tid = pid): Promise<string | null> {
  const comm = await readText(`${PROC}/${pid}/task/${tid}/comm`);
  return comm === null ? null : comm.replace(/\n$/, '');
}

export async function isAlive(pid: number): Promise<boolean> {
  return (await readText(`${PROC}/${pid}/stat`)) !== null;
}

export interface ThreadInfo {
  tid: number;
  comm: string;
}

/** The threads of a process with their names (comm). */
export async function threadsOf(pid: number): Promise<ThreadInfo[]> {
  const tids = (await readdir(`${PROC}/${pid}/task`).catch(() => [] as string[])).map(Number);
  // Read side by side: on a busy host each read waits its turn in libuv's pool.
  const comms = await Promise.all(tids.map((tid) => readComm(pid, tid)));
  return tids.flatMap((tid, i) => (comms[i] === null ? [] : [{ tid, comm: comms[i]! }])).sort((a, b) => a.tid - b.tid);
}

/** Kernel threads have no mm: their /proc/<pid>/stat flags carry PF_KTHREAD. */
const PF_KTHREAD = 0x00200000;

/**
 * Field `n` (numbered from 1 as proc(5) does: 1 pid, 2 comm, 3 state, ...) of a stat line.
 * The comm field may hold spaces and parentheses: the fields after it start after the last ")".
 */
export function statField(stat: string, n: number): number | null {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const v = Number(fields[n - 3]);
  return Number.isFinite(v) ? v : null;
}

/** The state letter (field 3: R, S, D...) and the name (field 2) of a stat line. */
export function statStateAndName(stat: string): { state: string; comm: string } {
  const close = stat.lastIndexOf(')');
  return { state: stat.charAt(close + 2), comm: stat.slice(stat.indexOf('(') + 1, close) };
}

export async function isKernelThread(pid: number): Promise<boolean> {
  const stat = await readText(`${PROC}/${pid}/stat`);
  const flags = stat ? statField(stat, 9) : null;
  return flags !== null && (flags & PF_KTHREAD) !== 0;
}

/** Clock ticks thread `tid` of `pid` has spent running a guest (stat field 43, guest_time): only KVM vCPU threads do. */
export async function guestTime(pid: number, tid: number): Promise<number | null> {
  const stat = await readText(`${PROC}/${pid}/task/${tid}/stat`);
  return stat ? statField(stat, 43) : null;
}

/** What each of a process's descriptors refers to (`/dev/vhost-net`, `anon_inode:kvm-vcpu:0`, `socket:[123]`). */
export async function descriptorTargets(pid: number): Promise<string[]> {
  const fds = await readdir(`${PROC}/${pid}/fd`).catch(() => [] as string[]);
  return Promise.all(fds.map((fd) => readlink(`${PROC}/${pid}/fd/${fd}`).catch(() => '')));
}

/** The KVM vCPU descriptors a process holds (`anon_inode:kvm-vcpu:N`), as their vCPU numbers. */
export async function kvmVcpuDescriptors(pid: number): Promise<number[]> {
  return (await descriptorTargets(pid)).flatMap((l) => {
    const m = /^anon_inode:kvm-vcpu:(\d+)$/.exec(l);
    return m ? [Number(m[1])] : [];
  });
}

/** Whether `tid` is a thread of `pid` now. */
export async function isThreadOf(pid: number, tid: number): Promise<boolean> {
  return (await readText(`${PROC}/${pid}/task/${tid}/stat`)) !== null;
}

/**
 * The tap (or tun) device behind each of a process's /dev/net/tun descriptors:
 * the kernel names it on the `iff:` line of /proc/<pid>/fdinfo/<fd>. This is how
 * a tap handed over as a descriptor (libvirt's `-netdev tap,fd=N`) is found.
 */
export async function tunDescriptors(pid: number): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const fds = await readdir(`${PROC}/${pid}/fdinfo`).catch(() => [] as string[]);
  const infos = await Promise.all(fds.map((fd) => readText(`${PROC}/${pid}/fdinfo/${fd}`)));
  fds.forEach((fd, i) => {
    const m = infos[i] && /^iff:\s*(\S+)$/m.exec(infos[i]!);
    if (m) out.set(Number(fd), m[1]!);
  });
  return out;
}

/** The first line of a pid file as a pid, or null. */
export async function readPidFile(path: string): Promise<number | null> {
  const text = await readText(path);
  const m = text && /^\s*(\d+)\s*$/m.exec(text);
  return m ? Number(m[1]) : null;
}
