// libvirt for tests on a host without an init system: starts virtlogd and libvirtd
// by hand when they are not running (idempotent: a running daemon is reused), and
// creates transient QEMU (TCG) domains that are destroyed after the test.
//
//   await ensureLibvirt();
//   const dom = await createDomain(t, { interfaces: [{ bridge: 'br0', mac: '52:54:00:..' }] });
//   // the lab guest with IPv6, noise and the guest agent's channel (virsh domifaddr --source agent):
//   await createDomain(t, { interfaces: [{ bridge, mac }], guest: { ip, ipv6, mac, noise: true }, guestAgent: true });
//
// Domain names carry the creating process's pid (`ebpfnet-t-<pid>-<n>`), so a later
// run destroys what a crashed run left behind without touching live runs' domains.
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { findBinary } from '../../engine/host/binaries.js';
import { packageRoot } from '../../engine/package-info.js';
import { guestKernelArgs, type GuestKernelOptions } from '../lab/vm.js';
import type { TeardownHost } from './netns.js';

const DAEMONS = [
  { name: 'virtlogd', pidFile: '/run/virtlogd.pid' },
  { name: 'libvirtd', pidFile: '/run/libvirtd.pid' },
];
const DOMAIN_RE = /^ebpfnet-t-(\d+)-\d+$/;

function alive(pidFile: string): boolean {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return pid > 0 && existsSync(`/proc/${pid}`);
  } catch {
    return false;
  }
}

async function virsh(args: string[], reject = true) {
  return execa('virsh', ['-c', 'qemu:///system', ...args], { reject, stdin: 'ignore', env: { LC_ALL: 'C' }, timeout: 60_000 });
}

/**
 * /dev/kvm as Debian's udev rule leaves it (group kvm, 0660), which this machine, booted with
 * no udev, does not do. With the device present but closed to libvirt-qemu (it runs QEMU as
 * that user), libvirt finds its cached QEMU capabilities (which list KVM) stale on every
 * lookup and probes QEMU again: 16 probes and 32 s for each `virsh define`. The domains stay
 * `type='qemu'` (TCG): nothing here uses KVM.
 */
function kvmDeviceAsUdevSetsIt(): void {
  const kvm = '/dev/kvm';
  if (!existsSync(kvm)) return;
  const group = /^kvm:[^:]*:(\d+):/m.exec(readFileSync('/etc/group', 'utf8'));
  if (!group) return;
  const st = statSync(kvm);
  if (st.gid === Number(group[1]) && (st.mode & 0o060) === 0o060) return;
  chownSync(kvm, st.uid, Number(group[1]));
  chmodSync(kvm, 0o660);
}

