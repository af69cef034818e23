// net.nft: which netfilter rule dropped. The nftables ruleset (`nft -j list ruleset`) and the
// iptables counters (`iptables-save -c`) read at the start and the end of a window; the drop
// and reject rules whose counters moved are the droppers, named by family, table, chain,
// handle and the rule's own text (`nft -a list ruleset`).
import { formatMs } from '../../engine/duration.js';
import { inNetns, netnsOf } from '../../engine/probe/netns.js';
import type { ChartSpec, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { bothScope, hasVmIdentity, identityText, scopeRank, vmIdentityOf, vmScopeParams, type VmIdentity, type VmScope } from '../lib/vm-scope.js';
import { DATA, type NftData } from './data.js';
import { chainDeviceScope, chainScopes, iptRuleScope, nftRuleScope, vmapJumps, type NamedSets } from './scope.js';
import { firstLine } from '../lib/format.js';

// ---------------------------------------------------------------------------------------------
// Finding shape

export type { NftData } from './data.js';
export type Dropper = NftData['droppers'][number];
export type UncountedDropRule = NftData['dropRulesWithoutCounters'][number];
export type PolicyDropChain = NftData['policyDropChains'][number];
export type IptablesSource = NftData['iptables'][number];

// ---------------------------------------------------------------------------------------------
// Collect

const IPTABLES_TOOLS = ['iptables-save', 'ip6tables-save'] as const;
/** The netfilter hooks of iptables' built-in chains. */
const BUILTIN_HOOKS: Record<string, string> = { PREROUTING: 'prerouting', INPUT: 'input', FORWARD: 'forward', OUTPUT: 'output', POSTROUTING: 'postrouting' };
const TIMEOUT_MS = 30_000;

function devOf(params: Params): string | undefined {
  const dev = params.dev;
  return typeof dev === 'string' && dev !== '' ? dev : undefined;
}

/** A command that could not run at all inside the namespace (not installed). */
function notInstalled(rec: RawRecord): boolean {
  return rec.exitCode === 127 || /^exec of ".*" failed: No such file|^nsenter: failed to execute .*: No such file/.test(firstLine(rec.stderr));
}

function where(netns: string | undefined): string {
  return netns === undefined ? '' : ` in network namespace ${netns}`;
}

/** nft's and the iptables tools' counters, read side by side (started in a fixed order: a replay answers in it). */
async function sample(io: ProbeIO, phase: 'start' | 'end', netns: string | undefined, iptables: Set<string>): Promise<void> {
  const tools = IPTABLES_TOOLS.filter((tool) => iptables.has(tool));
  const [nft, ...recs] = await Promise.all([
    io.exec(`nft-${phase}`, inNetns(netns, ['nft', '-j', '-t', 'list', 'ruleset']), { timeoutMs: TIMEOUT_MS, allowFailure: true }),
    ...tools.map((tool) => io.exec(`${tool}-${phase}`, inNetns(netns, [tool, '-c']), { timeoutMs: TIMEOUT_MS, allowFailure: true })),
  ]);
  if (nft!.error !== undefined) throw new Error(nftFailure(nft!, netns));
  // Not installed: no point asking again at the end.
  tools.forEach((tool, i) => {
    if (recs[i]!.error !== undefined && notInstalled(recs[i]!)) iptables.delete(tool);
  });
}

function nftFailure(rec: RawRecord, netns: string | undefined): string {
  const why = firstLine(rec.stderr) || firstLine(rec.stdout) || rec.error || `exit code ${rec.exitCode}`;
  if (netns !== undefined && /^Cannot open network namespace|^nsenter: cannot open/.test(why)) {
    return `no network namespace ${netns}: ${why}`;
  }
  if (rec.exitCode === 127 || notInstalled(rec)) return `nft is not installed${where(netns)} (apt-get install nftables): ${why}`;
  if (/Operation not permitted|Permission denied/.test(why)) return `nft cannot read the ruleset${where(netns)}: ${why} (run as root)`;
  return `nft -j list ruleset failed${where(netns)}: ${why}`;
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const netns = netnsOf(params);
  const durationMs = params.duration as number;
  const iptables = new Set<string>(IPTABLES_TOOLS);
  await sample(io, 'start', netns, iptables);
  if (durationMs > 0) await io.sleep(durationMs);
  const vm = vmIdentityOf(params);
  const opts = { timeoutMs: TIMEOUT_MS, allowFailure: true };
  // After the window, side by side, in a fixed order: the counters again; the rules' own text,
  // for the rules the finding names (the whole ruleset, terse, with handles, rather than chain
  // by chain: a chain whose name is an nft keyword, `fwd` for one, cannot be named on nft's
  // command line); scoped to a VM, the named sets' elements (the terse listings leave them out)
  // and the bridges the VM's taps are ports of (a bridge rule naming another bridge is not the VM's).
  await Promise.all([
    durationMs > 0 ? sample(io, 'end', netns, iptables) : undefined,
    io.exec('nft-text', inNetns(netns, ['nft', '-a', '-t', 'list', 'ruleset']), opts),
    hasVmIdentity(vm) ? io.exec('nft-sets', inNetns(netns, ['nft', '-j', 'list', 'sets']), opts) : undefined,
    vm.devs.length > 0 ? io.exec('links', inNetns(netns, ['ip', '-j', 'link', 'show']), opts) : undefined,
  ]);
}

/** The VM of the params, with the bridges its devices are ports of (from the `links` record); null when none is given. */
function vmOf(params: Params, links: RawRecord | undefined): VmIdentity | null {
  const vm = vmIdentityOf(params);
  if (!hasVmIdentity(vm)) return null;
  if (links && links.error === undefined && links.exitCode === 0) {
    try {
      const list = JSON.parse(links.stdout) as Array<{ ifname?: unknown; master?: unknown }>;
      vm.bridges = [...new Set(list.filter((l) => typeof l.ifname === 'string' && vm.devs.includes(l.ifname) && typeof l.master === 'string').map((l) => l.master as string))];
    } catch {
      /* not JSON: bridges unknown */
    }
  }
  return vm;
}

// ---------------------------------------------------------------------------------------------
// The nftables JSON ruleset

interface Chain {
  family: string;
  table: string;
  name: string;
  hook: string | null;
  prio: number | null;
  policy: string | null;
  type: string | null;
  /** netdev chains: the devices they are bound to. */
  devices: string[];
}

interface Rule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  /** Position in its chain. */
  index: number;
  expr: unknown[];
  comment?: string;
}

