// ovs.drops: where Open vSwitch drops a VM's packets. Over `duration` it reads, at the start
// and the end, ovs-vswitchd's drop counters (coverage/show), the datapath's megaflows
// (dpctl/dump-flows -m) with their packet counts, every bridge's OpenFlow rules
// (ovs-ofctl dump-flows) and the datapath ports' counters (dpctl/show -s); and it traces each
// megaflow that dropped packets back to the OpenFlow rule that decided it (ofproto/trace):
// those dropping at the start while the window runs, the others after it.
// On the kernel datapath (openvswitch.ko loaded) it also counts drops in the kernel with
// probes/ovs.drops/ovs.drops.bpf.c (kernel.ts). Everything is read through ProbeIO, so a replay gives the same finding.
import { createHash } from 'node:crypto';
import { formatMs } from '../../engine/duration.js';
import type { BarChart, ChartSpec, Params, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { parseKernel, runKernelSession } from './kernel.js';
import {
  appctl,
  bridgesInScope,
  COMMAND_TIMEOUT_MS,
  compactKey,
  flowFields,
  flowId,
  flowMatchesFilters,
  grow,
  isDropAction,
  isDropCounter,
  isDropRule,
  isRelatedCounter,
  listInterfaces,
  megaflowScope,
  ofctl,
  ofRuleScope,
  OVS_KERNEL_BUDGET,
  ovsProbe,
  parseCoverage,
  parseDpctlShow,
  parseDpifShow,
  parseDumpFlows,
  parseInterfaces,
  parseOfFlows,
  parseTrace,
  portsByName,
  resolveInPort,
  ruleId,
  type DpifDatapath,
  type InterfaceRow,
  type Megaflow,
  type OfRule,
  type OvsScope,
  type OvsVm,
  type PortRef,
} from '../lib/ovs.js';
import { addressParams, durationParam, protocolNumber, protocolParam, topParam } from '../lib/params.js';
import { sortedCounts } from '../lib/tally.js';
import { hasVmIdentity, identityText, parseAddr, scopeRank, vmIdentityOf, vmScopeParams, type VmScope } from '../lib/vm-scope.js';
import { DATA, type OvsDropsData } from './data.js';

const EXEC = { timeoutMs: COMMAND_TIMEOUT_MS };

export type { OvsDropsData } from './data.js';
export type OvsDroppingFlow = OvsDropsData['droppingFlows'][number];
export type OvsDropRule = NonNullable<OvsDroppingFlow['rule']>;
export type OvsMatchedDropRule = OvsDropsData['dropRules'][number];
export type OvsPortDrops = OvsDropsData['ports'][number];

interface Scope extends OvsScope {
  srcIp?: string;
  dstIp?: string;
  proto?: number;
  protocol: string;
  /** The VM the flows and rules are scoped to (its MACs grow by the port's attached-mac). */
  vm: OvsVm;
  /** vm_macs or vm_ips given: every dropping flow and rule of the bridge is kept and labelled, not only the port's. */
  vmMode: boolean;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Which bridges, datapaths and port the params name; throws with what exists when one is unknown. */
function resolveScope(dps: DpifDatapath[], params: Params): Scope {
  const bridge = str(params.bridge) ?? null;
  const devName = str(params.dev);
  const { dev, bridges } = bridgesInScope(dps, bridge, devName);
  const datapaths = dps.filter((d) => d.bridges.some((b) => bridges.includes(b.name)) || (bridge === null && dev === null));
  const protocol = str(params.protocol) ?? 'any';
  const families = [str(params.src_ip), str(params.dst_ip)].flatMap((ip) => {
    if (ip === undefined) return [];
    const f = parseAddr(ip)?.family;
    if (f === undefined || f === 'mac') throw new Error(`${ip}: not an IPv4 or IPv6 address`);
    return [f];
  });
  if (new Set(families).size > 1) throw new Error(`src_ip ${str(params.src_ip)} and dst_ip ${str(params.dst_ip)} are of two families: give two IPv4 or two IPv6 addresses`);
  const id = vmIdentityOf(params);
  return {
    bridge,
    dev,
    bridges,
    datapaths,
    srcIp: str(params.src_ip),
    dstIp: str(params.dst_ip),
    proto: protocolNumber(protocol) || undefined,
    protocol,
    vm: { id, port: dev ? { name: dev.port.name, ofport: dev.port.ofport } : null },
    vmMode: hasVmIdentity(id),
  };
}

/** The scope with the MAC OVS's database gives the VM's port (external_ids:attached-mac). */
function withAttachedMac(scope: Scope, attachedMacs: Map<string, string>): Scope {
  const mac = scope.dev ? attachedMacs.get(scope.dev.port.name)?.toLowerCase() : undefined;
  if (mac === undefined || scope.vm.id.macs.includes(mac)) return scope;
  return { ...scope, vm: { ...scope.vm, id: { ...scope.vm.id, macs: [...scope.vm.id.macs, mac] } } };
}

const scoped = (s: Scope) => s.bridge !== null || s.dev !== null || s.srcIp !== undefined || s.dstIp !== undefined || s.proto !== undefined;
const flowFiltered = (s: Scope) => s.dev !== null || s.srcIp !== undefined || s.dstIp !== undefined || s.proto !== undefined;
/** Whether the OpenFlow rules' counts apply to the scope: not under packet filters, nor under a port filter a rule cannot be read against. */
const rulesCount = (s: Scope) => (s.vmMode ? s.srcIp === undefined && s.dstIp === undefined && s.proto === undefined : !flowFiltered(s));

// Record names: `<phase>-<what>[-<datapath or bridge>]`.
const FLOWS = (phase: string, dp: string) => `${phase}-flows-${dp}`;
const RULES = (phase: string, br: string) => `${phase}-rules-${br}`;

async function sample(io: ProbeIO, phase: 'start' | 'end', scope: Scope): Promise<RawRecord[]> {
  // Started together in a fixed order, so a replay answers them in the same order.
  return Promise.all([
    io.exec(`${phase}-coverage`, appctl('coverage/show'), EXEC),
    io.exec(`${phase}-dpctl-show`, appctl('dpctl/show', '-s'), { ...EXEC, allowFailure: true }),
    ...scope.datapaths.map((dp) => io.exec(FLOWS(phase, dp.id), appctl('dpctl/dump-flows', '-m', dp.id), { ...EXEC, allowFailure: true })),
    ...scope.bridges.map((br) => io.exec(RULES(phase, br), ofctl('dump-flows', br), { ...EXEC, allowFailure: true })),
  ]);
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  // Whether the kernel datapath module is loaded decides whether BPF runs: recorded, so a replay decides alike.
  const kmod = await io.readFile('kernel-module', '/sys/module/openvswitch/initstate', { allowFailure: true });
  const [dpifShow, interfaces] = await Promise.all([io.exec('start-dpif-show', appctl('dpif/show'), EXEC), io.exec('interfaces', listInterfaces(), { ...EXEC, allowFailure: true })]);
  const dps = parseDpifShow(dpifShow.stdout);
  const scope = resolveScope(dps, params);
  const ifaces = interfacesOf(interfaces);
  const kernelWanted = params.kernel !== false && kmod.error === undefined && scope.datapaths.some((d) => d.type === 'system');

  const records: RawRecord[] = [];
  const flowScope = withAttachedMac(scope, ifaces.attachedMacs);
  const limit = Math.max(0, (params.traces as number | undefined) ?? 5);
  // At once: each trace is an ovs-appctl round trip (calls are recorded in the order made); once per megaflow.
  const traces = new Map<string, Promise<RawRecord | undefined>>();
  const trace = (f: FlowDelta) => {
    const name = traceName(f);
    if (!traces.has(name)) traces.set(name, io.exec(name, appctl('ofproto/trace', f.dpName, f.rawKey), { ...EXEC, allowFailure: true }).catch(() => undefined));
  };
  const watch = async (windowIO: ProbeIO) => {
    records.push(...(await sample(io, 'start', scope)));
    // The megaflows already dropping are traced while the window runs (they are most often
    // the ones that drop in it); the others after it.
    for (const f of droppingFlows(asIfNew(records), dps, flowScope).flows.slice(0, limit)) trace(f);
    await windowIO.sleep(params.duration as number);
    const [, end] = await Promise.all([io.exec('end-dpif-show', appctl('dpif/show'), EXEC), sample(io, 'end', scope)]);
    records.push(...end);
  };
  if (kernelWanted) {
    const ifindexRec = scope.dev ? await io.readFile('kernel-ifindex', `/sys/class/net/${scope.dev.port.name}/ifindex`, { allowFailure: true }) : undefined;
    const filters = {
      ifindex: ifindexRec && ifindexRec.error === undefined ? Number(ifindexRec.stdout.trim()) : 0,
      saddr: kernelAddr(scope.srcIp),
      daddr: kernelAddr(scope.dstIp),
      proto: scope.proto ?? 0,
      // A VM's scope: what enters on its port and the frames to its MAC (they enter on the others).
      vmMac: scope.vmMode && scope.dev ? macBytes(flowScope.vm.id.macs[0]) : null,
    };
    await runKernelSession(io, filters, watch);
  } else await watch(io);

  // Each dropping megaflow of the window (the busiest first) traced back to its OpenFlow rule.
  for (const f of droppingFlows(records, dps, flowScope).flows.slice(0, limit)) trace(f);
  await Promise.all(traces.values());
}

/** A megaflow's trace record, named by the megaflow (datapath, ufid or key). */
export function traceName(f: Pick<FlowDelta, 'datapath' | 'flow' | 'rawKey'>): string {
  return `trace-${createHash('sha256').update(`${f.datapath}|${f.flow.ufid ?? f.rawKey}`).digest('hex').slice(0, 16)}`;
}

/** The start sample's megaflows as if all were new in the window: the ones dropping so far. */
function asIfNew(records: RawRecord[]): RawRecord[] {
  return records.flatMap((r) => (r.name.startsWith(FLOWS('start', '')) ? [{ ...r, stdout: '' }, { ...r, name: r.name.replace(/^start-/, 'end-') }] : [r]));
}

/** `aa:bb:cc:dd:ee:ff` as 6 bytes; null for none. */
function macBytes(mac: string | undefined): Uint8Array | null {
  return mac ? Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16))) : null;
}

