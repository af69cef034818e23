// net.path: the L3 facts behind MTU, routing, rp_filter and neighbour drops along a VM's path:
// the MTU of each device, its veth peer and bridge (a finding only where a device is smaller
// than the packets that must cross it: mtu.ts), the route to each of the VM's IPv4 and IPv6
// addresses, the reverse-path check the kernel would make on packets from them (IPv4), their
// neighbour entries, and the IP fragmentation failures counted over a window.
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { formatMs } from '../../engine/duration.js';
import { fileReadings } from '../../engine/probe/file-readings.js';
import { inNetns, netnsMissing, netnsOf, readFilesIn, readingsOf } from '../../engine/probe/netns.js';
import type { Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { pathAddress, type PathAddress } from './addr.js';
import { DATA, type PathData } from './data.js';
import { mismatchText, mtuDifferences, mtuMismatches, mtuNotes, type MtuDevice, type MtuDifference, type MtuMismatch } from './mtu.js';
import { parseSnmp } from '../lib/snmp.js';
import { firstLine } from '../lib/format.js';

export type { MtuDifference, MtuMismatch, MtuRelation } from './mtu.js';

// ---------------------------------------------------------------------------------------------
// Finding shape

export type { PathData } from './data.js';
export type PathDevice = PathData['devices'][number];
export type PathRoute = PathData['routes'][number];
export type RpFilterEntry = PathData['rpFilter'][number];
export type ReversePathCheck = PathData['reversePathChecks'][number];
export type Neighbour = PathData['neighbours'][number];
export type PathProblem = PathData['problems'][number];

export type FragCounter = keyof PathData['frag'];
/** The IP fragment counters read, as the data declares them. */
export const FRAG_COUNTERS = Object.keys(DATA.properties.frag.properties) as FragCounter[];

// ---------------------------------------------------------------------------------------------
// Collect

const TIMEOUT_MS = 15_000;
const SNMP = ['/proc/net/snmp', '/proc/net/snmp6', '/proc/net/netstat'];
/** More reverse-path checks than this is a misuse (every IP × every device). */
const MAX_CHECKS = 64;

/** A string[] param without duplicates and empty entries (a template that gave ""). */
function listParam(v: unknown): string[] {
  return [...new Set(Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim()) : [])];
}

/** The VM's addresses, IPv6 in the form `ip` prints; throws on one that is not an address. */
function addressesOf(params: Params): PathAddress[] {
  const texts = listParam(params.ips);
  const bad = texts.filter((ip) => pathAddress(ip) === null);
  if (bad.length > 0) throw new Error(`not an IP address: ${bad.join(', ')}`);
  const out = new Map<string, PathAddress>();
  for (const t of texts) {
    const a = pathAddress(t)!;
    if (!out.has(a.ip)) out.set(a.ip, a);
  }
  return [...out.values()];
}

/** Addresses a route lookup can answer for: not link-local (fe80::/10 is on every link). */
const routable = (addrs: PathAddress[]) => addrs.filter((a) => !a.linkLocal);

/** `packets_to_vm` / `packets_from_vm`: null when not given or 0 (nothing seen). */
function packetSize(v: unknown): number | null {
  return typeof v === 'number' && v > 0 ? v : null;
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const netns = netnsOf(params);
  const devs = listParam(params.devs);
  const carriers = [...listParam(params.taps), ...listParam(params.uplinks)];
  const addrs = addressesOf(params);
  if (devs.length === 0 && carriers.length === 0 && addrs.length === 0) throw new Error('nothing to look at: give the devices (devs, taps, uplinks) and/or the IPs (ips) of the path');
  const durationMs = params.duration as number;
  const t0 = performance.now();
  const ipCmd = (name: string, args: string[], allowFailure = false) => io.exec(name, inNetns(netns, ['ip', ...args]), { timeoutMs: TIMEOUT_MS, allowFailure });

  await readFilesIn(io, 'snmp-start', netns, SNMP);

  const linksRec = await ipCmd('links', ['-j', '-d', 'addr', 'show'], true);
  if (linksRec.error !== undefined) throw new Error(ipFailure(linksRec, netns));
  const links = parseLinks(linksRec.stdout);
  const names = new Set(links.map((l) => l.ifname));
  const missing = devs.filter((d) => !names.has(d));
  if (missing.length > 0) {
    const what = missing.length === 1 ? `no device ${missing[0]}` : `no devices ${missing.join(', ')}`;
    throw new Error(`${what}${netns ? ` in network namespace ${netns}` : ' in this network namespace'}; devices here: ${[...names].join(', ') || '(none)'}`);
  }

  // Routes first: with no devices given, the path is the devices the routes leave by.
  const routeRecs: RawRecord[] = [];
  for (const a of routable(addrs)) {
    const family = a.family === 6 ? ['-6'] : [];
    const rec = await ipCmd(`route-${a.ip}`, [...family, '-j', 'route', 'get', a.ip], true);
    routeRecs.push(rec);
    if (rec.error !== undefined) await ipCmd(`route-match-${a.ip}`, [...family, '-j', 'route', 'show', 'match', a.ip], true);
  }
  const routes = routable(addrs).map((a, i) => routeOf(a.ip, routeRecs[i]!));
  const path = pathDevices(devs, routes, links, carriers);

  // The other ends of veths that live in other namespaces.
  const crossNs = path.watched.map((d) => links.find((l) => l.ifname === d)!).filter((l) => l.kind === 'veth' && l.linkNetnsid !== null && l.linkIndex !== null);
  if (crossNs.length > 0) {
    const list = await ipCmd('netns-list', ['-j', 'netns', 'list'], true);
    const byId = netnsIds(list);
    const wanted = [...new Set(crossNs.map((l) => byId.get(l.linkNetnsid!)).filter((n): n is string => n !== undefined))].sort();
    for (const ns of wanted) await io.exec(`peer-links-${ns}`, ['ip', '-n', ns, '-j', 'link', 'show'], { timeoutMs: TIMEOUT_MS, allowFailure: true });
    // From inside a namespace, the host's own namespace has no name: look there last.
    if (netns !== undefined && crossNs.some((l) => !byId.has(l.linkNetnsid!))) {
      await io.exec('host-links', ['ip', '-j', 'link', 'show'], { timeoutMs: TIMEOUT_MS, allowFailure: true });
    }
  }

  await ipCmd('rules', ['-j', 'rule', 'show'], true);
  if (routable(addrs).some((a) => a.family === 6)) await ipCmd('rules6', ['-6', '-j', 'rule', 'show'], true);

  const sysPaths = sysctlPaths(path.rpDevices);
  const sysRec = await readFilesIn(io, 'sysctl', netns, sysPaths);
  const sys = readingsOf(sysRec, sysPaths);

  for (const check of plannedChecks(addrs, path, links, routes, sys)) {
    await ipCmd(`rpcheck-${check.ip}-${check.dev}`, ['-j', 'route', 'get', check.dst, 'from', check.ip, 'iif', check.dev], true);
  }

  await ipCmd('neigh', ['-j', 'neigh', 'show'], true);

  if (durationMs > 0) {
    await io.sleep(durationMs - (performance.now() - t0));
    await readFilesIn(io, 'snmp-end', netns, SNMP);
  }
}

