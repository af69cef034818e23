// Whose drop is it: what the probes that read match rules (ovs.drops, ovs.megaflow, net.nft)
// and connection tuples (net.conntrack) share to scope a finding to one VM. A VM is known by
// its MACs, its addresses (IPv4 and IPv6), its devices (taps) and the bridges they are on;
// each probe turns the fields of a rule's match into verdicts about the VM with the helpers
// below, and `scopeOf` makes them one scope:
//   'vm'    a field names the VM (its port or tap, one of its MACs or addresses, prefixes,
//           masks, ranges and sets included);
//   'other' nothing names it and a field excludes it (another tenant's address or MAC, a
//           frame leaving by another port or crossing another bridge);
//   'any'   nothing names or excludes it: the rule can carry the VM's packets (a port match,
//           a protocol, a multicast destination, a set whose contents are not known).
// An ingress device that is not the VM's never excludes it: packets *to* the VM come in on the
// uplinks and the other ports.
import { isIP, SocketAddress } from 'node:net';
import type { Params, ParamSpec } from '../../engine/probe/types.js';

export type VmScope = 'vm' | 'any' | 'other';
/** What one constrained field of a match says about the VM. */
export type FieldVerdict = 'names' | 'excludes' | 'neutral';

export interface VmIdentity {
  /** Lower case, colon separated. */
  macs: string[];
  /** IPv4 and IPv6, in their usual text (IPv6 compressed). */
  ips: string[];
  /** The VM's devices on the host (taps). */
  devs: string[];
  /** The bridges those devices are ports of, where known. */
  bridges: string[];
}

/** The params every scoped probe takes (each adds its own description of what they keep). */
export function vmScopeParams(what: { macs?: string; ips?: string; devs?: string }): Record<string, ParamSpec> {
  const out: Record<string, ParamSpec> = {};
  if (what.macs) out.vm_macs = { type: 'string[]', description: `The VM's MAC addresses: ${what.macs}` };
  if (what.ips) out.vm_ips = { type: 'string[]', description: `The VM's IPv4 and IPv6 addresses (a prefix length is ignored): ${what.ips}` };
  if (what.devs) out.vm_devs = { type: 'string[]', description: `The VM's devices on the host (its taps): ${what.devs}` };
  return out;
}

function listParam(params: Params, name: string): string[] {
  const v = params[name];
  if (v === undefined || v === null || v === '') return [];
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  if (Array.isArray(v)) return v.map((s) => String(s).trim()).filter(Boolean);
  throw new Error(`${name}: expected a list of strings, got ${JSON.stringify(v)}`);
}

/** The VM's identity from `vm_macs`, `vm_ips`, `vm_devs`; a bad entry is a one-line error that says what is expected. */
export function vmIdentityOf(params: Params): VmIdentity {
  const macs = listParam(params, 'vm_macs').map((m) => {
    const p = parseAddr(m);
    if (!p || p.family !== 'mac') throw new Error(`vm_macs: "${m}" is not a MAC address (give it like 52:54:00:12:34:56)`);
    return macText(p.value);
  });
  const ips = listParam(params, 'vm_ips').map((ip) => {
    // `10.0.0.2/24` as `ip addr` and libvirt's domifaddr print it: the address is the VM's.
    const p = parseAddr(ip.replace(/\/\d{1,3}$/, ''));
    if (!p || p.family === 'mac') throw new Error(`vm_ips: "${ip}" is not an IPv4 or IPv6 address (give each like 10.0.0.2 or fd00::2)`);
    return addrText(p);
  });
  return { macs: [...new Set(macs)], ips: [...new Set(ips)], devs: [...new Set(listParam(params, 'vm_devs'))], bridges: [] };
}

/** Whether anything identifies the VM (else every scope is 'any'). */
export function hasVmIdentity(vm: VmIdentity): boolean {
  return vm.macs.length + vm.ips.length + vm.devs.length > 0;
}

// ---- addresses as numbers ----

export type AddrFamily = 4 | 6 | 'mac';
export interface Addr {
  family: AddrFamily;
  value: bigint;
}
/** A set of addresses: those equal to `value` under `mask`, or those from `lo` to `hi`. */
export type AddrTerm = { family: AddrFamily; value: bigint; mask: bigint } | { family: AddrFamily; lo: bigint; hi: bigint };

const BITS: Record<string, number> = { '4': 32, '6': 128, mac: 48 };
const allOnes = (f: AddrFamily) => (1n << BigInt(BITS[String(f)]!)) - 1n;

function parseIpv4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  return parts.reduce((n, p) => (n << 8n) | BigInt(Number(p)), 0n);
}

