// Throwaway topologies (tests and `ebpfnet selftest`): a network namespace joined to the root
// namespace by a veth pair, the way a VM's tap joins it to the host. The host side stays in the root namespace; the peer is
// moved into the namespace. Needs root and iproute2.
//
//   const pair = await createVethPair(t, { peerMtu: 1000 });
//   await pair.ping({ count: 20 });              // host -> peer, through the pair
//   await pair.inNs(['ip', 'link']);             // any command inside the namespace
//
// Names carry the creating process's pid (`ebpfnet-test-<pid>-<n>`, devices `ebt<pid>x<n>h|p`
// in base 36; `ebpfnet-selftest-…` and `ebs…` for the selftest), so that a later run removes
// what a crashed run left behind without touching the topologies of processes still running.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { runCommand } from '../exec.js';
import { isAlive } from '../host/process.js';

/** Name families: the netns prefix and the (3-letter) device prefix. */
export const TOPOLOGY_NAMES = {
  test: { netns: 'ebpfnet-test-', dev: 'ebt' },
  selftest: { netns: 'ebpfnet-selftest-', dev: 'ebs' },
} as const;
const NETNS_RE = /^ebpfnet-(?:test|selftest)-(\d+)-\d+$/;
const DEV_RE = /^eb[ts]([0-9a-z]+)x[0-9a-z]+[hp]$/;

/** Anything with an `after` hook: a node:test TestContext or SuiteContext. */
export interface TeardownHost {
  after(fn: () => unknown): void;
}

export interface VethPairOptions {
  /** MTU of the host side (default 1500). */
  hostMtu?: number;
  /** MTU of the peer inside the namespace (default 1500). */
  peerMtu?: number;
  /** Name family (default `test`). */
  names?: keyof typeof TOPOLOGY_NAMES;
  /** Disable IPv6 on both ends, so that no router/neighbour solicitations add noise. */
  noIpv6?: boolean;
  /** RX and TX queues of each end (default 1). */
  queues?: number;
}

export interface PingOptions {
  count?: number;
  /** ICMP payload bytes (ping -s). */
  size?: number;
  /** Seconds between pings (ping -i); below 0.2 needs root. */
  interval?: number;
  /** ping -f: as fast as replies come back (root only). */
  flood?: boolean;
  /** Give up after this many whole seconds in all (ping -w). */
  deadline?: number;
  /** Seconds to wait for each reply (ping -W). */
  wait?: number;
}

export interface VethPair {
  readonly ns: string;
  /** The side in the root namespace (the "tap"). */
  readonly hostDev: string;
  /** The side inside `ns`. */
  readonly peerDev: string;
  readonly hostIp: string;
  readonly peerIp: string;
  /** e.g. 10.213.7.0/24 */
  readonly subnet: string;
  /** Runs a command inside the namespace (argument array, no shell); rejects on failure. */
  inNs(argv: string[]): Promise<CommandResult>;
  /** Pings the peer from the root namespace through the pair; resolves even when pings are lost. */
  ping(opts?: PingOptions): Promise<PingResult>;
  /** Reads a counter of the peer (`rx_dropped`, ...) from inside the namespace. */
  peerCounter(counter: string): Promise<number>;
  /** Removes the namespace and both ends of the pair; safe to call twice. */
  teardown(): Promise<void>;
}

export interface PingResult {
  transmitted: number;
  received: number;
  exitCode: number;
  stdout: string;
  stderr: string;
}