function ipFailure(rec: RawRecord, netns: string | undefined): string {
  const why = firstLine(rec.stderr) || rec.error || `exit code ${rec.exitCode}`;
  const missing = netnsMissing(rec, netns);
  if (missing) return missing;
  return `ip -j addr show failed${netns ? ` in network namespace ${netns}` : ''}: ${why}`;
}

// ---------------------------------------------------------------------------------------------
// Facts from ip's JSON

interface Link {
  ifindex: number;
  ifname: string;
  mtu: number;
  operstate: string;
  master: string | null;
  /** Same-namespace link (veth peer, VLAN's lower device) by name. */
  link: string | null;
  linkIndex: number | null;
  linkNetnsid: number | null;
  kind: string | null;
  slaveKind: string | null;
  ipv4: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) ? v : null);

function jsonList(text: string, what: string): Obj[] {
  const t = text.trim();
  if (t === '') return [];
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch (err) {
    throw new Error(`${what} printed something that is not JSON: ${(err as Error).message}: ${JSON.stringify(t.slice(0, 80))}`);
  }
  if (!Array.isArray(v)) throw new Error(`${what} did not print a JSON list`);
  return v.filter(isObj);
}

export function parseLinks(text: string): Link[] {
  return jsonList(text, 'ip -j addr show').map((l) => {
    const info = isObj(l.linkinfo) ? l.linkinfo : {};
    const addrs = Array.isArray(l.addr_info) ? l.addr_info.filter(isObj) : [];
    return {
      ifindex: int(l.ifindex) ?? -1,
      ifname: str(l.ifname) ?? '?',
      mtu: int(l.mtu) ?? 0,
      operstate: str(l.operstate) ?? 'UNKNOWN',
      master: str(l.master),
      link: str(l.link),
      linkIndex: int(l.link_index),
      linkNetnsid: int(l.link_netnsid),
      kind: str(info.info_kind),
      slaveKind: str(info.info_slave_kind),
      ipv4: addrs.filter((a) => a.family === 'inet' && typeof a.local === 'string').map((a) => a.local as string),
    };
  });
}

function netnsIds(rec: RawRecord | undefined): Map<number, string> {
  const out = new Map<number, string>();
  if (!rec || rec.error !== undefined) return out;
  for (const e of jsonList(rec.stdout, 'ip -j netns list')) {
    const id = int(e.id);
    const name = str(e.name);
    if (id !== null && name !== null) out.set(id, name);
  }
  return out;
}

function routeOf(ip: string, rec: RawRecord): PathRoute {
  if (rec.error !== undefined) {
    return { ip, dev: null, via: null, src: null, type: null, error: ipError(rec), offPath: null };
  }
  const [r] = jsonList(rec.stdout, 'ip -j route get');
  if (!r) return { ip, dev: null, via: null, src: null, type: null, error: 'ip route get printed no route', offPath: null };
  return { ip, dev: str(r.dev), via: str(r.gateway), src: str(r.prefsrc), type: str(r.type) ?? 'unicast', offPath: null };
}

/** "RTNETLINK answers: No route to host" → "No route to host". */
function ipError(rec: RawRecord): string {
  const line = firstLine(rec.stderr) || rec.error || `exit code ${rec.exitCode}`;
  return line.replace(/^RTNETLINK answers:\s*/, '').replace(/^Error:\s*/, '');
}

