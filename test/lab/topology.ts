// The lab's host: a bridge (Open vSwitch on the netdev datapath, or a Linux bridge) with real
// VMs on taps and a far-end peer, a network namespace plugged in by a veth pair, all in one
// /24 that nothing outside the bridge routes to. Traffic between the peer and the VMs never
// leaves the bridge.
//
//   const lab = await buildLabTopology(t, { bridge: 'ovs' });
//   await lab.peer.ping(lab.vm.ip, { count: 5 });
//   await lab.peer.sendUdp({ to: lab.vm.ip, port: 9, count: 100 });
//   await lab.teardown();            // also registered with t.after; safe twice
//
//        peer netns (<x>.1) ── veth ──┐
//                                     bridge ── tap ── QEMU guest (<x>.2, <x>.3, …)
//
// As a hypervisor (the defaults stay the exact-counting lab above):
//   buildLabTopology(t, { bridge: 'linux', vms: 2, hostIpv6: true, uplinkMtu: 9000,
//     vmOptions: (i, a) => (i === 0 ? { ipv6: a.ipv6, noise: true, guestAgent: true } : {}) });
// hostIpv6: IPv6 stays on the bridge, taps and the uplink veth (link-local addresses only; no
// IPv4 address and no neighbour entry of the host for any VM). uplinkMtu: the peer's veth (both
// ends) and the bridge at that MTU, the taps at 1500. When a VM has IPv6, the peer has
// <subnet6>::1/64 too.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { run, type CommandResult, type PingOptions, type PingResult, type TeardownHost } from '../helpers/netns.js';
import { createLinuxBridge, disableIpv6, type Bridge } from './bridge.js';
import { newLabName, parseJsonList, sweepLabLeftovers } from './names.js';
import { createOvsBridge, startOvs, type OvsBridge, type OvsDatapathType } from './ovs.js';
import type { UdpSendOptions, UdpSendResult } from './udp-send.js';
import { bootVm, type Vm, type VmOptions } from './vm.js';

export type LabVmOptions = Omit<VmOptions, 'ip' | 'bridge' | 'name' | 'tap' | 'gateway'>;

export interface LabTopologyOptions {
  bridge: 'ovs' | 'linux';
  /** The OVS bridge's datapath (default ovsDatapath(): the kernel's where openvswitch.ko loads). */
  ovsDatapath?: OvsDatapathType;
  /** How many VMs to boot on the bridge (default 1; they boot in parallel). */
  vms?: number;
  /** Options for every VM (address, tap, bridge and name are set here). */
  vm?: LabVmOptions;
  /**
   * Options of VM `i` (0-based) over `vm`, e.g. noise on one VM only. `addrs` are the VM's lab
   * addresses: `ip` is the one it gets, `ipv6` one to give it (`{ ipv6: addrs.ipv6 }`).
   */
  vmOptions?: (i: number, addrs: { ip: string; ipv6: string }) => Partial<LabVmOptions>;
  /** Every VM gets its lab IPv6 address (vmOptions may still change it). */
  ipv6?: boolean;
  /** Keep IPv6 on the bridge, taps and uplink veth, as a real host (link-local only). */
  hostIpv6?: boolean;
  /** MTU of the uplink: the peer's veth, both ends, and the bridge itself (taps stay 1500). */
  uplinkMtu?: number;
}

export interface Peer {
  /** The namespace. */
  readonly ns: string;
  /** The veth end inside the namespace. */
  readonly dev: string;
  /** The veth end plugged into the bridge. */
  readonly hostDev: string;
  readonly ip: string;
  /** <subnet6>::1 when a VM of the topology has IPv6, else undefined. */
  readonly ip6: string | undefined;
  readonly mac: string;
  /** Runs a command inside the namespace (argument array); rejects on failure. */
  exec(argv: string[]): Promise<CommandResult>;
  /** Pings from the namespace; resolves with the counts even when replies are lost. */
  ping(target: string, opts?: PingOptions): Promise<PingResult>;
  /** Sends numbered UDP datagrams from the namespace (see udp-send.ts; IPv6 targets too). */
  sendUdp(opts: UdpSendOptions): Promise<UdpSendResult>;
  /** A permanent ARP entry, so that no ARP request precedes the traffic tests count. */
  pinNeighbor(ip: string, mac: string): Promise<void>;
  /** A counter of the veth end in the namespace (`rx_packets`, ...). */
  counter(name: string): Promise<number>;
}