/** An address filter for the kernel programs: 4 bytes for IPv4, 16 for IPv6, network order. */
function kernelAddr(ip: string | undefined): Uint8Array | null {
  const a = ip === undefined ? null : parseAddr(ip);
  if (!a || a.family === 'mac') return null;
  const n = a.family === 4 ? 4 : 16;
  return Uint8Array.from({ length: n }, (_, i) => Number((a.value >> BigInt((n - 1 - i) * 8)) & 0xffn));
}

/** Interface rows by name (which internal ports are down), and the MAC each VM port carries (external_ids:attached-mac). */
function interfacesOf(r: RawRecord | undefined): { byName: Map<string, InterfaceRow>; attachedMacs: Map<string, string> } {
  const rows = ok(r) ? parseInterfaces(r.stdout) : [];
  return {
    byName: new Map(rows.map((i) => [i.name, i])),
    attachedMacs: new Map(rows.flatMap((i) => (i.externalIds['attached-mac'] ? [[i.name, i.externalIds['attached-mac']] as [string, string]] : []))),
  };
}

interface FlowDelta {
  datapath: string;
  dpName: string;
  rawKey: string;
  flow: Megaflow;
  packets: number;
  bytes: number;
  new: boolean;
  port: PortRef | undefined;
  scope: VmScope;
}

