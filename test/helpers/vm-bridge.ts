// A hypervisor's bridge in miniature, for drops scoped to one VM: a Linux bridge (IPv6
// link-local on, no IPv4 address: the host takes no part, as on a real hypervisor) or an OVS
// netdev bridge in the root namespace, with namespaces standing for VM A, VM B and an uplink
// peer, each on a veth port with its own MAC, IPv4 and IPv6 address (unique to this process,
// since a scope by MAC or address matches drops anywhere on the host). A namespace's own
// kernel stands for a guest's: the noise it sends is what a guest puts on the wire.
//
//   const lab = await createVmBridge(t, 'linux');
//   await lab.noise(lab.a);                       // mDNS, MLD, ARP/ND towards the uplink
//   await lab.send(lab.peer, lab.a.ip4, 7777, 20); // UDP datagrams, peer -> A
import { execa, type ResultPromise } from 'execa';
import { writeFile } from 'node:fs/promises';
import type { TeardownHost } from './netns.js';
import { run } from './netns.js';
import { createLinuxBridge, type Bridge } from '../lab/bridge.js';
import { newLabName, sweepLabLeftovers } from '../lab/names.js';
import { createOvsBridge, startOvs } from '../lab/ovs.js';
import { canonicalAddress } from '../../engine/target/addresses.js';

export interface LabHost {
  readonly role: 'a' | 'b' | 'peer';
  readonly ns: string;
  /** The device inside the namespace. */
  readonly dev: 'eth0';
  /** The veth end on the bridge (the VM's "tap"). */
  readonly port: string;
  readonly mac: string;
  readonly ip4: string;
  readonly ip6: string;
  inNs(argv: string[]): Promise<{ stdout: string; stderr: string }>;
}

export interface VmBridge {
  readonly kind: 'linux' | 'ovs';
  readonly bridge: Bridge;
  readonly a: LabHost;
  readonly b: LabHost;
  readonly peer: LabHost;
  /** The scope params of a VM: its MAC, both addresses and its port. */
  scopeOf(h: LabHost): { vm_macs: string[]; vm_ips: string[]; vm_devs: string[] };
  /** Multicast and neighbour noise a guest makes: mDNS (IPv4 and IPv6), an MLD join and leave, ARP and ND towards the uplink. */
  noise(h: LabHost): Promise<void>;
  /** `count` UDP datagrams from `from` to `to`:`port`, `intervalMs` apart. */
  send(from: LabHost, to: string, port: number, count: number, intervalMs?: number): Promise<void>;
  /** A UDP listener on `port` (IPv4 and IPv6) in `h`, so the noise's datagrams are received, not dropped. */
  listen(h: LabHost, port: number): Promise<void>;
  teardown(): Promise<void>;
}

const node = process.execPath;

/** Sends datagrams from inside a namespace: argv [to, port, count, intervalMs, payload]. */
const SENDER = `
const [to, port, count, interval] = process.argv.slice(1); const dgram = require('node:dgram');
const s = dgram.createSocket(to.includes(':') ? 'udp6' : 'udp4'); const buf = Buffer.alloc(48, 120);
let n = 0; const next = () => { if (n++ >= +count) return s.close(); s.send(buf, +port, to, () => setTimeout(next, +interval)); }; next();`;

/** mDNS to 224.0.0.251 and ff02::fb, an MLD join/leave of ff02::1:3 (LLMNR): argv [ip4, dev]. */
const MULTICAST = `
const [ip4, dev] = process.argv.slice(1); const dgram = require('node:dgram'); const q = Buffer.from('mdns-like query');
const s4 = dgram.createSocket('udp4'); const s6 = dgram.createSocket({ type: 'udp6', reuseAddr: true });
s4.bind(0, () => { s4.setMulticastInterface(ip4); for (let i = 0; i < 3; i++) s4.send(q, 5353, '224.0.0.251'); });
s6.bind(0, () => { s6.setMulticastInterface('::%' + dev); for (let i = 0; i < 3; i++) s6.send(q, 5353, 'ff02::fb%' + dev);
  s6.addMembership('ff02::1:3', '::%' + dev); setTimeout(() => { s6.dropMembership('ff02::1:3', '::%' + dev); s4.close(); s6.close(); }, 300); });`;

const LISTENER = `
const port = +process.argv[1]; const dgram = require('node:dgram');
for (const type of ['udp4', 'udp6']) { const s = dgram.createSocket({ type, ipv6Only: type === 'udp6' }); s.on('message', () => {}); s.bind(port); }
console.log('listening');`;

/**
 * The MAC and addresses of host number `host` of this process's lab, unique to the process:
 * 198.18/15 (benchmarking) and fdeb:<pid>::/64. Peer 1, A 2, B 3; tests add more.
 */
export function labAddresses(host: number): { mac: string; ip4: string; ip6: string } {
  const pid = process.pid;
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return {
    mac: `02:eb:${hex((pid >> 16) & 0xff)}:${hex((pid >> 8) & 0xff)}:${hex(pid & 0xff)}:${hex(host)}`,
    ip4: `198.${18 + ((pid >> 8) & 1)}.${pid & 0xff}.${host}`,
    // Spelled as the kernel prints it (a zero group compressed): tests compare it with what probes saw.
    ip6: canonicalAddress(`fdeb:${(pid & 0xffff).toString(16)}:${((pid >> 16) & 0xffff).toString(16)}::${host}`),
  };
}