interface Ruleset {
  version: string | null;
  tables: number;
  chains: Chain[];
  rules: Rule[];
  /** Named counter objects: family|table|name → values. */
  counters: Map<string, { packets: number; bytes: number }>;
  /** Named sets: family|table|name → elements. */
  sets: NamedSets;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function parseRuleset(text: string): Ruleset {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`nft -j printed something that is not JSON: ${(err as Error).message}: ${JSON.stringify(text.trim().slice(0, 80))}`);
  }
  if (!isObj(parsed) || !Array.isArray(parsed.nftables)) throw new Error('nft -j output has no "nftables" list');
  const out: Ruleset = { version: null, tables: 0, chains: [], rules: [], counters: new Map(), sets: new Map() };
  const positions = new Map<string, number>();
  for (const item of parsed.nftables as unknown[]) {
    if (!isObj(item)) continue;
    if (isObj(item.metainfo)) out.version = str(item.metainfo.version);
    if (isObj(item.table)) out.tables++;
    if (isObj(item.chain)) {
      const c = item.chain;
      const dev = c.dev;
      out.chains.push({
        family: str(c.family) ?? '?',
        table: str(c.table) ?? '?',
        name: str(c.name) ?? '?',
        hook: str(c.hook),
        prio: num(c.prio),
        policy: str(c.policy),
        type: str(c.type),
        devices: typeof dev === 'string' ? [dev] : Array.isArray(dev) ? dev.filter((d): d is string => typeof d === 'string') : [],
      });
    }
    if (isObj(item.set) && Array.isArray(item.set.elem)) {
      out.sets.set(`${str(item.set.family)}|${str(item.set.table)}|${str(item.set.name)}`, item.set.elem);
    }
    if (isObj(item.counter)) {
      const c = item.counter;
      out.counters.set(`${str(c.family)}|${str(c.table)}|${str(c.name)}`, { packets: num(c.packets) ?? 0, bytes: num(c.bytes) ?? 0 });
    }
    if (isObj(item.rule)) {
      const r = item.rule;
      const family = str(r.family) ?? '?';
      const table = str(r.table) ?? '?';
      const chain = str(r.chain) ?? '?';
      const key = `${family}|${table}|${chain}`;
      const index = positions.get(key) ?? 0;
      positions.set(key, index + 1);
      out.rules.push({
        family,
        table,
        chain,
        handle: num(r.handle) ?? -1,
        index,
        expr: Array.isArray(r.expr) ? r.expr : [],
        ...(typeof r.comment === 'string' ? { comment: r.comment } : {}),
      });
    }
  }
  return out;
}

const VERDICTS = new Set(['accept', 'drop', 'reject', 'queue', 'continue', 'return', 'jump', 'goto']);
/** Statements that decide whether the rule goes on (match-like): after a counter, they make it count more than the verdict. */
const MATCH_LIKE = new Set(['match', 'limit', 'quota', 'xt']);
const IFACE_KEYS = new Set(['iifname', 'oifname', 'iif', 'oif']);

interface IfaceMatch {
  key: string;
  negated: boolean;
  /** Names or wildcards (`eth*`); null when the rule matches a named set (unknown here). */
  names: string[] | null;
}

interface RuleFacts {
  verdict: string | null;
  /** A verdict map with a drop or reject among its verdicts. */
  vmapDrop: boolean;
  counter: { packets: number; bytes: number; named: string | null } | null;
  /** A match comes after the counter: the counter counts packets the rule did not drop. */
  matchAfterCounter: boolean;
  /** Only a counter: no match, no verdict (counts what reaches it). */
  bareCounter: boolean;
  targets: string[];
  ifaces: IfaceMatch[];
}

function ruleFacts(rule: Rule, counters: Ruleset['counters']): RuleFacts {
  const facts: RuleFacts = { verdict: null, vmapDrop: false, counter: null, matchAfterCounter: false, bareCounter: false, targets: [], ifaces: [] };
  let others = 0;
  for (const stmt of rule.expr) {
    if (!isObj(stmt)) continue;
    const [kind] = Object.keys(stmt);
    if (kind === undefined) continue;
    const body = stmt[kind];
    if (kind === 'counter') {
      if (facts.counter === null) {
        if (isObj(body)) facts.counter = { packets: num(body.packets) ?? 0, bytes: num(body.bytes) ?? 0, named: null };
        else if (typeof body === 'string') {
          const c = counters.get(`${rule.family}|${rule.table}|${body}`);
          facts.counter = { packets: c?.packets ?? 0, bytes: c?.bytes ?? 0, named: body };
        }
      }
      continue;
    }
    others++;
    if (MATCH_LIKE.has(kind)) {
      if (facts.counter !== null) facts.matchAfterCounter = true;
      if (kind === 'match' && isObj(body)) {
        const iface = ifaceMatch(body);
        if (iface) facts.ifaces.push(iface);
      }
      continue;
    }
    if (VERDICTS.has(kind)) {
      facts.verdict = kind;
      if ((kind === 'jump' || kind === 'goto') && isObj(body) && typeof body.target === 'string') facts.targets.push(body.target);
      continue;
    }
    if (kind === 'vmap' && isObj(body)) {
      for (const v of verdictsOfMap(body.data)) {
        if (v.kind === 'drop' || v.kind === 'reject') facts.vmapDrop = true;
        if (v.target) facts.targets.push(v.target);
      }
      facts.verdict = 'vmap';
    }
  }
  facts.bareCounter = facts.counter !== null && others === 0;
  return facts;
}

function verdictsOfMap(data: unknown): Array<{ kind: string; target?: string }> {
  const out: Array<{ kind: string; target?: string }> = [];
  const set = isObj(data) && Array.isArray(data.set) ? data.set : [];
  for (const pair of set) {
    const verdict = Array.isArray(pair) ? pair[1] : undefined;
    if (!isObj(verdict)) continue;
    const [kind] = Object.keys(verdict);
    if (kind === undefined) continue;
    const body = verdict[kind];
    out.push({ kind, ...((kind === 'jump' || kind === 'goto') && isObj(body) && typeof body.target === 'string' ? { target: body.target } : {}) });
  }
  return out;
}

function ifaceMatch(m: Obj): IfaceMatch | null {
  const left = m.left;
  const key = isObj(left) && isObj(left.meta) ? str(left.meta.key) : null;
  if (key === null || !IFACE_KEYS.has(key)) return null;
  const op = str(m.op) ?? '==';
  const right = m.right;
  let names: string[] | null = null;
  if (typeof right === 'string') names = right.startsWith('@') ? null : [right];
  else if (typeof right === 'number') names = [String(right)];
  else if (Array.isArray(right)) names = right.filter((x): x is string => typeof x === 'string');
  else if (isObj(right) && Array.isArray(right.set)) names = right.set.filter((x): x is string => typeof x === 'string');
  return { key, negated: op === '!=', names };
}

