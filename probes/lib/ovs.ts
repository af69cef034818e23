// Reading Open vSwitch for the OVS probes (ovs.drops, ovs.megaflow, other.ovs-ct-invalid): where ovs-vswitchd
// listens, the commands they run, and parsers for what those commands print (OVS 3.x text;
// older releases print the same lines with fewer fields, which read as absent).
import { readFileSync } from 'node:fs';
import type { FindingData, ProbeDefinition, Requirement, TableSpec } from '../../engine/probe/types.js';
import { isAlive } from '../../engine/host/process.js';
import { addrTerm, addrVerdict, parseAddr, scopeOf, type FieldVerdict, type VmIdentity, type VmScope } from './vm-scope.js';

/** Debian's (and OVS's default) run directory; `OVS_RUNDIR` overrides it, for OVS's own tools too. */
export const DEFAULT_OVS_RUNDIR = '/var/run/openvswitch';

export function ovsRundir(): string {
  const dir = process.env.OVS_RUNDIR;
  return dir !== undefined && dir !== '' ? dir.replace(/\/+$/, '') : DEFAULT_OVS_RUNDIR;
}

const VSWITCHD_DOC = `a running ovs-vswitchd (its control socket ovs-vswitchd.<pid>.ctl in $OVS_RUNDIR, default ${DEFAULT_OVS_RUNDIR})`;
const START_OVS = 'start Open vSwitch (systemctl start openvswitch-switch, or /usr/share/openvswitch/scripts/ovs-ctl start)';


/**
 * The requirement that ovs-vswitchd runs, read when the probe is about to run: its control
 * socket (`<rundir>/ovs-vswitchd.<pid>.ctl`, the pid from its pidfile) must exist. When it
 * does not, the one-line reason says to start Open vSwitch.
 */
export function vswitchdRequirement(): Requirement {
  const withDoc = (req: { path: string; why: string }): Requirement => ({ kind: 'path', ...req, documented: VSWITCHD_DOC });
  const dir = ovsRundir();
  const pidFile = `${dir}/ovs-vswitchd.pid`;
  let pid = 0;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    /* no pidfile: not running */
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    return withDoc({ path: pidFile, why: `ovs-vswitchd is not running (no pidfile or control socket in ${dir}): ${START_OVS}` });
  }
  if (!isAlive(pid)) {
    return withDoc({ path: `/proc/${pid}`, why: `ovs-vswitchd (pid ${pid} from ${pidFile}) is not running: ${START_OVS}` });
  }
  return withDoc({ path: `${dir}/ovs-vswitchd.${pid}.ctl`, why: `the control socket of ovs-vswitchd (pid ${pid}); when it is missing, ${START_OVS}` });
}

/** Root (the control sockets are root's), the OVS tools, and a running ovs-vswitchd. */
export function ovsRequirements(): Requirement[] {
  return [
    { kind: 'root' },
    { kind: 'binary', name: 'ovs-appctl', package: 'openvswitch-switch' },
    { kind: 'binary', name: 'ovs-ofctl', package: 'openvswitch-switch' },
    vswitchdRequirement(),
  ];
}

/**
 * An OVS probe's definition: run by commands, with its requirements read when it runs (the
 * control socket's path depends on OVS_RUNDIR and the daemon's pid).
 */
export function ovsProbe<D extends FindingData>(definition: Omit<ProbeDefinition<D>, 'requirements' | 'driver'>): ProbeDefinition<D> {
  const probe = { ...definition, driver: 'command' } as ProbeDefinition<D>;
  return Object.defineProperty(probe, 'requirements', { get: ovsRequirements, enumerable: true, configurable: true });
}

/** A table of the coverage counters (coverage/show deltas) that moved; none when none did. */
export function coverageTables(title: string, counters: Record<string, number>, countColumn: string): TableSpec[] {
  return Object.keys(counters).length > 0 ? [{ title, columns: ['counter', countColumn], rows: Object.entries(counters) }] : [];
}

/** BPF programs on the kernel datapath fire per packet: 5% of a CPU, 2M events/s. */
export const OVS_KERNEL_BUDGET = { cpu: 0.05, eventsPerSec: 2_000_000 };

// ---- commands (argument arrays; the run directory comes from OVS_RUNDIR in the environment) ----

/** Every OpenFlow version: a bridge limited to some versions still answers. */
const OF_VERSIONS = 'OpenFlow10,OpenFlow11,OpenFlow12,OpenFlow13,OpenFlow14,OpenFlow15';
export const COMMAND_TIMEOUT_MS = 20_000;

