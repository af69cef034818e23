// other.ovs-ct-invalid: packets Open vSwitch's connection tracker found invalid (ct_state +inv)
// over a window. At the start and the end it reads every bridge's OpenFlow rules (the hit
// counts of rules matching ct_state=+inv, and the ct() actions that send packets to their
// table, which name the zone), the datapath flows matching +inv (dpctl/dump-flows -m),
// ovs-vswitchd's conntrack coverage counters (conntrack_invalid_tcp_flags, ...) and the
// tracker's connection counts (dpctl/ct-stats-show); at the end, the connections per zone
// (dpctl/dump-conntrack). On the kernel datapath (openvswitch.ko) it also counts, with
// kprobes on ovs_ct_execute and nf_conntrack_in (probes/lib/conntrack-kprobes.ts), the ct()
// calls and the invalid verdicts they got; where kprobes do not attach the finding says so.
import { formatMs } from '../../engine/duration.js';
import type { ChartSpec, Params, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import {
  appctl,
  bridgesInScope,
  COMMAND_TIMEOUT_MS,
  compactKey,
  coverageTables,
  decodeCtState,
  flowId,
  grow,
  isDropAction,
  isDropRule,
  isZeroMask,
  ofctl,
  OVS_KERNEL_BUDGET,
  ovsProbe,
  parseCoverage,
  parseDpifShow,
  parseDumpFlows,
  parseOfFlows,
  resolveInPort,
  ruleId,
  type DpifDatapath,
  type OfRule,
  type OvsScope,
} from '../lib/ovs.js';
import { CT_PROGRAMS, parseConntrackKprobes, runConntrackKprobes } from '../lib/conntrack-kprobes.js';
import { durationParam, topParam } from '../lib/params.js';
import { DATA, type InvalidMegaflow, type InvalidRule, type OvsCtInvalidData } from './data.js';

export type { OvsCtInvalidData };
import { addCount } from '../lib/tally.js';

const EXEC = { timeoutMs: COMMAND_TIMEOUT_MS };
const MAYBE = { ...EXEC, allowFailure: true };
const KPROBES_PREFIX = 'kprobes-';
/** ovs-vswitchd's coverage counters about connection tracking (userspace tracker and fragment reassembly). */
const CT_COUNTER = /^(conntrack_|ipf_)/;
/** OVS_CS_F_INVALID. */
const CT_INV = 0x10;

type Scope = Pick<OvsScope, 'bridges' | 'datapaths'>;

function resolveScope(dps: DpifDatapath[], params: Params): Scope {
  const bridge = typeof params.bridge === 'string' && params.bridge !== '' ? params.bridge : null;
  const { bridges } = bridgesInScope(dps, bridge, undefined);
  return { bridges, datapaths: dps.filter((d) => d.bridges.some((b) => bridges.includes(b.name))) };
}

async function sample(io: ProbeIO, phase: 'start' | 'end', scope: Scope): Promise<void> {
  await Promise.all([
    ...scope.bridges.map((br) => io.exec(`${phase}-rules-${br}`, ofctl('dump-flows', br), MAYBE)),
    ...scope.datapaths.map((dp) => io.exec(`${phase}-flows-${dp.id}`, appctl('dpctl/dump-flows', '-m', dp.id), MAYBE)),
    ...scope.datapaths.map((dp) => io.exec(`${phase}-ct-stats-${dp.id}`, appctl('dpctl/ct-stats-show', '-m', dp.id), MAYBE)),
    io.exec(`${phase}-coverage`, appctl('coverage/show'), MAYBE),
  ]);
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const topo = parseDpifShow((await io.exec('topology', appctl('dpif/show'), EXEC)).stdout);
  const scope = resolveScope(topo, params);
  // The kernel datapath's conntrack runs in the kernel: its verdicts need kprobes.
  const kernelDp = params.kernel !== false && scope.datapaths.some((d) => d.type === 'system');
  const watch = async (wio: ProbeIO) => {
    await sample(wio, 'start', scope);
    await wio.sleep(params.duration as number);
    await sample(wio, 'end', scope);
    await Promise.all(scope.datapaths.map((dp) => wio.exec(`end-conntrack-${dp.id}`, appctl('dpctl/dump-conntrack', dp.id), MAYBE)));
  };
  if (kernelDp) await runConntrackKprobes(io, KPROBES_PREFIX, {}, CT_PROGRAMS, watch);
  else await watch(io);
}

const find = (records: RawRecord[], name: string) => records.find((r) => r.name === name);
const good = (r: RawRecord | undefined): r is RawRecord => r !== undefined && r.error === undefined && r.exitCode === 0;
/** Why a record is not good, in one line. */
const failure = (r: RawRecord | undefined) => (r === undefined ? 'not in the evidence' : (r.error ?? (r.stderr.trim().split('\n')[0] || `exit ${r.exitCode}`)));

/** Whether a rule's match requires ct_state +inv (`ct_state=+inv+trk`, `ct_state=0x10/0x10`). */
export function matchesInvalid(match: string): boolean {
  const v = /(?:^|,)ct_state=([^,]+)/.exec(match)?.[1];
  if (v === undefined) return false;
  if (/\+inv\b/.test(v)) return true;
  const hex = /^(0x[0-9a-f]+)(?:\/(0x[0-9a-f]+))?$/i.exec(v);
  return hex !== null && (Number(hex[1]) & CT_INV) !== 0 && (hex[2] === undefined || (Number(hex[2]) & CT_INV) !== 0);
}

/** The zones the ct() actions of `rules` send to `table` in (a ct() without zone= is zone 0). */
function zonesInto(rules: OfRule[], table: number): Set<number> {
  const zones = new Set<number>();
  for (const r of rules) {
    for (const m of r.actions.matchAll(/ct\(([^)]*)\)/g)) {
      const args = m[1]!;
      if (Number(/(?:^|,)table=(\d+)/.exec(args)?.[1] ?? -1) !== table) continue;
      const zone = /(?:^|,)zone=(\d+)/.exec(args)?.[1];
      // zone=NXM_... (a register): not known from the rule.
      if (zone === undefined && /(?:^|,)zone=/.test(args)) zones.add(Number.NaN);
      else zones.add(zone === undefined ? 0 : Number(zone));
    }
  }
  return zones;
}