/** Whether `dev` is one of `names` (nft wildcards end in `*`, iptables' in `+`). */
function nameMatches(dev: string, names: string[]): boolean {
  return names.some((n) => (n.endsWith('*') || n.endsWith('+') ? dev.startsWith(n.slice(0, -1)) : n === dev));
}

type DevFit = 'named' | 'any' | 'other';

/** How a rule relates to `dev`: it names it, it applies to every device, or it only matches other devices. */
function devFit(ifaces: IfaceMatch[], dev: string): DevFit {
  if (ifaces.length === 0) return 'any';
  let unknown = false;
  for (const m of ifaces) {
    // iif/oif compare ifindexes that nft prints as names when it can.
    if (m.names === null) {
      unknown = true;
      continue;
    }
    const hit = nameMatches(dev, m.names);
    if (hit !== m.negated) return 'named';
  }
  return unknown ? 'any' : 'other';
}

const chainKey = (c: { family: string; table: string; name?: string; chain?: string }) => `${c.family}|${c.table}|${c.name ?? c.chain}`;
const ruleKey = (r: Pick<Rule, 'family' | 'table' | 'chain' | 'handle'>) => `${r.family}|${r.table}|${r.chain}|${r.handle}`;

/** For every chain reachable from a hook: its base chain and the jump path from it. */
function reachability(rs: Ruleset, facts: Map<Rule, RuleFacts>): Map<string, { base: Chain; via: string[] }> {
  const byKey = new Map(rs.chains.map((c) => [chainKey(c), c]));
  const edges = new Map<string, string[]>();
  for (const r of rs.rules) {
    const f = facts.get(r)!;
    if (f.targets.length === 0) continue;
    const from = chainKey(r);
    const list = edges.get(from) ?? [];
    for (const t of f.targets) list.push(`${r.family}|${r.table}|${t}`);
    edges.set(from, list);
  }
  const out = new Map<string, { base: Chain; via: string[] }>();
  const bases = rs.chains.filter((c) => c.hook !== null).sort((a, b) => (a.prio ?? 0) - (b.prio ?? 0));
  for (const base of bases) {
    const start = chainKey(base);
    if (!out.has(start)) out.set(start, { base, via: [] });
    const queue: Array<{ key: string; via: string[] }> = [{ key: start, via: [] }];
    const seen = new Set([start]);
    while (queue.length > 0) {
      const { key, via } = queue.shift()!;
      for (const next of edges.get(key) ?? []) {
        if (seen.has(next) || !byKey.has(next)) continue;
        seen.add(next);
        const path = [...via, byKey.get(key)!.name];
        if (!out.has(next)) out.set(next, { base, via: path });
        queue.push({ key: next, via: path });
      }
    }
  }
  return out;
}

