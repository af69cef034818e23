// Real VMs for the lab: QEMU under TCG (this machine has no KVM) booting the guest that
// scripts/build-guest.sh builds (Debian cloud kernel + busybox initramfs, build/guest/), with
// one virtio-net NIC on a host tap, the way libvirt and OpenStack plug VMs in.
//
//   const vm = await bootVm(t, { ip: '10.250.3.2/24', bridge });   // ready in ~4-6 s
//   vm.pid, vm.tap, vm.mac, vm.ip                  // facts, as discovery would find them
//   bootVm(t, { ip, ipv6: 'fd00:250:3::2/64', guestAgent: true, noise: true })
//   await guestAgentCommand(vm.agentSocket!, 'guest-network-get-interfaces')   // QGA
//   await vm.exec('cat /proc/net/snmp')            // a shell command in the guest (ttyS1)
//   await vm.netStats()                            // the guest's NIC and SNMP counters
//   await vm.pause(); await vm.resume();           // stop/continue the vCPUs (QMP)
//   await vm.stop();                               // also registered with t.after
//
// API:
//   bootVm(t, VmOptions) -> Vm         boots and waits for the guest's ready line; on any
//                                      failure removes everything it made and throws with the
//                                      console and QEMU output
//   canBootVms() -> string | null      null when this host can boot lab VMs, else why not
//   guestImage() -> { kernel, initrd } the built image (throws saying how to build it)
//   guestKernelArgs({ ip, gateway, mac, ipv6, noise }) -> string   the kernel command line
//                                      the guest's /init reads (for libvirt's <cmdline> too)
//   guestAgentCommand(socket, command, args?) -> the QGA command's `return` (guest-sync-delimited
//                                      first); for Vm.agentSocket or libvirt's channel socket
//   NOISE                              what a noise guest sends, and how often
//   waitForReady(consoleLog, opts)     waits for the guest's ready line in a console log
//                                      (for VMs started some other way, e.g. by libvirt)
//   READY_MARKER, FAILED_MARKER        what the guest prints on ttyS0
// QEMU's command line: -name <name>,debug-threads=on (vCPU threads are named "CPU 0/TCG", or
// "CPU 0/KVM"), -accel tcg (kvm where the host has it), -netdev tap,ifname=<tap>,script=no,
// downscript=no,vhost=off (on where the host has vhost-net),
// -device virtio-net-pci,mac=<mac>; ttyS0 is written to <runDir>/console.log, ttyS1 is the
// control channel (<runDir>/control.sock), QMP listens on <runDir>/qmp.sock. With guestAgent:
// -device virtio-serial-pci, -chardev socket,path=<runDir>/agent.sock, -device
// virtserialport,name=org.qemu.guest_agent.0 (as libvirt's guest agent channel).
// The guest answers ping (and ping6 with IPv6), echoes UDP and TCP on port 7 and discards UDP
// on port 9.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { packageRoot } from '../../engine/package-info.js';
import type { TeardownHost } from '../helpers/netns.js';
import { run } from '../helpers/netns.js';
import { disableIpv6, type Bridge } from './bridge.js';
import { LAB_RUN_DIR, newLabName, sweepLabLeftovers } from './names.js';

/**
 * What this host gives VMs, as a hypervisor would: KVM where the CPU has hardware virtualization
 * (svm or vmx: the kernel lab's emulated SVM) and /dev/kvm opens, else TCG; vhost-net where
 * /dev/vhost-net exists. The modules are loaded first where the kernel has them. (A /dev/kvm
 * without svm/vmx, such as a PVM host's, boots no ordinary guest.)
 */
export const HOST_VIRT: { accel: 'kvm' | 'tcg'; vhost: boolean } = (() => {
  if (!existsSync('/dev/kvm') || !existsSync('/dev/vhost-net')) {
    for (const mod of ['kvm_amd', 'kvm_intel', 'vhost_net']) spawnSync('modprobe', ['-q', mod], { stdio: 'ignore' });
  }
  const hardware = /^flags\s*:.*\b(svm|vmx)\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
  let kvm = false;
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
    kvm = hardware;
  } catch {
    // no KVM here: TCG
  }
  return { accel: kvm ? 'kvm' : 'tcg', vhost: existsSync('/dev/vhost-net') };
})();

