// The kernel lab: one command run under another kernel — a Debian release's stock kernel under
// QEMU (TCG, `-cpu max`: SVM and NPT, so KVM loads there), with this machine's root read-only
// over virtio-9p under a tmpfs overlay (scripts/build-kernel-lab.sh builds the kernel and its
// initramfs, scripts/kernel-lab-stage2.sh runs the command). The command sees this machine's
// Node, bpftrace, OVS, QEMU and the checkout; what it writes lives in the lab's memory only.
//   const r = await runInKernelLab('node dist/engine/cli/main.js doctor', { suite: 'bookworm' });
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../engine/package-info.js';

/** Debian releases whose stock kernel the lab boots: 6.1 (the default), 5.10, 6.12. */
export type LabSuite = 'bookworm' | 'bullseye' | 'trixie';

export interface LabRun {
  /** The command's exit code; null when it never reported one (the lab did not boot, or timed out). */
  code: number | null;
  /** What the command wrote (stdout and stderr, interleaved). */
  output: string;
  /** The lab kernel's release (`uname -r` there). */
  release: string;
  /** The lab's kernel console, for when it did not boot. */
  console: string;
  ms: number;
}

export interface LabOptions {
  suite?: LabSuite;
  /** Working directory inside the lab (default: the checkout). */
  cwd?: string;
  /** The whole run, boot included (default 10 min: Node runs several times slower under TCG). */
  timeoutMs?: number;
  memoryMb?: number;
  /** The lab's CPUs (default 2; nested KVM wants 1: see NESTED_KVM_FILES in kernel-lab.test.ts). */
  cpus?: number;
  /** QEMU's accelerator option (default `tcg`: multi-threaded TCG, one host thread per CPU). */
  accel?: string;
  /** Each line of the command's output as it comes (long test runs). */
  onLine?: (line: string) => void;
}

const built = new Map<LabSuite, Promise<string>>();

/** Builds (once per process, cached on disk) the lab of `suite`; its build directory. */
export function kernelLabImage(suite: LabSuite = 'bookworm'): Promise<string> {
  let p = built.get(suite);
  if (!p) {
    const root = packageRoot();
    p = execa('bash', [join(root, 'scripts', 'build-kernel-lab.sh'), suite], { stdin: 'ignore', all: true, reject: false }).then((r) => {
      const dir = join(root, 'build', 'kernel-lab', suite);
      if (r.exitCode !== 0 || !existsSync(join(dir, 'vmlinuz'))) throw new Error(`kernel lab ${suite} not built: ${String(r.all).trim().split('\n').pop()}`);
      return dir;
    });
    built.set(suite, p);
  }
  return p;
}

/** Runs `command` (bash) in the kernel lab and resolves when the lab has powered off. */
export async function runInKernelLab(command: string, opts: LabOptions = {}): Promise<LabRun> {
  const dir = await kernelLabImage(opts.suite ?? 'bookworm');
  const scratch = mkdtempSync(join(tmpdir(), 'ebpfnet-kernel-lab-'));
  const consolePath = join(scratch, 'console.log');
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const append = [
    'console=ttyS0',
    'panic=-1',
    'loglevel=4',
    `ebpfnet.cmd=${b64(command)}`,
    `ebpfnet.cwd=${b64(opts.cwd ?? packageRoot())}`,
  ].join(' ');
  const args = [
    '-machine', 'pc', '-accel', opts.accel ?? 'tcg', '-cpu', 'max', '-smp', String(opts.cpus ?? 2), '-m', String(opts.memoryMb ?? 3072),
    '-kernel', join(dir, 'vmlinuz'), '-initrd', join(dir, 'initrd.img'), '-append', append,
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-nic', 'none', '-display', 'none', '-monitor', 'none', '-no-reboot',
    '-serial', `file:${consolePath}`, '-serial', 'stdio',
  ];
  const started = performance.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let partial = '';
  let stderr = '';
  qemu.stdout.setEncoding('utf8');
  qemu.stdout.on('data', (text: string) => {
    out += text;
    if (!opts.onLine) return;
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const l of lines) opts.onLine(l);
  });
  qemu.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timeout = setTimeout(() => qemu.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
  try {
    const exit = await new Promise<number | null>((resolve, reject) => {
      qemu.once('error', reject);
      qemu.once('close', resolve);
    });
    const console = existsSync(consolePath) ? readFileSync(consolePath, 'utf8') : '';
    const start = /EBPFNET-LAB-START (\S+)\n/.exec(out);
    const end = /EBPFNET-LAB-EXIT (\d+)/.exec(out);
    const body = out.slice(start ? start.index + start[0].length : 0, end ? end.index : undefined);
    if (!start) {
      const why = stderr.trim().split('\n').pop() ?? '';
      const tail = console.trim().split('\n').slice(-5).join(' | ');
      throw new Error(`the kernel lab did not start its command (qemu exit ${exit}${why ? `: ${why}` : ''}); console: ${tail}`);
    }
    return { code: end ? Number(end[1]) : null, output: body, release: start[1]!, console, ms: performance.now() - started };
  } finally {
    clearTimeout(timeout);
    qemu.kill('SIGKILL');
    rmSync(scratch, { recursive: true, force: true });
  }
}