function zoneOf(rule: OfRule, rules: OfRule[]): number | null {
  const own = /(?:^|,)ct_zone=(\d+)/.exec(rule.match)?.[1];
  if (own !== undefined) return Number(own);
  const zones = [...zonesInto(rules, rule.table)];
  return zones.length === 1 && Number.isFinite(zones[0]) ? zones[0]! : null;
}

function invalidRules(records: RawRecord[], bridges: string[], notes: string[]): InvalidRule[] {
  const out: InvalidRule[] = [];
  for (const br of bridges) {
    const s = find(records, `start-rules-${br}`);
    const e = find(records, `end-rules-${br}`);
    if (!good(e)) {
      notes.push(`ovs-ofctl dump-flows ${br} failed: ${failure(e)}`);
      continue;
    }
    const end = parseOfFlows(e.stdout);
    const before = new Map((good(s) ? parseOfFlows(s.stdout) : []).map((r) => [ruleId(br, r), r.packets]));
    for (const r of end.filter((x) => matchesInvalid(x.match))) {
      out.push({
        bridge: br,
        table: r.table,
        priority: r.priority,
        match: r.match,
        actions: r.actions,
        packets: grow(before.get(ruleId(br, r)), r.packets),
        drops: isDropRule(r),
        zone: zoneOf(r, end),
      });
    }
  }
  return out.sort((a, b) => b.packets - a.packets || a.bridge.localeCompare(b.bridge) || a.table - b.table || b.priority - a.priority);
}

function invalidMegaflows(records: RawRecord[], scope: Scope): InvalidMegaflow[] {
  const out: InvalidMegaflow[] = [];
  for (const dp of scope.datapaths) {
    const e = find(records, `end-flows-${dp.id}`);
    if (!good(e)) continue;
    const s = find(records, `start-flows-${dp.id}`);
    const before = new Map((good(s) ? parseDumpFlows(s.stdout) : []).map((f) => [flowId(dp.id, f), f.packets]));
    for (const f of parseDumpFlows(e.stdout)) {
      const cs = f.items.get('ct_state')?.get('');
      if (!cs || (Number(cs.value) & Number(cs.mask ?? '0xff') & CT_INV) === 0) continue;
      const was = before.get(flowId(dp.id, f));
      const packets = grow(was, f.packets);
      if (packets === 0 && was !== undefined) continue;
      const port = resolveInPort(scope.datapaths, dp.id, f.items.get('in_port')?.get('')?.value);
      if (port && !scope.bridges.includes(port.bridge)) continue;
      // ct_zone(0/0): the flow does not match on the zone (the kernel datapath's, when no rule does).
      const z = f.items.get('ct_zone')?.get('');
      const zone = z && !isZeroMask(z.mask) ? z.value : undefined;
      out.push({
        datapath: dp.id,
        bridge: port?.bridge ?? null,
        inPort: port?.port.name ?? f.items.get('in_port')?.get('')?.value ?? null,
        zone: zone === undefined ? null : Number(zone),
        ctState: decodeCtState(cs),
        key: compactKey(f.items),
        actions: f.actions,
        drop: isDropAction(f.actions),
        packets,
        new: was === undefined,
      });
    }
  }
  return out.sort((a, b) => b.packets - a.packets || a.key.localeCompare(b.key));
}