export const READY_MARKER = 'EBPFNET-READY';
export const FAILED_MARKER = 'EBPFNET-FAILED';
const DONE_RE = /\n@@EBPFNET-DONE (\d+)@@\n/;
const QEMU = 'qemu-system-x86_64';

export interface VmOptions {
  /** The guest's address with prefix length, e.g. 10.250.3.2/24. */
  ip: string;
  /** Default route of the guest (optional). */
  gateway?: string;
  /** The NIC's MAC; default 52:54:00:… derived from the name. */
  mac?: string;
  /**
   * QEMU -name and run directory; default a fresh lab name (ebpfnet-lab-<pid>-<n>). Keep the
   * default unless the name matters: sweepLabLeftovers finds crashed VMs by that pattern.
   */
  name?: string;
  /** Host tap device; default the lab name's `t` device. Created here, removed by stop(). */
  tap?: string;
  /** Plug the tap into this bridge before the guest boots (and unplug it on stop). */
  bridge?: Bridge;
  /** Guest memory in MiB (default 256). */
  memoryMb?: number;
  /** How long to wait for the ready line (default 60 s: TCG on a busy 2-core host is slow). */
  readyTimeoutMs?: number;
  /** vhost-net for the tap (default HOST_VIRT.vhost: on where /dev/vhost-net exists, as in production). */
  vhost?: boolean;
  /** The accelerator (default HOST_VIRT.accel: kvm where /dev/kvm opens, else tcg). */
  accel?: 'kvm' | 'tcg';
  /**
   * Let the guest leave TX checksums to the host (virtio-net csum feature; default true, as
   * QEMU does). Off for OVS netdev bridges: the userspace datapath reads the tap with
   * AF_PACKET and would forward the unfinished checksum, which the receiver then drops.
   */
  checksumOffload?: boolean;
  /**
   * The guest's IPv6 address with prefix length, e.g. fd00:250:3::2/64: the guest boots with
   * IPv6 (link-local address, duplicate address detection, router solicitations) and is ready
   * once its addresses passed DAD. Default: no IPv6 at all (ipv6.disable=1).
   */
  ipv6?: string;
  /**
   * The QEMU guest agent: a virtio-serial port named org.qemu.guest_agent.0 on a unix socket
   * (Vm.agentSocket), which the guest's qemu-ga serves.
   */
  guestAgent?: boolean;
  /**
   * The guest keeps sending what idle real guests send (NOISE: ARP, mDNS over IPv4 and IPv6, ND,
   * MLD), from the ready line on. Boots with IPv6 (link-local only unless `ipv6` is given).
   */
  noise?: boolean;
  /**
   * Name the threads (`-name NAME,debug-threads=on`: vCPU threads are "CPU 0/TCG"); default
   * true. False boots `-name NAME`, as a QEMU started by hand often is: its vCPU threads are
   * then found through QMP (the VM's QMP socket is `qmpSocket`).
   */
  debugThreads?: boolean;
  /** Extra words for the kernel command line. */
  kernelArgs?: string[];
  /** Extra QEMU arguments. */
  qemuArgs?: string[];
}

export interface GuestNetStats {
  /** /sys/class/net/<dev>/statistics/* of the guest's NIC. */
  iface: Record<string, number>;
  /** /proc/net/snmp of the guest: { Ip: {...}, Icmp: {...}, Udp: { InDatagrams, ... }, ... }. */
  snmp: Record<string, Record<string, number>>;
}

