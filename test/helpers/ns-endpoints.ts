// Endpoints standing for VMs without booting any: a network namespace whose `eth0` is a veth,
// the other end plugged into a bridge of the root namespace (an OVS bridge, a Linux bridge),
// with the MAC, IPv4 and IPv6 addresses the test chooses. Names follow test/lab/names.ts
// (netns `ebpfnet-lab-<pid>-<n>`, devices `ebl…v`), so a crashed run's are swept.
//
//   const a = await createEndpoint(t, { ip: '10.252.7.2', plug: (dev) => br.addPort(dev) });
//   await addIpv6(a, 'fd00:eb:7::2');
//   await sendUdpFrom(peer.ns, { to: a.ip, port: 9, count: 20 });
//   await udpReceived(a.ns, 4);
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { newLabName, parseJsonList } from '../lab/names.js';
import { run, type TeardownHost } from './netns.js';

export interface Endpoint {
  ns: string;
  /** The veth end on the bridge (the VM's "tap"). */
  hostDev: string;
  mac: string;
  ip: string;
  /** Set once addIpv6 gave it an address. */
  ip6?: string;
  exec(argv: string[]): Promise<{ stdout: string; stderr: string }>;
}

export interface EndpointOptions {
  ip: string;
  /** Prefix length of `ip` (default 24). */
  len?: number;
  /** Plugs the host end into a bridge (it is unplugged on teardown by deleting it). */
  plug(hostDev: string): Promise<void>;
}

/**
 * A namespace on a veth. Checksums are computed in software (an OVS netdev datapath forwards a
 * frame as it finds it), it sends no ICMP errors (a datagram to a closed port makes no reply to
 * count), and IPv6 is off until addIpv6.
 */
export async function createEndpoint(t: TeardownHost, o: EndpointOptions): Promise<Endpoint> {
  const lab = newLabName();
  const ns = lab.name;
  const hostDev = lab.dev('v');
  const dev = lab.dev('p');
  t.after(async () => {
    await execa('ip', ['netns', 'del', ns], { reject: false, stdin: 'ignore' });
    await execa('ip', ['link', 'del', hostDev], { reject: false, stdin: 'ignore' });
  });
  const exec = (argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv]);
  await run(['ip', 'netns', 'add', ns]);
  await run(['ip', 'link', 'add', hostDev, 'type', 'veth', 'peer', 'name', dev]);
  await run(['ip', 'link', 'set', dev, 'netns', ns]);
  await run(['ip', '-n', ns, 'link', 'set', dev, 'name', 'eth0']);
  await exec(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.eth0.disable_ipv6=1']);
  await exec(['ethtool', '-K', 'eth0', 'tx', 'off']);
  await execa('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
    input: 'table inet ebpfnet_quiet { chain out { type filter hook output priority 0; icmp type destination-unreachable drop; icmpv6 type destination-unreachable drop; }; }',
  });
  await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  await run(['ip', '-n', ns, 'addr', 'add', `${o.ip}/${o.len ?? 24}`, 'dev', 'eth0']);
  await run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
  await o.plug(hostDev);
  const mac = parseJsonList((await run(['ip', '-n', ns, '-j', 'link', 'show', 'eth0'])).stdout)[0]?.address;
  return { ns, hostDev, mac: String(mac), ip: o.ip, exec };
}

/**
 * Turns IPv6 on in a namespace (`dev`, default eth0) with `ip6`/64, without duplicate address
 * detection or router solicitations, so the address works at once and sends little.
 */
export async function addIpv6(e: { ns: string; ip6?: string }, ip6: string, dev = 'eth0'): Promise<void> {
  await run(['ip', 'netns', 'exec', e.ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=0', `net.ipv6.conf.${dev}.disable_ipv6=0`, `net.ipv6.conf.${dev}.accept_dad=0`, `net.ipv6.conf.${dev}.router_solicitations=0`]);
  await run(['ip', '-n', e.ns, 'addr', 'add', `${ip6}/64`, 'dev', dev, 'nodad']);
  e.ip6 = ip6;
}

/** An address holder in a namespace: an Endpoint, a bridge-lan host. */
export interface NsHost {
  ns: string;
  ip: string;
  mac: string;
  ip6?: string;
}

/** Permanent neighbour entries both ways (on `dev` of each side), so no ARP or ND precedes the traffic a test counts. */
export async function pinNeighbours(a: NsHost, b: NsHost, devs: { a?: string; b?: string } = {}): Promise<void> {
  for (const [from, to, dev] of [
    [a, b, devs.a ?? 'eth0'],
    [b, a, devs.b ?? 'eth0'],
  ] as const) {
    await run(['ip', '-n', from.ns, 'neigh', 'replace', to.ip, 'lladdr', to.mac, 'dev', dev, 'nud', 'permanent']);
    if (from.ip6 !== undefined && to.ip6 !== undefined) await run(['ip', '-n', from.ns, '-6', 'neigh', 'replace', to.ip6, 'lladdr', to.mac, 'dev', dev, 'nud', 'permanent']);
  }
}

const SENDER = fileURLToPath(new URL('./ns-udp-send.js', import.meta.url));

export interface UdpFromOptions {
  to: string;
  port: number;
  count: number;
  /** A new socket (a new source port, so a new conntrack entry) per datagram. */
  newSocketEach?: boolean;
  /** Pause between datagrams (default 1 ms). */
  intervalMs?: number;
  /** With newSocketEach: datagram i leaves from port srcPortBase + i (distinct flows for sure). */
  srcPortBase?: number;
}

/** Sends `count` datagrams (IPv4 or IPv6) from inside `ns`; resolves with how many were sent. */
export async function sendUdpFrom(ns: string, o: UdpFromOptions): Promise<number> {
  const r = await run(['ip', 'netns', 'exec', ns, process.execPath, SENDER, JSON.stringify(o)]);
  return Number(r.stdout.trim());
}

/** UDP datagrams the namespace's stack took in (delivered or to a closed port), IPv4 or IPv6. */
export async function udpReceived(ns: string, family: 4 | 6): Promise<number> {
  const file = family === 4 ? '/proc/net/snmp' : '/proc/net/snmp6';
  const { stdout } = await run(['ip', 'netns', 'exec', ns, 'cat', file]);
  if (family === 6) {
    const v = (k: string) => Number(new RegExp(`^${k}\\s+(\\d+)`, 'm').exec(stdout)?.[1] ?? NaN);
    return v('Udp6InDatagrams') + v('Udp6NoPorts');
  }
  const lines = stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const [head, values] = [lines[0]!.split(/\s+/), lines[1]!.split(/\s+/).map(Number)];
  return values[head.indexOf('InDatagrams')]! + values[head.indexOf('NoPorts')]!;
}
