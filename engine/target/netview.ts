// The host's network as discovery sees it, read once per discovery and shared by
// every VM: links (`ip -j -d link`), neighbours (`ip -j neigh`) and Open vSwitch's
// bridges, ports and interfaces (one `ovs-vsctl list` of each table).
import { runTool } from './command.js';

export interface LinkInfo {
  ifname: string;
  ifindex: number;
  master: string | null;
  /** linkinfo.info_kind: tun, veth, bridge, bond, vlan, vxlan, openvswitch, ...; null for a plain (physical) device. */
  kind: string | null;
  /** For tun devices: tap or tun. */
  tunType: string | null;
}

export interface Neighbour {
  dst: string;
  dev: string;
  lladdr: string;
  state: string;
}

export interface OvsBridge {
  name: string;
  datapathType: string;
  /** Port names. */
  ports: string[];
}

export interface OvsInterface {
  name: string;
  /** '' (a system device), internal, tap, patch, vxlan, geneve, dpdk, ... */
  type: string;
  ofport: number | null;
  options: Record<string, string>;
}

export interface OvsSnapshot {
  bridges: Map<string, OvsBridge>;
  /** Port name → its bridge and interface names. */
  ports: Map<string, { bridge: string; interfaces: string[] }>;
  interfaces: Map<string, OvsInterface>;
}

export type OvsView = { available: true; snapshot: OvsSnapshot } | { available: false; reason: string };

/** The snapshot of one discovery; each part is read on first use. */
export class NetView {
  private linksP?: Promise<Map<string, LinkInfo>>;
  private neighP?: Promise<Neighbour[]>;
  private ovsP?: Promise<OvsView>;

  links(): Promise<Map<string, LinkInfo>> {
    this.linksP ??= readLinks();
    return this.linksP;
  }

  neighbours(): Promise<Neighbour[]> {
    this.neighP ??= readNeighbours();
    return this.neighP;
  }

  ovs(): Promise<OvsView> {
    this.ovsP ??= readOvs();
    return this.ovsP;
  }
}

function parseJsonArray(text: string): Array<Record<string, unknown>> {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? (v.filter((e) => e && typeof e === 'object') as Array<Record<string, unknown>>) : [];
  } catch {
    return [];
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function parseLinks(json: string): Map<string, LinkInfo> {
  const out = new Map<string, LinkInfo>();
  for (const l of parseJsonArray(json)) {
    const ifname = str(l.ifname);
    if (!ifname || typeof l.ifindex !== 'number') continue;
    const info = (l.linkinfo ?? {}) as { info_kind?: unknown; info_data?: { type?: unknown } };
    out.set(ifname, {
      ifname,
      ifindex: l.ifindex,
      master: str(l.master),
      kind: str(info.info_kind),
      tunType: str(info.info_data?.type),
    });
  }
  return out;
}

async function readLinks(): Promise<Map<string, LinkInfo>> {
  const r = await runTool('ip', ['-j', '-d', 'link', 'show']);
  return r?.ok ? parseLinks(r.stdout) : new Map();
}

export function parseNeighbours(json: string): Neighbour[] {
  const out: Neighbour[] = [];
  for (const n of parseJsonArray(json)) {
    const dst = str(n.dst);
    const dev = str(n.dev);
    const lladdr = str(n.lladdr);
    if (!dst || !dev || !lladdr) continue;
    const state = Array.isArray(n.state) ? n.state.map(String).join(',') : (str(n.state) ?? '');
    out.push({ dst, dev, lladdr: lladdr.toLowerCase(), state });
  }
  return out;
}

async function readNeighbours(): Promise<Neighbour[]> {
  const r = await runTool('ip', ['-j', 'neigh', 'show']);
  return r?.ok ? parseNeighbours(r.stdout) : [];
}

// ovs-vsctl's JSON: atoms are strings and numbers, ["uuid", id], ["set", [...]], ["map", [[k, v], ...]].
function ovsSet(v: unknown): unknown[] {
  if (Array.isArray(v) && v[0] === 'set' && Array.isArray(v[1])) return v[1];
  return v === undefined ? [] : [v];
}
function ovsUuid(v: unknown): string | null {
  return Array.isArray(v) && v[0] === 'uuid' && typeof v[1] === 'string' ? v[1] : null;
}
function ovsMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v) && v[0] === 'map' && Array.isArray(v[1])) {
    for (const pair of v[1]) if (Array.isArray(pair)) out[String(pair[0])] = String(pair[1]);
  }
  return out;
}