interface PathDevs {
  /** The devices looked at: those given, else those the routes leave by. */
  watched: string[];
  /** Devices whose rp_filter is read: the watched ones and where IP sees their packets. */
  rpDevices: string[];
  /** Watched device → the device IP sees its packets on (itself, its bridge), or null (an OVS port). */
  l3: Map<string, string | null>;
}

function l3Of(link: Link | undefined, links: Link[]): string | null {
  if (!link) return null;
  if (link.master !== null && link.slaveKind === 'bridge') return link.master;
  if (link.master !== null && link.slaveKind === 'openvswitch') return null;
  if (link.master !== null) {
    // A bond or team port: IP sees the packets on the master.
    const master = links.find((l) => l.ifname === link.master);
    return master ? master.ifname : null;
  }
  return link.ifname;
}

/** `carriers`: the VM's taps and uplinks, watched too when they exist here. */
function pathDevices(devs: string[], routes: PathRoute[], links: Link[], carriers: string[] = []): PathDevs {
  const exists = (d: string) => links.some((l) => l.ifname === d);
  const fromRoutes = routes.map((r) => r.dev).filter((d): d is string => d !== null && d !== 'lo' && exists(d));
  const watched = [...new Set([...(devs.length > 0 ? devs : fromRoutes), ...carriers.filter(exists)])];
  const l3 = new Map<string, string | null>();
  for (const d of watched) l3.set(d, l3Of(links.find((l) => l.ifname === d), links));
  const rpDevices = [...new Set([...watched, ...[...l3.values()].filter((d): d is string => d !== null)])];
  return { watched, rpDevices, l3 };
}

const IP6_FORWARD = '/proc/sys/net/ipv6/conf/all/forwarding';

function sysctlPaths(rpDevices: string[]): string[] {
  const paths = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv4/conf/all/rp_filter'];
  for (const d of rpDevices) paths.push(`/proc/sys/net/ipv4/conf/${d}/rp_filter`);
  paths.push(IP6_FORWARD);
  return paths;
}

function sysInt(sys: Map<string, { text?: string }>, path: string): number | null {
  const t = sys.get(path)?.text?.trim();
  return t !== undefined && /^-?\d+$/.test(t) ? Number(t) : null;
}

function rpFilterOf(sys: Map<string, { text?: string }>, dev: string): RpFilterEntry {
  const value = sysInt(sys, `/proc/sys/net/ipv4/conf/${dev}/rp_filter`);
  const all = sysInt(sys, '/proc/sys/net/ipv4/conf/all/rp_filter');
  return { dev, value, all, effective: Math.max(value ?? 0, all ?? 0) };
}

interface PlannedCheck {
  ip: string;
  dev: string;
  dst: string;
  rpFilter: number;
}

/**
 * How `ip route get … iif` says the kernel refuses a source: EINVAL for a martian (and, from
 * 6.13, for every input-route drop), EXDEV for a failed reverse-path check before 6.13. Other
 * errors are not a refusal of the source.
 */
const SOURCE_REFUSALS = new Set(['Invalid argument', 'Invalid cross-device link']);

/**
 * The reverse-path checks worth making: each IPv4 address of the VM as the source of a packet
 * arriving where IP sees the watched devices' packets, when rp_filter is on there. The packet
 * is sent to a local address (the device's own, else the one the host uses towards the VM), so
 * that only the source check can refuse it.
 */