export interface LabTopology {
  /** ebpfnet-lab-<pid>-<n>: also the peer's namespace. */
  readonly name: string;
  /** e.g. 10.250.17.0/24 */
  readonly subnet: string;
  /** e.g. fd00:250:17::/64: the VMs' IPv6 prefix (used when a VM has IPv6). */
  readonly subnet6: string;
  readonly bridge: Bridge;
  /** The bridge as an OVS bridge (flows, port counters), when it is one. */
  readonly ovs: OvsBridge | undefined;
  readonly peer: Peer;
  readonly vms: Vm[];
  /** The first VM. */
  readonly vm: Vm;
  /** Removes VMs, peer, bridge and the OVS daemons this topology started; safe twice. */
  teardown(): Promise<void>;
}

const UDP_SEND = fileURLToPath(new URL('./udp-send.js', import.meta.url));

export async function buildLabTopology(t: TeardownHost | undefined, opts: LabTopologyOptions): Promise<LabTopology> {
  await sweepLabLeftovers();
  const lab = newLabName();
  // Undone in reverse order by teardown (the tests' after hooks would run in the wrong order).
  const undo: Array<() => Promise<void>> = [];
  let tornDown = false;
  const teardown = async () => {
    if (tornDown) return;
    tornDown = true;
    for (const step of undo.reverse()) await step().catch(() => undefined);
  };
  t?.after(teardown);

  try {
    let bridge: Bridge;
    let ovs: OvsBridge | undefined;
    const bridgeOpts = { hostIpv6: opts.hostIpv6, mtu: opts.uplinkMtu };
    if (opts.bridge === 'ovs') {
      const daemons = await startOvs();
      undo.push(() => daemons.stop());
      ovs = await createOvsBridge(undefined, lab.dev('b'), { ...bridgeOpts, ...(opts.ovsDatapath ? { datapath: opts.ovsDatapath } : {}) });
      bridge = ovs;
    } else {
      bridge = await createLinuxBridge(undefined, lab.dev('b'), bridgeOpts);
    }
    undo.push(() => bridge.teardown());

    const base = await freeSubnet(lab.name);
    const prefix6 = `fd00:250:${base.split('.')[2]}::`;
    const vmOpts = Array.from({ length: opts.vms ?? 1 }, (_, i) => {
      const addrs = { ip: `${base}.${i + 2}/24`, ipv6: `${prefix6}${i + 2}/64` };
      return { ...(opts.ipv6 ? { ipv6: addrs.ipv6 } : {}), ...opts.vm, ...opts.vmOptions?.(i, addrs), ip: addrs.ip };
    });
    const [peerNs, peerHostDev] = [lab.name, lab.dev('v')];
    // Registered before building, so that a half-built peer is removed too.
    undo.push(async () => {
      // Unplug first: removing the namespace removes both veth ends under OVS's feet.
      await bridge.delPort(peerHostDev);
      await execa('ip', ['netns', 'del', peerNs], { reject: false, stdin: 'ignore' });
      await execa('ip', ['link', 'del', peerHostDev], { reject: false, stdin: 'ignore' });
    });
    const peer = await createPeer(peerNs, peerHostDev, lab.dev('p'), bridge, {
      ip: `${base}.1`,
      ip6: vmOpts.some((o) => o.ipv6) ? `${prefix6}1` : undefined,
      mtu: opts.uplinkMtu,
    });

    // VMs boot side by side (one vCPU thread each); any that booted is stopped on failure.
    const booting = await Promise.allSettled(
      vmOpts.map((o) =>
        bootVm(undefined, {
          // checksums: see createPeer (the same holds for what the guest sends).
          checksumOffload: bridge.kind !== 'ovs',
          ...o,
          gateway: peer.ip,
          bridge,
        }),
      ),
    );
    const vms: Vm[] = [];
    for (const b of booting) {
      if (b.status === 'fulfilled') {
        undo.push(() => b.value.stop());
        vms.push(b.value);
      }
    }
    const failed = booting.find((b): b is PromiseRejectedResult => b.status === 'rejected');
    if (failed) throw failed.reason;
    if (peer.ip6) await waitForDad(peer);
    return { name: lab.name, subnet: `${base}.0/24`, subnet6: `${prefix6}/64`, bridge, ovs, peer, vms, vm: vms[0]!, teardown };
  } catch (err) {
    await teardown();
    throw err;
  }
}

