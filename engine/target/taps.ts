// One tap's facts: what sysfs says about it (ifindex, MAC, queues, counters,
// tun flags), what it is plugged into (an OVS bridge or a Linux bridge) and the
// way out of that bridge (its uplinks).
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { ovsPortOf, type LinkInfo, type NetView, type OvsSnapshot } from './netview.js';
import type { Attachment, ConfiguredInterface, TapFacts, Uplink } from './types.js';

const SYS_NET = '/sys/class/net';

/** What the VM's configuration says about a tap, beside what the host shows. */
export interface TapDescription {
  guestMac: string | null;
  model: string | null;
  vhost: boolean | null;
  configured?: ConfiguredInterface;
}

/** A name the kernel could give a device (IFNAMSIZ, no "/" or whitespace): safe in a sysfs path. */
export function isDeviceName(name: string): boolean {
  return /^[^/\s:]{1,15}$/.test(name) && name !== '.' && name !== '..';
}

async function sysText(dev: string, file: string): Promise<string | null> {
  try {
    return (await readFile(`${SYS_NET}/${dev}/${file}`, 'utf8')).trim();
  } catch {
    return null;
  }
}

async function sysNumber(dev: string, file: string): Promise<number | null> {
  const text = await sysText(dev, file);
  if (text === null) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

/** /sys/class/net/<dev>/statistics/*: every counter the kernel keeps for the device. */
export async function readCounters(dev: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const names = (await readdir(`${SYS_NET}/${dev}/statistics`).catch(() => [] as string[])).sort();
  const values = await Promise.all(names.map((name) => sysNumber(dev, `statistics/${name}`)));
  names.forEach((name, i) => {
    if (values[i] !== null) out[name] = values[i]!;
  });
  return out;
}

export async function readQueues(dev: string): Promise<{ rx: number; tx: number }> {
  const names = await readdir(`${SYS_NET}/${dev}/queues`).catch(() => [] as string[]);
  return { rx: names.filter((n) => n.startsWith('rx-')).length, tx: names.filter((n) => n.startsWith('tx-')).length };
}

// <linux/if_tun.h>
const TUN_FLAGS: Array<[number, string]> = [
  [0x0001, 'tun'],
  [0x0002, 'tap'],
  [0x0010, 'napi'],
  [0x0100, 'multi_queue'],
  [0x0800, 'persist'],
  [0x1000, 'no_pi'],
  [0x4000, 'vnet_hdr'],
];

export function decodeTunFlags(value: number): string[] {
  return TUN_FLAGS.filter(([bit]) => (value & bit) !== 0).map(([, name]) => name);
}

async function masterOf(dev: string): Promise<string | null> {
  try {
    const target = await readlink(`${SYS_NET}/${dev}/master`);
    return target.slice(target.lastIndexOf('/') + 1);
  } catch {
    return null;
  }
}

/** Whether a device of this namespace is a tun/tap (they alone have `tun_flags`). */
export function isTunDevice(name: string): boolean {
  return existsSync(`${SYS_NET}/${name}/tun_flags`);
}

/** What a kernel device is, as an uplink: physical, veth, bond, vlan, vxlan, ...; null for a tap or tun (a VM's port). */
export function linkKind(link: LinkInfo | undefined, name: string): string | null {
  if (link?.kind === 'tun' || isTunDevice(name)) return null;
  if (link?.kind) return link.kind;
  if (existsSync(`${SYS_NET}/${name}/device`)) return 'physical';
  return link ? 'other' : 'unknown';
}

/** OVS interface types that are a VM's port or the bridge's own, never a way out. */
const OVS_NOT_UPLINK = new Set(['internal', 'tap', 'dpdkvhostuser', 'dpdkvhostuserclient']);

/**
 * The bridge and every OVS bridge joined to it by patch ports (br-int and br-ex): frames cross
 * patch ports inside the datapath, so the ways out and the switch's ports are theirs too.
 */
export function patchedBridges(snapshot: OvsSnapshot, bridge: string): string[] {
  const seen = [bridge];
  for (let i = 0; i < seen.length; i++) {
    for (const port of snapshot.bridges.get(seen[i]!)?.ports ?? []) {
      for (const ifname of snapshot.ports.get(port)?.interfaces ?? []) {
        const iface = snapshot.interfaces.get(ifname);
        const peer = iface?.type === 'patch' ? iface.options.peer : undefined;
        const other = peer ? ovsPortOf(snapshot, peer)?.bridge : undefined;
        if (other && !seen.includes(other)) seen.push(other);
      }
    }
  }
  return seen;
}

function ovsUplinks(snapshot: OvsSnapshot, bridge: string, tap: string, links: Map<string, LinkInfo>): Uplink[] {
  const out: Uplink[] = [];
  const bridges = patchedBridges(snapshot, bridge);
  for (const br of bridges) {
    for (const port of snapshot.bridges.get(br)?.ports ?? []) {
      for (const ifname of snapshot.ports.get(port)?.interfaces ?? []) {
        const iface = snapshot.interfaces.get(ifname);
        if (ifname === tap || !iface || OVS_NOT_UPLINK.has(iface.type)) continue;
        if (iface.type === '' || iface.type === 'system') {
          const kind = linkKind(links.get(ifname), ifname);
          if (kind) out.push({ name: ifname, kind, ifindex: links.get(ifname)?.ifindex ?? null });
        } else if (iface.type === 'patch') {
          // The patch pair between the VM's bridge and the next one: a way out only where it leads off the joined bridges.
          const peer = iface.options.peer;
          const leadsOut = !peer || !bridges.includes(ovsPortOf(snapshot, peer)?.bridge ?? '');
          if (leadsOut || br === bridge) out.push({ name: ifname, kind: iface.type, ifindex: null, ...(peer ? { peer } : {}) });
        } else {
          // vxlan, geneve, gre, dpdk: ports OVS makes without a kernel device of that name.
          out.push({ name: ifname, kind: iface.type, ifindex: null });
        }
      }
    }
  }
  return out;
}

/**
 * The interfaces of OVS bridge `bridge`, and of the bridges patched to it, that are kernel
 * devices (not patch ports or tunnels, which OVS alone holds): internal ports (the host's own
 * ports of the switch) apart.
 */
function ovsKernelPorts(snapshot: OvsSnapshot, bridge: string, links: Map<string, LinkInfo>): { ports: string[]; hostPorts: string[] } {
  const ports: string[] = [];
  const hostPorts: string[] = [];
  for (const br of patchedBridges(snapshot, bridge)) {
    for (const port of snapshot.bridges.get(br)?.ports ?? []) {
      for (const ifname of snapshot.ports.get(port)?.interfaces ?? []) {
        if (!links.has(ifname) && !(isDeviceName(ifname) && existsSync(`${SYS_NET}/${ifname}`))) continue;
        (snapshot.interfaces.get(ifname)?.type === 'internal' ? hostPorts : ports).push(ifname);
      }
    }
  }
  return { ports: ports.sort(), hostPorts: hostPorts.sort() };
}

/** The ports of a Linux bridge (its brif/ in sysfs) other than `tap` that lead somewhere else. */
async function bridgeUplinks(tap: string, links: Map<string, LinkInfo>, ports: string[]): Promise<Uplink[]> {
  const out: Uplink[] = [];
  for (const port of ports) {
    if (port === tap) continue;
    const kind = linkKind(links.get(port), port);
    if (kind) out.push({ name: port, kind, ifindex: links.get(port)?.ifindex ?? (await sysNumber(port, 'ifindex')) });
  }
  return out;
}

/**
 * Where the tap is plugged in. OVS is asked first: on the kernel datapath a port's
 * master is `ovs-system`, but on the userspace (netdev) datapath the tap has no
 * master at all, so only OVS's database knows.
 */
async function attachmentOf(tap: string, master: string | null, view: NetView, notes: string[]): Promise<Attachment | null> {
  const ovs = await view.ovs();
  const links = await view.links();
  if (ovs.available) {
    const at = ovsPortOf(ovs.snapshot, tap);
    if (at) {
      const bridge = ovs.snapshot.bridges.get(at.bridge);
      return {
        kind: 'ovs',
        bridge: at.bridge,
        port: at.port,
        ofport: ovs.snapshot.interfaces.get(tap)?.ofport ?? null,
        datapathType: bridge?.datapathType ?? 'system',
        uplinks: ovsUplinks(ovs.snapshot, at.bridge, tap, links),
        ...ovsKernelPorts(ovs.snapshot, at.bridge, links),
      };
    }
  }
  if (master === 'ovs-system') {
    notes.push(`${tap} is an Open vSwitch port but its bridge is unknown (${ovs.available ? 'not in the OVS database' : ovs.reason})`);
    return null;
  }
  // A Linux bridge has a bridge/ folder in sysfs; no need for iproute2 to tell.
  if (master && existsSync(`${SYS_NET}/${master}/bridge`)) {
    const ports = (await readdir(`${SYS_NET}/${master}/brif`).catch(() => [] as string[])).sort();
    return { kind: 'linux-bridge', bridge: master, ifindex: await sysNumber(master, 'ifindex'), uplinks: await bridgeUplinks(tap, links, ports), ports, hostPorts: [master] };
  }
  if (master) notes.push(`${tap} is enslaved to ${master} (${links.get(master)?.kind ?? 'unknown kind'}), which is neither a bridge nor OVS`);
  return null;
}

/** Gathers one tap's facts; `notes` collects what could not be found out. */
export async function tapFacts(name: string, described: TapDescription, view: NetView, notes: string[]): Promise<TapFacts> {
  const configured = described.configured ? { configured: described.configured } : {};
  const ifindex = isDeviceName(name) ? await sysNumber(name, 'ifindex') : null;
  if (ifindex === null) {
    notes.push(`tap ${name} does not exist on this host`);
    return {
      name,
      present: false,
      ifindex: null,
      hostMac: null,
      guestMac: described.guestMac,
      model: described.model,
      vhost: described.vhost,
      mtu: null,
      operstate: null,
      flags: [],
      queues: { rx: 0, tx: 0 },
      counters: {},
      attachment: null,
      ...configured,
    };
  }
  const [tunFlags, master, hostMac, mtu, operstate, queues, counters] = await Promise.all([
    sysText(name, 'tun_flags'),
    masterOf(name),
    sysText(name, 'address'),
    sysNumber(name, 'mtu'),
    sysText(name, 'operstate'),
    readQueues(name),
    readCounters(name),
  ]);
  return {
    name,
    present: true,
    ifindex,
    hostMac: hostMac?.toLowerCase() ?? null,
    guestMac: described.guestMac,
    model: described.model,
    vhost: described.vhost,
    mtu,
    operstate,
    flags: tunFlags === null ? [] : decodeTunFlags(Number(tunFlags)),
    queues,
    counters,
    attachment: await attachmentOf(name, master, view, notes),
    ...configured,
  };
}