export const appctl = (...args: string[]) => ['ovs-appctl', '--timeout=15', ...args];
export const ofctl = (...args: string[]) => ['ovs-ofctl', '--timeout=15', '-O', OF_VERSIONS, '--no-names', ...args];
export const vsctl = (...args: string[]) => ['ovs-vsctl', '--timeout=15', ...args];
/** Interface rows: type, link state, external ids (attached-mac, iface-id, vm-uuid). */
export const listInterfaces = () => vsctl('--format=json', '--columns=name,type,ofport,link_state,admin_state,external_ids', 'list', 'Interface');

// ---- dpif/show: datapaths, bridges, ports ----

export interface DpifPort {
  name: string;
  /** OpenFlow port number (65534 = LOCAL), null when none. */
  ofport: number | null;
  /** Datapath port number: what `in_port(N)` of a megaflow means. */
  dpPort: number | null;
  /** `system`, `internal`, `tap`, `vxlan`, `dpdk`, ... */
  type: string;
  /** The rest of the parenthesised text (tunnel options, queues). */
  config: string;
}

export interface DpifDatapath {
  /** `netdev@ovs-netdev`, `system@ovs-system` */
  id: string;
  type: string;
  /** The name ofproto/trace takes (`ovs-netdev`). */
  name: string;
  hit: number;
  missed: number;
  bridges: Array<{ name: string; ports: DpifPort[] }>;
}

const num = (s: string | undefined): number | null => {
  if (s === undefined || s === 'none' || s === '?') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
};

/** `ovs-appctl dpif/show`. */
export function parseDpifShow(text: string): DpifDatapath[] {
  const out: DpifDatapath[] = [];
  let dp: DpifDatapath | undefined;
  let bridge: DpifDatapath['bridges'][number] | undefined;
  for (const line of text.split('\n')) {
    const head = /^(\S+?)@(\S+?): hit:(\d+) missed:(\d+)/.exec(line);
    if (head) {
      dp = { id: `${head[1]}@${head[2]}`, type: head[1]!, name: head[2]!, hit: Number(head[3]), missed: Number(head[4]), bridges: [] };
      out.push(dp);
      bridge = undefined;
      continue;
    }
    const br = /^ {2}(\S+):$/.exec(line);
    if (br && dp) {
      bridge = { name: br[1]!, ports: [] };
      dp.bridges.push(bridge);
      continue;
    }
    const port = /^ {4}(\S+) (\S+)\/(\S+):\s*(?:\((.*)\))?\s*$/.exec(line);
    if (port && bridge) {
      const inner = port[4] ?? '';
      const type = inner.split(/[:,]/)[0]!.trim() || 'system';
      bridge.ports.push({ name: port[1]!, ofport: num(port[2]), dpPort: num(port[3]), type, config: inner.slice(type.length).replace(/^[:,]\s*/, '') });
    }
  }
  return out;
}

export interface PortRef {
  datapath: string;
  bridge: string;
  port: DpifPort;
}

/** Every port of every bridge, by name. */
export function portsByName(dps: DpifDatapath[]): Map<string, PortRef> {
  const out = new Map<string, PortRef>();
  for (const dp of dps) for (const br of dp.bridges) for (const port of br.ports) out.set(port.name, { datapath: dp.id, bridge: br.name, port });
  return out;
}

/** What an OVS probe reads: the bridge and port asked for, and the bridges and datapaths it reads. */
export interface OvsScope {
  bridge: string | null;
  dev: PortRef | null;
  bridges: string[];
  datapaths: DpifDatapath[];
}

/**
 * The bridges a probe reads: those of port `devName` when given, else `bridge`, else every
 * bridge; a bridge or port OVS does not have is a one-line error.
 */
export function bridgesInScope(dps: DpifDatapath[], bridge: string | null, devName: string | undefined): Pick<OvsScope, 'dev' | 'bridges'> {
  const all = dps.flatMap((d) => d.bridges.map((b) => b.name));
  if (bridge !== null && !all.includes(bridge)) throw new Error(`no OVS bridge ${bridge} (bridges: ${all.join(', ') || 'none'})`);
  let dev: PortRef | null = null;
  if (devName !== undefined) {
    dev = portsByName(dps).get(devName) ?? null;
    if (!dev) throw new Error(`${devName} is not a port of any OVS bridge (ovs-appctl dpif/show)`);
    if (bridge !== null && dev.bridge !== bridge) throw new Error(`${devName} is a port of ${dev.bridge}, not of ${bridge}`);
  }
  return { dev, bridges: dev ? [dev.bridge] : bridge !== null ? [bridge] : all };
}