let created = 0;

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs a command in the root namespace (argument array, no shell); rejects on failure. */
export async function run(argv: string[]): Promise<CommandResult> {
  const [file, ...args] = argv as [string, ...string[]];
  const r = await runCommand(file, args);
  if (r.failed) {
    const why = r.startError ?? (r.exitCode !== null ? `exit code ${r.exitCode}` : `signal ${r.signal}`);
    throw new Error(`Command failed with ${why}: ${argv.join(' ')}${r.stderr.trim() ? `\n\n${r.stderr.trim()}` : ''}`);
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

/** Whether this process can build topologies (root, with ip and ping installed). */
export async function canBuildTopologies(): Promise<string | null> {
  if (process.geteuid?.() !== 0) return 'needs root';
  for (const bin of ['ip', 'ping']) {
    if ((await runCommand(bin, ['-V'])).failed) {
      return `needs ${bin} (apt-get install ${bin === 'ip' ? 'iproute2' : 'iputils-ping'})`;
    }
  }
  return null;
}

/**
 * Creates a namespace and a veth pair with addresses from a free 10.x.y.0/24, and registers
 * its teardown with `t.after` (and removes leftovers of crashed earlier runs first).
 */
export async function createVethPair(t: TeardownHost | undefined, opts: VethPairOptions = {}): Promise<VethPair> {
  await cleanupLeftovers();
  const n = created++;
  const tag = `${process.pid.toString(36)}x${n.toString(36)}`;
  const names = TOPOLOGY_NAMES[opts.names ?? 'test'];
  const ns = `${names.netns}${process.pid}-${n}`;
  const hostDev = `${names.dev}${tag}h`;
  const peerDev = `${names.dev}${tag}p`;
  const base = await freeSubnet(`${names.netns}${process.pid}-${n}`);
  const hostIp = `${base}.1`;
  const peerIp = `${base}.2`;

  const teardown = async () => {
    await runCommand('ip', ['netns', 'del', ns]);
    await runCommand('ip', ['link', 'del', hostDev]);
  };
  // Register before building, so that a half-built topology is removed too.
  t?.after(teardown);
  try {
    await run(['ip', 'netns', 'add', ns]);
    const queues = opts.queues && opts.queues > 1 ? ['numtxqueues', String(opts.queues), 'numrxqueues', String(opts.queues)] : [];
    await run(['ip', 'link', 'add', hostDev, ...queues, 'type', 'veth', 'peer', 'name', peerDev, ...queues]);
    await run(['ip', 'link', 'set', peerDev, 'netns', ns]);
    if (opts.noIpv6) {
      await writeFile(`/proc/sys/net/ipv6/conf/${hostDev}/disable_ipv6`, '1').catch(() => undefined);
      await runCommand('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    await run(['ip', 'link', 'set', hostDev, 'mtu', String(opts.hostMtu ?? 1500), 'up']);
    await run(['ip', 'addr', 'add', `${hostIp}/24`, 'dev', hostDev]);
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    await run(['ip', '-n', ns, 'link', 'set', peerDev, 'mtu', String(opts.peerMtu ?? 1500), 'up']);
    await run(['ip', '-n', ns, 'addr', 'add', `${peerIp}/24`, 'dev', peerDev]);
    await waitForCarrier(hostDev);
  } catch (err) {
    await teardown();
    throw err;
  }

  const inNs = (argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv]);
  return {
    ns,
    hostDev,
    peerDev,
    hostIp,
    peerIp,
    subnet: `${base}.0/24`,
    inNs,
    ping: (p: PingOptions = {}) => ping(peerIp, hostDev, p),
    peerCounter: async (counter: string) => {
      if (!/^[a-z_]+$/.test(counter)) throw new Error(`not a counter name: ${counter}`);
      const r = await inNs(['cat', `/sys/class/net/${peerDev}/statistics/${counter}`]);
      return Number(r.stdout.trim());
    },
    teardown,
  };
}

/** Pings `target` through `dev`; the counts come from ping's own summary. */
export async function ping(target: string, dev: string, p: PingOptions = {}): Promise<PingResult> {
  const argv = ['-n', '-q', '-I', dev, '-c', String(p.count ?? 5), '-W', String(p.wait ?? 1)];
  if (p.size !== undefined) argv.push('-s', String(p.size));
  if (p.flood) argv.push('-f');
  else argv.push('-i', String(p.interval ?? 0.05));
  if (p.deadline !== undefined) argv.push('-w', String(Math.max(1, Math.round(p.deadline))));
  argv.push(target);
  const r = await runCommand('ping', argv);
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(String(r.stdout));
  if (!m) throw new Error(`ping ${argv.join(' ')} printed no summary (exit ${r.exitCode}): ${String(r.stderr).trim()}`);
  return {
    transmitted: Number(m[1]),
    received: Number(m[2]),
    exitCode: r.exitCode ?? -1,
    stdout: String(r.stdout),
    stderr: String(r.stderr),
  };
}

/**
 * Removes namespaces and devices left by test processes that no longer run (a crashed or
 * killed earlier run). Returns what it removed.
 */
export async function cleanupLeftovers(): Promise<string[]> {
  const removed: string[] = [];
  const nsList = await runCommand('ip', ['-j', 'netns', 'list']);
  for (const entry of parseJsonList(String(nsList.stdout))) {
    const name = typeof entry.name === 'string' ? entry.name : '';
    const m = NETNS_RE.exec(name);
    if (m && !isAlive(Number(m[1]))) {
      await runCommand('ip', ['netns', 'del', name]);
      removed.push(`netns ${name}`);
    }
  }
  const links = await runCommand('ip', ['-j', 'link', 'show']);
  for (const entry of parseJsonList(String(links.stdout))) {
    const name = typeof entry.ifname === 'string' ? entry.ifname : '';
    const m = DEV_RE.exec(name);
    if (m && !isAlive(parseInt(m[1]!, 36))) {
      await runCommand('ip', ['link', 'del', name]);
      removed.push(`link ${name}`);
    }
  }
  return removed;
}

/** A 10.x.y (x in 200..249) /24 that no address or route of the root namespace uses. */
async function freeSubnet(seed: string): Promise<string> {
  const used = new Set<string>();
  const addrs = await run(['ip', '-j', '-4', 'addr', 'show']);
  for (const link of parseJsonList(String(addrs.stdout))) {
    for (const a of (link.addr_info as Array<{ local?: string }> | undefined) ?? []) {
      if (a.local) used.add(a.local.split('.').slice(0, 3).join('.'));
    }
  }
  const routes = await run(['ip', '-j', '-4', 'route', 'show']);
  for (const r of parseJsonList(String(routes.stdout))) {
    if (typeof r.dst === 'string' && /^10\./.test(r.dst)) used.add(r.dst.split('/')[0]!.split('.').slice(0, 3).join('.'));
  }
  const hash = createHash('sha256').update(seed).digest();
  for (let i = 0; i < 2500; i++) {
    const v = (hash.readUInt16BE(0) + i) % 12800;
    const base = `10.${200 + Math.floor(v / 256)}.${v % 256}`;
    if (!used.has(base)) return base;
  }
  throw new Error('no free 10.200-249.x.0/24 subnet for a test topology');
}

async function waitForCarrier(dev: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const carrier = await readFile(`/sys/class/net/${dev}/carrier`, 'utf8').catch(() => '');
    if (carrier.trim() === '1') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${dev} has no carrier after 2s`);
}


function parseJsonList(text: string): Array<Record<string, unknown>> {
  try {
    const v: unknown = JSON.parse(text || '[]');
    return Array.isArray(v) ? (v as Array<Record<string, unknown>>) : [];
  } catch {
    return [];
  }
}
