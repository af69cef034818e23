// net.nft scoped to a VM: what a rule's matches say about the VM (vm-scope.ts), for nftables
// rules (the JSON ruleset: ip/ip6/ether addresses, iifname/oifname/iif/oif, the bridge
// family's ibrname/obrname; single values, prefixes, ranges, sets, named sets and negations),
// for iptables-save rules (-s/-d/-i/-o, --mac-source, --physdev-in/out, --src/dst-range), and
// along the jumps that reach a rule (a jump's matches hold for every rule of its target).
import {
  addrTerm,
  addrVerdict,
  bothScope,
  bridgeVerdict,
  devVerdict,
  rangeTerm,
  scopeOf,
  widestScope,
  type AddrTerm,
  type FieldVerdict,
  type VmIdentity,
  type VmScope,
} from '../lib/vm-scope.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Named sets of a ruleset: family|table|name → their elements as nft -j lists them. */
export type NamedSets = Map<string, unknown[]>;

export interface NftScopeContext {
  vm: VmIdentity;
  family: string;
  table: string;
  sets: NamedSets;
}

/** Payload fields that hold an address: `ip saddr` → src. */
const PAYLOAD_SIDES: Record<string, 'src' | 'dst'> = { saddr: 'src', daddr: 'dst', 'saddr ip': 'src', 'daddr ip': 'dst', 'saddr ether': 'src', 'daddr ether': 'dst' };
const ADDR_PROTOCOLS = new Set(['ip', 'ip6', 'ether', 'arp']);
const DEV_SIDES: Record<string, 'in' | 'out'> = { iifname: 'in', iif: 'in', oifname: 'out', oif: 'out' };
const BRIDGE_KEYS = new Set(['ibrname', 'obrname', 'ibriport', 'obriport']);

/** Whether devices seen by the rule are bridge ports (bridge family) or devices (netdev) rather than routed interfaces. */
export const bridgeLevel = (family: string) => family === 'bridge' || family === 'netdev';

/** The elements a match's right side stands for (a named set resolved); null when not known. */
function elements(right: unknown, ctx: NftScopeContext): unknown[] | null {
  if (typeof right === 'string' && right.startsWith('@')) return ctx.sets.get(`${ctx.family}|${ctx.table}|${right.slice(1)}`) ?? null;
  if (isObj(right) && Array.isArray(right.set)) return right.set;
  return [right];
}

/** One element (`10.0.0.2`, a prefix, a range, `{elem: {val}}`) as an address term. */
function termOf(e: unknown): AddrTerm | null {
  if (isObj(e) && isObj(e.elem)) return termOf(e.elem.val);
  if (typeof e === 'string') return addrTerm(e);
  if (isObj(e) && isObj(e.prefix)) return addrTerm(`${String(e.prefix.addr)}/${String(e.prefix.len)}`);
  if (isObj(e) && Array.isArray(e.range) && e.range.length === 2) return rangeTerm(String(e.range[0]), String(e.range[1]));
  return null;
}

function nameOf(e: unknown): string | null {
  if (isObj(e) && isObj(e.elem)) return nameOf(e.elem.val);
  return typeof e === 'string' ? e : null;
}

/** What a field (the left side of a match) is, when it identifies the VM. */
type FieldKind = { kind: 'addr'; side: 'src' | 'dst'; mask?: string } | { kind: 'dev'; side: 'in' | 'out' } | { kind: 'bridge' };

function fieldOf(left: unknown): FieldKind | null {
  if (!isObj(left)) return null;
  // `ip saddr & 255.255.255.0 == 10.0.0.0`: a masked compare (nft usually prints a prefix instead).
  const and = left['&'];
  if (Array.isArray(and) && and.length === 2 && typeof and[1] === 'string') {
    const inner = fieldOf(and[0]);
    return inner?.kind === 'addr' ? { ...inner, mask: and[1] } : null;
  }
  if (isObj(left.payload)) {
    const side = PAYLOAD_SIDES[String(left.payload.field)];
    return side && ADDR_PROTOCOLS.has(String(left.payload.protocol)) ? { kind: 'addr', side } : null;
  }
  if (isObj(left.meta)) {
    const key = String(left.meta.key);
    if (DEV_SIDES[key]) return { kind: 'dev', side: DEV_SIDES[key] };
    if (BRIDGE_KEYS.has(key)) return { kind: 'bridge' };
  }
  return null;
}

