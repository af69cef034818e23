// Names of everything the lab creates, and the sweep that removes what a crashed run left.
// Each name carries the creating process's pid, so a later run removes what dead
// processes left behind without touching the lab of a process still running:
//   VMs (QEMU -name) and netns   ebpfnet-lab-<pid>-<n>
//   devices                      ebl<pid base 36>x<n base 36><kind>   (<= 15 chars, IFNAMSIZ)
//   run directories              /run/ebpfnet-lab/ebpfnet-lab-<pid>-<n>/
// kinds: t = a VM's tap, b = bridge (Linux or OVS), v = veth end on the bridge, p = veth end
// in the peer namespace.
import { readFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { isAlive } from '../../engine/host/process.js';
export { isAlive };

export const LAB_RUN_DIR = '/run/ebpfnet-lab';
const LAB_NAME_RE = /^ebpfnet-lab-(\d+)-\d+$/;
const LAB_DEV_RE = /^ebl([0-9a-z]+)x[0-9a-z]+[tbvp]$/;

export type DeviceKind = 't' | 'b' | 'v' | 'p';

export interface LabName {
  /** ebpfnet-lab-<pid>-<n>: the VM name, the netns, the run directory. */
  readonly name: string;
  /** A device name of this family. */
  dev(kind: DeviceKind): string;
}

let issued = 0;

/** A fresh name family, unique within this process and among live processes. */
export function newLabName(): LabName {
  const n = issued++;
  const tag = `ebl${process.pid.toString(36)}x${n.toString(36)}`;
  return { name: `ebpfnet-lab-${process.pid}-${n}`, dev: (kind) => `${tag}${kind}` };
}

/** Whether a lab name or device was made by a process that no longer runs. */
export function isLeftover(nameOrDev: string): boolean {
  const byName = LAB_NAME_RE.exec(nameOrDev);
  if (byName) return !isAlive(Number(byName[1]));
  const byDev = LAB_DEV_RE.exec(nameOrDev);
  if (byDev) return !isAlive(parseInt(byDev[1]!, 36));
  return false;
}

/**
 * Removes what lab runs of dead processes left: QEMU processes, OVS bridges (when an
 * ovsdb-server answers), devices, namespaces and run directories. Returns what it removed.
 */
export async function sweepLabLeftovers(): Promise<string[]> {
  const removed: string[] = [];
  for (const { pid, name } of await labQemuProcesses()) {
    if (!isLeftover(name)) continue;
    await killAndWait(pid);
    removed.push(`qemu ${name} (pid ${pid})`);
  }
  // OVS first: its netdev bridges own tap devices named like ours.
  const bridges = await execa('ovs-vsctl', ['--timeout=2', 'list-br'], { reject: false, stdin: 'ignore' });
  if (bridges.exitCode === 0) {
    for (const br of String(bridges.stdout).split('\n').filter(isLeftover)) {
      await execa('ovs-vsctl', ['--timeout=5', '--if-exists', 'del-br', br], { reject: false, stdin: 'ignore' });
      removed.push(`ovs bridge ${br}`);
    }
  }
  // Devices, then namespaces: what `ip -j <object> <list>` names in `key`, deleted one by one.
  for (const [object, list, key] of [
    ['link', 'show', 'ifname'],
    ['netns', 'list', 'name'],
  ] as const) {
    const listed = await execa('ip', ['-j', object, list], { reject: false, stdin: 'ignore' });
    for (const entry of parseJsonList(String(listed.stdout))) {
      const name = typeof entry[key] === 'string' ? entry[key] : '';
      if (!isLeftover(name)) continue;
      await execa('ip', [object, 'del', name], { reject: false, stdin: 'ignore' });
      removed.push(`${object} ${name}`);
    }
  }
  for (const dir of await readdir(LAB_RUN_DIR).catch(() => [] as string[])) {
    if (!isLeftover(dir)) continue;
    await rm(join(LAB_RUN_DIR, dir), { recursive: true, force: true });
    removed.push(`dir ${join(LAB_RUN_DIR, dir)}`);
  }
  return removed;
}

/** QEMU processes started by the lab: their `-name ebpfnet-lab-…` tells them apart. */
export async function labQemuProcesses(): Promise<Array<{ pid: number; name: string }>> {
  const found: Array<{ pid: number; name: string }> = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (!argv[0]?.includes('qemu-system')) continue;
    const i = argv.indexOf('-name');
    const name = i >= 0 ? (argv[i + 1] ?? '').split(',')[0]! : '';
    if (LAB_NAME_RE.test(name)) found.push({ pid: Number(entry), name });
  }
  return found;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function killAndWait(pid: number, graceMs = 3000): Promise<void> {
  const gone = () => !isAlive(pid) || isZombie(pid);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let waited = 0; !gone(); waited += 20) {
    if (waited === graceMs) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}


function isZombie(pid: number): boolean {
  try {
    // The state follows the parenthesised command name in /proc/<pid>/stat.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return / Z /.test(stat.slice(stat.lastIndexOf(')')));
  } catch {
    return true;
  }
}

export function parseJsonList(text: string): Array<Record<string, unknown>> {
  try {
    const v: unknown = JSON.parse(text || '[]');
    return Array.isArray(v) ? (v as Array<Record<string, unknown>>) : [];
  } catch {
    return [];
  }
}
