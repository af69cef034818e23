// A hypervisor in miniature for vm.frames: a switch in the root namespace (a Linux bridge
// with IPv6 link-local on and no IPv4 address, or OVS on the userspace datapath) with three
// veth ports. Two stand for VMs' taps (VM A, VM B): their other end sits in a namespace, as a
// tap's other side is the guest. The third is the uplink to a peer namespace. Each namespace
// has its own MAC, IPv4 and IPv6 addresses; none sends ICMP errors, and the peer and the VMs
// know each other's MACs (permanent entries), so the tests count exactly what they send.
//
//   const lab = await buildFramesLab(t, 'linux');
//   await lab.sendUdp(lab.peer, lab.a, { port: 9, count: 100 });
//   const drop = await lab.dropRule('ether daddr ' + lab.a.mac + ' udp dport 10');  // nft bridge
//   const host = await lab.addHost();  // the host's address on the bridge, A's gateway
import { fileURLToPath } from 'node:url';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { createLinuxBridge, type Bridge } from '../lab/bridge.js';
import { newLabName, sweepLabLeftovers } from '../lab/names.js';
import { createOvsBridge, startOvs, type OvsBridge } from '../lab/ovs.js';
import type { UdpSendOptions, UdpSendResult } from '../lab/udp-send.js';
import { run, type CommandResult, type TeardownHost } from './netns.js';

export interface FramesHost {
  /** Its namespace. */
  readonly ns: string;
  /** The veth end on the switch (a VM's "tap", or the uplink). */
  readonly port: string;
  /** The veth end inside the namespace. */
  readonly dev: string;
  readonly mac: string;
  readonly ip4: string;
  /** Its global IPv6 address (added by `addGlobal` for hosts built without it). */
  readonly ip6: string;
  /** Its IPv6 link-local address. */
  linkLocal: string;
  exec(argv: string[]): Promise<CommandResult>;
}

export interface FramesLab {
  readonly kind: 'linux' | 'ovs';
  readonly bridge: Bridge;
  readonly ovs: OvsBridge | undefined;
  readonly a: FramesHost;
  readonly b: FramesHost;
  readonly peer: FramesHost;
  /** Numbered UDP datagrams from one host to another's IPv4 address. */
  sendUdp(from: FramesHost, to: Pick<FramesHost, 'ip4'>, o: Omit<UdpSendOptions, 'to'>): Promise<UdpSendResult>;
  /** Numbered UDP datagrams from one host to another for `seconds`, `perTick` of them every millisecond or so. */
  stream(from: FramesHost, to: FramesHost, o: { seconds: number; perTick: number; size: number; port: number }): Promise<{ sent: number }>;
  /**
   * An nft bridge-family drop rule (Linux bridge) with a counter, on the `forward` hook (between
   * ports) unless said: `input` (up to the bridge's own device), `output` (down from it).
   * Returns how to read its packets.
   */
  dropRule(match: string, hook?: 'forward' | 'input' | 'output'): Promise<() => Promise<number>>;
  /** An OpenFlow drop rule (OVS) with its own cookie: returns how to read its packets. */
  dropFlow(match: string): Promise<() => Promise<number>>;
  /** Adds `host.ip6` and waits for its duplicate address detection to end. */
  addGlobal(host: FramesHost): Promise<void>;
  /**
   * Gives the host (ebpfnet's namespace) an address on the switch, on its own port (the Linux
   * bridge's device, the OVS bridge's internal port): A's gateway, and every namespace and the
   * host know each other's MACs. Its `ns` is '' and `exec` runs in ebpfnet's namespace.
   */
  addHost(): Promise<FramesHost>;
}

const UDP_SEND = fileURLToPath(new URL('../lab/udp-send.js', import.meta.url));

/** A rule counter once it reads `expected` or 4 s have passed (OVS folds datapath statistics into its rules about once a second). */
export async function settled(read: () => Promise<number>, expected: number): Promise<number> {
  let last = await read();
  for (let i = 0; i < 40 && last !== expected; i++) {
    await delay(100);
    last = await read();
  }
  return last;
}

/** Until no address of the namespace is tentative (DAD done), at most 5 s. */
async function dadDone(ns: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    const r = await run(['ip', '-n', ns, '-6', 'addr', 'show', 'tentative']);
    if (r.stdout.trim() === '') return;
    await delay(20);
  }
  throw new Error(`IPv6 addresses in ${ns} still tentative after 5s`);
}