/** `dpctl/ct-stats-show -m`: `Total: 6`, `  TCP: 5`, `[TIME_WAIT]=5`. */
export function parseCtStats(text: string): { total: number; byProtocol: Record<string, number>; tcpStates: Record<string, number> } {
  const byProtocol: Record<string, number> = {};
  const tcpStates: Record<string, number> = {};
  let total = 0;
  for (const line of text.split('\n')) {
    const t = /^\s*Total: (\d+)/.exec(line);
    if (t) total = Number(t[1]);
    const p = /^\s+([A-Za-z0-9_]+): (\d+)\s*$/.exec(line);
    if (p && p[1] !== 'Total') byProtocol[p[1]!] = Number(p[2]);
    for (const s of line.matchAll(/\[([A-Z_]+)\]=(\d+)/g)) tcpStates[s[1]!] = Number(s[2]);
  }
  return { total, byProtocol, tcpStates };
}

/** `dpctl/dump-conntrack`: connections by `zone=N` (none printed: zone 0). */
export function connectionsByZone(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!/^\w+,orig=/.test(line.trim())) continue;
    addCount(out, /,zone=(\d+)/.exec(line)?.[1] ?? '0', 1);
  }
  return out;
}

function parse(records: RawRecord[], params: Params): ProbeResult<OvsCtInvalidData> {
  const topoRec = find(records, 'topology');
  if (!good(topoRec)) throw new Error(`ovs-appctl dpif/show: ${failure(topoRec)}`);
  const scope = resolveScope(parseDpifShow(topoRec.stdout), params);
  const top = Math.max(1, (params.top as number | undefined) ?? 10);
  const notes: string[] = [];
  const startAt = find(records, 'start-coverage')?.at;
  const endAt = find(records, 'end-coverage')?.at;
  const durationMs = startAt !== undefined && endAt !== undefined ? endAt - startAt : 0;

  const rules = invalidRules(records, scope.bridges, notes);
  const byBridge: Record<string, number> = {};
  const byZone: Record<string, number> = {};
  for (const r of rules) {
    if (r.packets === 0) continue;
    addCount(byBridge, r.bridge, r.packets);
    addCount(byZone, r.zone === null ? 'unknown' : String(r.zone), r.packets);
  }
  const invalid = rules.reduce((n, r) => n + r.packets, 0);
  const droppingRule = rules.find((r) => r.drops && r.packets > 0) ?? null;
  if (rules.length === 0) notes.push('no OpenFlow rule matches ct_state=+inv: invalid packets are not counted per rule (only the coverage counters and datapath flows below)');

  const cs = parseCoverage(good(find(records, 'start-coverage')) ? find(records, 'start-coverage')!.stdout : '');
  const ce = parseCoverage(good(find(records, 'end-coverage')) ? find(records, 'end-coverage')!.stdout : '');
  const counters: Record<string, number> = {};
  for (const [name, v] of ce) if (CT_COUNTER.test(name) && grow(cs.get(name), v) > 0) counters[name] = grow(cs.get(name), v);

  const statsRec = scope.datapaths.map((dp) => find(records, `end-ct-stats-${dp.id}`)).filter(good);
  const stats = statsRec.map((r) => parseCtStats(r.stdout));
  const connections = stats.length === 0 ? null : stats.reduce((acc, s) => {
    acc.total += s.total;
    for (const [k, v] of Object.entries(s.byProtocol)) addCount(acc.byProtocol, k, v);
    for (const [k, v] of Object.entries(s.tcpStates)) addCount(acc.tcpStates, k, v);
    return acc;
  }, { total: 0, byProtocol: {} as Record<string, number>, tcpStates: {} as Record<string, number> });
  const zones: Record<string, number> = {};
  for (const dp of scope.datapaths) {
    const r = find(records, `end-conntrack-${dp.id}`);
    if (good(r)) for (const [z, n] of Object.entries(connectionsByZone(r.stdout))) addCount(zones, z, n);
  }

  const kernel = parseConntrackKprobes(records, KPROBES_PREFIX);
  if (kernel && !kernel.attachable) notes.push(`kernel datapath ct() verdicts not counted: ${kernel.failed.length} of ${kernel.failed.length + kernel.attached.length} kprobe programs did not attach (${kernel.failed[0]})`);
  const data: OvsCtInvalidData = {
    durationMs,
    datapath: [...new Set(scope.datapaths.map((d) => d.type))].sort(),
    bridges: scope.bridges,
    invalid,
    byBridge,
    byZone,
    rules: rules.slice(0, top),
    droppingRule,
    megaflows: invalidMegaflows(records, scope).slice(0, top),
    counters,
    connections,
    connectionsByZone: zones,
    kernel,
    notes,
  };
  const when = `in ${formatMs(durationMs)}`;
  const where = scope.bridges.length === 1 ? ` (${scope.bridges[0]})` : '';
  const counterText = Object.entries(counters).map(([k, v]) => `${k} +${v}`).join(', ');
  const ruleText = (r: InvalidRule) => `table=${r.table},priority=${r.priority},${r.match} on ${r.bridge}`;
  const summary =
    invalid === 0
      ? `no ct_state=+inv packets ${when}${where} (${rules.length} +inv rule${rules.length === 1 ? '' : 's'})${counterText ? `; ${counterText}` : ''}`
      : `${invalid} invalid (ct_state=+inv) packets ${when}${where}${droppingRule ? `: ${droppingRule.packets} dropped by ${ruleText(droppingRule)}` : ''}${counterText ? `; ${counterText}` : ''}`;
  return { data, summary, severity: invalid > 0 ? 'warning' : 'info', charts: chartsOf(data, when), tables: tablesOf(data) };
}