/** Resolves a megaflow's `in_port(...)` (a name, or a datapath port number) to a port. */
export function resolveInPort(dps: DpifDatapath[], datapath: string, inPort: string | undefined): PortRef | undefined {
  if (inPort === undefined) return undefined;
  const dp = dps.find((d) => d.id === datapath);
  for (const br of dp?.bridges ?? []) {
    for (const port of br.ports) {
      if (port.name === inPort || (/^\d+$/.test(inPort) && port.dpPort === Number(inPort))) return { datapath, bridge: br.name, port };
    }
  }
  return undefined;
}

// ---- dpctl/dump-flows -m: megaflows ----

/** One field of a megaflow key: `src=10.0.0.1/255.255.255.0` → value and mask (undefined mask: exact). */
export interface KeyValue {
  value: string;
  mask?: string;
}

export interface Megaflow {
  /** `main thread`, `pmd on cpu core: 3`, or `` when the dump has no sections. */
  thread: string;
  ufid: string | null;
  /** The key as OVS printed it (with masks under -m). */
  rawKey: string;
  /** Key items: `in_port` → { '': {value:'ovsprbv1'} }, `ipv4` → { src: {...}, proto: {...} }. */
  items: Map<string, Map<string, KeyValue>>;
  packets: number;
  bytes: number;
  used: string;
  dp: string | null;
  offloaded: string | null;
  actions: string;
}

/** Splits at commas outside parentheses. */
export function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

function splitValueMask(v: string): KeyValue {
  const slash = v.indexOf('/');
  return slash < 0 ? { value: v } : { value: v.slice(0, slash), mask: v.slice(slash + 1) };
}

/** Parses a megaflow key into its items (`name(inner)`), each a map of subfields. */
export function parseFlowKey(key: string): Map<string, Map<string, KeyValue>> {
  const items = new Map<string, Map<string, KeyValue>>();
  for (const item of splitTop(key)) {
    const m = /^([a-z0-9_]+)\((.*)\)$/i.exec(item);
    if (!m) continue;
    const fields = new Map<string, KeyValue>();
    const inner = m[2]!;
    const parts = splitTop(inner);
    if (parts.every((p) => /^[a-z0-9_]+=/i.test(p))) {
      for (const p of parts) {
        const eq = p.indexOf('=');
        fields.set(p.slice(0, eq), splitValueMask(p.slice(eq + 1)));
      }
    } else {
      fields.set('', splitValueMask(inner));
    }
    items.set(m[1]!, fields);
  }
  return items;
}

/** `ovs-appctl dpctl/dump-flows [-m] [dp]`. */
export function parseDumpFlows(text: string): Megaflow[] {
  const out: Megaflow[] = [];
  let thread = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const section = /^flow-dump from (?:the )?(.+?):?$/.exec(line);
    if (section) {
      thread = section[1]!;
      continue;
    }
    const at = line.indexOf(', packets:');
    if (at < 0) continue;
    let key = line.slice(0, at);
    let ufid: string | null = null;
    const u = /^ufid:([0-9a-f-]+),\s*/i.exec(key);
    if (u) {
      ufid = u[1]!;
      key = key.slice(u[0].length);
    }
    const rest = line.slice(at + 2);
    const actionsAt = rest.indexOf('actions:');
    const stats = actionsAt >= 0 ? rest.slice(0, actionsAt) : rest;
    let actions = actionsAt >= 0 ? rest.slice(actionsAt + 'actions:'.length) : '';
    const extra = actions.indexOf(', dp-extra-info:');
    if (extra >= 0) actions = actions.slice(0, extra);
    const field = (name: string) => new RegExp(`(?:^|, )${name}:([^,]*)`).exec(stats)?.[1]?.trim() ?? null;
    out.push({
      thread,
      ufid,
      rawKey: key,
      items: parseFlowKey(key),
      packets: Number(field('packets') ?? 0),
      bytes: Number(field('bytes') ?? 0),
      used: field('used') ?? 'never',
      dp: field('dp'),
      offloaded: field('offloaded'),
      actions: actions.trim(),
    });
  }
  return out;
}

/** Identity of a megaflow across two dumps. */
export const flowId = (datapath: string, f: Megaflow) => `${datapath}|${f.thread}|${f.ufid ?? f.rawKey}`;