export interface Vm {
  readonly name: string;
  /** The QEMU process. */
  readonly pid: number;
  readonly tap: string;
  readonly mac: string;
  /** The guest's address without prefix length. */
  readonly ip: string;
  /** The guest's address with prefix length, as given. */
  readonly cidr: string;
  /** The guest's IPv6 address without prefix length (VmOptions.ipv6), if any. */
  readonly ipv6: string | undefined;
  /** VmOptions.ipv6 as given. */
  readonly cidr6: string | undefined;
  /** The unix socket of the guest agent's port (VmOptions.guestAgent), if any. */
  readonly agentSocket: string | undefined;
  /** The address the noise guest sends ARP requests for (nobody has it), if noise is on. */
  readonly noiseArpTarget: string | undefined;
  /** The guest's NIC name (eth0). */
  readonly guestDev: string;
  readonly runDir: string;
  readonly consoleLog: string;
  /** From spawning QEMU to the guest's ready line. */
  readonly bootMs: number;
  /** The QMP socket QEMU serves (one client at a time). */
  readonly qmpSocket: string;
  readonly qemuArgv: readonly string[];
  /** Threads of the QEMU process by name ("CPU 0/TCG", "worker", ...). */
  threads(): Promise<Array<{ tid: number; name: string }>>;
  /** Runs one line of shell in the guest over its control serial port. */
  exec(command: string, opts?: { timeoutMs?: number }): Promise<{ stdout: string; code: number }>;
  /** Like exec, but rejects when the command fails. */
  sh(command: string): Promise<string>;
  netStats(): Promise<GuestNetStats>;
  /** Sends a QMP command, returns its `return` value. */
  qmp(command: string, args?: Record<string, unknown>): Promise<unknown>;
  /** Stops the vCPUs (QMP stop): the guest no longer drains its rings. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Whether QEMU still runs. */
  running(): boolean;
  /** Kills QEMU, waits for it, unplugs and removes the tap and the run directory; safe twice. */
  stop(): Promise<void>;
}

/** The guest image that scripts/build-guest.sh builds. */
export function guestImage(): { kernel: string; initrd: string } {
  const dir = join(packageRoot(), 'build', 'guest');
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initrd.img');
  if (!existsSync(kernel) || !existsSync(initrd)) {
    throw new Error(`no lab guest image in ${dir}: run \`bash scripts/build-guest.sh\` (scripts/setup.sh does)`);
  }
  return { kernel, initrd };
}

/** Null when this host can boot lab VMs, else the reason (with what to install). */
export async function canBootVms(): Promise<string | null> {
  if (process.geteuid?.() !== 0) return 'needs root (taps, bridges)';
  const qemu = await execa(QEMU, ['--version'], { reject: false, stdin: 'ignore' });
  if (qemu.exitCode !== 0) return `needs ${QEMU} (apt-get install qemu-system-x86)`;
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun (CONFIG_TUN)';
  try {
    guestImage();
  } catch (err) {
    return (err as Error).message;
  }
  return null;
}

export interface GuestKernelOptions {
  ip: string;
  gateway?: string;
  mac?: string;
  /** IPv6 address with prefix length (ebpfnet.ip6=). */
  ipv6?: string;
  /** ebpfnet.noise=1 (see NOISE). */
  noise?: boolean;
}

/**
 * What a guest booted with noise sends (test/lab/guest/noise.c, test/lab/README.md): every
 * `periodMs`, one frame of each kind, from the ready line on.
 */
export const NOISE = {
  periodMs: 500,
  /** ARP who-has, broadcast, for two below the subnet's broadcast address (Vm.noiseArpTarget). */
  arp: { to: 'ff:ff:ff:ff:ff:ff' },
  /** mDNS query (PTR _ebpfnet-noise._udp.local), IPv4 and IPv6; nobody joined the groups. */
  mdns4: { group: '224.0.0.251', port: 5353 },
  mdns6: { group: 'ff02::fb', port: 5353 },
  /** Neighbour solicitation for an address no node has, to its solicited-node group. */
  ns: { target: 'fe80::ebbf:dead', group: 'ff02::1:ffbf:dead' },
  /** MLDv2 report to ff02::16 saying the guest listens to ff02::1:3. */
  mld: { to: 'ff02::16', group: 'ff02::1:3' },
} as const;