function chartsOf(data: OvsCtInvalidData, when: string): ChartSpec[] {
  const bars = data.rules.filter((r) => r.packets > 0).map((r) => ({ label: `${r.bridge} table=${r.table} ${r.match}`, value: r.packets }));
  return bars.length === 0 ? [] : [{ kind: 'bar', title: `Invalid packets by +inv rule ${when}`, unit: 'packets', bars }];
}

function tablesOf(data: OvsCtInvalidData): TableSpec[] {
  const tables: TableSpec[] = [];
  if (data.rules.length > 0) {
    tables.push({
      title: 'OpenFlow rules matching ct_state=+inv',
      columns: ['bridge', 'table', 'priority', 'match', 'actions', 'zone', 'packets'],
      rows: data.rules.map((r) => [r.bridge, r.table, r.priority, r.match, r.actions, r.zone ?? '', r.packets]),
    });
  }
  if (data.megaflows.length > 0) {
    tables.push({
      title: 'Datapath flows matching +inv',
      columns: ['in port', 'zone', 'ct_state', 'actions', 'packets', 'new'],
      rows: data.megaflows.map((f) => [f.inPort ?? '', f.zone ?? '', f.ctState, f.actions, f.packets, f.new ? 'yes' : 'no']),
    });
  }
  return [...tables, ...coverageTables('Conntrack coverage counters (ovs-vswitchd)', data.counters, 'delta')];
}

export const otherOvsCtInvalid = ovsProbe<OvsCtInvalidData>({
  id: 'other.ovs-ct-invalid',
  title: 'OVS connection tracking: invalid packets',
  description: `Counts the packets Open vSwitch's connection tracker found **invalid** (\`ct_state=+inv\`: a TCP segment with an impossible flag combination or outside the window, a bad checksum, an ICMP error for no connection) over \`duration\`, and names the flow that drops them.

It reads each bridge's OpenFlow rules at the start and the end (\`ovs-ofctl dump-flows\`): every rule matching \`ct_state=+inv\` with the packets it matched, and its conntrack zone (its \`ct_zone\` match, or the zone of the \`ct(table=N)\` actions that send packets to its table). The datapath flows matching \`+inv\` (\`dpctl/dump-flows -m\`) show which port the packets come in on. ovs-vswitchd's conntrack coverage counters (\`conntrack_invalid_tcp_flags\`, \`conntrack_l4csum_err\`, \`conntrack_full\`, \`ipf_*\`) say why the userspace tracker rejected them (ovs-vswitchd folds a thread's counts into them late, seconds after the packets: over a short window they may lag behind the rule counts), and \`dpctl/ct-stats-show\` / \`dpctl/dump-conntrack\` give the connections by protocol, TCP state and zone at the end.

On the **kernel datapath** (openvswitch.ko) conntrack runs in the kernel: kprobes on \`ovs_ct_execute\` and \`nf_conntrack_in\` count the ct() calls and their verdicts (tracked, invalid, dropped). On a kernel without kprobes those programs are not loaded, and the finding says so; the rule counts above still hold.`,
  normal: `No +inv rule matches packets, or a few on a busy host (late retransmissions after a connection closed). A steady count on one rule is a real fault: asymmetric routing (the tracker sees one direction only), a middlebox rewriting TCP, or a zone mix-up between the ct() that tracks and the one that commits.`,
  replaces: ['other/trace-ovs-ct-invalid.bt'],
  params: {
    duration: durationParam('Time between the two reads.'),
    bridge: { type: 'string', description: 'Only this OVS bridge (default: every bridge).' },
    kernel: { type: 'boolean', default: true, description: 'On a kernel datapath, count the ct() verdicts with kprobes.' },
    top: topParam('How many rules and datapath flows to list.', { default: 10, max: 1000 }),
  },
  overhead: 'low',
  budget: OVS_KERNEL_BUDGET,
  data: DATA,
  collect,
  parse,
});