/** The rules' text from `nft -a list ruleset`: family|table|chain|handle → text, counter values left out. */
export function parseNftText(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let table: { family: string; name: string } | null = null;
  let chain: string | null = null;
  for (const line of text.split('\n')) {
    const t = /^table\s+(\S+)\s+(\S+)\s+\{/.exec(line);
    if (t) {
      table = { family: t[1]!, name: unquote(t[2]!) };
      chain = null;
      continue;
    }
    const c = /^\s+chain\s+(\S+)\s+\{/.exec(line);
    if (c) {
      chain = unquote(c[1]!);
      continue;
    }
    // Other blocks (sets, maps, counters, flowtables) hold no rules.
    if (/^\s+(set|map|counter|quota|limit|flowtable|secmark|synproxy|ct\s+(?:helper|timeout|expectation))\s+\S+\s+\{/.test(line)) {
      chain = null;
      continue;
    }
    const r = /^\s+(.*\S)\s+#\s*handle\s+(\d+)\s*$/.exec(line);
    if (!r || !table || chain === null) continue;
    const body = r[1]!;
    if (body.endsWith('{')) continue;
    out.set(`${table.family}|${table.name}|${chain}|${r[2]}`, normalizeRuleText(body));
  }
  return out;
}

function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

/** `counter packets 12 bytes 720` → `counter`: the text names the rule, the finding carries the counts. */
export function normalizeRuleText(text: string): string {
  return text.replace(/\bcounter packets \d+ bytes \d+/g, 'counter').replace(/\s+/g, ' ').trim();
}

/** The rule's text rebuilt from its JSON, when nft's own listing lacks it. */
export function ruleTextFromJson(expr: unknown[]): string {
  return expr.map(stmtText).filter((s) => s !== '').join(' ');
}

function stmtText(stmt: unknown): string {
  if (!isObj(stmt)) return '';
  const [kind] = Object.keys(stmt);
  if (kind === undefined) return '';
  const body = stmt[kind];
  switch (kind) {
    case 'match': {
      if (!isObj(body)) return '';
      const op = str(body.op) ?? '==';
      const lhs = exprText(body.left);
      const rhs = exprText(body.right, true);
      return op === '==' || op === 'in' ? `${lhs} ${rhs}` : `${lhs} ${op} ${rhs}`;
    }
    case 'counter':
      return typeof body === 'string' ? `counter name "${body}"` : 'counter';
    case 'jump':
    case 'goto':
      return isObj(body) ? `${kind} ${String(body.target)}` : kind;
    case 'reject':
      return isObj(body) && typeof body.type === 'string' ? `reject with ${body.type}${typeof body.expr === 'string' ? ` ${body.expr}` : ''}` : 'reject';
    case 'vmap':
      return isObj(body) ? `${exprText(body.key)} vmap ${exprText(body.data)}` : 'vmap';
    case 'log':
      return isObj(body) && typeof body.prefix === 'string' ? `log prefix "${body.prefix}"` : 'log';
    default:
      if (VERDICTS.has(kind)) return kind;
      return body === null ? kind : `${kind} ${JSON.stringify(body)}`;
  }
}

function exprText(e: unknown, quoteStrings = false): string {
  if (typeof e === 'string') return quoteStrings && !e.startsWith('@') && /[^A-Za-z0-9_.:/-]|^$/.test(e) ? `"${e}"` : e;
  if (typeof e === 'number' || typeof e === 'boolean') return String(e);
  if (Array.isArray(e)) return e.map((x) => exprText(x, quoteStrings)).join(',');
  if (!isObj(e)) return String(e);
  if (isObj(e.payload)) return `${String(e.payload.protocol)} ${String(e.payload.field)}`;
  if (isObj(e.meta)) {
    const key = String(e.meta.key);
    return IFACE_KEYS.has(key) || key === 'mark' ? key : `meta ${key}`;
  }
  if (isObj(e.ct)) return `ct ${String(e.ct.key)}`;
  if (isObj(e.prefix)) return `${String(e.prefix.addr)}/${String(e.prefix.len)}`;
  if (Array.isArray(e.range)) return e.range.map((x) => exprText(x)).join('-');
  if (Array.isArray(e.set)) {
    return `{ ${e.set.map((x) => (Array.isArray(x) ? `${exprText(x[0], quoteStrings)} : ${isObj(x[1]) ? stmtText(x[1]) : exprText(x[1])}` : exprText(x, quoteStrings))).join(', ')} }`;
  }
  return JSON.stringify(e);
}

/**
 * The scope of every nft rule: its own matches (with its iptables text's, for rules of
 * iptables-nft, whose extensions nft -j cannot show), and those of the jumps that reach it.
 */
function ruleScopes(rs: Ruleset, facts: Map<Rule, RuleFacts>, iptText: Map<string, string>, vm: VmIdentity | null): { chains: Map<string, VmScope>; rule(r: Rule): VmScope } {
  if (!vm) return { chains: new Map(), rule: () => 'any' };
  const ctxOf = (r: Rule) => ({ vm, family: r.family, table: r.table, sets: rs.sets });
  const own = new Map(
    rs.rules.map((r) => {
      const s = nftRuleScope(r.expr, ctxOf(r));
      const text = iptText.get(ruleKey(r));
      return [r, text === undefined ? s : bothScope(s, iptRuleScope(text, vm))] as const;
    }),
  );
  const jumps = new Map<string, Array<{ to: string; scope: VmScope }>>();
  for (const r of rs.rules) {
    const f = facts.get(r)!;
    if (f.targets.length === 0) continue;
    const list = jumps.get(chainKey(r)) ?? [];
    const viaMap = new Map(vmapJumps(r.expr, ctxOf(r)).map((j) => [j.target, j.scope]));
    for (const t of f.targets) list.push({ to: `${r.family}|${r.table}|${t}`, scope: bothScope(own.get(r)!, viaMap.get(t) ?? 'any') });
    jumps.set(chainKey(r), list);
  }
  const bases = rs.chains.filter((c) => c.hook !== null).map((c) => ({ key: chainKey(c), scope: chainDeviceScope(c.devices, c.hook, vm) }));
  const chains = chainScopes(bases, jumps);
  return { chains, rule: (r) => bothScope(chains.get(chainKey(r)) ?? 'any', own.get(r) ?? 'any') };
}

// ---------------------------------------------------------------------------------------------
// iptables-save -c

interface IptRule {
  table: string;
  chain: string;
  index: number;
  text: string;
  target: string | null;
  packets: number;
  bytes: number;
}

interface IptChain {
  table: string;
  name: string;
  policy: string | null;
  packets: number;
  bytes: number;
}

interface IptSave {
  variant: 'nf_tables' | 'legacy' | null;
  rules: IptRule[];
  chains: IptChain[];
}

export function parseIptablesSave(text: string): IptSave {
  const out: IptSave = { variant: null, rules: [], chains: [] };
  let table: string | null = null;
  const positions = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const v = /^# Generated by ip6?tables-save v\S+ \((nf_tables|legacy)\)/.exec(line);
      if (v) out.variant = v[1] as 'nf_tables' | 'legacy';
      continue;
    }
    if (line.startsWith('*')) {
      table = line.slice(1);
      continue;
    }
    if (line === 'COMMIT') {
      table = null;
      continue;
    }
    if (table === null) continue;
    const c = /^:(\S+)\s+(\S+)\s+\[(\d+):(\d+)\]$/.exec(line);
    if (c) {
      out.chains.push({ table, name: c[1]!, policy: c[2] === '-' ? null : c[2]!, packets: Number(c[3]), bytes: Number(c[4]) });
      continue;
    }
    const r = /^\[(\d+):(\d+)\]\s+(-A\s+(\S+)\s*.*)$/.exec(line);
    if (r) {
      const chain = r[4]!;
      const key = `${table}|${chain}`;
      const index = positions.get(key) ?? 0;
      positions.set(key, index + 1);
      const target = /(?:^|\s)-j\s+(\S+)/.exec(r[3]!)?.[1] ?? null;
      out.rules.push({ table, chain, index, text: r[3]!, target, packets: Number(r[1]), bytes: Number(r[2]) });
    }
  }
  return out;
}

/** `-i X` / `-o X` of an iptables rule, with `!` negation. */
function iptIfaces(text: string): IfaceMatch[] {
  const out: IfaceMatch[] = [];
  const re = /(!\s+)?-([io])\s+(!\s+)?(\S+)/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push({ key: m[2] === 'i' ? 'iifname' : 'oifname', negated: m[1] !== undefined || m[3] !== undefined, names: [m[4]!] });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parse

interface Counted {
  packets: number;
  bytes: number;
}

function parse(records: RawRecord[], params: Params): ProbeResult<NftData> {
  const requestedMs = params.duration as number;
  const netns = typeof params.netns === 'string' && params.netns !== '' ? params.netns : null;
  const dev = devOf(params) ?? null;
  const byName = new Map(records.filter((r) => r.op === 'exec').map((r) => [r.name, r]));
  const startRec = byName.get('nft-start');
  if (!startRec) throw new Error('no nft ruleset was read');
  const endRec = byName.get('nft-end');
  const cumulative = endRec === undefined;
  const start = parseRuleset(startRec.stdout);
  const end = endRec ? parseRuleset(endRec.stdout) : start;
  const notes: string[] = [];
  const textRec = byName.get('nft-text');
  const texts = textRec && textRec.error === undefined ? parseNftText(textRec.stdout) : new Map<string, string>();
  if (textRec?.error !== undefined) notes.push(`nft -a list ruleset failed (${textRec.error}); rule text rebuilt from the JSON ruleset`);

  const factsOf = (rs: Ruleset) => new Map(rs.rules.map((r) => [r, ruleFacts(r, rs.counters)]));
  const endFacts = factsOf(end);
  const startFacts = factsOf(start);
  const startByKey = new Map(start.rules.map((r) => [ruleKey(r), r]));
  const reach = reachability(end, endFacts);
  const chainByKey = new Map(end.chains.map((c) => [chainKey(c), c]));

  const textOf = (r: Rule) => {
    const t = texts.get(ruleKey(r));
    if (t !== undefined) return t;
    if (textRec && textRec.error === undefined) notes.push(`rule ${r.family} ${r.table} ${r.chain} handle ${r.handle} is not in nft's listing (ruleset changed?); its text is rebuilt from JSON`);
    return ruleTextFromJson(r.expr);
  };

  /** The rule's counter over the window (all of it when cumulative, or when the rule is new). */
  const delta = (r: Rule, f: RuleFacts): Counted => {
    const now = f.counter!;
    if (cumulative) return { packets: now.packets, bytes: now.bytes };
    const before = startByKey.get(ruleKey(r));
    const bf = before ? startFacts.get(before) : undefined;
    const where = `${r.family} ${r.table} ${r.chain} handle ${r.handle}`;
    if (!before || !bf?.counter || shape(before.expr) !== shape(r.expr)) {
      notes.push(`rule ${where} ${before ? 'changed' : 'appeared'} during the window; counted from 0`);
      return { packets: now.packets, bytes: now.bytes };
    }
    if (now.packets < bf.counter.packets || now.bytes < bf.counter.bytes) {
      notes.push(`the counter of rule ${where} went down (reset); counted from 0`);
      return { packets: now.packets, bytes: now.bytes };
    }
    return { packets: now.packets - bf.counter.packets, bytes: now.bytes - bf.counter.bytes };
  };

  // Which chains and rules apply to `dev`.
  const chainApplies = (c: Chain | undefined) => !dev || !c || c.devices.length === 0 || nameMatches(dev, c.devices);
  const ruleApplies = (r: Rule, f: RuleFacts) => {
    if (!dev) return true;
    const base = reach.get(chainKey(r))?.base ?? chainByKey.get(chainKey(r));
    return chainApplies(base) && devFit(f.ifaces, dev) !== 'other';
  };

  const vm = vmOf(params, byName.get('links'));
  const setsRec = byName.get('nft-sets');
  if (vm && setsRec?.error === undefined && setsRec?.exitCode === 0) {
    for (const [k, v] of parseRuleset(setsRec.stdout).sets) end.sets.set(k, v);
  } else if (vm) notes.push(`the named sets' elements were not read (${setsRec?.error ?? 'no record'}): rules matching a named set say nothing of the VM`);
  const ipt = iptablesView(byName, cumulative, end, dev, vm);
  const scopeOfRule = ruleScopes(end, endFacts, ipt.textOf, vm);
  const chainScope = (c: Chain) => scopeOfRule.chains.get(chainKey(c)) ?? 'any';

  // A named counter shared by several rules counts for all of them.
  const sharers = new Map<string, number>();
  for (const f of endFacts.values()) if (f.counter?.named) sharers.set(f.counter.named, (sharers.get(f.counter.named) ?? 0) + 1);
  for (const [name, n] of sharers) if (n > 1) notes.push(`the named counter "${name}" is shared by ${n} rules: each shows their sum`);

  const droppers: Dropper[] = [];
  const uncounted: UncountedDropRule[] = [];
  let dropRules = 0;
  let countedDropRules = 0;
  for (const r of end.rules) {
    const f = endFacts.get(r)!;
    const isDrop = f.verdict === 'drop' || f.verdict === 'reject';
    if (!isDrop && !f.vmapDrop) continue;
    const reached = reach.get(chainKey(r));
    // A rule in a chain no hook reaches never sees a packet.
    if (!reached) continue;
    if (!ruleApplies(r, f)) continue;
    dropRules++;
    const hookInfo = { hook: reached.base.hook, priority: reached.base.prio };
    const exact = isDrop && f.counter !== null && !f.matchAfterCounter;
    if (exact) {
      countedDropRules++;
      const d = delta(r, f);
      if (d.packets === 0) continue;
      const iptText = ipt.textOf.get(ruleKey(r));
      droppers.push({
        source: 'nft',
        family: r.family,
        table: r.table,
        chain: r.chain,
        handle: r.handle,
        rule: textOf(r),
        verdict: f.verdict as 'drop' | 'reject',
        packets: d.packets,
        bytes: d.bytes,
        ...hookInfo,
        via: reached.via,
        ...(iptText !== undefined ? { iptables: iptText } : {}),
        ...(r.comment !== undefined ? { comment: r.comment } : {}),
        scope: scopeOfRule.rule(r),
      });
      continue;
    }
    const text = textOf(r);
    const why = f.vmapDrop
      ? 'a verdict map decides: its counter (if any) counts every packet looked up, not only those dropped'
      : f.counter === null
        ? 'no counter: nftables keeps no count of what it drops'
        : 'its counter comes before some of its matches, so it counts packets the rule did not drop';
    const replace = `nft replace rule ${r.family} ${r.table} ${r.chain} handle ${r.handle} ${withCounter(text)}`;
    uncounted.push({
      family: r.family,
      table: r.table,
      chain: r.chain,
      handle: r.handle,
      rule: text,
      verdict: f.vmapDrop ? 'vmap' : (f.verdict as 'drop' | 'reject'),
      ...hookInfo,
      why,
      hint: f.vmapDrop
        ? 'split the map: give each drop verdict its own rule with `counter` before `drop`'
        : `add \`counter\` just before the verdict: \`${replace}\``,
      scope: scopeOfRule.rule(r),
    });
  }

  // Base chains whose policy drops: counted when the chain ends in a bare counter rule, or by iptables.
  const policyDropChains: PolicyDropChain[] = [];
  for (const c of end.chains) {
    if (c.hook === null || c.policy !== 'drop' || !chainApplies(c)) continue;
    const rules = end.rules.filter((r) => r.family === c.family && r.table === c.table && r.chain === c.name);
    const lastRule = rules.at(-1);
    const lastFacts = lastRule ? endFacts.get(lastRule) : undefined;
    const iptCount = ipt.policy.get(`${c.family}|${c.table}|${c.name}`);
    let counted: Counted | null = null;
    let countedBy: string | null = null;
    let countRule: Rule | null = null;
    if (lastRule && lastFacts?.bareCounter) {
      counted = delta(lastRule, lastFacts);
      countedBy = `rule handle ${lastRule.handle} (a bare counter at the end of the chain)`;
      countRule = lastRule;
    } else if (iptCount) {
      counted = { packets: iptCount.packets, bytes: iptCount.bytes };
      countedBy = `${iptCount.tool} -c (the chain's policy counter)`;
    }
    policyDropChains.push({
      family: c.family,
      table: c.table,
      chain: c.name,
      hook: c.hook,
      priority: c.prio,
      rules: rules.length,
      counted: counted !== null,
      packets: counted?.packets ?? null,
      bytes: counted?.bytes ?? null,
      countedBy,
      hint:
        counted !== null
          ? null
          : `the policy's drops have no counter; add one as the chain's last rule (\`nft add rule ${c.family} ${c.table} ${c.name} counter\`): it then counts exactly the packets the policy drops. Until then, NETFILTER_DROP drops at the ${c.hook} hook that no dropper explains are this policy's`,
    });
    if (counted && counted.packets > 0) {
      droppers.push({
        source: 'nft',
        family: c.family,
        table: c.table,
        chain: c.name,
        handle: countRule?.handle ?? null,
        rule: 'policy drop',
        verdict: 'policy',
        packets: counted.packets,
        bytes: counted.bytes,
        hook: c.hook,
        priority: c.prio,
        via: [],
        scope: chainScope(c),
      });
    }
  }
  const all = [...droppers, ...ipt.legacyDroppers];
  policyDropChains.push(...ipt.legacyPolicies);
  // Most specific first: the VM's, then those that can be its; another's apart.
  const byPackets = (a: Dropper, b: Dropper) => b.packets - a.packets || b.bytes - a.bytes;
  const mine = all.filter((d) => d.scope !== 'other').sort((a, b) => scopeRank(a.scope) - scopeRank(b.scope) || byPackets(a, b));
  const otherDroppers = all.filter((d) => d.scope === 'other').sort(byPackets);
  const total = mine.reduce((n, d) => n + d.packets, 0);
  const totalBytes = mine.reduce((n, d) => n + d.bytes, 0);
  const vmTotal = mine.filter((d) => d.scope === 'vm').reduce((n, d) => n + d.packets, 0);
  const otherTotal = otherDroppers.reduce((n, d) => n + d.packets, 0);
  const topD = mine[0];
  if (end.rules.length === 0 && end.chains.length === 0) notes.push(`the nftables ruleset${netns ? ` of ${netns}` : ''} is empty`);
  if (!cumulative && start.rules.length !== end.rules.length) notes.push(`the ruleset changed during the window (${start.rules.length} rules → ${end.rules.length})`);

  const data: NftData = {
    durationMs: cumulative ? 0 : Math.max(0, (endRec?.at ?? 0) - startRec.at),
    cumulative,
    netns,
    dev,
    droppers: mine,
    ...(topD ? { top: topD } : {}),
    total,
    totalBytes,
    vmTotal,
    otherDroppers,
    otherTotal,
    vm,
    dropRulesWithoutCounters: uncounted,
    policyDropChains,
    counts: { tables: end.tables, chains: end.chains.length, rules: end.rules.length, dropRules, countedDropRules },
    iptables: ipt.sources,
    nftVersion: end.version,
    notes: [...new Set(notes)],
  };
  const when = cumulative ? 'since the rules were created' : `in ${formatMs(requestedMs)}`;
  return {
    data,
    summary: summarize(data, when),
    // Scoped to a VM, a dropper that only can be its is a warning; one that names it is critical.
    severity: topD && (!vm || topD.scope === 'vm') ? (cumulative ? 'warning' : 'critical') : topD || uncounted.length > 0 || policyDropChains.some((c) => !c.counted) ? 'warning' : 'info',
    charts: chartsOf(data, when),
    tables: tablesOf(data, when),
  };
}

interface IptablesView {
  sources: IptablesSource[];
  /** nft rule key → the same rule in iptables syntax (iptables-nft). */
  textOf: Map<string, string>;
  /** family|table|chain → the policy counter of an iptables-nft chain whose policy is DROP. */
  policy: Map<string, { packets: number; bytes: number; tool: string }>;
  /** Legacy (x_tables) rules and policies that dropped. */
  legacyDroppers: Dropper[];
  /** Legacy built-in chains whose policy is DROP (always counted). */
  legacyPolicies: PolicyDropChain[];
}

/** What iptables-save said: its variant, the iptables text of iptables-nft rules, legacy droppers. */
function iptablesView(byName: Map<string, RawRecord>, cumulative: boolean, end: Ruleset, dev: string | null, vm: VmIdentity | null): IptablesView {
  const iptables: IptablesSource[] = [];
  const iptSaves: Array<{ family: 'ip' | 'ip6'; start: IptSave | null; end: IptSave }> = [];
  for (const tool of IPTABLES_TOOLS) {
    const s = byName.get(`${tool}-start`);
    const e = cumulative ? s : byName.get(`${tool}-end`);
    if (!s) {
      continue;
    }
    if (s.error !== undefined || !e || e.error !== undefined) {
      const rec = s.error !== undefined ? s : e;
      const present = !(rec && notInstalled(rec));
      iptables.push({ tool, present, variant: null, rules: 0, ...(present && rec?.error ? { error: rec.error } : {}) });
      continue;
    }
    const endSave = parseIptablesSave(e.stdout);
    const startSave = cumulative ? null : parseIptablesSave(s.stdout);
    iptables.push({ tool, present: true, variant: endSave.variant ?? startSave?.variant ?? null, rules: endSave.rules.length });
    iptSaves.push({ family: tool === 'iptables-save' ? 'ip' : 'ip6', start: startSave, end: endSave });
  }
  const iptTextOf = new Map<string, string>();
  const iptPolicy = new Map<string, { packets: number; bytes: number; tool: string }>();
  const legacyDroppers: Dropper[] = [];
  const legacyPolicies: PolicyDropChain[] = [];
  for (const save of iptSaves) {
    const tool = save.family === 'ip' ? 'iptables-save' : 'ip6tables-save';
    const variant = save.end.variant ?? save.start?.variant ?? null;
    const iptDelta = (now: Counted, before: Counted | undefined): Counted =>
      !before || now.packets < before.packets ? { packets: now.packets, bytes: now.bytes } : { packets: now.packets - before.packets, bytes: now.bytes - before.bytes };
    if (variant === 'nf_tables') {
      // The same rules are in the nft ruleset, in the same order: borrow their iptables text.
      const nftChains = new Map<string, Rule[]>();
      for (const r of end.rules) {
        if (r.family !== save.family) continue;
        const k = `${r.table}|${r.chain}`;
        nftChains.set(k, [...(nftChains.get(k) ?? []), r]);
      }
      const iptChains = new Map<string, IptRule[]>();
      for (const r of save.end.rules) iptChains.set(`${r.table}|${r.chain}`, [...(iptChains.get(`${r.table}|${r.chain}`) ?? []), r]);
      for (const [k, iptRules] of iptChains) {
        const nftRules = nftChains.get(k);
        if (!nftRules || nftRules.length !== iptRules.length) continue;
        iptRules.forEach((ir, i) => iptTextOf.set(ruleKey(nftRules[i]!), ir.text));
      }
    }
    for (const c of save.end.chains) {
      if (c.policy !== 'DROP') continue;
      const before = save.start?.chains.find((b) => b.table === c.table && b.name === c.name);
      const d = iptDelta(c, before);
      if (variant === 'nf_tables') iptPolicy.set(`${save.family}|${c.table}|${c.name}`, { ...d, tool });
      else {
        legacyPolicies.push({
          family: save.family,
          table: c.table,
          chain: c.name,
          hook: BUILTIN_HOOKS[c.name] ?? null,
          priority: null,
          rules: save.end.rules.filter((r) => r.table === c.table && r.chain === c.name).length,
          counted: true,
          packets: d.packets,
          bytes: d.bytes,
          countedBy: `${tool} -c (legacy iptables policy counter)`,
          hint: null,
        });
        if (d.packets > 0) legacyDroppers.push(iptDropper(save.family, c.table, c.name, null, 'policy DROP', 'policy', d, 'any'));
      }
    }
    if (variant !== 'nf_tables') {
      const scopeOf = legacyScopes(save.end, vm);
      for (const r of save.end.rules) {
        if (r.target !== 'DROP' && r.target !== 'REJECT') continue;
        if (dev && devFit(iptIfaces(r.text), dev) === 'other') continue;
        const before = save.start?.rules.find((b) => b.table === r.table && b.chain === r.chain && b.index === r.index && b.text === r.text);
        const d = iptDelta(r, before);
        if (d.packets > 0) legacyDroppers.push(iptDropper(save.family, r.table, r.chain, null, r.text, r.target === 'DROP' ? 'drop' : 'reject', d, scopeOf(r)));
      }
    }
  }

  return { sources: iptables, textOf: iptTextOf, policy: iptPolicy, legacyDroppers, legacyPolicies };
}

function iptDropper(family: string, table: string, chain: string, handle: null, rule: string, verdict: Dropper['verdict'], d: Counted, scope: VmScope): Dropper {
  return { source: 'iptables-legacy', family, table, chain, handle, rule, verdict, packets: d.packets, bytes: d.bytes, hook: BUILTIN_HOOKS[chain] ?? null, priority: null, via: [], scope };
}

/** The scope of legacy iptables rules: their own options, and those of the `-j CHAIN` rules that reach their chain. */
function legacyScopes(save: IptSave, vm: VmIdentity | null): (r: IptRule) => VmScope {
  if (!vm) return () => 'any';
  const key = (table: string, chain: string) => `${table}|${chain}`;
  const userChains = new Set(save.chains.filter((c) => c.policy === null).map((c) => key(c.table, c.name)));
  const jumps = new Map<string, Array<{ to: string; scope: VmScope }>>();
  for (const r of save.rules) {
    if (r.target === null || !userChains.has(key(r.table, r.target))) continue;
    const list = jumps.get(key(r.table, r.chain)) ?? [];
    list.push({ to: key(r.table, r.target), scope: iptRuleScope(r.text, vm) });
    jumps.set(key(r.table, r.chain), list);
  }
  const bases = save.chains.filter((c) => c.policy !== null).map((c) => ({ key: key(c.table, c.name), scope: 'any' as VmScope }));
  const chains = chainScopes(bases, jumps);
  return (r) => bothScope(chains.get(key(r.table, r.chain)) ?? 'any', iptRuleScope(r.text, vm));
}

/** The expression list without counter values: whether a rule is still the same rule. */
function shape(expr: unknown[]): string {
  return JSON.stringify(expr.map((s) => (isObj(s) && isObj(s.counter) ? { counter: {} } : s)));
}

/** The rule text with `counter` inserted before its final drop/reject verdict. */
function withCounter(text: string): string {
  const m = /\b(drop|reject)\b(?!.*\b(drop|reject)\b)/.exec(text.replace(/"[^"]*"/g, (s) => '_'.repeat(s.length)));
  if (!m) return `${text} counter`;
  return `${text.slice(0, m.index)}counter ${text.slice(m.index)}`;
}

function describe(d: Dropper): string {
  if (d.source === 'iptables-legacy') return `legacy iptables ${d.family === 'ip6' ? 'ip6 ' : ''}${d.table} ${d.chain} \`${d.rule}\``;
  if (d.verdict === 'policy') return `the drop policy of ${d.family} ${d.table} ${d.chain}`;
  return `${d.family} ${d.table} ${d.chain} handle ${d.handle} \`${d.rule}\``;
}

function summarize(data: NftData, when: string): string {
  const inventory = `${data.counts.rules} ${data.counts.rules === 1 ? 'rule' : 'rules'} in ${data.counts.tables} ${data.counts.tables === 1 ? 'table' : 'tables'}${data.netns ? ` of ${data.netns}` : ''}`;
  const top = data.top;
  // Scoped to a VM: whose rule the top one is, and what other tenants' rules dropped (not counted).
  const whose = !data.vm || !top ? '' : top.scope === 'vm' ? ' (it names the VM)' : ' (it names nothing of the VM: it can carry its packets)';
  const others = data.vm && data.otherDroppers.length > 0 ? `; ${data.otherDroppers.length} rules of other addresses or devices dropped ${data.otherTotal} packets (not the VM's)` : '';
  if (top) {
    const more = data.droppers.length > 1 ? `; ${data.droppers.length} droppers, ${data.total} packets in all` : '';
    return `${describe(top)} dropped ${top.packets} ${top.packets === 1 ? 'packet' : 'packets'} (${top.bytes} bytes) ${when}${whose}${more}${others}; ${inventory}`;
  }
  const suspects: string[] = [];
  const uncounted = data.dropRulesWithoutCounters.filter((r) => r.scope !== 'other').length;
  if (uncounted > 0) suspects.push(`${uncounted} drop ${uncounted === 1 ? 'rule' : 'rules'} without a counter`);
  const uncountedPolicies = data.policyDropChains.filter((c) => !c.counted).length;
  if (uncountedPolicies > 0) suspects.push(`${uncountedPolicies} uncounted policy-drop ${uncountedPolicies === 1 ? 'chain' : 'chains'}`);
  const tail = suspects.length > 0 ? ` (cannot tell for ${suspects.join(' and ')})` : '';
  const what = data.vm ? `no counted netfilter rule dropped the VM's packets (${identityText(data.vm)})` : 'no counted netfilter rule dropped';
  return `${what} ${when}${tail}${data.dev ? ` on ${data.dev}` : ''}${others}; ${inventory}`;
}

function chartsOf(data: NftData, when: string): ChartSpec[] {
  if (data.droppers.length === 0) return [];
  return [
    {
      kind: 'bar',
      title: `Packets dropped by netfilter rule ${when}`,
      unit: 'packets',
      bars: data.droppers.map((d) => ({ label: d.handle !== null && d.verdict !== 'policy' ? `${d.table} ${d.chain} #${d.handle}` : `${d.table} ${d.chain} ${d.verdict === 'policy' ? 'policy' : d.rule}`, value: d.packets })),
    },
  ];
}

function tablesOf(data: NftData, when: string): TableSpec[] {
  const out: TableSpec[] = [];
  if (data.droppers.length > 0) {
    out.push({
      title: `Rules that dropped ${when}`,
      columns: ['source', 'family', 'table', 'chain', 'handle', 'hook', 'priority', 'rule', 'packets', 'bytes'],
      rows: data.droppers.map((d) => [d.source, d.family, d.table, d.chain, d.handle ?? '-', d.hook ?? '-', d.priority ?? '-', d.rule, d.packets, d.bytes]),
    });
  }
  if (data.vm && data.droppers.length + data.otherDroppers.length > 0) {
    out.push({
      title: `Whose rules dropped ${when} (vm: names the VM; any: names nothing of it; other: another's, not counted)`,
      columns: ['scope', 'family', 'table', 'chain', 'handle', 'rule', 'packets'],
      rows: [...data.droppers, ...data.otherDroppers].map((d) => [d.scope, d.family, d.table, d.chain, d.handle ?? '-', d.rule, d.packets]),
    });
  }
  if (data.dropRulesWithoutCounters.length > 0) {
    out.push({
      title: 'Drop rules whose drops cannot be counted',
      columns: ['family', 'table', 'chain', 'handle', 'hook', 'rule', 'why'],
      rows: data.dropRulesWithoutCounters.map((r) => [r.family, r.table, r.chain, r.handle, r.hook ?? '-', r.rule, r.why]),
    });
  }
  if (data.policyDropChains.length > 0) {
    out.push({
      title: 'Chains whose policy is drop',
      columns: ['family', 'table', 'chain', 'hook', 'priority', 'rules', 'counted', 'packets'],
      rows: data.policyDropChains.map((c) => [c.family, c.table, c.chain, c.hook ?? '-', c.priority ?? '-', c.rules, c.counted ? 'yes' : 'no', c.packets ?? '-']),
    });
  }
  return out;
}

export const netNft: ProbeDefinition = {
  id: 'net.nft',
  title: 'Netfilter rules that drop',
  description: `Reads the nftables ruleset (\`nft -j list ruleset\`) and the iptables counters (\`iptables-save -c\`, \`ip6tables-save -c\`, where installed) at the start and the end of \`duration\`, and names the **rules that dropped** in between: every \`drop\` or \`reject\` rule with a \`counter\` whose count moved, with its family, table, chain, handle, hook, priority and its text as \`nft -a list ruleset\` prints it. Rules reached through \`jump\`/\`goto\` carry the base chain (hook) they are reached from.

Use it after \`drops.kernel\` reports \`NETFILTER_DROP\` (or \`IPTABLES_*\` / \`NF_*\`): it says which rule. What it cannot prove, it lists: drop rules **without a counter** (nftables does not count what they drop; the hint gives the \`nft replace rule ... counter drop\` that makes them countable) and base chains with **\`policy drop\`**, whose drops have no counter either. A policy drop is counted when the chain's last rule is a bare \`counter\` (it sees exactly the packets that fall through to the policy) or by iptables' chain policy counters; otherwise, NETFILTER_DROP drops at that chain's hook that no dropper explains are the policy's.

Rules managed by iptables-nft are nft rules: they are reported once, with their iptables text beside the nft one. Rules of legacy iptables (x_tables) are reported from \`iptables-save -c\`. \`netns\` reads the ruleset of a network namespace (\`ip netns exec\`, or \`nsenter\` for a path); \`dev\` keeps the rules that can apply to one device (those naming it by \`iifname\`/\`oifname\`, and those naming no device). \`duration: 0\` reads once: counters since each rule was created. No BPF: nft reads the ruleset over netlink.

**Scoped to a VM** (\`vm_ips\`, \`vm_macs\`, \`vm_devs\`: its addresses, MACs and taps), each dropper (and each uncounted drop rule) gets a \`scope\` from what its matches, and those of the jumps and verdict maps that reach it, say about the VM: \`ip\`/\`ip6 saddr\`/\`daddr\` (single, prefix, range, anonymous or named set, whose elements are then read with \`nft -j list sets\`, negation), \`ether saddr\`/\`daddr\`, \`iifname\`/\`oifname\`/\`iif\`/\`oif\` (wildcards, sets), the bridge family's \`ibrname\`/\`obrname\` (the taps' bridges are read with \`ip -j link\`), a netdev chain's devices, and iptables' \`-s\`/\`-d\`/\`-i\`/\`-o\`, \`--mac-source\`, \`--physdev-in\`/\`-out\`, \`--src-range\`/\`--dst-range\`. \`vm\`: a match names the VM (one of its addresses, MACs or taps). \`other\`: none does and one excludes it (another address or MAC, a frame leaving by another tap, another bridge): another tenant's rule, listed in \`otherDroppers\` and never in \`total\`. \`any\`: nothing names or excludes it (a port or protocol only; a multicast destination; an input device that is not the VM's, since packets to it come in elsewhere). \`droppers\` keeps the \`vm\` ones first, then the \`any\` ones, each by packets; \`vmTotal\` counts the \`vm\` ones' packets.`,
  normal: `No dropper, or droppers everyone expects (a firewall's deny rules with small, steady counts). A dropper whose count moves in step with the lost traffic is the cause. Scoped to a VM: no \`vm\` dropper (\`vmTotal\` 0); \`otherDroppers\` are other tenants' rules doing their job, and an \`any\` dropper is the VM's only if its count moves with the VM's lost traffic. Drop rules without counters and \`policy drop\` chains are normal in firewalls, but they make drops unprovable: add \`counter\` to them on hosts where loss is chased.`,
  replaces: [],
  params: {
    duration: {
      type: 'duration',
      default: '5s',
      description: 'Time between the two reads of the counters; 0 reads once (counters since each rule was created).',
      cliOption: 'duration',
    },
    netns: {
      type: 'string',
      description: 'Read the ruleset of this network namespace: an `ip netns` name or a path such as /proc/<pid>/ns/net. Default: the namespace ebpfnet runs in.',
    },
    dev: {
      type: 'string',
      description: 'Only rules that can apply to this device: those matching it by iifname/oifname (wildcards, sets and negations included) and those matching no device.',
      cliOption: 'dev',
    },
    ...vmScopeParams({
      ips: 'a dropper matching one of them (saddr or daddr: address, prefix, range, set) is the VM\'s; one matching only other addresses is another\'s (`otherDroppers`).',
      macs: 'a dropper matching one of them (`ether saddr`/`daddr`, `--mac-source`) is the VM\'s.',
      devs: 'a dropper matching one of them by iifname/oifname/iif/oif (wildcards, sets) is the VM\'s; one sending frames out of another tap or across another bridge is another\'s.',
    }),
  },
  requirements: [{ kind: 'root' }, { kind: 'binary', name: 'nft', package: 'nftables' }],
  overhead: 'none',
  driver: 'command',
  data: DATA,
  collect,
  parse: parse as ProbeDefinition['parse'],
};