/** The kernel command line the guest's /init understands. */
export function guestKernelArgs(o: GuestKernelOptions): string {
  // quiet: the serial console is slow under TCG. ipv6.disable (unless IPv6 or noise is asked
  // for): no RS/MLD/DAD traffic, so tests count packets exactly. panic=-1 with QEMU's
  // -no-reboot: a panic ends QEMU. no_timer_check: on a busy host the vCPU thread can miss
  // the early IO-APIC timer check, and the kernel panics ("IO-APIC + timer doesn't work!").
  const words = ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', `ebpfnet.ip=${o.ip}`];
  if (!o.ipv6 && !o.noise) words.splice(2, 0, 'ipv6.disable=1');
  if (o.gateway) words.push(`ebpfnet.gw=${o.gateway}`);
  if (o.mac) words.push(`ebpfnet.mac=${o.mac}`);
  if (o.ipv6) words.push(`ebpfnet.ip6=${o.ipv6}`);
  if (o.noise) words.push('ebpfnet.noise=1');
  return words.join(' ');
}

/** A locally administered MAC in QEMU's 52:54:00 range, stable for a name. */
export function macFor(name: string): string {
  const h = createHash('sha256').update(name).digest();
  return ['52', '54', '00', ...[0, 1, 2].map((i) => h[i]!.toString(16).padStart(2, '0'))].join(':');
}

/**
 * Waits until the console log shows the ready line; rejects on the failure line, when
 * `alive()` turns false, or after `timeoutMs`. Returns the ready line.
 */
export async function waitForReady(consoleLog: string, opts: { timeoutMs: number; alive?: () => boolean }): Promise<string> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const text = await readFile(consoleLog, 'utf8').catch(() => '');
    // Whole lines only: the guest may be halfway through writing the one we look for.
    const lines = text.split('\n').slice(0, -1);
    const ready = lines.find((l) => l.includes(READY_MARKER));
    if (ready) return ready.slice(ready.indexOf(READY_MARKER)).trim();
    const failed = lines.find((l) => l.includes(FAILED_MARKER));
    if (failed) throw new Error(`guest failed: ${failed.slice(failed.indexOf(FAILED_MARKER)).trim()}`);
    if (opts.alive && !opts.alive()) throw new Error('QEMU exited before the guest was ready');
    if (Date.now() > deadline) throw new Error(`guest not ready after ${opts.timeoutMs} ms`);
    await sleep(50);
  }
}

