// What the running kernel itself reports, read here without the engine's detection, so a test
// about the host asserts that and holds on any kernel: this machine (no kprobes, fentry refused)
// and the kernel lab (both present).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { parseKernelConfig } from '../../engine/host/features.js';

const PMU_DIR = '/sys/bus/event_source/devices';

/** The kernel's build config, from the first place the kernel or its package keeps it (looked up here, parsed by the engine's unit-tested parser). */
function kernelConfig(): { source: string; text: string } | null {
  if (existsSync('/proc/config.gz')) return { source: '/proc/config.gz', text: gunzipSync(readFileSync('/proc/config.gz')).toString('utf8') };
  for (const source of [`/boot/config-${release()}`, `/lib/modules/${release()}/config`]) {
    if (existsSync(source)) return { source, text: readFileSync(source, 'utf8') };
  }
  return null;
}

/** Whether bpftrace attaches a program of this probe spec (it exits at once when it does). */
function bpftraceAttaches(spec: string): boolean {
  const r = spawnSync('bpftrace', ['-e', `${spec} { exit(); } interval:ms:100 { exit(); }`], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return r.status === 0;
}

/**
 * Whether BPF gets a kernel stack at a syscall tracepoint: bpftrace prints the kernel stack at
 * `sys_enter_getppid` of a Node that calls getppid. 6.18 gives one; 6.1 passes the tracepoint
 * the user's registers, so the kernel stack is empty there (kfree_skb's is not).
 */
function syscallTracepointKstack(): boolean {
  const script = 'tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { printf("KSTACK%sEND\\n", kstack); exit(); }';
  const r = spawnSync('bpftrace', ['-e', script, '-c', `${process.execPath} -e process.ppid`], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const stack = /KSTACK([\s\S]*?)END/.exec(r.stdout)?.[1];
  if (stack === undefined) throw new Error(`bpftrace printed no stack at sys_enter_getppid: ${r.stderr.trim()}`);
  return /\S/.test(stack);
}

const config = kernelConfig();
const options = parseKernelConfig(config?.text ?? '');
let kprobesAttach: boolean | undefined;
let fentryAttaches: boolean | undefined;
let syscallKstack: boolean | undefined;

export const RUNNING_KERNEL = {
  /** Where the config came from, null when the kernel keeps none. */
  configSource: config?.source ?? null,
  /** `y`, `m`, `n` (is not set) or undefined (not in the config, or no config). */
  config(option: string): string | undefined {
    return options.get(option);
  },
  /** The kprobe PMU (4.17+): the kernel registers it when it has kprobes. */
  kprobePmu: existsSync(`${PMU_DIR}/kprobe`),
  /** kprobe programs attach: bpftrace attaching a kprobe on vfs_read says so (run once, on first use). */
  get kprobesAttach(): boolean {
    kprobesAttach ??= bpftraceAttaches('kprobe:vfs_read');
    return kprobesAttach;
  },
  /** fentry programs attach: bpftrace attaching a kfunc probe on vfs_read says so (run once, on first use). */
  get fentryAttaches(): boolean {
    fentryAttaches ??= bpftraceAttaches('kfunc:vfs_read');
    return fentryAttaches;
  },
  /** BPF programs on a syscall tracepoint get a kernel stack (bpftrace's `kstack` there; run once, on first use). */
  get syscallTracepointKstack(): boolean {
    syscallKstack ??= syscallTracepointKstack();
    return syscallKstack;
  },
};