function rec(records: RawRecord[], name: string): RawRecord | undefined {
  return records.find((r) => r.name === name);
}

function ok(r: RawRecord | undefined): r is RawRecord {
  return r !== undefined && r.error === undefined && r.exitCode === 0;
}

/** Why the first of these records that exists failed, or null. */
function failure(...recs: Array<RawRecord | undefined>): string | null {
  const bad = recs.find((r) => r !== undefined && !(r.error === undefined && r.exitCode === 0));
  return bad ? (bad.error ?? `exit ${bad.exitCode}`) : null;
}

/** Megaflows in scope over the window, and the dropping ones (merged over PMD threads, busiest first). */
function droppingFlows(records: RawRecord[], dps: DpifDatapath[], scope: Scope): { flows: FlowDelta[]; inScope: number; vanished: number; notes: string[] } {
  const notes: string[] = [];
  const merged = new Map<string, FlowDelta>();
  let inScope = 0;
  let vanished = 0;
  const macs = scope.vm.id.macs;
  for (const dp of scope.datapaths) {
    const start = rec(records, FLOWS('start', dp.id));
    const end = rec(records, FLOWS('end', dp.id));
    if (!ok(start) || !ok(end)) {
      const why = failure(start, end);
      if (why) notes.push(`${dp.id}: megaflows not read: ${why}`);
      continue;
    }
    const before = new Map(parseDumpFlows(start.stdout).map((f) => [flowId(dp.id, f), f]));
    const after = parseDumpFlows(end.stdout);
    const keep = (f: Megaflow) => {
      const inPort = f.items.get('in_port')?.get('')?.value;
      const port = resolveInPort(dps, dp.id, inPort);
      if (port && !scope.bridges.includes(port.bridge)) return { keep: false, port };
      if (!port && (scope.bridge !== null || scope.dev !== null)) return { keep: false, port };
      // A port without the VM's identity keeps its own flows; with it, every flow is kept and labelled.
      if (scope.dev && !scope.vmMode) {
        const ethDst = f.items.get('eth')?.get('dst')?.value?.toLowerCase();
        const fromDev = port?.port.name === scope.dev.port.name;
        const toDev = ethDst !== undefined && macs.includes(ethDst);
        if (!fromDev && !toDev) return { keep: false, port };
      }
      return { keep: flowMatchesFilters(f.items, { srcIp: scope.srcIp, dstIp: scope.dstIp, proto: scope.proto }), port };
    };
    const afterIds = new Set<string>();
    for (const f of after) {
      const id = flowId(dp.id, f);
      afterIds.add(id);
      const k = keep(f);
      if (!k.keep) continue;
      inScope++;
      if (!isDropAction(f.actions)) continue;
      const b = before.get(id);
      const packets = grow(b?.packets, f.packets);
      if (b && packets === 0) continue;
      // Merged over threads: one megaflow can be installed in several PMDs under one ufid.
      const mk = `${dp.id}|${f.ufid ?? f.rawKey}`;
      const m = merged.get(mk);
      if (m) {
        m.packets += packets;
        m.bytes += grow(b?.bytes, f.bytes);
        m.new = m.new || !b;
      } else {
        const inPort = k.port?.port.name ?? f.items.get('in_port')?.get('')?.value ?? null;
        const flowScope = megaflowScope(f.items, inPort, scope.vm);
        merged.set(mk, { datapath: dp.id, dpName: dp.name, rawKey: f.rawKey, flow: f, packets, bytes: grow(b?.bytes, f.bytes), new: !b, port: k.port, scope: flowScope });
      }
    }
    for (const [id, f] of before) if (!afterIds.has(id) && isDropAction(f.actions) && keep(f).keep) vanished++;
  }
  if (vanished > 0) notes.push(`${vanished} dropping megaflow(s) were removed during the window: their last packets are not counted`);
  // The VM's first (they are the ones traced when the trace budget is short), another's last.
  const flows = [...merged.values()].sort(
    (a, b) => scopeRank(a.scope) - scopeRank(b.scope) || b.packets - a.packets || Number(b.new) - Number(a.new) || a.rawKey.localeCompare(b.rawKey),
  );
  return { flows, inScope, vanished, notes };
}

function ruleDeltas(records: RawRecord[], scope: Scope, notes: string[]): Map<string, { bridge: string; rule: OfRule; packets: number; bytes: number }> {
  const out = new Map<string, { bridge: string; rule: OfRule; packets: number; bytes: number }>();
  for (const br of scope.bridges) {
    const start = rec(records, RULES('start', br));
    const end = rec(records, RULES('end', br));
    if (!ok(start) || !ok(end)) {
      const why = failure(start, end);
      if (why) notes.push(`${br}: OpenFlow rules not read: ${why}`);
      continue;
    }
    const before = new Map(parseOfFlows(start.stdout).map((r) => [ruleId(br, r), r]));
    for (const r of parseOfFlows(end.stdout)) {
      const b = before.get(ruleId(br, r));
      out.set(ruleId(br, r), { bridge: br, rule: r, packets: grow(b?.packets, r.packets), bytes: grow(b?.bytes, r.bytes) });
    }
  }
  return out;
}