function parseIpv6(s: string): bigint | null {
  let text = s.replace(/%.*$/, '');
  if (isIP(text) !== 6) return null;
  // An embedded IPv4 tail (`::ffff:10.0.0.2`) becomes its two groups.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const v4 = parseIpv4(tail[1]!)!;
    text = `${text.slice(0, -tail[1]!.length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const split = (x: string) => (x === '' ? [] : x.split(':'));
  let groups = split(head);
  if (rest !== undefined) {
    const right = split(rest);
    groups = [...groups, ...Array<string>(8 - groups.length - right.length).fill('0'), ...right];
  }
  if (groups.length !== 8) return null;
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function parseMac(s: string): bigint | null {
  const m = /^([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})$/i.exec(s.trim());
  if (!m) return null;
  return m.slice(1).reduce((n, b) => (n << 8n) | BigInt(parseInt(b, 16)), 0n);
}

/** An IPv4, IPv6 or MAC address as a number; null when it is none of them. */
export function parseAddr(text: string): Addr | null {
  const s = text.trim();
  const v4 = parseIpv4(s);
  if (v4 !== null) return { family: 4, value: v4 };
  const mac = parseMac(s);
  if (mac !== null) return { family: 'mac', value: mac };
  const v6 = parseIpv6(s);
  return v6 !== null ? { family: 6, value: v6 } : null;
}

export function macText(v: bigint): string {
  return Array.from({ length: 6 }, (_, i) => ((v >> BigInt((5 - i) * 8)) & 0xffn).toString(16).padStart(2, '0')).join(':');
}

/** The address in its usual text (IPv6 compressed, MACs lower case). */
export function addrText(a: Addr): string {
  if (a.family === 'mac') return macText(a.value);
  if (a.family === 4) return Array.from({ length: 4 }, (_, i) => Number((a.value >> BigInt((3 - i) * 8)) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((a.value >> BigInt((7 - i) * 16)) & 0xffffn).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** The same address in two texts (`FD00::2` and `fd00:0::2`)? */
export function sameAddr(a: string, b: string): boolean {
  const x = parseAddr(a);
  const y = parseAddr(b);
  return x !== null && y !== null && x.family === y.family && x.value === y.value;
}

/**
 * `addr`, `addr/len` or `addr/mask` (the mask an address, or a hex number) as a term; an
 * explicit `mask` wins. Null when the text is not an address.
 */
export function addrTerm(text: string, mask?: string): AddrTerm | null {
  let base = text.trim();
  let maskText = mask?.trim();
  const slash = base.indexOf('/');
  if (maskText === undefined && slash >= 0) {
    maskText = base.slice(slash + 1);
    base = base.slice(0, slash);
  }
  const a = parseAddr(base);
  if (!a) return null;
  const full = allOnes(a.family);
  let m = full;
  if (maskText !== undefined && maskText !== '') {
    if (/^\d+$/.test(maskText) && Number(maskText) <= BITS[String(a.family)]!) {
      const len = BigInt(Number(maskText));
      m = len === 0n ? 0n : (full >> (BigInt(BITS[String(a.family)]!) - len)) << (BigInt(BITS[String(a.family)]!) - len);
    } else if (/^0x[0-9a-f]+$/i.test(maskText)) m = BigInt(maskText) & full;
    else {
      const pm = parseAddr(maskText);
      if (!pm || pm.family !== a.family) return null;
      m = pm.value;
    }
  }
  return { family: a.family, value: a.value & m, mask: m };
}

export function rangeTerm(lo: string, hi: string): AddrTerm | null {
  const a = parseAddr(lo);
  const b = parseAddr(hi);
  if (!a || !b || a.family !== b.family) return null;
  return { family: a.family, lo: a.value, hi: b.value };
}

function contains(t: AddrTerm, a: Addr): boolean {
  if (t.family !== a.family) return false;
  return 'mask' in t ? (a.value & t.mask) === t.value : a.value >= t.lo && a.value <= t.hi;
}

/** Group destinations (multicast, broadcast) a VM may receive without being named. */
const GROUPS: Record<string, Array<{ value: bigint; mask: bigint }>> = {
  '4': [
    { value: 0xe0000000n, mask: 0xf0000000n },
    { value: 0xffffffffn, mask: 0xffffffffn },
  ],
  '6': [{ value: 0xffn << 120n, mask: 0xffn << 120n }],
  mac: [{ value: 1n << 40n, mask: 1n << 40n }],
};

function mayBeGroup(t: AddrTerm): boolean {
  return (GROUPS[String(t.family)] ?? []).some((g) => {
    if ('mask' in t) return ((t.value ^ g.value) & t.mask & g.mask) === 0n;
    const lo = g.value & g.mask;
    const hi = lo | (allOnes(t.family) & ~g.mask);
    return t.lo <= hi && lo <= t.hi;
  });
}

/** The VM's addresses of one family (its MACs for 'mac'). */
function vmAddrs(vm: VmIdentity, family: AddrFamily): Addr[] {
  const texts = family === 'mac' ? vm.macs : vm.ips;
  return texts.map(parseAddr).filter((a): a is Addr => a !== null && a.family === family);
}

/**
 * An address field (IP or MAC) of a match. `terms` null: a set whose contents are not known.
 * A destination that can be a group address (multicast, broadcast) does not exclude the VM.
 * A family the VM has no known address of says nothing.
 */
export function addrVerdict(vm: VmIdentity, m: { side: 'src' | 'dst'; terms: AddrTerm[] | null; negated?: boolean }): FieldVerdict {
  if (m.terms === null || m.terms.length === 0) return 'neutral';
  const family = m.terms[0]!.family;
  const mine = vmAddrs(vm, family);
  if (mine.length === 0) return 'neutral';
  const negated = m.negated === true;
  const admitted = mine.some((a) => m.terms!.some((t) => contains(t, a)) !== negated);
  if (admitted) return negated ? 'neutral' : 'names';
  if (m.side === 'dst' && !negated && m.terms.some(mayBeGroup)) return 'neutral';
  return 'excludes';
}

// ---- devices ----

/** Whether `dev` is one of `names` (nft wildcards end in `*`, iptables' in `+`). */
export function nameMatches(dev: string, names: string[]): boolean {
  return names.some((n) => (n.endsWith('*') || n.endsWith('+') ? dev.startsWith(n.slice(0, -1)) : n === dev));
}

/**
 * A device field: `in` (where the packet came from: iifname, in_port, --physdev-in) names the
 * VM or says nothing (packets to the VM come in elsewhere); `out` (where it leaves) names the
 * VM or excludes it, except, outside bridge-level hooks, the VM's own bridge (routed traffic
 * to a bridged VM leaves by the bridge device). `names` null: not known (a named set).
 */
export function devVerdict(vm: VmIdentity, m: { side: 'in' | 'out'; names: string[] | null; negated?: boolean; bridgeLevel: boolean }): FieldVerdict {
  if (m.names === null || vm.devs.length === 0) return 'neutral';
  const negated = m.negated === true;
  const admitted = vm.devs.some((d) => nameMatches(d, m.names!) !== negated);
  if (admitted) return negated ? 'neutral' : 'names';
  if (m.side === 'in') return 'neutral';
  if (!m.bridgeLevel && vm.bridges.some((b) => nameMatches(b, m.names!) !== negated)) return 'neutral';
  return 'excludes';
}

/** A bridge-name field (nft's ibrname/obrname): a frame of the VM never crosses another bridge. */
export function bridgeVerdict(vm: VmIdentity, m: { names: string[] | null; negated?: boolean }): FieldVerdict {
  if (m.names === null || vm.bridges.length === 0) return 'neutral';
  return vm.bridges.some((b) => nameMatches(b, m.names!) !== (m.negated === true)) ? 'neutral' : 'excludes';
}

// ---- scopes ----

/** The scope of one match (a conjunction of fields): a field naming the VM wins over one excluding it. */
export function scopeOf(verdicts: Iterable<FieldVerdict>): VmScope {
  let excludes = false;
  for (const v of verdicts) {
    if (v === 'names') return 'vm';
    if (v === 'excludes') excludes = true;
  }
  return excludes ? 'other' : 'any';
}

const RANK: Record<VmScope, number> = { vm: 0, any: 1, other: 2 };

/** Most specific first: 'vm', 'any', 'other'. */
export function scopeRank(s: VmScope): number {
  return RANK[s];
}

/** The scope of two matches that must both hold (a jump's and the rule's): as if one match. */
export function bothScope(a: VmScope, b: VmScope): VmScope {
  const v = (s: VmScope): FieldVerdict => (s === 'vm' ? 'names' : s === 'other' ? 'excludes' : 'neutral');
  return scopeOf([v(a), v(b)]);
}

/** The scope of alternatives (several paths to one rule): the widest claim on the VM wins. */
export function widestScope(scopes: Iterable<VmScope>): VmScope {
  let best: VmScope = 'other';
  let seen = false;
  for (const s of scopes) {
    seen = true;
    if (RANK[s] < RANK[best]) best = s;
  }
  return seen ? best : 'any';
}

/** The identity in one line, for summaries: `52:54:00:aa:bb:cc, 10.0.0.2, tap1`. */
export function identityText(vm: VmIdentity, extra: string[] = []): string {
  return [...extra, ...vm.devs, ...vm.macs, ...vm.ips].join(', ');
}