interface OvsTable {
  headings: string[];
  data: unknown[][];
}

function rows(table: OvsTable | undefined): Array<Record<string, unknown>> {
  if (!table) return [];
  return table.data.map((row) => Object.fromEntries(table.headings.map((h, i) => [h, row[i]])));
}

/** Parses the three tables `ovs-vsctl -f json -d json list Bridge/Port/Interface` print, one JSON document a line. */
export function parseOvsTables(text: string): OvsSnapshot {
  const tables = text
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as OvsTable);
  const [bridgeRows, portRows, ifaceRows] = [rows(tables[0]), rows(tables[1]), rows(tables[2])];
  const ifaceByUuid = new Map<string, string>();
  const interfaces = new Map<string, OvsInterface>();
  for (const r of ifaceRows) {
    const name = String(r.name);
    const uuid = ovsUuid(r._uuid);
    if (uuid) ifaceByUuid.set(uuid, name);
    const ofport = typeof r.ofport === 'number' && r.ofport >= 0 ? r.ofport : null;
    interfaces.set(name, { name, type: typeof r.type === 'string' ? r.type : '', ofport, options: ovsMap(r.options) });
  }
  const portByUuid = new Map<string, { name: string; interfaces: string[] }>();
  for (const r of portRows) {
    const uuid = ovsUuid(r._uuid);
    const ifaces = ovsSet(r.interfaces).map(ovsUuid).map((u) => (u ? ifaceByUuid.get(u) : undefined)).filter((n): n is string => !!n);
    if (uuid) portByUuid.set(uuid, { name: String(r.name), interfaces: ifaces });
  }
  const bridges = new Map<string, OvsBridge>();
  const ports = new Map<string, { bridge: string; interfaces: string[] }>();
  for (const r of bridgeRows) {
    const name = String(r.name);
    const own = ovsSet(r.ports).map(ovsUuid).map((u) => (u ? portByUuid.get(u) : undefined)).filter((p) => p !== undefined);
    // An empty datapath_type is the kernel ("system") datapath.
    const datapathType = typeof r.datapath_type === 'string' && r.datapath_type !== '' ? r.datapath_type : 'system';
    bridges.set(name, { name, datapathType, ports: own.map((p) => p.name).sort() });
    for (const p of own) ports.set(p.name, { bridge: name, interfaces: p.interfaces });
  }
  return { bridges, ports, interfaces };
}

async function readOvs(): Promise<OvsView> {
  const r = await runTool('ovs-vsctl', [
    '--timeout=5',
    '--format=json',
    '--data=json',
    '--', '--columns=name,datapath_type,ports', 'list', 'Bridge',
    '--', '--columns=_uuid,name,interfaces', 'list', 'Port',
    '--', '--columns=_uuid,name,type,ofport,options', 'list', 'Interface',
  ]);
  if (!r) return { available: false, reason: 'ovs-vsctl not installed' };
  if (!r.ok) return { available: false, reason: `ovs-vsctl failed: ${r.error}` };
  try {
    return { available: true, snapshot: parseOvsTables(r.stdout) };
  } catch (err) {
    return { available: false, reason: `cannot read ovs-vsctl's output: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The OVS bridge and port holding interface `name`, as `ovs-vsctl port-to-br` (and iface-to-br) answer. */
export function ovsPortOf(snapshot: OvsSnapshot, name: string): { bridge: string; port: string } | null {
  const direct = snapshot.ports.get(name);
  if (direct) return { bridge: direct.bridge, port: name };
  for (const [port, p] of snapshot.ports) if (p.interfaces.includes(name)) return { bridge: p.bridge, port };
  return null;
}
