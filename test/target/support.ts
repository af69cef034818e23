// Real VMs and bridges for the discovery tests: QEMU processes under TCG kept
// paused (-S, so no guest kernel is needed; KVM and running where a test asks) on host taps, Linux bridges, Open
// vSwitch bridges on the userspace datapath (this kernel has no openvswitch
// module), veth uplinks. Everything is removed by t.after, also on failure.
//
// Names carry the creating process's pid: devices `ebv<pid36>x<n><role>`, VMs
// `ebpfnet-t-<pid>-<n>`; a later run removes what a crashed run left behind.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { findBinary } from '../../engine/host/binaries.js';
import type { TeardownHost } from '../helpers/netns.js';

const DEV_RE = /^ebv([0-9a-z]+)x[0-9a-z]+[a-z]$/;
const VM_RE = /^ebpfnet-t-(\d+)-\d+$/;

let counter = 0;

/** A fresh device name (at most 15 characters); `role` is one letter: t(ap), b(ridge), o(vs), u(plink), p(eer). */
export function devName(role: string, n = counter++): string {
  return `ebv${process.pid.toString(36)}x${n.toString(36)}${role}`;
}

export function vmName(): string {
  return `ebpfnet-t-${process.pid}-${counter++}`;
}

/** A locally administered MAC in QEMU's range, unique per process and call. */
export function guestMac(): string {
  const n = (process.pid * 64 + counter++) & 0xffffff;
  return `52:54:00:${[n >> 16, (n >> 8) & 0xff, n & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}

export async function sh(argv: string[]): Promise<string> {
  const [file, ...args] = argv as [string, ...string[]];
  const r = await execa(file, args, { stdin: 'ignore', env: { LC_ALL: 'C' }, timeout: 30_000 });
  return String(r.stdout);
}

async function quiet(argv: string[]): Promise<void> {
  const [file, ...args] = argv as [string, ...string[]];
  await execa(file, args, { reject: false, stdin: 'ignore', timeout: 30_000 });
}

/** Fails (never skips) with the package to install. */
export async function requireTools(tools: Record<string, string>): Promise<void> {
  if (process.geteuid?.() !== 0) throw new Error('the discovery tests need root');
  for (const [bin, pkg] of Object.entries(tools)) {
    if (!(await findBinary(bin))) throw new Error(`${bin} is missing: apt-get install -y --no-install-recommends ${pkg}`);
  }
}

const isAlive = (pid: number) => existsSync(`/proc/${pid}`);

/** Kills test QEMUs and removes test devices whose creating process is gone. */
export async function cleanupLeftovers(): Promise<void> {
  for (const entry of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.includes('qemu-system')) continue;
    const name = argv[argv.indexOf('-name') + 1]?.replace(/^guest=/, '').split(',')[0] ?? '';
    const m = VM_RE.exec(name);
    if (m && !isAlive(Number(m[1]))) process.kill(Number(entry), 'SIGKILL');
  }
  if (await findBinary('ovs-vsctl')) {
    const r = await execa('ovs-vsctl', ['--timeout=5', 'list-br'], { reject: false, stdin: 'ignore' });
    for (const br of String(r.stdout).split('\n')) {
      const m = DEV_RE.exec(br.trim());
      if (m && !isAlive(Number.parseInt(m[1]!, 36))) await quiet(['ovs-vsctl', '--timeout=5', 'del-br', br.trim()]);
    }
  }
  for (const dev of readdirSync('/sys/class/net')) {
    const m = DEV_RE.exec(dev);
    if (m && !isAlive(Number.parseInt(m[1]!, 36))) await quiet(['ip', 'link', 'del', dev]);
  }
}

/** A /24 (as "10.250.n") no address of this host is in, for a guest and its bridge. */
export async function freeSubnet(): Promise<string> {
  const used = await sh(['ip', '-4', '-o', 'addr', 'show']);
  for (let i = 0; i < 256; i++) {
    const base = `10.250.${(process.pid + counter++) % 256}`;
    if (!used.includes(` ${base}.`)) return base;
  }
  throw new Error('no free 10.250.n.0/24 on this host');
}

export async function linuxBridge(t: TeardownHost): Promise<string> {
  const br = devName('b');
  t.after(() => quiet(['ip', 'link', 'del', br]));
  await sh(['ip', 'link', 'add', br, 'type', 'bridge']);
  await sh(['ip', 'link', 'set', br, 'up']);
  return br;
}

/** A veth pair with one end on `bridge` (Linux or OVS): the bridge's uplink. */
export async function vethUplink(t: TeardownHost, bridge: string, ovs = false): Promise<string> {
  const n = counter++;
  const up = devName('u', n);
  const peer = devName('p', n);
  t.after(() => quiet(['ip', 'link', 'del', up]));
  await sh(['ip', 'link', 'add', up, 'type', 'veth', 'peer', 'name', peer]);
  if (ovs) await sh(['ovs-vsctl', '--timeout=10', 'add-port', bridge, up]);
  else await sh(['ip', 'link', 'set', up, 'master', bridge]);
  await sh(['ip', 'link', 'set', up, 'up']);
  await sh(['ip', 'link', 'set', peer, 'up']);
  return up;
}

/**
 * Makes sure Open vSwitch answers: starts ovsdb-server and ovs-vswitchd by hand
 * when they do not run (no init system here), reusing them when they do.
 */
export async function ensureOvs(): Promise<void> {
  await requireTools({ 'ovs-vsctl': 'openvswitch-switch', 'ovsdb-server': 'openvswitch-switch', 'ovs-vswitchd': 'openvswitch-switch' });
  const answers = async () => (await execa('ovs-vsctl', ['--timeout=3', 'show'], { reject: false, stdin: 'ignore' })).exitCode === 0;
  if (!(await answers())) {
    mkdirSync('/run/openvswitch', { recursive: true });
    if (!existsSync('/etc/openvswitch/conf.db')) {
      mkdirSync('/etc/openvswitch', { recursive: true });
      await sh(['ovsdb-tool', 'create', '/etc/openvswitch/conf.db', '/usr/share/openvswitch/vswitch.ovsschema']);
    }
    await quiet(['ovsdb-server', '/etc/openvswitch/conf.db', '--remote=punix:/run/openvswitch/db.sock', '--pidfile=/run/openvswitch/ovsdb-server.pid', '--detach']);
    await quiet(['ovs-vsctl', '--timeout=10', '--no-wait', 'init']);
  }
  if (!existsSync('/run/openvswitch/ovs-vswitchd.pid') || !isAlive(Number(readFileSync('/run/openvswitch/ovs-vswitchd.pid', 'utf8').trim()))) {
    await quiet(['ovs-vswitchd', '--pidfile=/run/openvswitch/ovs-vswitchd.pid', '--detach']);
  }
  if (!(await answers())) throw new Error('Open vSwitch does not answer (ovs-vsctl show fails) after starting ovsdb-server and ovs-vswitchd');
}

/** An OVS bridge on the userspace (netdev) datapath. */
export async function ovsBridge(t: TeardownHost): Promise<string> {
  await ensureOvs();
  const br = devName('o');
  t.after(() => quiet(['ovs-vsctl', '--timeout=10', '--if-exists', 'del-br', br]));
  await sh(['ovs-vsctl', '--timeout=10', 'add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev']);
  return br;
}

export interface TestQemu {
  name: string;
  pid: number;
  tap: string;
  mac: string;
  argv: string[];
}

async function waitFor(what: string, check: () => boolean, child: { exitCode: number | null; stderr: () => string }, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (child.exitCode !== null) throw new Error(`qemu exited (${child.exitCode}) before ${what}: ${child.stderr()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${child.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts a paused QEMU (TCG) with one virtio-net NIC on a new tap; the tap is
 * set up and, when given, plugged into a Linux bridge or an OVS bridge.
 */
export async function startQemu(
  t: TeardownHost,
  opts: {
    bridge?: string;
    ovsBridge?: string;
    debugThreads?: boolean;
    name?: string;
    /** `kvm` where /dev/kvm is (the kernel lab); default tcg. */
    accel?: 'tcg' | 'kvm';
    /** Start the vCPUs (default: paused with -S; with no kernel or disk the firmware then loops). */
    running?: boolean;
    /** More QEMU arguments (monitors, agent ports). */
    qemuArgs?: string[];
  } = {},
): Promise<TestQemu> {
  await requireTools({ 'qemu-system-x86_64': 'qemu-system-x86', ip: 'iproute2' });
  const name = opts.name ?? vmName();
  const tap = devName('t');
  const mac = guestMac();
  const argv = [
    '-accel', opts.accel ?? 'tcg', ...(opts.running ? [] : ['-S']), '-nodefaults', '-display', 'none', '-monitor', 'none', '-serial', 'none', '-m', '64',
    '-name', opts.debugThreads === false ? name : `${name},debug-threads=on`,
    '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=n0,mac=${mac}`,
    ...(opts.qemuArgs ?? []),
  ];
  const child = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    }
  });
  if (opts.ovsBridge) t.after(() => quiet(['ovs-vsctl', '--timeout=10', '--if-exists', 'del-port', tap]));
  const state = { get exitCode() { return child.exitCode; }, stderr: () => stderr.trim() };
  await waitFor(`tap ${tap}`, () => existsSync(`/sys/class/net/${tap}`), state);
  await sh(['ip', 'link', 'set', tap, 'up']);
  if (opts.bridge) await sh(['ip', 'link', 'set', tap, 'master', opts.bridge]);
  if (opts.ovsBridge) await sh(['ovs-vsctl', '--timeout=10', 'add-port', opts.ovsBridge, tap]);
  if (opts.debugThreads !== false) {
    // vCPU threads are created (and named) once the machine is built, just after the tap is opened.
    await waitFor('vCPU threads', () => readdirSync(`/proc/${child.pid}/task`).some((tid) => {
      try {
        return readFileSync(`/proc/${child.pid}/task/${tid}/comm`, 'utf8').startsWith('CPU ');
      } catch {
        return false;
      }
    }), state);
  }
  return { name, pid: child.pid!, tap, mac, argv };
}

/** The comm of a thread of `pid`. */
export function threadComm(pid: number, tid: number): string {
  return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
}

export function sysfs(dev: string, file: string): string {
  return readFileSync(`/sys/class/net/${dev}/${file}`, 'utf8').trim();
}
