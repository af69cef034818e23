// Running QEMU processes, found by their command lines in /proc: the VMs of hosts
// without libvirt, and the processes behind libvirt's domains.
import { listPids, readCmdline, tunDescriptors } from './proc.js';
import { isQemuBinary, qemuNics, qemuVmName, type QemuNic } from './qemu-cmdline.js';

export interface QemuProcess {
  pid: number;
  /** The `-name` of the VM; null when QEMU was started without one. */
  name: string | null;
  argv: string[];
}

export async function scanQemuProcesses(): Promise<QemuProcess[]> {
  const pids = await listPids();
  const argvs = await Promise.all(pids.map((pid) => readCmdline(pid)));
  return pids.flatMap((pid, i) => {
    const argv = argvs[i];
    return argv && isQemuBinary(argv[0]!) ? [{ pid, name: qemuVmName(argv), argv }] : [];
  });
}

export interface QemuTap {
  /** The tap device. */
  name: string;
  nic: QemuNic | null;
}

/**
 * The taps a QEMU process holds, each with the command-line NIC using it. A tap
 * given by name is matched by `ifname=`, one handed over as a descriptor by the
 * kernel's fdinfo for it; a tap the process holds that no option names (hot
 * plugged through the monitor) is listed without a NIC.
 */
export async function qemuTaps(proc: QemuProcess): Promise<QemuTap[]> {
  const descriptors = await tunDescriptors(proc.pid);
  const out: QemuTap[] = [];
  const seen = new Set<string>();
  for (const nic of qemuNics(proc.argv)) {
    const name = nic.ifname ?? nic.fds.map((fd) => descriptors.get(fd)).find((n) => n !== undefined);
    if (!name || seen.has(name)) continue;
    seen.add(name);
    out.push({ name, nic });
  }
  for (const name of descriptors.values()) {
    if (seen.has(name)) continue;
    seen.add(name);
    out.push({ name, nic: null });
  }
  return out;
}