function fieldVerdict(field: FieldKind, right: unknown, negated: boolean, ctx: NftScopeContext): FieldVerdict {
  const els = elements(right, ctx);
  if (field.kind === 'addr') {
    const terms = els === null ? null : els.map((e) => (field.mask !== undefined && typeof e === 'string' ? addrTerm(e, field.mask) : termOf(e)));
    return addrVerdict(ctx.vm, { side: field.side, terms: terms === null || terms.some((t) => t === null) ? null : (terms as AddrTerm[]), negated });
  }
  const names = els === null ? null : els.map(nameOf);
  const known = names === null || names.some((n) => n === null) ? null : (names as string[]);
  if (field.kind === 'bridge') return bridgeVerdict(ctx.vm, { names: known, negated });
  return devVerdict(ctx.vm, { side: field.side, names: known, negated, bridgeLevel: bridgeLevel(ctx.family) });
}

/** `ip saddr . ip daddr { a . b, ... }`: each element is a conjunction; the set, their alternatives. */
function concatVerdict(fields: unknown[], right: unknown, negated: boolean, ctx: NftScopeContext): FieldVerdict {
  const kinds = fields.map(fieldOf);
  const els = elements(right, ctx);
  if (negated || els === null) return 'neutral';
  const scopes: VmScope[] = [];
  for (const e of els) {
    const val = isObj(e) && isObj(e.elem) ? e.elem.val : e;
    const parts = isObj(val) && Array.isArray(val.concat) ? val.concat : null;
    if (!parts || parts.length !== kinds.length) return 'neutral';
    scopes.push(scopeOf(kinds.flatMap((k, i) => (k ? [fieldVerdict(k, parts[i], false, ctx)] : []))));
  }
  const s = widestScope(scopes);
  return s === 'vm' ? 'names' : s === 'other' ? 'excludes' : 'neutral';
}

/** The scope of an nft rule from its own matches. */
export function nftRuleScope(expr: unknown[], ctx: NftScopeContext): VmScope {
  const verdicts: FieldVerdict[] = [];
  for (const stmt of expr) {
    if (!isObj(stmt) || !isObj(stmt.match)) continue;
    const m = stmt.match;
    const op = typeof m.op === 'string' ? m.op : '==';
    if (op !== '==' && op !== '!=' && op !== 'in') continue;
    const negated = op === '!=';
    if (isObj(m.left) && Array.isArray(m.left.concat)) {
      verdicts.push(concatVerdict(m.left.concat, m.right, negated, ctx));
      continue;
    }
    const field = fieldOf(m.left);
    if (field) verdicts.push(fieldVerdict(field, m.right, negated, ctx));
  }
  return scopeOf(verdicts);
}

/**
 * The chains a verdict map jumps to, each with the scope its key gives (`iifname vmap { "tap1" :
 * jump tap1-in }`: every rule of tap1-in holds for tap1's packets only).
 */
export function vmapJumps(expr: unknown[], ctx: NftScopeContext): Array<{ target: string; scope: VmScope }> {
  const out: Array<{ target: string; scope: VmScope }> = [];
  for (const stmt of expr) {
    if (!isObj(stmt) || !isObj(stmt.vmap)) continue;
    const field = fieldOf(stmt.vmap.key);
    const data = stmt.vmap.data;
    const pairs = typeof data === 'string' && data.startsWith('@') ? null : isObj(data) && Array.isArray(data.set) ? data.set : null;
    for (const pair of pairs ?? []) {
      if (!Array.isArray(pair) || pair.length !== 2 || !isObj(pair[1])) continue;
      const verdict = pair[1];
      const jump = isObj(verdict.jump) ? verdict.jump : isObj(verdict.goto) ? verdict.goto : null;
      if (!jump || typeof jump.target !== 'string') continue;
      out.push({ target: jump.target, scope: field ? scopeOf([fieldVerdict(field, pair[0], false, ctx)]) : 'any' });
    }
  }
  return out;
}