// VMs of this process still running: killed when the process exits, whatever the tests did.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function bootVm(t: TeardownHost | undefined, opts: VmOptions): Promise<Vm> {
  const cannot = await canBootVms();
  if (cannot) throw new Error(`cannot boot a lab VM: ${cannot}`);
  const image = guestImage();
  await sweepLabLeftovers();
  const labName = newLabName();
  const name = opts.name ?? labName.name;
  const tap = opts.tap ?? labName.dev('t');
  const mac = opts.mac ?? macFor(name);
  const ip = opts.ip.split('/')[0]!;
  const runDir = join(LAB_RUN_DIR, name);
  const consoleLog = join(runDir, 'console.log');
  const qemuLog = join(runDir, 'qemu.log');
  const controlSock = join(runDir, 'control.sock');
  const qmpSock = join(runDir, 'qmp.sock');
  const agentSock = opts.guestAgent ? join(runDir, 'agent.sock') : undefined;

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let control: SerialControl | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    control?.close();
    if (child && child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child?.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
    }
    if (child) live.delete(child);
    await opts.bridge?.delPort(tap);
    await execa('ip', ['link', 'del', tap], { reject: false, stdin: 'ignore' });
    await rm(runDir, { recursive: true, force: true });
  };
  t?.after(stop);

  const argv = [
    '-name', opts.debugThreads === false ? name : `${name},debug-threads=on`,
    '-accel', opts.accel ?? HOST_VIRT.accel,
    '-machine', 'pc',
    '-m', String(opts.memoryMb ?? 256),
    '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', image.kernel,
    '-initrd', image.initrd,
    '-append', [guestKernelArgs({ ip: opts.ip, gateway: opts.gateway, mac, ipv6: opts.ipv6, noise: opts.noise }), ...(opts.kernelArgs ?? [])].join(' '),
    '-serial', `file:${consoleLog}`,
    '-chardev', `socket,id=control,path=${controlSock},server=on,wait=off`,
    '-serial', 'chardev:control',
    '-qmp', `unix:${qmpSock},server=on,wait=off`,
    '-netdev', `tap,id=net0,ifname=${tap},script=no,downscript=no,vhost=${opts.vhost ?? HOST_VIRT.vhost ? 'on' : 'off'}`,
    // romfile= : no iPXE option ROM, the kernel is loaded directly (saves boot time).
    '-device', `virtio-net-pci,netdev=net0,mac=${mac},romfile=${opts.checksumOffload === false ? ',csum=off' : ''}`,
    ...(agentSock
      ? ['-device', 'virtio-serial-pci,id=vser0',
        '-chardev', `socket,id=qga0,path=${agentSock},server=on,wait=off`,
        '-device', 'virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0']
      : []),
    ...(opts.qemuArgs ?? []),
  ];

  try {
    await mkdir(runDir, { recursive: true });
    // The tap exists before QEMU so that it is on the bridge before the guest sends anything.
    await run(['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    // A host that keeps IPv6 on its bridge keeps it on the taps too (link-local only).
    if (!opts.bridge?.hostIpv6) await disableIpv6(tap);
    await run(['ip', 'link', 'set', tap, 'up']);
    await opts.bridge?.addPort(tap);

    const stderrFd = openSync(qemuLog, 'w');
    const spawned = Date.now();
    try {
      child = spawn(QEMU, argv, { stdio: ['ignore', stderrFd, stderrFd] });
    } finally {
      closeSync(stderrFd);
    }
    const proc = child;
    live.add(proc);
    let spawnFailed = false;
    exited = new Promise((resolve) => {
      proc.once('exit', () => resolve());
      proc.once('error', () => {
        spawnFailed = true;
        resolve();
      });
    });
    const running = () => !spawnFailed && proc.exitCode === null && proc.signalCode === null;
    const readyLine = await waitForReady(consoleLog, { timeoutMs: opts.readyTimeoutMs ?? 60_000, alive: running });
    const bootMs = Date.now() - spawned;
    const guestDev = /dev=(\S+)/.exec(readyLine)?.[1] ?? 'eth0';
    if (opts.guestAgent && !/ agent=/.test(readyLine)) throw new Error(`the guest found no guest agent port: ${readyLine}`);
    control = new SerialControl(controlSock);
    const ctl = control;
    const qmp = (command: string, args?: Record<string, unknown>) => qmpCommand(qmpSock, command, args);

    const exec = (command: string, o: { timeoutMs?: number } = {}) => ctl.exec(command, o.timeoutMs ?? 20_000);
    const sh = async (command: string) => {
      const r = await exec(command);
      if (r.code !== 0) throw new Error(`guest ${name}: \`${command}\` exited ${r.code}: ${r.stdout.trim()}`);
      return r.stdout;
    };
    return {
      name,
      pid: proc.pid!,
      tap,
      mac,
      ip,
      cidr: opts.ip,
      ipv6: opts.ipv6?.split('/')[0],
      cidr6: opts.ipv6,
      agentSocket: agentSock,
      noiseArpTarget: / noise=(\S+)/.exec(readyLine)?.[1],
      guestDev,
      runDir,
      consoleLog,
      bootMs,
      qmpSocket: qmpSock,
      qemuArgv: [QEMU, ...argv],
      threads: () => processThreads(proc.pid!),
      exec,
      sh,
      async netStats() {
        if (!/^[\w.-]+$/.test(guestDev)) throw new Error(`odd guest device name ${guestDev}`);
        const out = await sh(`cd /sys/class/net/${guestDev}/statistics && for f in *; do echo "$f $(cat $f)"; done; echo --; cat /proc/net/snmp`);
        return parseGuestNetStats(out);
      },
      qmp,
      async pause() {
        await qmp('stop');
      },
      async resume() {
        await qmp('cont');
      },
      running,
      stop,
    };
  } catch (err) {
    const consoleText = await readFile(consoleLog, 'utf8').catch(() => '');
    const qemuOut = await readFile(qemuLog, 'utf8').catch(() => '');
    await stop();
    throw new Error(
      `lab VM ${name} did not boot: ${(err as Error).message}\n` +
        `--- QEMU output ---\n${tail(qemuOut)}\n--- console (ttyS0) ---\n${tail(consoleText)}\n--- command ---\n${QEMU} ${argv.join(' ')}`,
    );
  }
}

/** Parses the output of netStats' guest command: "name value" lines, "--", /proc/net/snmp. */
export function parseGuestNetStats(out: string): GuestNetStats {
  const [ifacePart = '', snmpPart = ''] = out.split(/^--$/m);
  const iface: Record<string, number> = {};
  for (const line of ifacePart.split('\n')) {
    const m = /^(\w+) (\d+)$/.exec(line.trim());
    if (m) iface[m[1]!] = Number(m[2]);
  }
  // /proc/net/snmp: pairs of lines, "Udp: InDatagrams NoPorts ..." then "Udp: 12 0 ...".
  const snmp: Record<string, Record<string, number>> = {};
  const lines = snmpPart.split('\n').map((l) => l.trim()).filter(Boolean);
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const head = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/);
    const proto = head[0]!.replace(/:$/, '');
    snmp[proto] = Object.fromEntries(head.slice(1).map((k, j) => [k, Number(values[j + 1])]));
  }
  return { iface, snmp };
}