function plannedChecks(addrs: PathAddress[], path: PathDevs, links: Link[], routes: PathRoute[], sys: Map<string, { text?: string }>): PlannedCheck[] {
  const out: PlannedCheck[] = [];
  const l3devs = [...new Set([...path.l3.values()].filter((d): d is string => d !== null))];
  // rp_filter is IPv4's only: IPv6 has no such sysctl (its equivalent is a netfilter rule).
  for (const { ip } of addrs.filter((a) => a.family === 4)) {
    const route = routes.find((r) => r.ip === ip);
    for (const dev of l3devs) {
      const rp = rpFilterOf(sys, dev).effective;
      if (rp === 0) continue;
      const link = links.find((l) => l.ifname === dev);
      const dst = link?.ipv4.find((a) => a !== ip) ?? (route?.src && route.src !== ip ? route.src : undefined);
      if (dst === undefined) continue;
      out.push({ ip, dev, dst, rpFilter: rp });
      if (out.length >= MAX_CHECKS) return out;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parse

function parse(records: RawRecord[], params: Params): ProbeResult<PathData> {
  const netns = typeof params.netns === 'string' && params.netns !== '' ? params.netns : null;
  const devs = listParam(params.devs);
  const taps = listParam(params.taps);
  const uplinks = listParam(params.uplinks);
  const addrs = addressesOf(params);
  const ips = addrs.map((a) => a.ip);
  const requestedMs = params.duration as number;
  const byName = new Map<string, RawRecord>();
  for (const r of records) byName.set(r.name, r);
  const notes: string[] = [];

  const linksRec = byName.get('links');
  if (!linksRec) throw new Error('the devices were not read');
  const links = parseLinks(linksRec.stdout);
  const linkOf = (name: string | null) => (name === null ? undefined : links.find((l) => l.ifname === name));

  // Routes.
  for (const a of addrs.filter((x) => x.linkLocal)) notes.push(`${a.ip} is link-local (fe80::/10, on every link): its route is not looked up, only its neighbour entry${a.zone ? ` on ${a.zone}` : ''}`);
  const routes = routable(addrs).map(({ ip }) => {
    const rec = byName.get(`route-${ip}`);
    if (!rec) throw new Error(`the route to ${ip} was not read`);
    const route = routeOf(ip, rec);
    const match = byName.get(`route-match-${ip}`);
    if (route.error !== undefined && match && match.error === undefined) {
      const entries = jsonList(match.stdout, 'ip -j route show match');
      const best = entries.sort((a, b) => prefixLen(b.dst) - prefixLen(a.dst))[0];
      if (best) {
        const type = str(best.type) ?? 'unicast';
        route.type = type;
        route.matched = `${type} ${str(best.dst) ?? '?'}${str(best.dev) ? ` dev ${str(best.dev)}` : ''}`;
      }
    }
    return route;
  });
  const path = pathDevices(devs, routes, links, [...taps, ...uplinks]);
  const onPath = new Set([...path.watched, ...[...path.l3.values()].filter((d): d is string => d !== null)]);
  for (const r of routes) {
    if (r.error !== undefined || r.dev === null || path.watched.length === 0 || devs.length === 0) continue;
    r.offPath = r.type !== 'local' && !onPath.has(r.dev);
  }

  // Devices, veth peers (in other namespaces too), bridges and their ports.
  const nsNames = netnsIds(byName.get('netns-list'));
  const peerLinks = new Map<string, Link[]>();
  for (const r of records) {
    const m = /^peer-links-(.+)$/.exec(r.name);
    if (m && r.error === undefined) peerLinks.set(m[1]!, parseLinks(r.stdout));
  }
  const hostLinksRec = byName.get('host-links');
  const hostLinks = hostLinksRec && hostLinksRec.error === undefined ? parseLinks(hostLinksRec.stdout) : [];
  const devices: PathDevice[] = [];
  /** Whether each described veth's other end is a switch port (null: not read). */
  const peerEnslaved = new Map<string, boolean | null>();
  const describeDev = (name: string): PathDevice | undefined => {
    const l = linkOf(name);
    if (!l) return undefined;
    let peer: Link | undefined;
    let peerNetns: string | null = null;
    if (l.kind === 'veth' && l.linkNetnsid === null && l.link !== null) peer = linkOf(l.link);
    else if (l.kind === 'veth' && l.linkNetnsid !== null && l.linkIndex !== null) {
      const ns = nsNames.get(l.linkNetnsid);
      if (ns !== undefined) {
        peer = peerLinks.get(ns)?.find((p) => p.ifindex === l.linkIndex);
        peerNetns = ns;
      } else {
        // The host's namespace, seen from inside another: the veth that points back at us.
        peer = hostLinks.find((p) => p.ifindex === l.linkIndex && p.linkIndex === l.ifindex && p.linkNetnsid !== null);
        peerNetns = peer ? 'host' : null;
      }
      if (!peer) {
        notes.push(
          ns !== undefined
            ? `the peer of veth ${l.ifname} (ifindex ${l.linkIndex} in netns ${ns}) could not be read`
            : `the peer of veth ${l.ifname} lives in a namespace without a name (nsid ${l.linkNetnsid}): its MTU is not compared`,
        );
      }
    }
    peerEnslaved.set(l.ifname, peer ? peer.master !== null : null);
    return {
      dev: l.ifname,
      ifindex: l.ifindex,
      mtu: l.mtu,
      kind: l.kind,
      operstate: l.operstate,
      master: l.master,
      l3dev: l3Of(l, links),
      ipv4: l.ipv4,
      peer: peer?.ifname ?? null,
      peerMtu: peer?.mtu ?? null,
      peerNetns,
      ports: l.kind === 'bridge' ? links.filter((p) => p.master === l.ifname).map((p) => p.ifname) : [],
    };
  };
  const shown = new Set<string>();
  const addDev = (name: string | null) => {
    if (name === null || shown.has(name)) return;
    const d = describeDev(name);
    if (!d) return;
    shown.add(name);
    devices.push(d);
  };
  for (const d of path.watched) addDev(d);
  for (const d of [...devices]) {
    addDev(d.master);
    if (d.master !== null) for (const p of links.filter((x) => x.master === d.master)) addDev(p.ifname);
    for (const p of d.ports) addDev(p);
  }

  // MTUs: the differences, and the devices smaller than what must cross them.
  const present = (list: string[]) => list.filter((d) => linkOf(d) !== undefined);
  const mtuCheck = { taps: present(taps), uplinks: present(uplinks), packetsToVm: packetSize(params.packets_to_vm), packetsFromVm: packetSize(params.packets_from_vm) };
  const mtuDevices: MtuDevice[] = devices.map((d) => {
    const l = linkOf(d.dev)!;
    const lower = l.kind !== 'veth' && l.link !== null && l.linkNetnsid === null ? linkOf(l.link) : undefined;
    return { ...d, peerEnslaved: peerEnslaved.get(d.dev) ?? null, lower: lower ? { dev: lower.ifname, mtu: lower.mtu } : null };
  });
  const mtuDiffs = mtuDifferences(path.watched, mtuDevices);
  const mtuMismatchList = mtuMismatches({ watched: path.watched, ...mtuCheck, devices: mtuDevices });
  notes.push(...mtuNotes({ taps, uplinks }, mtuCheck, mtuDevices, mtuDiffs, mtuMismatchList));
  if (devices.some((d) => d.kind === 'tun')) notes.push("a tap's other end is the VM: its MTU inside the VM cannot be read from the host");
  if (path.watched.some((d) => linkOf(d)?.slaveKind === 'openvswitch')) notes.push('Open vSwitch ports: their MTUs and the bridge datapath are for the ovs.* probes');

  // Policy routing rules beyond the defaults.
  const rules: Array<{ priority: number; text: string }> = [];
  for (const name of ['rules', 'rules6']) {
    const rec = byName.get(name);
    if (!rec || rec.error !== undefined) continue;
    for (const r of jsonList(rec.stdout, 'ip -j rule show')) {
      const priority = int(r.priority) ?? -1;
      const table = str(r.table);
      const isDefault = r.src === 'all' && Object.keys(r).length === 3 && ((priority === 0 && table === 'local') || (priority === 32766 && table === 'main') || (priority === 32767 && table === 'default'));
      if (!isDefault) rules.push({ priority, text: ruleText(r) });
    }
  }

  // rp_filter and the reverse-path checks.
  const sysRec = byName.get('sysctl');
  const sysPaths = sysRec?.paths ?? sysctlPaths(path.rpDevices);
  const sys = readingsOf(sysRec, sysPaths);
  const rpFilter = path.rpDevices.map((d) => rpFilterOf(sys, d));
  const flag = (path: string) => {
    const v = sysInt(sys, path);
    return v === null ? null : v !== 0;
  };
  const ipForward = flag('/proc/sys/net/ipv4/ip_forward');
  const ip6Forward = flag(IP6_FORWARD);
  const planned = plannedChecks(addrs, path, links, routes, sys);
  const reversePathChecks: ReversePathCheck[] = planned.map((c) => {
    const rec = byName.get(`rpcheck-${c.ip}-${c.dev}`);
    if (!rec) return { ...c, ok: false, error: 'not checked' };
    if (rec.error === undefined) return { ...c, ok: true };
    const error = ipError(rec);
    const route = routes.find((r) => r.ip === c.ip);
    const local = links.some((l) => l.ipv4.includes(c.ip));
    const reason = local
      ? `${c.ip} is an address of this host: a packet from it arriving on ${c.dev} is a martian`
      : route?.error !== undefined
        ? `there is no route back to ${c.ip} (${route.error})`
        : c.rpFilter === 1 && route?.dev && route.dev !== c.dev
          ? `rp_filter=1 (strict) on ${c.dev}, but the route back to ${c.ip} leaves by ${route.dev}`
          : `the kernel refuses ${c.ip} as a source on ${c.dev} (rp_filter=${c.rpFilter})`;
    return { ...c, ok: false, error, reason };
  });
  const rpFilterDrops = reversePathChecks.filter((c) => !c.ok && SOURCE_REFUSALS.has(c.error ?? ''));
  for (const c of reversePathChecks) if (!c.ok && !SOURCE_REFUSALS.has(c.error ?? '')) notes.push(`the reverse-path check of ${c.ip} on ${c.dev} failed otherwise: ${c.error}`);
  const v6 = addrs.filter((a) => a.family === 6).map((a) => a.ip);
  if (v6.length > 0) {
    notes.push(`rp_filter is IPv4's: the kernel has no reverse-path sysctl for IPv6 (a netfilter rpfilter/fib rule does that job), so ${v6.join(', ')} ${v6.length === 1 ? 'is' : 'are'} not checked for it`);
  }
  const skipped = addrs.filter((a) => a.family === 4).length * [...new Set([...path.l3.values()])].filter((d) => d !== null && rpFilterOf(sys, d).effective > 0).length - planned.length;
  if (skipped > 0) notes.push(`${skipped} reverse-path check(s) not made: no local address to send to on that device`);
  for (const [dev, l3] of path.l3) if (l3 === null) notes.push(`${dev} is a port of ${linkOf(dev)?.master ?? 'a switch'}: where IP sees its packets is not known here, so rp_filter is not checked for it`);

  // Neighbours: the IPs, the gateways towards them, and failures on the path's devices.
  const neighRec = byName.get('neigh');
  const entries = neighRec && neighRec.error === undefined ? jsonList(neighRec.stdout, 'ip -j neigh show').map(neighOf) : [];
  if (neighRec?.error !== undefined) notes.push(`the neighbour table could not be read: ${neighRec?.error}`);
  const neighbours: Neighbour[] = [];
  /** `on`: the devices where the entry counts (a link-local address is one per link). */
  const wantNeigh = (ip: string, forIp?: string, on?: Set<string>) => {
    const found = entries.filter((e) => e.ip === ip && (on === undefined || (e.dev !== null && on.has(e.dev))));
    const only = on?.size === 1 ? [...on][0]! : null;
    if (found.length === 0) neighbours.push({ ip, dev: only, state: 'NONE', mac: null, ...(forIp ? { for: forIp } : {}) });
    for (const e of found) neighbours.push({ ...e, ...(forIp ? { for: forIp } : {}) });
  };
  const linkLocal = (ip: string) => pathAddress(ip)?.linkLocal === true;
  for (const r of routes) {
    if (r.type === 'local') continue;
    if (r.via !== null) wantNeigh(r.via, r.ip, linkLocal(r.via) && r.dev !== null ? new Set([r.dev]) : undefined);
    else if (r.error === undefined) wantNeigh(r.ip);
  }
  for (const a of addrs.filter((x) => x.linkLocal)) wantNeigh(a.ip, undefined, a.zone !== null ? new Set([a.zone]) : onPath.size > 0 ? onPath : undefined);
  const isFailed = (n: Neighbour) => /FAILED|INCOMPLETE/.test(n.state);
  const failedNeighbours = [
    ...neighbours.filter(isFailed),
    ...entries.filter((e) => isFailed(e) && e.dev !== null && onPath.has(e.dev) && !neighbours.some((n) => n.ip === e.ip && n.dev === e.dev)),
  ];

  // Fragmentation counters.
  const start = snmpOf(byName.get('snmp-start'));
  const endRec = byName.get('snmp-end');
  const cumulative = endRec === undefined;
  const end = cumulative ? start : snmpOf(endRec);
  const counterDelta = (c: string) => {
    const a = end.get(c);
    const b = start.get(c);
    if (a === undefined) return 0;
    if (cumulative || b === undefined) return a;
    return a >= b ? a - b : a;
  };
  const frag = Object.fromEntries(FRAG_COUNTERS.map((c) => [c, counterDelta(c)])) as Record<FragCounter, number>;
  const rpFilterDropped = counterDelta('TcpExt.IPReversePathFilter');
  const fragFailures = frag.ReasmFails + frag.FragFails + frag.Ip6ReasmFails + frag.Ip6FragFails;
  if (start.size === 0) notes.push('the IP counters (/proc/net/snmp) could not be read');

  // Problems, most telling first.
  const problems: PathProblem[] = [];
  for (const r of routes) {
    if (r.error !== undefined) problems.push({ kind: 'route', text: `no route to ${r.ip}: ${r.error}${r.matched ? ` (${r.matched})` : ''}` });
  }
  for (const c of rpFilterDrops) problems.push({ kind: 'rp_filter', text: `packets from ${c.ip} arriving on ${c.dev} fail the reverse-path check: ${c.reason}` });
  if (!cumulative && rpFilterDropped > 0 && rpFilterDrops.length === 0) {
    problems.push({ kind: 'rp_filter', text: `the kernel dropped ${rpFilterDropped} packets failing the reverse-path check in ${formatMs(requestedMs)} (from sources other than the IPs checked)` });
  }
  for (const n of failedNeighbours) {
    problems.push({ kind: 'neighbour', text: `neighbour ${n.ip}${n.dev ? ` on ${n.dev}` : ''} is ${n.state}${n.for ? ` (gateway to ${n.for})` : ''}: nobody answers ARP/ND for it` });
  }
  if (!cumulative && fragFailures > 0) {
    problems.push({ kind: 'fragmentation', text: `${fragFailures} IP fragmentation/reassembly failures in ${formatMs(requestedMs)} (FragFails ${frag.FragFails + frag.Ip6FragFails}, ReasmFails ${frag.ReasmFails + frag.Ip6ReasmFails})` });
  }
  for (const m of mtuMismatchList) problems.push({ kind: 'mtu', text: mismatchText(m) });
  for (const r of routes) if (r.offPath) problems.push({ kind: 'off_path', text: `the route to ${r.ip} leaves by ${r.dev}, not by ${path.watched.join(', ')}` });
  if (cumulative && fragFailures > 0) notes.push(`${fragFailures} fragmentation/reassembly failures since boot (one read: not necessarily now)`);

  const data: PathData = {
    netns,
    durationMs: cumulative ? 0 : Math.max(0, (endRec?.at ?? 0) - (byName.get('snmp-start')?.at ?? 0)),
    cumulative,
    devices,
    mtuMismatches: mtuMismatchList,
    mtuDifferences: mtuDiffs,
    mtuCheck,
    routes,
    rules,
    rpFilter,
    reversePathChecks,
    rpFilterDrops,
    rpFilterDropped,
    neighbours,
    failedNeighbours,
    ipForward,
    ip6Forward,
    frag,
    fragFailures,
    problems,
    notes: [...new Set(notes)],
  };
  const critical = problems.some((p) => p.kind === 'route' || p.kind === 'rp_filter' || p.kind === 'fragmentation' || (p.kind === 'neighbour' && failedNeighbours.some((n) => n.for !== undefined || ips.includes(n.ip))));
  return {
    data,
    summary: summarize(data, ips),
    severity: critical ? 'critical' : problems.length > 0 ? 'warning' : 'info',
    tables: tablesOf(data),
  };
}

function prefixLen(dst: unknown): number {
  if (dst === 'default') return 0;
  if (typeof dst !== 'string') return -1;
  const m = /\/(\d+)$/.exec(dst);
  return m ? Number(m[1]) : isIP(dst) === 6 ? 128 : 32;
}

function ruleText(r: Obj): string {
  const parts: string[] = [];
  if (r.not === true) parts.push('not');
  parts.push(`from ${str(r.src) ?? 'all'}${int(r.srclen) !== null ? `/${int(r.srclen)}` : ''}`);
  if (typeof r.dst === 'string') parts.push(`to ${r.dst}${int(r.dstlen) !== null ? `/${int(r.dstlen)}` : ''}`);
  for (const k of ['iif', 'oif', 'fwmark', 'ipproto', 'sport', 'dport', 'uidrange']) if (r[k] !== undefined) parts.push(`${k} ${String(r[k])}`);
  if (typeof r.table === 'string') parts.push(`lookup ${r.table}`);
  if (typeof r.action === 'string') parts.push(r.action);
  return parts.join(' ');
}

function neighOf(e: Obj): Neighbour {
  const states = Array.isArray(e.state) ? e.state.filter((s): s is string => typeof s === 'string') : [];
  return { ip: str(e.dst) ?? '?', dev: str(e.dev), state: states.join(',') || 'NONE', mac: str(e.lladdr) };
}

function snmpOf(rec: RawRecord | undefined): Map<string, number> {
  const r = readingsOf(rec, rec?.paths ?? SNMP);
  return parseSnmp(r.get('/proc/net/snmp')?.text ?? '', r.get('/proc/net/snmp6')?.text ?? '', r.get('/proc/net/netstat')?.text ?? '');
}

function summarize(data: PathData, ips: string[]): string {
  const scope = `${data.devices.length} ${data.devices.length === 1 ? 'device' : 'devices'}, ${ips.length} ${ips.length === 1 ? 'IP' : 'IPs'}${data.netns ? ` in ${data.netns}` : ''}`;
  const first = data.problems[0];
  if (first) {
    const more = data.problems.length > 1 ? ` (+${data.problems.length - 1} more ${data.problems.length === 2 ? 'problem' : 'problems'})` : '';
    return `${first.text}${more}; ${scope}`;
  }
  return `path looks healthy: routes, MTUs, rp_filter and neighbours agree; ${scope}`;
}

function tablesOf(data: PathData): TableSpec[] {
  const rp = new Map(data.rpFilter.map((r) => [r.dev, r.effective]));
  const out: TableSpec[] = [
    {
      title: 'Devices on the path',
      columns: ['device', 'kind', 'state', 'mtu', 'master', 'peer', 'peer mtu', 'rp_filter', 'IPv4'],
      rows: data.devices.map((d) => [d.dev, d.kind ?? '-', d.operstate, d.mtu, d.master ?? '-', d.peer ? `${d.peer}${d.peerNetns ? ` (${d.peerNetns})` : ''}` : '-', d.peerMtu ?? '-', rp.get(d.dev) ?? '-', d.ipv4.join(' ') || '-']),
    },
  ];
  if (data.mtuMismatches.length + data.mtuDifferences.length > 0) {
    out.push({
      title: 'MTUs that differ, and devices smaller than the packets that must cross them',
      columns: ['device', 'mtu', 'packets', 'direction', 'relation', 'peer', 'peer mtu', 'fault'],
      rows: [
        ...data.mtuMismatches.map((m) => [m.dev, m.mtu, m.packetBytes ?? `up to ${Math.max(m.mtu, m.peerMtu ?? 0)}`, m.direction ?? '-', m.relation, m.peer ?? '-', m.peerMtu ?? '-', 'yes']),
        ...data.mtuDifferences.filter((d) => !data.mtuMismatches.some((m) => [m.dev, m.peer].sort().join() === [d.dev, d.peer].sort().join())).map((m) => [m.dev, m.mtu, '-', '-', m.relation, m.peer, m.peerMtu, 'no']),
      ],
    });
  }
  if (data.routes.length > 0) {
    out.push({
      title: 'Routes to the IPs',
      columns: ['ip', 'type', 'device', 'via', 'source', 'error'],
      rows: data.routes.map((r) => [r.ip, r.type ?? '-', r.dev ?? '-', r.via ?? '-', r.src ?? '-', r.error ? `${r.error}${r.matched ? ` (${r.matched})` : ''}` : '-']),
    });
  }
  if (data.reversePathChecks.length > 0) {
    out.push({
      title: 'Reverse-path checks',
      columns: ['source', 'arriving on', 'to', 'rp_filter', 'result'],
      rows: data.reversePathChecks.map((c) => [c.ip, c.dev, c.dst, c.rpFilter, c.ok ? 'accepted' : `refused: ${c.reason ?? c.error}`]),
    });
  }
  if (data.neighbours.length + data.failedNeighbours.length > 0) {
    const all = [...data.neighbours, ...data.failedNeighbours.filter((f) => !data.neighbours.some((n) => n.ip === f.ip && n.dev === f.dev))];
    out.push({
      title: 'Neighbours',
      columns: ['ip', 'device', 'state', 'mac', 'gateway for'],
      rows: all.map((n) => [n.ip, n.dev ?? '-', n.state, n.mac ?? '-', n.for ?? '-']),
    });
  }
  return out;
}

export const netPath: ProbeDefinition = {
  id: 'net.path',
  title: 'L3 path facts: MTU, routes, rp_filter, neighbours',
  description: `Reads what decides whether IP delivers a VM's packets, for the devices (\`devs\`, \`taps\`, \`uplinks\`) and the VM's IPv4 and IPv6 addresses (\`ips\`) given:

- **MTU** of each device, of its veth peer (found in whichever named namespace it lives), of its bridge and the bridge's other ports, and of a VLAN-like device's lower device (\`ip -j -d addr show\`). A bridge or a veth drops a frame bigger than the device it is handed to (\`is_skb_forwardable\`; OVS's datapath likewise), so a device is named in \`mtuMismatches\` only when it is **smaller than the packets that must cross it**: a tap smaller than \`packets_to_vm\` (direction \`to-vm\`), an uplink, its veth's other end or the device below it smaller than \`packets_from_vm\` (\`from-vm\`). Such an entry is \`{ dev, mtu, packetBytes, direction, relation, peer, peerMtu }\`: \`dev\` the device too small, \`peer\` the device the packets reach it from (its \`bridge\` or \`switch\`, the \`veth-peer\` end, the upper device of a \`lower\` one; null on a \`route\`), \`devNetns\` when \`dev\` lives in another namespace. Without packet sizes no switched device is blamed. A Linux bridge device is never a carrier: it does not drop frames bigger than its MTU coming from its ports. On a **routed** device (no bridge or switch owns it: its packets are what the host's stack sends, up to its MTU), a veth peer or lower device smaller than the bigger end still is a mismatch, without packet sizes: \`{ dev, mtu, relation, peer, peerMtu }\` as before (no \`packetBytes\`). Every pair whose MTUs merely differ (a 9000-byte uplink beside 1500-byte taps is normal) is listed in \`mtuDifferences\`, for information.
- **Routes**: \`ip -j route get <ip>\` (\`ip -6\` for IPv6) for each IP (device, gateway, source), with the failing route's type when there is none (\`unreachable\`, \`blackhole\`, \`prohibit\`); policy routing rules beyond the defaults, IPv6's too. A link-local IPv6 address (fe80::/10) has no route to look up without a device: only its neighbour entry is read (on the zone's device for \`fe80::1%tap0\`, else on the path's devices).
- **rp_filter** (IPv4 only: IPv6 has no reverse-path sysctl; a netfilter \`rpfilter\`/\`fib\` rule does that job there, not read here) on each device and \`all\` (effective = max of the two), and the kernel's own verdict on the reverse path: \`ip route get <local address> from <VM ip> iif <dev>\` fails (EINVAL; EXDEV for a reverse-path failure before 6.13) exactly when the kernel would drop packets from that source arriving on that device (a martian source).
- **Neighbours** (ARP and ND) of the IPs (or of their gateways): state and MAC; FAILED/INCOMPLETE entries are \`failedNeighbours\`.
- IPv4 and IPv6 forwarding (\`ipForward\`, \`ip6Forward\`), the IP fragmentation counters (\`/proc/net/snmp\` ReasmFails, FragFails; \`/proc/net/snmp6\` Ip6ReasmFails, Ip6FragFails, which also count packets an IPv6 router refused as too big) and the kernel's count of reverse-path drops (\`/proc/net/netstat\` IPReversePathFilter) over \`duration\`.

With no \`devs\`, the devices are those the routes to the IPs leave by (and the taps and uplinks). \`netns\` reads all of it inside a network namespace. Use it when \`drops.kernel\` names \`IP_RPFILTER\`, \`IP_INADDRERRORS\`/\`IP_INNOROUTES\`, \`NEIGH_FAILED\`/\`NEIGH_QUEUEFULL\`, \`PKT_TOO_BIG\`, \`FRAG_*\` or drops at \`__dev_forward_skb\`/\`is_skb_forwardable\` (an MTU). No BPF: every read is a netlink query or a procfs file.`,
  normal: `Every IP has a route by the expected device, and its neighbour entry is REACHABLE, STALE or DELAY (STALE only means unused lately). Every tap is at least as large as the packets to the VM and every uplink as large as the packets from it (MTUs may differ: a jumbo uplink beside 1500-byte taps is normal). rp_filter is 0, 2, or 1 with symmetric routes, so every reverse-path check is accepted. FragFails and ReasmFails do not rise.`,
  replaces: [],
  params: {
    devs: {
      type: 'string[]',
      default: [],
      description: "Devices of the VM's path (its tap, the bridge, a veth); empty means the devices the routes to `ips` leave by.",
      cliOption: 'dev',
    },
    ips: {
      type: 'string[]',
      default: [],
      description: "The VM's IPv4 and IPv6 addresses: routes, reverse-path checks (IPv4) and neighbours are looked up for them.",
    },
    taps: {
      type: 'string[]',
      default: [],
      description: "The VM's taps: each must carry the packets to the VM (`packets_to_vm`). A tap that is not a device here is noted, not an error.",
    },
    uplinks: {
      type: 'string[]',
      default: [],
      description: "The other ways out of the VM's switch (NICs, bonds, VLANs, veths): each, with its veth peer and lower device, must carry the packets from the VM (`packets_from_vm`). One that is not a device here (an OVS patch or tunnel port) is noted.",
    },
    packets_to_vm: {
      type: 'integer',
      min: 0,
      max: 65535,
      description: 'The largest L3 packet (bytes) that entered the VM\'s switch toward the VM, as measured (a GSO packet by its segments: the kernel does not hold those to the MTU); 0 or absent: no tap is blamed.',
    },
    packets_from_vm: {
      type: 'integer',
      min: 0,
      max: 65535,
      description: 'The largest L3 packet (bytes) the VM sent into its switch; 0 or absent: no uplink is blamed.',
    },
    netns: {
      type: 'string',
      description: 'Look inside this network namespace: an `ip netns` name or a path such as /proc/<pid>/ns/net. Default: the namespace ebpfnet runs in.',
    },
    duration: {
      type: 'duration',
      default: '5s',
      description: 'Window over which the fragmentation counters are compared; 0 reads them once (totals since boot).',
      cliOption: 'duration',
    },
  },
  requirements: [{ kind: 'binary', name: 'ip', package: 'iproute2' }],
  overhead: 'none',
  driver: 'command',
  data: DATA,
  collect,
  parse: parse as ProbeDefinition['parse'],
};