/** Starts virtlogd and libvirtd unless they run, and waits until virsh connects. Throws with what to install. */
export async function ensureLibvirt(): Promise<void> {
  if (process.geteuid?.() !== 0) throw new Error('libvirt tests need root');
  for (const bin of ['virsh', 'libvirtd', 'virtlogd', 'qemu-system-x86_64']) {
    if (!(await findBinary(bin))) {
      throw new Error(`${bin} is missing: apt-get install -y --no-install-recommends libvirt-daemon-system libvirt-clients qemu-system-x86`);
    }
  }
  kvmDeviceAsUdevSetsIt();
  for (const d of DAEMONS) {
    // -d daemonizes; setsid keeps the daemon out of the test's session and process group.
    if (!alive(d.pidFile)) await execa('setsid', [d.name, '-d'], { stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' });
  }
  const deadline = Date.now() + 20_000;
  let last = '';
  while (Date.now() < deadline) {
    const r = await virsh(['list', '--name'], false);
    if (r.exitCode === 0) {
      await destroyLeftovers();
      return;
    }
    last = String(r.stderr).trim();
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`libvirtd does not answer: ${last}`);
}

/** Destroys (and undefines) test domains whose creating process no longer runs. */
async function destroyLeftovers(): Promise<void> {
  const r = await virsh(['list', '--all', '--name'], false);
  for (const name of String(r.stdout).split('\n').map((l) => l.trim())) {
    const m = DOMAIN_RE.exec(name);
    if (!m || existsSync(`/proc/${m[1]}`)) continue;
    await virsh(['destroy', '--domain', name], false);
    await virsh(['undefine', '--domain', name], false);
  }
}

export interface DomainInterface {
  /** A Linux bridge or OVS bridge the test made. */
  bridge: string;
  mac: string;
  /** `openvswitch` for an OVS bridge. */
  virtualport?: 'openvswitch';
}

export interface TestDomain {
  name: string;
  /** libvirt's pid file's content: the QEMU process. */
  pid: number;
  /** The taps libvirt created, in interface order (its `<target dev>`). */
  taps: string[];
  destroy(): Promise<void>;
}

let created = 0;

const escapeXml = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The guest kernel the lab builds (scripts/build-guest.sh); without it a domain runs with no disk, enough for most facts. */
export function guestBoot(): { kernel: string; initrd: string } | null {
  const dir = join(packageRoot(), 'build', 'guest');
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initrd.img');
  return existsSync(kernel) && existsSync(initrd) ? { kernel, initrd } : null;
}

export interface DomainOptions {
  interfaces: DomainInterface[];
  /**
   * The lab guest's kernel command line (test/lab/vm.ts guestKernelArgs: address, gateway,
   * MAC, IPv6, noise); direct kernel boot only.
   */
  guest?: GuestKernelOptions;
  /** Words added to the guest kernel's command line (direct kernel boot only), e.g. `ebpfnet.ip=10.0.0.2/24`. */
  kernelArgs?: string[];
  /**
   * The QEMU guest agent's channel (a virtio-serial port named org.qemu.guest_agent.0 on a
   * unix socket libvirt places and connects to itself): `virsh domifaddr --source agent` then
   * asks the guest's qemu-ga.
   */
  guestAgent?: boolean;
}

export function domainXml(name: string, opts: DomainOptions): string {
  const boot = guestBoot();
  const cmdline = [opts.guest ? guestKernelArgs(opts.guest) : 'console=ttyS0', ...(opts.kernelArgs ?? [])].join(' ');
  const os = boot
    ? `<os><type arch='x86_64' machine='pc'>hvm</type><kernel>${escapeXml(boot.kernel)}</kernel><initrd>${escapeXml(boot.initrd)}</initrd><cmdline>${escapeXml(cmdline)}</cmdline></os>`
    : `<os><type arch='x86_64' machine='pc'>hvm</type></os>`;
  const nics = opts.interfaces.map(
    (i) => `    <interface type='bridge'>
      <source bridge='${escapeXml(i.bridge)}'/>
      <mac address='${escapeXml(i.mac)}'/>
      ${i.virtualport ? `<virtualport type='${i.virtualport}'/>` : ''}
      <model type='virtio'/>
    </interface>`,
  );
  return `<domain type='qemu'>
  <name>${escapeXml(name)}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  ${os}
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
${nics.join('\n')}
    <serial type='pty'><target port='0'/></serial>
    <serial type='pty'><target port='1'/></serial>
${opts.guestAgent ? "    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\n" : ''}  </devices>
</domain>
`;
}

/** Runs `virsh <verb> FILE` with the domain's XML in a file that lives only as long as the call. */
async function virshWithXml(verb: 'create' | 'define', name: string, opts: DomainOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-domain-'));
  try {
    const file = join(dir, `${name}.xml`);
    writeFileSync(file, domainXml(name, opts));
    await virsh([verb, file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `virsh create` of a transient domain; destroyed by t.after (registered before it is created). */
export async function createDomain(t: TeardownHost, opts: DomainOptions): Promise<TestDomain> {
  const name = `ebpfnet-t-${process.pid}-${created++}`;
  const destroy = async () => {
    await virsh(['destroy', '--domain', name], false);
  };
  t.after(destroy);
  await virshWithXml('create', name, opts);
  const pid = Number(readFileSync(`/run/libvirt/qemu/${name}.pid`, 'utf8').trim());
  const list = await virsh(['domiflist', '--domain', name]);
  // " Interface   Type     Source   Model    MAC" then a rule, then one row per interface.
  const taps = String(list.stdout)
    .split('\n')
    .slice(2)
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n): n is string => !!n);
  return { name, pid, taps, destroy };
}

/** `virsh define` of a persistent domain that is not started; undefined by t.after. */
export async function defineDomain(t: TeardownHost, opts: DomainOptions): Promise<string> {
  const name = `ebpfnet-t-${process.pid}-${created++}`;
  t.after(async () => {
    await virsh(['undefine', '--domain', name], false);
  });
  await virshWithXml('define', name, opts);
  return name;
}