async function addHost(role: LabHost['role'], bridge: Bridge, undo: Array<() => Promise<void>>): Promise<LabHost> {
  const names = newLabName();
  const ns = names.name;
  const port = names.dev('v');
  const { mac, ip4, ip6 } = labAddresses({ peer: 1, a: 2, b: 3 }[role]);
  undo.push(async () => {
    await bridge.delPort(port);
    await execa('ip', ['netns', 'del', ns], { reject: false, stdin: 'ignore' });
    await execa('ip', ['link', 'del', port], { reject: false, stdin: 'ignore' });
  });
  const inNs = (argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv]);
  await run(['ip', 'netns', 'add', ns]);
  await run(['ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', names.dev('p')]);
  await run(['ip', 'link', 'set', names.dev('p'), 'netns', ns]);
  await run(['ip', '-n', ns, 'link', 'set', names.dev('p'), 'name', 'eth0', 'address', mac]);
  await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  // A userspace switch writes frames back as it read them: checksums left to offload would
  // arrive unfinished, and the receiver would drop them (UDP_CSUM). So the hosts compute them.
  if (bridge.kind === 'ovs') await inNs(['ethtool', '-K', 'eth0', 'tx', 'off']);
  await run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
  await run(['ip', '-n', ns, 'addr', 'add', `${ip4}/24`, 'dev', 'eth0']);
  await run(['ip', '-n', ns, 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad']);
  await bridge.addPort(port);
  return { role, ns, dev: 'eth0', port, mac, ip4, ip6, inNs };
}

/** Builds the bridge and its three hosts; teardown is registered with `t.after` and is safe twice. */
export async function createVmBridge(t: TeardownHost, kind: 'linux' | 'ovs'): Promise<VmBridge> {
  await sweepLabLeftovers();
  const undo: Array<() => Promise<void>> = [];
  const children: ResultPromise[] = [];
  let tornDown = false;
  const teardown = async () => {
    if (tornDown) return;
    tornDown = true;
    for (const c of children) c.kill('SIGKILL');
    await Promise.allSettled(children);
    for (const step of undo.reverse()) await step().catch(() => undefined);
  };
  t.after(teardown);
  try {
    let bridge: Bridge;
    if (kind === 'ovs') {
      const daemons = await startOvs();
      undo.push(() => daemons.stop());
      bridge = await createOvsBridge(undefined, newLabName().dev('b'));
    } else {
      bridge = await createLinuxBridge(undefined, newLabName().dev('b'));
      // As on a hypervisor: IPv6 link-local on the bridge (the host's stack sees the guests'
      // multicast), no IPv4 address.
      await writeFile(`/proc/sys/net/ipv6/conf/${bridge.name}/disable_ipv6`, '0');
    }
    undo.push(() => bridge.teardown());
    const peer = await addHost('peer', bridge, undo);
    const a = await addHost('a', bridge, undo);
    const b = await addHost('b', bridge, undo);
    const lab: VmBridge = {
      kind,
      bridge,
      a,
      b,
      peer,
      scopeOf: (h) => ({ vm_macs: [h.mac], vm_ips: [h.ip4, h.ip6], vm_devs: [h.port] }),
      async noise(h) {
        await h.inNs(['ip', 'neigh', 'flush', 'dev', 'eth0']);
        await h.inNs([node, '-e', MULTICAST, h.ip4, 'eth0']);
        // ARP and ND before the datagrams reach the uplink's listener.
        await h.inNs([node, '-e', SENDER, peer.ip4, '9', '2', '5']);
        await h.inNs([node, '-e', SENDER, peer.ip6, '9', '2', '5']);
      },
      async send(from, to, port, count, intervalMs = 5) {
        await from.inNs([node, '-e', SENDER, to, String(port), String(count), String(intervalMs)]);
      },
      async listen(h, port) {
        const child = execa('ip', ['netns', 'exec', h.ns, node, '-e', LISTENER, String(port)], { stdin: 'ignore', reject: false });
        children.push(child);
        await new Promise<void>((resolve, reject) => {
          child.stdout!.once('data', () => resolve());
          child.once('exit', () => reject(new Error(`the UDP listener in ${h.ns} exited`)));
        });
      },
      teardown,
    };
    // Every host has its neighbours' MACs learnt, and the uplink listens for the noise.
    await lab.listen(peer, 9);
    return lab;
  } catch (err) {
    await teardown();
    throw err;
  }
}

/** The packets an nftables table's rules counted, summed (`nft -j list table`). */
export async function nftCounted(family: string, table: string): Promise<number> {
  const out = JSON.parse((await run(['nft', '-j', 'list', 'table', family, table])).stdout) as { nftables: Array<Record<string, unknown>> };
  let packets = 0;
  for (const item of out.nftables) {
    const rule = item.rule as { expr?: Array<Record<string, unknown>> } | undefined;
    for (const e of rule?.expr ?? []) {
      const c = e.counter as { packets?: number } | undefined;
      if (c) packets += c.packets ?? 0;
    }
  }
  return packets;
}