function parse(records: RawRecord[], params: Params): ProbeResult<OvsDropsData> {
  const showRec = rec(records, 'start-dpif-show');
  if (!ok(showRec)) throw new Error(`ovs-appctl dpif/show: ${failure(showRec) ?? 'not in the evidence'}`);
  const dps = parseDpifShow(showRec.stdout);
  const { byName: ifaceByName, attachedMacs } = interfacesOf(rec(records, 'interfaces'));
  const scope = withAttachedMac(resolveScope(dps, params), attachedMacs);
  const notes: string[] = [];
  const top = Math.max(1, (params.top as number | undefined) ?? 10);

  // Coverage: drop causes and related counters.
  const covStart = rec(records, 'start-coverage');
  const covEnd = rec(records, 'end-coverage');
  const byCause: Record<string, number> = {};
  const related: Record<string, number> = {};
  let flushes = 0;
  if (ok(covStart) && ok(covEnd)) {
    const before = parseCoverage(covStart.stdout);
    for (const [name, total] of parseCoverage(covEnd.stdout)) {
      const d = grow(before.get(name) ?? 0, total);
      if (d <= 0) continue;
      if (isDropCounter(name)) byCause[name] = d;
      else if (isRelatedCounter(name)) related[name] = d;
      else if (name === 'dpif_flow_flush') flushes = d;
    }
  }
  if (flushes > 0) {
    notes.push(`the datapath's megaflows were flushed ${flushes} time(s) during the window (a bridge deleted, dpctl/del-flows): dropping megaflows may be missing or undercounted; the drop counters and OpenFlow rules still count`);
  }

  // Megaflows and rules.
  const flowScan = droppingFlows(records, dps, scope);
  notes.push(...flowScan.notes);
  const rules = ruleDeltas(records, scope, notes);
  const limit = Math.max(0, (params.traces as number | undefined) ?? 5);
  const droppingFlowsOut: OvsDroppingFlow[] = flowScan.flows.map((f, i) => {
    const out: OvsDroppingFlow = {
      key: compactKey(f.flow.items),
      actions: f.flow.actions,
      packets: f.packets,
      bytes: f.bytes,
      new: f.new,
      inPort: f.port?.port.name ?? f.flow.items.get('in_port')?.get('')?.value ?? null,
      bridge: f.port?.bridge ?? null,
      datapath: f.datapath,
      fields: flowFields(f.flow.items),
      ufid: f.flow.ufid,
      scope: f.scope,
    };
    if (i < limit) {
      // Recordings before traces were named by megaflow named them by rank.
      const t = rec(records, traceName(f)) ?? rec(records, `trace-${i}`);
      if (ok(t)) {
        const trace = parseTrace(t.stdout);
        const last = trace.rules.at(-1);
        if (last) {
          const found = last.tableMiss ? undefined : rules.get(ruleId(last.bridge, { table: last.table, priority: last.priority ?? 0, match: last.match }));
          out.rule = {
            bridge: last.bridge,
            table: last.table,
            priority: last.priority,
            match: last.match,
            cookie: last.cookie,
            tableMiss: last.tableMiss,
            ...(found ? { packets: found.packets } : {}),
          };
        }
        if (trace.errors.length > 0) out.why = trace.errors;
        if (trace.datapathActions !== null && !isDropAction(trace.datapathActions)) {
          notes.push(`megaflow ${out.key} drops, but tracing it now gives "${trace.datapathActions}": the rules changed since it was installed`);
        }
      } else if (t) {
        notes.push(`could not trace megaflow ${out.key}: ${failure(t)}`);
      }
    }
    return out;
  });
  const flowPackets = (fs: OvsDroppingFlow[]) => fs.reduce((n, f) => n + f.packets + (f.new ? 1 : 0), 0);
  const flowsOf = (...kinds: VmScope[]) => droppingFlowsOut.filter((f) => kinds.includes(f.scope));
  const flowDrops = flowPackets(flowsOf('vm', 'any'));

  const allDropRules: OvsMatchedDropRule[] = [...rules.values()]
    .filter((r) => isDropRule(r.rule) && r.packets > 0)
    .map((r) => ({
      bridge: r.bridge,
      table: r.rule.table,
      priority: r.rule.priority,
      match: r.rule.match,
      cookie: r.rule.cookie,
      tableMiss: false,
      actions: r.rule.actions,
      packets: r.packets,
      bytes: r.bytes,
      scope: ofRuleScope(r.rule.match, scope.vm),
    }))
    .sort((a, b) => scopeRank(a.scope) - scopeRank(b.scope) || b.packets - a.packets);
  const rulesOf = (...kinds: VmScope[]) => allDropRules.filter((r) => kinds.includes(r.scope));
  const rulePackets = (rs: OvsMatchedDropRule[]) => rs.reduce((n, r) => n + r.packets, 0);
  const dropRules = rulesOf('vm', 'any');
  const ruleDrops = rulePackets(dropRules);
  // A rule's packets and its megaflows' are the same packets: the larger view counts.
  const vmFlows = flowsOf('vm');
  const vmRules = rulesOf('vm');
  const scopedTotal = (fs: OvsDroppingFlow[], rs: OvsMatchedDropRule[]) => Math.max(flowPackets(fs), rulesCount(scope) ? rulePackets(rs) : 0);
  const otherFlows = flowsOf('other');
  const otherRules = rulesOf('other');
  if (scope.vmMode && otherFlows.length + otherRules.length > 0) {
    notes.push(
      `${otherFlows.length} dropping megaflow(s) and ${otherRules.length} drop rule(s) match only other addresses or MACs than the VM's (${flowPackets(otherFlows)} and ${rulePackets(otherRules)} packets): listed in otherFlows/otherRules, not counted`,
    );
  }

  // Ports.
  const ports: OvsPortDrops[] = [];
  const dpctlStart = rec(records, 'start-dpctl-show');
  const dpctlEnd = rec(records, 'end-dpctl-show');
  const byName = portsByName(dps);
  if (ok(dpctlStart) && ok(dpctlEnd)) {
    const startDps = parseDpctlShow(dpctlStart.stdout);
    const before = new Map(startDps.flatMap((d) => d.ports.map((p) => [`${d.id}|${p.name}`, p] as const)));
    for (const d of parseDpctlShow(dpctlEnd.stdout)) {
      // The kernel datapath's `lost`: packets whose upcall could not be queued to ovs-vswitchd.
      // (The userspace datapath counts those as datapath_drop_upcall_error already.)
      const lostHere = grow(startDps.find((x) => x.id === d.id)?.lost, d.lost);
      if (lostHere > 0 && scope.datapaths.some((x) => x.id === d.id && x.type !== 'netdev')) byCause[`lost_upcall_${d.id}`] = lostHere;
      if (!scope.datapaths.some((s) => s.id === d.id)) continue;
      for (const p of d.ports) {
        const ref = byName.get(p.name);
        if (scope.dev ? p.name !== scope.dev.port.name : scoped(scope) && !(ref && scope.bridges.includes(ref.bridge))) continue;
        const b = before.get(`${d.id}|${p.name}`);
        const entry: OvsPortDrops = {
          port: p.name,
          bridge: ref?.bridge ?? null,
          datapath: d.id,
          type: ref?.port.type ?? p.type,
          rxDropped: grow(b?.rxDropped, p.rxDropped),
          txDropped: grow(b?.txDropped, p.txDropped),
          rxErrors: grow(b?.rxErrors, p.rxErrors),
          txErrors: grow(b?.txErrors, p.txErrors),
          rxPackets: grow(b?.rxPackets, p.rxPackets),
          txPackets: grow(b?.txPackets, p.txPackets),
          downInternal: false,
        };
        if (entry.rxDropped + entry.txDropped + entry.rxErrors + entry.txErrors === 0) continue;
        const iface = ifaceByName.get(p.name);
        const internal = iface?.type === 'internal' || entry.type === 'internal' || (ref !== undefined && ref.port.ofport === 65534);
        entry.downInternal = internal && (iface?.linkState === 'down' || iface?.adminState === 'down');
        ports.push(entry);
      }
    }
  } else {
    const why = failure(dpctlStart, dpctlEnd);
    if (why) notes.push(`port counters not read: ${why}`);
  }
  ports.sort((a, b) => b.rxDropped + b.txDropped - (a.rxDropped + a.txDropped) || a.port.localeCompare(b.port));
  const portDrops = ports.filter((p) => !p.downInternal).reduce((n, p) => n + p.rxDropped + p.txDropped, 0);
  const downDrops = ports.filter((p) => p.downInternal);
  if (downDrops.length > 0) {
    notes.push(
      `${downDrops.map((p) => `${p.port} (${p.txDropped + p.rxDropped})`).join(', ')}: drops on a bridge's internal port that is down (what OVS floods there); not counted in portDrops`,
    );
  }

  const coverageDrops = Object.values(byCause).reduce((n, v) => n + v, 0);
  const kernel = parseKernel(records);
  if (kernel && kernel.failed.length > 0) notes.push(`kernel datapath programs not attached: ${kernel.failed.join('; ')}`);

  // The total: the largest view that applies to the scope.
  const views: Array<[OvsDropsData['totalSource'], number]> = [['megaflows', flowDrops]];
  if (rulesCount(scope)) views.push(['rules', ruleDrops]);
  if (kernel) views.push(['kernel', kernel.drops]);
  if (!scoped(scope)) views.push(['coverage', coverageDrops]);
  else if (coverageDrops > 0) notes.push(`byCause counts all of ovs-vswitchd (coverage counters cannot be scoped to a bridge or port)`);
  let total = 0;
  let totalSource: OvsDropsData['totalSource'] = 'none';
  for (const [source, n] of views) {
    if (n > total) {
      total = n;
      totalSource = source;
    }
  }

  const startAt = rec(records, 'start-coverage')?.at;
  const endAt = rec(records, 'end-coverage')?.at;
  const durationMs = startAt !== undefined && endAt !== undefined ? endAt - startAt : 0;
  const data: OvsDropsData = {
    durationMs,
    scope: {
      bridge: scope.bridge,
      dev: scope.dev?.port.name ?? null,
      srcIp: scope.srcIp ?? null,
      dstIp: scope.dstIp ?? null,
      protocol: scope.protocol,
      bridges: scope.bridges,
      vmMacs: scope.vm.id.macs,
      vmIps: scope.vm.id.ips,
    },
    datapath: [...new Set(dps.map((d) => d.type))].sort(),
    datapaths: dps.map((d) => ({ id: d.id, type: d.type, bridges: d.bridges.map((b) => b.name) })),
    total,
    totalSource,
    coverageDrops,
    flowDrops,
    ruleDrops,
    byCause: sortedCounts(byCause),
    related: sortedCounts(related),
    droppingFlows: flowsOf('vm', 'any'),
    dropRules,
    vmFlows,
    vmRules,
    vmTotal: scopedTotal(vmFlows, vmRules),
    anyTotal: scopedTotal(flowsOf('any'), rulesOf('any')),
    otherFlows,
    otherRules,
    ports,
    portDrops,
    megaflows: flowScan.inScope,
    flushes,
    ...(kernel ? { kernel } : {}),
    notes,
  };
  return {
    data,
    summary: summarize(data, params.duration as number, scope.vmMode),
    severity: severityOf(data, scope.vmMode),
    charts: charts(data, top),
    tables: tables(data, top),
  };
}