/**
 * The guest's ttyS1 as a command channel: one line of shell in, its output and a line
 * "@@EBPFNET-DONE <code>@@" out (see test/lab/guest/init). One command at a time.
 */
class SerialControl {
  private socket: Promise<Socket> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly path: string) {}

  exec(command: string, timeoutMs: number): Promise<{ stdout: string; code: number }> {
    if (/[\r\n]/.test(command)) return Promise.reject(new Error('guest commands are one line'));
    const next = this.queue.then(() => this.roundTrip(command, timeoutMs));
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.closed = true;
    void this.socket?.then((s) => s.destroy()).catch(() => undefined);
  }

  private connect(): Promise<Socket> {
    this.socket ??= new Promise<Socket>((resolve, reject) => {
      const s = connect(this.path);
      s.once('connect', () => {
        s.unref();
        resolve(s);
      });
      s.once('error', reject);
    });
    return this.socket;
  }

  private async roundTrip(command: string, timeoutMs: number): Promise<{ stdout: string; code: number }> {
    if (this.closed) throw new Error('the VM is stopped');
    const s = await this.connect();
    return new Promise((resolve, reject) => {
      let buf = '';
      const done = (err: Error | null, value?: { stdout: string; code: number }) => {
        clearTimeout(timer);
        s.off('data', onData);
        s.off('close', onClose);
        if (err) reject(err);
        else resolve(value!);
      };
      const onData = (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        const m = DONE_RE.exec(buf);
        if (m) done(null, { stdout: buf.slice(0, m.index), code: Number(m[1]) });
      };
      const onClose = () => done(new Error(`guest control channel closed during \`${command}\``));
      const timer = setTimeout(() => {
        // The channel's state is unknown now: later commands fail rather than mix outputs.
        this.closed = true;
        done(new Error(`guest command timed out after ${timeoutMs} ms: ${command}`));
      }, timeoutMs);
      s.on('data', onData);
      s.once('close', onClose);
      s.write(`${command}\n`);
    });
  }
}