/** Whether the datapath actions drop the packet (`drop`, or nothing at all on old releases). */
export function isDropAction(actions: string): boolean {
  const a = actions.trim();
  return a === '' || /^drop(\(.*\))?$/.test(a);
}

/** A mask with no bit set (`0`, `0.0.0.0`, `00:00:00:00:00:00`, `::`): the field is wildcarded. */
export const isZeroMask = (mask: string | undefined) => mask !== undefined && !/[1-9a-f]/i.test(mask.replace(/^0x/i, ''));
/** A mask with every bit set, or none printed: an exact match. */
const isFullMask = (mask: string | undefined) =>
  mask === undefined || /^(0x)?f+$/i.test(mask) || mask === '255.255.255.255' || /^ff(:ff){5}$/i.test(mask) || /^ffff(:ffff){7}$/i.test(mask);

/** ct_state bits (include/uapi/linux/openvswitch.h OVS_CS_F_*). */
const CT_STATE_BITS: Array<[number, string]> = [
  [0x01, 'new'],
  [0x02, 'est'],
  [0x04, 'rel'],
  [0x08, 'rpl'],
  [0x10, 'inv'],
  [0x20, 'trk'],
  [0x40, 'snat'],
  [0x80, 'dnat'],
];

/** `0x21/0x21` → `+new+trk`; bits in the mask but not the value as `-x`. */
export function decodeCtState(v: KeyValue): string {
  const value = Number(v.value);
  const mask = v.mask === undefined ? 0xff : Number(v.mask);
  if (!Number.isFinite(value) || !Number.isFinite(mask)) return `${v.value}${v.mask ? `/${v.mask}` : ''}`;
  return CT_STATE_BITS.filter(([bit]) => mask & bit)
    .map(([bit, name]) => `${value & bit ? '+' : '-'}${name}`)
    .join('');
}

/** The key without wildcarded fields, as the plain dump prints it: `recirc_id(0),in_port(vnet1),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=9999)`. */
export function compactKey(items: Megaflow['items']): string {
  const parts: string[] = [];
  for (const [name, fields] of items) {
    const kept: string[] = [];
    for (const [sub, v] of fields) {
      if (isZeroMask(v.mask)) continue;
      const text = isFullMask(v.mask) ? v.value : `${v.value}/${v.mask}`;
      kept.push(sub === '' ? text : `${sub}=${text}`);
    }
    if (kept.length > 0) parts.push(`${name}(${kept.join(',')})`);
  }
  return parts.join(',');
}

/** The fields of a megaflow a runbook branches on; wildcarded ones are absent. */
export interface FlowFields {
  recircId?: string;
  inPort?: string;
  ctState?: string;
  ethSrc?: string;
  ethDst?: string;
  ethType?: string;
  srcIp?: string;
  dstIp?: string;
  proto?: number;
  srcPort?: string;
  dstPort?: string;
  icmpType?: string;
  icmpCode?: string;
}

export function flowFields(items: Megaflow['items']): FlowFields {
  const f: FlowFields = {};
  const get = (item: string, sub = ''): string | undefined => {
    const v = items.get(item)?.get(sub);
    if (!v || isZeroMask(v.mask)) return undefined;
    return isFullMask(v.mask) ? v.value : `${v.value}/${v.mask}`;
  };
  const set = <K extends keyof FlowFields>(k: K, v: FlowFields[K] | undefined) => {
    if (v !== undefined) f[k] = v;
  };
  set('recircId', get('recirc_id'));
  set('inPort', get('in_port'));
  const ct = items.get('ct_state')?.get('');
  if (ct && !isZeroMask(ct.mask)) f.ctState = decodeCtState(ct);
  set('ethSrc', get('eth', 'src'));
  set('ethDst', get('eth', 'dst'));
  set('ethType', get('eth_type'));
  // IPv4, else IPv6 (a key holds one of them).
  const l3 = items.has('ipv4') ? 'ipv4' : 'ipv6';
  set('srcIp', get(l3, 'src'));
  set('dstIp', get(l3, 'dst'));
  const proto = get(l3, 'proto');
  if (proto !== undefined && /^\d+$/.test(proto)) f.proto = Number(proto);
  for (const l4 of ['tcp', 'udp', 'sctp']) {
    set('srcPort', get(l4, 'src'));
    set('dstPort', get(l4, 'dst'));
  }
  set('icmpType', get('icmp', 'type'));
  set('icmpCode', get('icmp', 'code'));
  return f;
}