function severityOf(d: OvsDropsData, vmMode: boolean): ProbeResult['severity'] {
  // Scoped to a VM, only what names it is critical; what may carry its packets is a warning.
  if ((vmMode ? d.vmTotal : d.total) > 0 || d.portDrops > 0) return 'critical';
  if (vmMode && d.total > 0) return 'warning';
  return Object.keys(d.related).some((k) => /flow_limit|conntrack_full/.test(k)) ? 'warning' : 'info';
}

function ruleText(r: OvsDropRule): string {
  if (r.tableMiss) return `table ${r.table} miss on ${r.bridge}`;
  return `table=${r.table},priority=${r.priority}${r.match ? `,${r.match}` : ''} on ${r.bridge}`;
}

function scopeText(d: OvsDropsData): string {
  const parts: string[] = [];
  if (d.scope.dev) parts.push(`port ${d.scope.dev}`);
  else if (d.scope.bridge) parts.push(d.scope.bridge);
  if (d.scope.srcIp) parts.push(`from ${d.scope.srcIp}`);
  if (d.scope.dstIp) parts.push(`to ${d.scope.dstIp}`);
  if (protocolNumber(d.scope.protocol) !== 0) parts.push(d.scope.protocol);
  return parts.length ? ` (${parts.join(' ')})` : '';
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Scoped to a VM: its drops first, then those that may be its, and what another's rules dropped. */
function summarizeVm(d: OvsDropsData, requestedMs: number): string {
  const who = identityText({ macs: d.scope.vmMacs, ips: d.scope.vmIps, devs: [], bridges: [] }, d.scope.dev ? [`port ${d.scope.dev}`] : []);
  const when = `in ${formatMs(requestedMs)}`;
  const topOf = (flows: OvsDroppingFlow[], rules: OvsMatchedDropRule[]) => {
    const f = flows[0];
    if (f) return `top megaflow ${f.key} (${f.packets} packets${f.new ? ' + 1 on upcall' : ''})${f.rule ? ` by OpenFlow rule ${ruleText(f.rule)}` : ''}`;
    const r = rules[0];
    return r ? `OpenFlow drop rule ${ruleText(r)} (${r.packets} packets)` : '';
  };
  const parts: string[] = [];
  if (d.vmTotal > 0) parts.push(`OVS dropped ${plural(d.vmTotal, 'packet')} of the VM (${who}) ${when}: ${topOf(d.vmFlows, d.vmRules)}`);
  else parts.push(`no OVS drop names the VM (${who}) ${when}`);
  if (d.anyTotal > 0) {
    const anyFlows = d.droppingFlows.filter((f) => f.scope === 'any');
    const anyRules = d.dropRules.filter((r) => r.scope === 'any');
    parts.push(`${plural(d.anyTotal, 'packet')} dropped by flows or rules that can carry the VM's packets but name nothing of it: ${topOf(anyFlows, anyRules)}`);
  }
  const other = d.otherFlows.length + d.otherRules.length;
  if (other > 0) parts.push(`${other} dropping megaflow(s) and rule(s) of other addresses or MACs not counted`);
  const ports = d.ports.filter((p) => !p.downInternal && p.rxDropped + p.txDropped > 0);
  if (ports.length > 0) parts.push(`port drops: ${ports.slice(0, 3).map((p) => `${p.port} rx ${p.rxDropped} tx ${p.txDropped}`).join(', ')}`);
  return parts.join('; ');
}

function summarize(d: OvsDropsData, requestedMs: number, vmMode: boolean): string {
  if (vmMode) return summarizeVm(d, requestedMs);
  const when = `in ${formatMs(requestedMs)}${scopeText(d)}`;
  const dpText = `${d.datapath.join('+') || 'no'} datapath`;
  const parts: string[] = [];
  if (d.total > 0) {
    const causes = Object.entries(d.byCause)
      .slice(0, 3)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    const f = d.droppingFlows[0];
    let text = `OVS dropped ${d.total} packet${d.total === 1 ? '' : 's'} ${when}`;
    if (causes) text += `: ${causes}`;
    if (f) {
      text += `; ${d.droppingFlows.length} dropping megaflow${d.droppingFlows.length === 1 ? '' : 's'}, top ${f.key} (${f.packets} packets${f.new ? ' + 1 on upcall' : ''})`;
      if (f.rule) text += ` by OpenFlow rule ${ruleText(f.rule)}`;
    } else if (d.dropRules[0]) {
      text += `; OpenFlow drop rule ${ruleText(d.dropRules[0])} (${d.dropRules[0].packets} packets)`;
    }
    parts.push(text);
  } else {
    parts.push(`no OVS drops ${when} (${dpText}, ${d.megaflows} megaflow${d.megaflows === 1 ? '' : 's'})`);
  }
  const ports = d.ports.filter((p) => !p.downInternal && p.rxDropped + p.txDropped > 0);
  if (ports.length > 0) {
    parts.push(
      `port drops: ${ports
        .slice(0, 3)
        .map((p) => `${p.port} rx ${p.rxDropped} tx ${p.txDropped}`)
        .join(', ')}`,
    );
  }
  return parts.join('; ');
}

function charts(d: OvsDropsData, top: number): ChartSpec[] {
  const out: ChartSpec[] = [];
  const causes: Record<string, number> = { ...d.byCause, ...(d.kernel?.dropReasons ?? {}) };
  if (d.kernel) for (const [k, v] of Object.entries(d.kernel.upcallErrors)) causes[`upcall failed: ${k}`] = v;
  if (Object.keys(causes).length > 0) {
    const bar: BarChart = {
      kind: 'bar',
      title: 'OVS drops by cause',
      unit: 'packets',
      bars: Object.entries(causes)
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([label, value]) => ({ label, value })),
    };
    out.push(bar);
  }
  if (d.droppingFlows.length > 0) {
    out.push({
      kind: 'bar',
      title: 'Dropping megaflows',
      unit: 'packets',
      bars: d.droppingFlows.slice(0, top).map((f) => ({ label: f.key, value: f.packets + (f.new ? 1 : 0) })),
    });
  }
  return out;
}