/** A netdev base chain bound to devices: ingress sees what they receive, egress what they send. */
export function chainDeviceScope(devices: string[], hook: string | null, vm: VmIdentity): VmScope {
  if (devices.length === 0) return 'any';
  const side = hook === 'egress' ? 'out' : 'in';
  return scopeOf([devVerdict(vm, { side, names: devices, bridgeLevel: true })]);
}

/** The iptables options that identify a VM, and what each is. */
const IPT_OPTIONS: Record<string, FieldKind> = {
  '-s': { kind: 'addr', side: 'src' },
  '--source': { kind: 'addr', side: 'src' },
  '-d': { kind: 'addr', side: 'dst' },
  '--destination': { kind: 'addr', side: 'dst' },
  '--mac-source': { kind: 'addr', side: 'src' },
  '--src-range': { kind: 'addr', side: 'src' },
  '--dst-range': { kind: 'addr', side: 'dst' },
  '-i': { kind: 'dev', side: 'in' },
  '--in-interface': { kind: 'dev', side: 'in' },
  '-o': { kind: 'dev', side: 'out' },
  '--out-interface': { kind: 'dev', side: 'out' },
};
/** br_netfilter's bridge ports (`-m physdev`): bridge-level devices. */
const PHYSDEV: Record<string, 'in' | 'out'> = { '--physdev-in': 'in', '--physdev-out': 'out' };

/** The scope of an iptables-save rule (`-A FORWARD -d 10.0.0.2/32 -i eth0 -j DROP`) from its own options. */
export function iptRuleScope(text: string, vm: VmIdentity): VmScope {
  const verdicts: FieldVerdict[] = [];
  const tokens = text.split(/\s+/).filter(Boolean);
  for (let i = 0; i < tokens.length; i++) {
    let negated = tokens[i] === '!';
    const opt = negated ? tokens[i + 1] : tokens[i];
    if (opt === undefined || (!IPT_OPTIONS[opt] && !PHYSDEV[opt])) continue;
    i += negated ? 2 : 1;
    // The old placement of the negation: `-s ! 10.0.0.2`.
    if (tokens[i] === '!') {
      negated = true;
      i++;
    }
    const value = tokens[i];
    if (value === undefined) break;
    const field = IPT_OPTIONS[opt];
    const physdev = PHYSDEV[opt];
    if (physdev) {
      verdicts.push(devVerdict(vm, { side: physdev, names: [value], negated, bridgeLevel: true }));
    } else if (field?.kind === 'dev') {
      verdicts.push(devVerdict(vm, { side: field.side, names: [value], negated, bridgeLevel: false }));
    } else if (field?.kind === 'addr') {
      const range = opt.endsWith('-range');
      const terms = value.split(',').map((v) => (range ? rangeTerm(v.split('-')[0] ?? '', v.split('-')[1] ?? '') : addrTerm(v)));
      verdicts.push(addrVerdict(vm, { side: field.side, terms: terms.some((t) => t === null) ? null : (terms as AddrTerm[]), negated }));
    }
  }
  return scopeOf(verdicts);
}

/**
 * The scope every chain is reached with: from each base chain (with its own scope), along
 * jumps whose matches must hold too; several ways into a chain give the widest claim.
 */
export function chainScopes(bases: Array<{ key: string; scope: VmScope }>, jumps: Map<string, Array<{ to: string; scope: VmScope }>>): Map<string, VmScope> {
  const seen = new Map<string, Set<VmScope>>();
  const queue = [...bases];
  while (queue.length > 0) {
    const { key, scope } = queue.shift()!;
    const got = seen.get(key) ?? new Set<VmScope>();
    if (got.has(scope)) continue;
    got.add(scope);
    seen.set(key, got);
    for (const j of jumps.get(key) ?? []) queue.push({ key: j.to, scope: bothScope(scope, j.scope) });
  }
  return new Map([...seen].map(([k, s]) => [k, widestScope(s)]));
}