/** Whether a megaflow can carry packets from/to these addresses (IPv4 or IPv6) of this protocol (masked compare). */
export function flowMatchesFilters(items: Megaflow['items'], filters: { srcIp?: string; dstIp?: string; proto?: number }): boolean {
  if (filters.srcIp === undefined && filters.dstIp === undefined && filters.proto === undefined) return true;
  const family = [filters.srcIp, filters.dstIp].map((a) => (a === undefined ? undefined : parseAddr(a)?.family)).find((f) => f !== undefined);
  const l3 = family === 6 ? items.get('ipv6') : family === 4 ? items.get('ipv4') : (items.get('ipv4') ?? items.get('ipv6'));
  if (!l3) return false;
  const addr = (sub: 'src' | 'dst', want: string | undefined) => {
    if (want === undefined) return true;
    const v = l3.get(sub);
    const term = v && !isZeroMask(v.mask) ? addrTerm(v.value, v.mask) : null;
    const a = parseAddr(want);
    if (!term || !a || 'lo' in term) return true; // not in the key: any address
    return (a.value & term.mask) === term.value;
  };
  if (!addr('src', filters.srcIp) || !addr('dst', filters.dstIp)) return false;
  if (filters.proto !== undefined) {
    const p = l3.get('proto');
    if (p && !isZeroMask(p.mask)) {
      const mask = p.mask === undefined ? 0xff : Number(p.mask);
      if ((Number(p.value) & mask) !== (filters.proto & mask)) return false;
    }
  }
  return true;
}

// ---- whose packets: a megaflow's key and an OpenFlow rule's match against a VM (vm-scope.ts) ----

/** The VM as OVS knows it: its identity, and its port (datapath name and OpenFlow number). */
export interface OvsVm {
  id: VmIdentity;
  port: { name: string; ofport: number | null } | null;
}

/** Megaflow key item → subfield → which side and kind of address it is. */
const KEY_ADDRS: Record<string, Record<string, 'src' | 'dst'>> = {
  eth: { src: 'src', dst: 'dst' },
  ipv4: { src: 'src', dst: 'dst' },
  ipv6: { src: 'src', dst: 'dst' },
  arp: { sip: 'src', tip: 'dst', sha: 'src', tha: 'dst' },
  nd: { target: 'dst' },
};

/** What a megaflow's key says about the VM: in_port its port, an address or MAC of its (masks included). */
export function megaflowScope(items: Megaflow['items'], inPortName: string | null, vm: OvsVm): VmScope {
  const verdicts: FieldVerdict[] = [];
  if (vm.port && inPortName === vm.port.name) verdicts.push('names');
  for (const [item, subs] of Object.entries(KEY_ADDRS)) {
    const fields = items.get(item);
    if (!fields) continue;
    for (const [sub, side] of Object.entries(subs)) {
      const v = fields.get(sub);
      if (!v || isZeroMask(v.mask)) continue;
      const term = addrTerm(v.value, v.mask);
      if (term) verdicts.push(addrVerdict(vm.id, { side, terms: [term] }));
    }
  }
  return scopeOf(verdicts);
}

/** OpenFlow match fields (ovs-ofctl's names and their OXM aliases) that hold an address. */
const RULE_ADDRS: Record<string, 'src' | 'dst'> = {
  dl_src: 'src',
  eth_src: 'src',
  dl_dst: 'dst',
  eth_dst: 'dst',
  nw_src: 'src',
  ip_src: 'src',
  ipv4_src: 'src',
  nw_dst: 'dst',
  ip_dst: 'dst',
  ipv4_dst: 'dst',
  ipv6_src: 'src',
  ipv6_dst: 'dst',
  arp_spa: 'src',
  arp_sha: 'src',
  arp_tpa: 'dst',
  arp_tha: 'dst',
  nd_target: 'dst',
};

/** What an OpenFlow rule's match (`udp,in_port=3,nw_dst=10.0.0.2`) says about the VM. */
export function ofRuleScope(match: string, vm: OvsVm): VmScope {
  const verdicts: FieldVerdict[] = [];
  for (const tok of match.split(',')) {
    const eq = tok.indexOf('=');
    if (eq < 0) continue;
    const key = tok.slice(0, eq).trim();
    const value = tok.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    if (key === 'in_port') {
      if (vm.port && (value === vm.port.name || (vm.port.ofport !== null && value === String(vm.port.ofport)))) verdicts.push('names');
      continue;
    }
    const side = RULE_ADDRS[key];
    const term = side ? addrTerm(value) : null;
    if (side && term) verdicts.push(addrVerdict(vm.id, { side, terms: [term] }));
  }
  return scopeOf(verdicts);
}