function tables(d: OvsDropsData, top: number): TableSpec[] {
  const out: TableSpec[] = [];
  if (d.droppingFlows.length + d.otherFlows.length > 0) {
    out.push({
      title: 'Dropping megaflows',
      columns: ['scope', 'datapath', 'in port', 'key', 'actions', 'packets', 'bytes', 'new', 'OpenFlow rule'],
      rows: [...d.droppingFlows, ...d.otherFlows].slice(0, top).map((f) => [f.scope, f.datapath, f.inPort ?? '', f.key, f.actions, f.packets, f.bytes, f.new ? 'yes' : '', f.rule ? ruleText(f.rule) : '']),
    });
  }
  if (d.dropRules.length + d.otherRules.length > 0) {
    out.push({
      title: 'OpenFlow rules with a drop action that matched',
      columns: ['scope', 'bridge', 'table', 'priority', 'match', 'packets', 'bytes'],
      rows: [...d.dropRules, ...d.otherRules].slice(0, top).map((r) => [r.scope, r.bridge, r.table, r.priority ?? '', r.match || '(any)', r.packets, r.bytes]),
    });
  }
  const counters = { ...d.byCause, ...d.related };
  if (Object.keys(counters).length > 0) {
    out.push({
      title: 'ovs-vswitchd counters (coverage/show) over the window',
      columns: ['counter', 'kind', 'count'],
      rows: Object.entries(counters).map(([k, v]) => [k, k in d.byCause ? 'drop' : 'related', v]),
    });
  }
  if (d.ports.length > 0) {
    out.push({
      title: 'Ports whose drop or error counters moved',
      columns: ['port', 'bridge', 'type', 'rx dropped', 'tx dropped', 'rx errors', 'tx errors', 'rx packets', 'tx packets', 'note'],
      rows: d.ports.map((p) => [p.port, p.bridge ?? '', p.type, p.rxDropped, p.txDropped, p.rxErrors, p.txErrors, p.rxPackets, p.txPackets, p.downInternal ? 'internal port down' : '']),
    });
  }
  if (d.kernel) {
    const k = d.kernel;
    out.push({
      title: 'Kernel datapath (BPF)',
      columns: ['what', 'value'],
      rows: [
        ['attached', k.attached.join(', ') || 'nothing'],
        ['not attached', k.failed.join('; ')],
        ['packets received', Object.values(k.received).reduce((n, v) => n + v, 0)],
        ['flow lookups', k.lookups],
        ['upcalls', Object.values(k.upcalls).reduce((n, v) => n + v, 0)],
        ['failed upcalls', Object.entries(k.upcallErrors).map(([e, n]) => `${e} ${n}`).join(', ') || 0],
        ['OVS drop reasons', Object.entries(k.dropReasons).map(([e, n]) => `${e} ${n}`).join(', ') || 0],
      ],
    });
    if (k.dropsAfterReceive.length > 0) {
      out.push({
        title: 'Drops of packets that entered OVS (kernel)',
        columns: ['reason', 'location', 'in device', 'drops', 'in OVS'],
        rows: k.dropsAfterReceive.slice(0, top).map((x) => [x.reason, x.location, x.device, x.count, x.inOvs ? 'yes' : 'no (after OVS)']),
      });
    }
  }
  return out;
}