/** The link-local address, once the kernel has made it (when the link came up) and DAD is done. */
async function linkLocalOf(ns: string, dev: string): Promise<string> {
  for (let i = 0; i < 250; i++) {
    const r = await run(['ip', '-n', ns, '-j', '-6', 'addr', 'show', 'dev', dev, 'scope', 'link']);
    // iproute2 leaves an empty object in addr_info for each address the scope filter skipped.
    const addr = (JSON.parse(r.stdout) as Array<{ addr_info?: Array<{ local?: string }> }>)[0]?.addr_info?.find((x) => x.local)?.local;
    if (addr) {
      await dadDone(ns);
      return addr;
    }
    await delay(20);
  }
  throw new Error(`no IPv6 link-local address on ${dev} in ${ns} after 5s`);
}

/** Builds the lab and registers its removal with `t.after`. A is built without its global IPv6 address. */
export async function buildFramesLab(t: TeardownHost, kind: 'linux' | 'ovs'): Promise<FramesLab> {
  await sweepLabLeftovers();
  const undo: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const step of undo.reverse()) await step().catch(() => undefined);
  });
  const lab = newLabName();
  let bridge: Bridge;
  let ovs: OvsBridge | undefined;
  if (kind === 'ovs') {
    const daemons = await startOvs();
    undo.push(() => daemons.stop());
    ovs = await createOvsBridge(undefined, lab.dev('b'));
    bridge = ovs;
  } else {
    bridge = await createLinuxBridge(undefined, lab.dev('b'));
    // As on a real host: IPv6 link-local on the bridge, no IPv4 address.
    await writeFile(`/proc/sys/net/ipv6/conf/${bridge.name}/disable_ipv6`, '0');
  }
  undo.push(() => bridge.teardown());

  const net = `10.251.${process.pid % 250}`;
  const net6 = `fd00:eb:${(process.pid % 65536).toString(16)}:`;
  const host = async (index: number, kindOfPort: 't' | 'v', withGlobal: boolean): Promise<FramesHost> => {
    const names = newLabName();
    const ns = names.name;
    const port = names.dev(kindOfPort);
    const dev = names.dev('p');
    const mac = `02:eb:00:00:00:${(index + 1).toString(16).padStart(2, '0')}`;
    undo.push(async () => {
      await bridge.delPort(port);
      await execa('ip', ['netns', 'del', ns], { reject: false, stdin: 'ignore' });
      await execa('ip', ['link', 'del', port], { reject: false, stdin: 'ignore' });
    });
    const exec = (argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv]);
    await run(['ip', 'netns', 'add', ns]);
    await run(['ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', dev, 'netns', ns]);
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    await run(['ip', '-n', ns, 'link', 'set', dev, 'address', mac]);
    await run(['ip', '-n', ns, 'addr', 'add', `${net}.${index + 1}/24`, 'dev', dev]);
    if (withGlobal) await run(['ip', '-n', ns, 'addr', 'add', `${net6}:${index + 1}/64`, 'dev', dev]);
    // OVS's userspace datapath forwards a checksum left to offload unfinished: compute it here.
    if (kind === 'ovs') await exec(['ethtool', '-K', dev, 'tx', 'off']);
    // No ICMP errors: the tests count the frames they send, not the answers to them.
    await exec(['nft', 'add', 'table', 'inet', 'quiet']);
    await exec(['nft', 'add', 'chain', 'inet', 'quiet', 'out', '{ type filter hook output priority 0; }']);
    await exec(['nft', 'add', 'rule', 'inet', 'quiet', 'out', 'icmp', 'type', 'destination-unreachable', 'drop']);
    await exec(['nft', 'add', 'rule', 'inet', 'quiet', 'out', 'icmpv6', 'type', 'destination-unreachable', 'drop']);
    await run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    await bridge.addPort(port);
    return { ns, port, dev, mac, ip4: `${net}.${index + 1}`, ip6: `${net6}:${index + 1}`, linkLocal: '', exec };
  };
  const peer = await host(0, 'v', true);
  const a = await host(1, 't', false);
  const b = await host(2, 't', true);
  if (kind === 'linux') await waitForwarding([peer, a, b].map((h) => h.port));
  for (const h of [peer, a, b]) h.linkLocal = await linkLocalOf(h.ns, h.dev);
  const pin = (from: FramesHost, to: FramesHost) => from.exec(['ip', 'neigh', 'replace', to.ip4, 'lladdr', to.mac, 'dev', from.dev, 'nud', 'permanent']);
  for (const vm of [a, b]) {
    await pin(peer, vm);
    await pin(vm, peer);
    // The switch learns where each MAC is before any test counts.
    await vm.exec(['ping', '-c', '1', '-W', '1', peer.ip4]);
  }

  let table: string | undefined;
  const chains = new Set<string>();
  let cookie = 0xeb00;
  return {
    kind,
    bridge,
    ovs,
    a,
    b,
    peer,
    async sendUdp(from, to, o) {
      const r = await from.exec([process.execPath, UDP_SEND, JSON.stringify({ ...o, to: to.ip4 })]);
      return JSON.parse(r.stdout) as UdpSendResult;
    },
    async stream(from, to, o) {
      const script = `
        const s = require('node:dgram').createSocket('udp4'); const end = Date.now() + ${o.seconds * 1000}; let n = 0;
        function tick() { for (let i = 0; i < ${o.perTick}; i++) { const b = Buffer.alloc(${o.size}); b.writeUInt32BE(n++, 0); s.send(b, ${o.port}, '${to.ip4}'); }
          if (Date.now() < end) setTimeout(tick, 1); else s.close(() => console.log(n)); }
        tick();`;
      const r = await from.exec([process.execPath, '-e', script]);
      return { sent: Number(r.stdout.trim()) };
    },
    async dropRule(match, hook = 'forward') {
      if (!table) {
        const name = `ebpfnet_frames_${process.pid}`;
        undo.push(() => execa('nft', ['delete', 'table', 'bridge', name], { reject: false, stdin: 'ignore' }));
        await run(['nft', 'add', 'table', 'bridge', name]);
        table = name;
      }
      if (!chains.has(hook)) {
        await run(['nft', 'add', 'chain', 'bridge', table, hook, `{ type filter hook ${hook} priority 0; }`]);
        chains.add(hook);
      }
      const added = await run(['nft', '--echo', '--handle', 'add', 'rule', 'bridge', table, hook, ...match.split(' '), 'counter', 'drop']);
      const handle = Number(/# handle (\d+)/.exec(added.stdout)?.[1]);
      if (!handle) throw new Error(`no handle for the nft rule: ${added.stdout}`);
      const name = table;
      return async () => {
        const listed = JSON.parse((await run(['nft', '-j', 'list', 'chain', 'bridge', name, hook])).stdout) as { nftables: Array<{ rule?: { handle: number; expr: Array<{ counter?: { packets: number } }> } }> };
        const rule = listed.nftables.find((x) => x.rule?.handle === handle)?.rule;
        const counter = rule?.expr.find((e) => e.counter)?.counter;
        if (!counter) throw new Error(`nft rule ${handle} has no counter`);
        return counter.packets;
      };
    },
    async dropFlow(match) {
      if (!ovs) throw new Error('dropFlow needs the OVS lab');
      const c = `0x${(cookie++).toString(16)}`;
      await ovs.addFlow(`cookie=${c},priority=200,${match},actions=drop`);
      return async () => {
        const out = (await run(['ovs-ofctl', 'dump-flows', ovs!.name, `cookie=${c}/-1`])).stdout;
        const n = /n_packets=(\d+)/.exec(out)?.[1];
        if (n === undefined) throw new Error(`no flow with cookie ${c}: ${out}`);
        return Number(n);
      };
    },
    async addGlobal(h) {
      await run(['ip', '-n', h.ns, 'addr', 'add', `${h.ip6}/64`, 'dev', h.dev]);
      await dadDone(h.ns);
    },
    async addHost() {
      // The device is the lab's (named by its pid): removing the bridge removes its address too.
      const dev = bridge.name;
      const ip4 = `${net}.254`;
      await run(['ip', 'addr', 'add', `${ip4}/24`, 'dev', dev]);
      await run(['ip', 'link', 'set', dev, 'up']);
      const mac = (await readFile(`/sys/class/net/${dev}/address`, 'utf8')).trim();
      const hostSide: FramesHost = { ns: '', port: dev, dev, mac, ip4, ip6: '', linkLocal: '', exec: (argv) => run(argv) };
      for (const h of [peer, a, b]) {
        await run(['ip', 'neigh', 'replace', h.ip4, 'lladdr', h.mac, 'dev', dev, 'nud', 'permanent']);
        await h.exec(['ip', 'neigh', 'replace', ip4, 'lladdr', mac, 'dev', h.dev, 'nud', 'permanent']);
      }
      await a.exec(['ip', 'route', 'add', 'default', 'via', ip4]);
      // The switch learns where the host's MAC is (OVS's NORMAL flow floods until it does).
      await a.exec(['ping', '-c', '1', '-W', '1', ip4]);
      return hostSide;
    },
  };
}

/** Until every port of the Linux bridge forwards (state 3). */
async function waitForwarding(ports: string[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const states = await Promise.all(ports.map((p) => execa('cat', [`/sys/class/net/${p}/brport/state`], { reject: false }).then((r) => String(r.stdout).trim())));
    if (states.every((s) => s === '3')) return;
    await delay(20);
  }
  throw new Error(`the bridge's ports do not forward after 2s`);
}