/** One QMP command on a fresh connection (QEMU's QMP socket serves one client at a time). */
async function qmpCommand(path: string, command: string, args?: Record<string, unknown>): Promise<unknown> {
  const s = connect(path);
  try {
    const replies = jsonLines(s);
    await replies.next(); // the greeting
    s.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
    await expectReturn(replies, 'qmp_capabilities');
    s.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n');
    return await expectReturn(replies, command);
  } finally {
    s.destroy();
  }
}

/**
 * One QEMU guest agent command on a fresh connection to its port's socket, after
 * guest-sync-delimited: the agent may hold half a line from an earlier client and the socket
 * old replies, so the client sends 0xFF (the agent's parser resets on it) and the sync, then
 * skips everything up to the 0xFF the agent puts before the sync's reply. The sync is repeated
 * each second until the agent answers (it may still be starting), up to `timeoutMs`.
 */
export async function guestAgentCommand(path: string, command: string, args?: Record<string, unknown>, timeoutMs = 20_000): Promise<unknown> {
  const s = connect(path);
  let buf = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let closed = false;
  s.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    wake?.();
  });
  s.on('close', () => {
    closed = true;
    wake?.();
  });
  const connected = new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  const deadline = Date.now() + timeoutMs;
  // Waits for more input until `until` (ms since epoch); false when time ran out.
  const more = (until: number) =>
    new Promise<boolean>((resolve) => {
      if (closed) return resolve(false);
      const timer = setTimeout(() => resolve(false), Math.max(0, until - Date.now()));
      wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  const line = (): Record<string, unknown> | undefined => {
    const nl = buf.indexOf(0x0a);
    if (nl < 0) return undefined;
    const text = buf.subarray(0, nl).toString('utf8').trim();
    buf = buf.subarray(nl + 1);
    return text ? (JSON.parse(text) as Record<string, unknown>) : line();
  };
  try {
    await connected;
    let synced = false;
    for (let id = Math.floor(Math.random() * 1e9); !synced; id++) {
      if (Date.now() > deadline) throw new Error(`guest agent on ${path} did not answer guest-sync-delimited in ${timeoutMs} ms`);
      s.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } }) + '\n')]));
      const retry = Math.min(deadline, Date.now() + 1000);
      while (!synced) {
        const mark = buf.indexOf(0xff);
        if (mark >= 0) {
          buf = buf.subarray(mark + 1);
          let reply = line();
          while (!reply && (await more(retry))) reply = line();
          if (!reply) break;
          synced = reply.return === id;
          continue;
        }
        buf = Buffer.alloc(0); // replies to an earlier client or to the 0xFF itself
        if (!(await more(retry))) break;
      }
      if (closed) throw new Error(`guest agent socket ${path} closed`);
    }
    s.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n');
    for (;;) {
      const reply = line();
      if (reply && 'return' in reply) return reply.return;
      if (reply && 'error' in reply) throw new Error(`guest agent ${command}: ${JSON.stringify(reply.error)}`);
      if (!reply && !(await more(deadline))) throw new Error(`guest agent did not answer ${command} in ${timeoutMs} ms`);
    }
  } finally {
    s.destroy();
  }
}

async function expectReturn(replies: AsyncGenerator<Record<string, unknown>>, command: string): Promise<unknown> {
  for (;;) {
    const { value, done } = await replies.next();
    if (done) throw new Error(`QMP closed before answering ${command}`);
    if ('return' in value) return value.return;
    if ('error' in value) throw new Error(`QMP ${command}: ${JSON.stringify(value.error)}`);
    // anything else is an asynchronous event: skip it
  }
}

async function* jsonLines(s: Socket): AsyncGenerator<Record<string, unknown>> {
  let buf = '';
  for await (const chunk of s) {
    buf += String(chunk);
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line) as Record<string, unknown>;
    }
  }
}

async function processThreads(pid: number): Promise<Array<{ tid: number; name: string }>> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const out: Array<{ tid: number; name: string }> = [];
  for (const tid of tids) {
    const name = (await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8').catch(() => '')).trim();
    if (name) out.push({ tid: Number(tid), name });
  }
  return out;
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n').trim() || '(empty)';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