export const ovsDrops = ovsProbe<OvsDropsData>({
  id: 'ovs.drops',
  title: 'Open vSwitch drops: causes, dropping megaflows, OpenFlow rules',
  description: `Finds where Open vSwitch drops packets. Over \`duration\` it reads, at the start and the end:

- ovs-vswitchd's drop counters (\`ovs-appctl coverage/show\`: \`drop_action_of_pipeline\` for an OpenFlow drop, \`drop_action_*\` for translation failures such as too many resubmits or a missing recirculation context, \`datapath_drop_*\` for datapath errors such as a failed upcall, \`netdev_*_drops\`) → \`byCause\`;
- the datapath's megaflows (\`ovs-appctl dpctl/dump-flows -m\`): those whose actions are \`drop\` and whose packet count moved, with their key (in port, Ethernet, IPv4, TCP/UDP, \`recirc_id\`, \`ct_state\`) → \`droppingFlows\`; each is traced (\`ovs-appctl ofproto/trace\`) back to the OpenFlow rule that decided it (\`rule\`, with that rule's own packet count);
- every bridge's OpenFlow rules (\`ovs-ofctl dump-flows\`): rules whose action is drop and that matched → \`dropRules\`;
- the datapath ports' counters (\`ovs-appctl dpctl/show -s\`) → \`ports\` whose drops or errors moved.

\`bridge\` limits it to one bridge, \`dev\` to the packets a port (a VM's tap) sends into OVS (and, when its interface has \`external_ids:attached-mac\`, those addressed to it); \`src_ip\`, \`dst_ip\` (IPv4 or IPv6), \`protocol\` keep the megaflows that can carry such packets. \`total\` is the largest count among the views that apply to that scope. The first packet of a new megaflow is dropped during its upcall and is not in the megaflow's own count (\`new: true\` adds it).

**Scoped to a VM** (\`vm_macs\`, \`vm_ips\` beside \`dev\`, its port; the port's \`attached-mac\` joins the MACs): every dropping megaflow and drop rule of the port's bridge is read and gets a \`scope\` from its match: \`vm\` when it names the VM (\`in_port\` its port, \`eth_src\`/\`eth_dst\`/\`arp_sha\`/\`arp_tha\` one of its MACs, IPv4/IPv6 source or destination one of its addresses, prefixes and masks included), \`other\` when it names nothing of the VM and another address or MAC (another tenant's rule: \`otherFlows\`, \`otherRules\`, never counted), \`any\` when it names nothing either way (a port or a protocol; an \`in_port\` that is not the VM's says nothing, since packets to the VM come in on the other ports; a multicast or broadcast destination neither). \`vmFlows\`/\`vmRules\` are the VM's and \`vmTotal\` their packets; \`anyTotal\` those of the \`any\` ones, which stay in \`droppingFlows\`/\`dropRules\` with their label (whether they took the VM's packets needs a count of the VM's frames lost in the switch); \`total\` is then the VM's and the \`any\` ones, never another's. On the kernel datapath the BPF programs count the VM's packets both ways: those entering OVS on its port and the frames to its first MAC (they enter on the other ports).

On hosts whose OVS runs the **kernel datapath** (\`/sys/module/openvswitch\` present) it also loads \`probes/ovs.drops/ovs.drops.bpf.c\`: kprobes on \`ovs_vport_receive\`, \`ovs_dp_process_packet\`, \`ovs_dp_upcall\` (and its return: failed upcalls lose the packet) and the \`kfree_skb\` drop reasons of the OPENVSWITCH subsystem (kernel 6.4+), and any other drop of a packet that entered OVS, counted when the openvswitch module's own code freed it (a packet OVS forwarded stays the same skb in the output device and, over a veth, in the receiver's stack: drops there are listed with \`inOvs: false\`, not counted) → \`kernel\`. Before 6.4 an OpenFlow drop frees the packet as consumed, not dropped: the kernel programs do not see it, the megaflows and rules do. On the userspace (\`netdev\`) datapath only the commands run.

Replaces the seed's \`ovs/ovs-kernel-module-drop-monitor.py\` (PROBES.md row 30).`,
  normal: `\`total\` 0, no dropping megaflows, \`byCause\` empty; scoped to a VM, \`vmTotal\` 0 (\`otherFlows\` are another VM's rules doing their job, and \`any\` ones say nothing of the VM by themselves). A megaflow with \`actions:drop\` is an OpenFlow rule doing its job (security groups, ACLs): it is a fault when the traffic it drops should pass. \`drop_action_*\` counters other than \`of_pipeline\`, any \`datapath_drop_*\` (\`upcall_error\`: ovs-vswitchd cannot keep up), and tx drops on a VM's port (the VM does not take its packets) are never normal. An internal bridge port that is down counts what OVS floods to it as tx drops: harmless.`,
  replaces: ['ovs/ovs-kernel-module-drop-monitor.py'],
  params: {
    bridge: { type: 'string', description: 'Only this OVS bridge (default: every bridge).' },
    dev: {
      type: 'string',
      description: "Only packets this OVS port (a VM's tap) sends into OVS, and those to its attached-mac; with vm_macs/vm_ips, the VM's port (a flow coming in on it is the VM's) and its bridge.",
      cliOption: 'dev',
    },
    duration: durationParam('How long to watch (OVS flushes its drop counters about once a second: give it 2s or more).', { min: 500 }),
    ...addressParams({ src: 'Only megaflows that can carry IPv4 or IPv6 packets from this address.', dst: 'Only megaflows that can carry IPv4 or IPv6 packets to this address.' }),
    protocol: protocolParam('Only megaflows that can carry this IP protocol.'),
    ...vmScopeParams({
      macs: 'a dropping megaflow or rule matching one of them (eth_src, eth_dst, ARP) is the VM\'s; with vm_ips, every flow and rule of the bridge is labelled by scope instead of keeping only the port\'s.',
      ips: 'a dropping megaflow or rule matching one of them (source or destination, prefixes and masks included) is the VM\'s; one matching only other addresses is another\'s (never counted).',
    }),
    traces: { type: 'integer', default: 5, min: 0, max: 50, description: 'How many dropping megaflows (the busiest) to trace to their OpenFlow rule.' },
    kernel: { type: 'boolean', default: true, description: 'On a kernel-datapath host, also count drops with the BPF programs.' },
    top: topParam('How many rows and bars to show.', { default: 10, max: 1000 }),
  },
  overhead: 'low',
  budget: OVS_KERNEL_BUDGET,
  data: DATA,
  collect,
  parse,
});