// ---- coverage/show ----

/** `ovs-appctl coverage/show`: counter → total since ovs-vswitchd started (counters never hit are not listed). */
export function parseCoverage(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+.*\btotal: (\d+)\s*$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Coverage counters that count dropped packets, each once (a cause). */
export function isDropCounter(name: string): boolean {
  return /^drop_action_/.test(name) || /^datapath_drop_/.test(name) || /^netdev_\w*_drops$/.test(name);
}

/** Coverage counters that explain drops or upcall trouble without counting drops themselves. */
export function isRelatedCounter(name: string): boolean {
  return /^(conntrack_|ipf_|upcall_|handler_duplicate_upcall$|revalidate_missed_dp_flow$|dumped_duplicate_flow$|miniflow_extract_.*error$|afxdp_.*full$)/.test(name);
}

// ---- dpctl/show -s: lookups, lost, and per-port counters ----

export interface DpctlPortStats {
  name: string;
  dpPort: number;
  type: string;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

export interface DpctlDatapath {
  id: string;
  hit: number;
  missed: number;
  lost: number;
  flows: number | null;
  ports: DpctlPortStats[];
}

/** `ovs-appctl dpctl/show -s` (counters a port does not keep, printed `?`, read as 0). */
export function parseDpctlShow(text: string): DpctlDatapath[] {
  const out: DpctlDatapath[] = [];
  let dp: DpctlDatapath | undefined;
  let port: DpctlPortStats | undefined;
  const n = (s: string | undefined) => (s === undefined || s === '?' ? 0 : Number(s));
  for (const line of text.split('\n')) {
    const head = /^(\S+@\S+):$/.exec(line);
    if (head) {
      dp = { id: head[1]!, hit: 0, missed: 0, lost: 0, flows: null, ports: [] };
      out.push(dp);
      port = undefined;
      continue;
    }
    if (!dp) continue;
    const lookups = /^\s+lookups: hit:(\d+) missed:(\d+) lost:(\d+)/.exec(line);
    if (lookups) {
      dp.hit = Number(lookups[1]);
      dp.missed = Number(lookups[2]);
      dp.lost = Number(lookups[3]);
      continue;
    }
    const flows = /^\s+flows: (\d+)/.exec(line);
    if (flows) {
      dp.flows = Number(flows[1]);
      continue;
    }
    const p = /^\s+port (\d+): (\S+)(?: \((.*)\))?\s*$/.exec(line);
    if (p) {
      const type = (p[3] ?? 'system').split(/[:,]/)[0]!.trim();
      port = { name: p[2]!, dpPort: Number(p[1]), type, rxPackets: 0, rxErrors: 0, rxDropped: 0, txPackets: 0, txErrors: 0, txDropped: 0 };
      dp.ports.push(port);
      continue;
    }
    const dir = /^\s+(RX|TX) packets:(\d+|\?) errors:(\d+|\?) dropped:(\d+|\?)/.exec(line);
    if (dir && port) {
      const side = dir[1] === 'RX' ? 'rx' : 'tx';
      port[`${side}Packets`] = n(dir[2]);
      port[`${side}Errors`] = n(dir[3]);
      port[`${side}Dropped`] = n(dir[4]);
    }
  }
  return out;
}

// ---- ovs-ofctl dump-flows: OpenFlow rules ----

export interface OfRule {
  table: number;
  priority: number;
  cookie: string;
  /** The match without `priority=`, as ovs-ofctl prints it (`udp,tp_dst=9999`), `` for any. */
  match: string;
  actions: string;
  packets: number;
  bytes: number;
}

const RULE_STAT_KEYS = new Set(['cookie', 'duration', 'table', 'n_packets', 'n_bytes', 'idle_timeout', 'hard_timeout', 'idle_age', 'hard_age', 'importance']);
const RULE_FLAGS = new Set(['send_flow_rem', 'check_overlap', 'reset_counts', 'no_packet_counts', 'no_byte_counts', 'no_readonly_table', 'allow_set_field']);

/** `ovs-ofctl dump-flows BRIDGE`. */
export function parseOfFlows(text: string): OfRule[] {
  const out: OfRule[] = [];
  for (const line of text.split('\n')) {
    const a = line.indexOf(' actions=');
    if (a < 0 || !/\bn_packets=/.test(line)) continue;
    const left = line.slice(0, a).trim();
    const actions = line.slice(a + ' actions='.length).trim();
    const stat = (k: string) => new RegExp(`(?:^|[ ,])${k}=([^, ]+)`).exec(left)?.[1];
    // The match is what is left once the statistics and flags are taken out.
    const tokens = left.split(/\s+/).map((t) => t.replace(/,$/, ''));
    const matchTokens: string[] = [];
    for (const tok of tokens) {
      const k = tok.split('=')[0]!;
      if (RULE_STAT_KEYS.has(k) || RULE_FLAGS.has(tok)) continue;
      matchTokens.push(tok);
    }
    let priority = 32768;
    const match = matchTokens
      .join(',')
      .split(',')
      .filter((t) => {
        const p = /^priority=(\d+)$/.exec(t);
        if (p) priority = Number(p[1]);
        return t !== '' && !p;
      })
      .join(',');
    out.push({
      table: Number(stat('table') ?? 0),
      priority,
      cookie: stat('cookie') ?? '0x0',
      match,
      actions,
      packets: Number(stat('n_packets') ?? 0),
      bytes: Number(stat('n_bytes') ?? 0),
    });
  }
  return out;
}

export const ruleId = (bridge: string, r: Pick<OfRule, 'table' | 'priority' | 'match'>) => `${bridge}|${r.table}|${r.priority}|${normalMatch(r.match)}`;

/** A match with its fields in a fixed order, so two printings of one match compare equal. */
export function normalMatch(match: string): string {
  return match
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .sort()
    .join(',');
}

export function isDropRule(r: OfRule): boolean {
  return r.actions === 'drop' || r.actions === '';
}

// ---- ofproto/trace: which OpenFlow rule decided ----

export interface TraceRule {
  bridge: string;
  table: number;
  /** Null for a table miss. */
  priority: number | null;
  match: string;
  cookie: string | null;
  tableMiss: boolean;
  /** The rule's actions as the trace lists them. */
  actions: string[];
}

export interface TraceResult {
  /** Rules in the order the packet met them, over every pass (recirculations included). */
  rules: TraceRule[];
  /** `Datapath actions:` of the last pass. */
  datapathActions: string | null;
  /** Lines starting with `>>`: why the translation dropped or failed. */
  errors: string[];
}

/** `ovs-appctl ofproto/trace DP KEY`. */
export function parseTrace(text: string): TraceResult {
  const rules: TraceRule[] = [];
  const errors: string[] = [];
  let bridge = '';
  let datapathActions: string | null = null;
  let current: TraceRule | undefined;
  for (const line of text.split('\n')) {
    const br = /^\s*bridge\("(.+)"\)\s*$/.exec(line);
    if (br) {
      bridge = br[1]!;
      current = undefined;
      continue;
    }
    const miss = /^\s*(\d+)\. No match\.?\s*$/.exec(line);
    if (miss) {
      current = { bridge, table: Number(miss[1]), priority: null, match: '', cookie: null, tableMiss: true, actions: [] };
      rules.push(current);
      continue;
    }
    const rule = /^\s*(\d+)\. (?:(.*), )?priority (\d+)(?:, cookie (0x[0-9a-f]+))?\s*$/i.exec(line);
    if (rule) {
      current = { bridge, table: Number(rule[1]), priority: Number(rule[3]), match: rule[2] ?? '', cookie: rule[4] ?? null, tableMiss: false, actions: [] };
      rules.push(current);
      continue;
    }
    const dpa = /^Datapath actions: (.*)$/.exec(line);
    if (dpa) {
      datapathActions = dpa[1]!.trim();
      current = undefined;
      continue;
    }
    const err = /^\s*>> (.*)$/.exec(line);
    if (err) {
      errors.push(err[1]!.trim());
      continue;
    }
    if (/^(Final flow|Megaflow|Flow):/.test(line) || /^=+$/.test(line.trim())) {
      current = undefined;
      continue;
    }
    const act = /^ {4}(\S.*)$/.exec(line);
    if (act && current && !act[1]!.startsWith('->')) current.actions.push(act[1]!.trim());
  }
  return { rules, datapathActions, errors };
}

// ---- upcall/show ----

export interface UpcallShow {
  id: string;
  flows: { current: number; avg: number; max: number; limit: number } | null;
  offloaded: number | null;
  dumpDurationMs: number | null;
  ufid: boolean | null;
  /** Sum of the revalidators' `(keys N)`. */
  keys: number | null;
}

/** `ovs-appctl upcall/show`. */
export function parseUpcallShow(text: string): UpcallShow[] {
  const out: UpcallShow[] = [];
  let cur: UpcallShow | undefined;
  for (const line of text.split('\n')) {
    const head = /^(\S+@\S+):$/.exec(line);
    if (head) {
      cur = { id: head[1]!, flows: null, offloaded: null, dumpDurationMs: null, ufid: null, keys: null };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const flows = /flows\s*:\s*\(current (\d+)\)\s*\(avg (\d+)\)\s*\(max (\d+)\)\s*\(limit (\d+)\)/.exec(line);
    if (flows) {
      cur.flows = { current: Number(flows[1]), avg: Number(flows[2]), max: Number(flows[3]), limit: Number(flows[4]) };
      continue;
    }
    const off = /offloaded flows\s*:\s*(\d+)/.exec(line);
    if (off) cur.offloaded = Number(off[1]);
    const dump = /dump duration\s*:\s*(\d+)ms/.exec(line);
    if (dump) cur.dumpDurationMs = Number(dump[1]);
    const ufid = /ufid enabled\s*:\s*(true|false)/.exec(line);
    if (ufid) cur.ufid = ufid[1] === 'true';
    const keys = /^\s+\d+: \(keys (\d+)\)/.exec(line);
    if (keys) cur.keys = (cur.keys ?? 0) + Number(keys[1]);
  }
  return out;
}

// ---- dpif-netdev/pmd-stats-show ----

export interface PmdThread {
  /** `main thread`, `pmd thread numa_id 0 core_id 3` */
  thread: string;
  /** Every `label: number` line, e.g. `megaflow hits` → 10, `idle cycles` → 123. */
  values: Record<string, number>;
}

/** `ovs-appctl dpif-netdev/pmd-stats-show`. */
export function parsePmdStats(text: string): PmdThread[] {
  const out: PmdThread[] = [];
  let cur: PmdThread | undefined;
  for (const line of text.split('\n')) {
    const head = /^(pmd thread .+|main thread):\s*$/.exec(line);
    if (head) {
      cur = { thread: head[1]!, values: {} };
      out.push(cur);
      continue;
    }
    const kv = /^\s+([a-zA-Z][a-zA-Z .()/-]*?):\s+(-?[\d.]+)/.exec(line);
    if (kv && cur) cur.values[kv[1]!.trim()] = Number(kv[2]);
  }
  return out;
}

// ---- ovs-vsctl list Interface (JSON) ----

export interface InterfaceRow {
  name: string;
  type: string;
  ofport: number | null;
  linkState: string | null;
  adminState: string | null;
  externalIds: Record<string, string>;
}

/** `ovs-vsctl --format=json --columns=name,type,ofport,link_state,admin_state,external_ids list Interface`. */
export function parseInterfaces(text: string): InterfaceRow[] {
  let doc: { headings?: string[]; data?: unknown[][] };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return [];
  }
  const h = doc.headings ?? [];
  const col = (row: unknown[], name: string) => row[h.indexOf(name)];
  // OVSDB JSON: scalars as is, empty sets as ["set", []], maps as ["map", [[k, v], ...]].
  const scalar = (v: unknown): string | number | null => (typeof v === 'string' || typeof v === 'number' ? v : null);
  return (doc.data ?? []).map((row) => {
    const ids = col(row, 'external_ids');
    const externalIds: Record<string, string> = {};
    if (Array.isArray(ids) && ids[0] === 'map' && Array.isArray(ids[1])) {
      for (const pair of ids[1] as unknown[]) if (Array.isArray(pair) && pair.length === 2) externalIds[String(pair[0])] = String(pair[1]);
    }
    const ofport = scalar(col(row, 'ofport'));
    const link = scalar(col(row, 'link_state'));
    const admin = scalar(col(row, 'admin_state'));
    return {
      name: String(col(row, 'name') ?? ''),
      type: String(scalar(col(row, 'type')) ?? '') || 'system',
      ofport: typeof ofport === 'number' ? ofport : null,
      linkState: typeof link === 'string' ? link : null,
      adminState: typeof admin === 'string' ? admin : null,
      externalIds,
    };
  });
}

// ---- small helpers both probes use ----

/** A counter's growth between two reads; a counter that went down (restart) counts from 0. */
export function grow(before: number | undefined, after: number): number {
  if (before === undefined) return after;
  return after >= before ? after - before : after;
}