async function createPeer(ns: string, hostDev: string, dev: string, bridge: Bridge, addrs: { ip: string; ip6?: string; mtu?: number }): Promise<Peer> {
  const { ip, ip6 } = addrs;
  await run(['ip', 'netns', 'add', ns]);
  await run(['ip', 'link', 'add', hostDev, 'type', 'veth', 'peer', 'name', dev]);
  if (addrs.mtu) {
    await run(['ip', 'link', 'set', hostDev, 'mtu', String(addrs.mtu)]);
    await run(['ip', 'link', 'set', dev, 'mtu', String(addrs.mtu)]);
  }
  await run(['ip', 'link', 'set', dev, 'netns', ns]);
  const inNs = (argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv]);
  // The peer speaks IPv6 only to VMs that do: otherwise its RS, MLD and DAD would join what tests count.
  if (!ip6) await inNs(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
  // The userspace datapath reads frames from the veth with AF_PACKET and writes them to the
  // tap as they are: a UDP/TCP checksum left to offload would reach the guest unfinished, and
  // the guest would drop the datagram (Udp InCsumErrors). So the peer computes checksums.
  if (bridge.kind === 'ovs') await inNs(['ethtool', '-K', dev, 'tx', 'off']);
  await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  await run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
  await run(['ip', '-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev]);
  if (ip6) await run(['ip', '-n', ns, 'addr', 'add', `${ip6}/64`, 'dev', dev]);
  if (!bridge.hostIpv6) await disableIpv6(hostDev);
  await bridge.addPort(hostDev);
  const mac = parseJsonList((await run(['ip', '-n', ns, '-j', 'link', 'show', dev])).stdout)[0]?.address;
  return {
    ns,
    dev,
    hostDev,
    ip,
    ip6,
    mac: typeof mac === 'string' ? mac : '',
    exec: inNs,
    ping: (target, o = {}) => pingFromNs(ns, dev, target, o),
    async sendUdp(o) {
      const r = await inNs([process.execPath, UDP_SEND, JSON.stringify(o)]);
      return JSON.parse(r.stdout) as UdpSendResult;
    },
    async pinNeighbor(neighborIp, neighborMac) {
      await inNs(['ip', 'neigh', 'replace', neighborIp, 'lladdr', neighborMac, 'dev', dev, 'nud', 'permanent']);
    },
    async counter(name) {
      if (!/^[a-z_]+$/.test(name)) throw new Error(`not a counter name: ${name}`);
      return Number((await inNs(['cat', `/sys/class/net/${dev}/statistics/${name}`])).stdout.trim());
    },
  };
}

/** Waits until the peer's IPv6 addresses passed duplicate address detection (a second or two). */
async function waitForDad(peer: Peer): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const out = (await peer.exec(['ip', '-6', 'addr', 'show', 'dev', peer.dev])).stdout;
    if (/dadfailed/.test(out)) throw new Error(`peer ${peer.ns}: duplicate address detection failed: ${out}`);
    if (!/tentative/.test(out)) return;
    if (Date.now() > deadline) throw new Error(`peer ${peer.ns}: IPv6 addresses still tentative after 10 s: ${out}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function pingFromNs(ns: string, dev: string, target: string, o: PingOptions): Promise<PingResult> {
  const argv = ['-n', '-q', '-I', dev, '-c', String(o.count ?? 5), '-W', String(o.wait ?? 1), '-i', String(o.interval ?? 0.05)];
  if (o.size !== undefined) argv.push('-s', String(o.size));
  if (o.deadline !== undefined) argv.push('-w', String(Math.max(1, Math.round(o.deadline))));
  const r = await execa('ip', ['netns', 'exec', ns, 'ping', ...argv, target], { reject: false, stdin: 'ignore', env: { LC_ALL: 'C' } });
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(String(r.stdout));
  if (!m) throw new Error(`ping ${target} in ${ns} printed no summary (exit ${r.exitCode}): ${String(r.stderr).trim()}`);
  return { transmitted: Number(m[1]), received: Number(m[2]), exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * A 10.250.x.0/24 that no address or route of the root namespace uses (the peer and the VMs
 * are in their own namespaces, but a clash would still confuse whoever reads the addresses).
 */
async function freeSubnet(seed: string): Promise<string> {
  const used = new Set<string>();
  const addrs = parseJsonList((await run(['ip', '-j', '-4', 'addr', 'show'])).stdout);
  for (const link of addrs) {
    for (const a of (link.addr_info as Array<{ local?: string }> | undefined) ?? []) {
      if (a.local) used.add(a.local.split('.').slice(0, 3).join('.'));
    }
  }
  for (const r of parseJsonList((await run(['ip', '-j', '-4', 'route', 'show'])).stdout)) {
    if (typeof r.dst === 'string') used.add(r.dst.split('/')[0]!.split('.').slice(0, 3).join('.'));
  }
  const start = createHash('sha256').update(seed).digest().readUInt8(0);
  for (let i = 0; i < 256; i++) {
    const base = `10.250.${(start + i) % 256}`;
    if (!used.has(base)) return base;
  }
  throw new Error('no free 10.250.x.0/24 subnet for a lab topology');
}
