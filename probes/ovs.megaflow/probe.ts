// ovs.megaflow: megaflow and upcall health of Open vSwitch over a window. At the start and the
// end it reads each datapath's lookups (dpif/show, dpctl/show: hit, missed, lost), the flow
// table's size and limit (upcall/show), the userspace datapath's per-thread counters
// (dpif-netdev/pmd-stats-show: EMC/SMC/megaflow hits, upcalls that worked or failed, cycles),
// ovs-vswitchd's flow counters (coverage/show) and the megaflows themselves
// (dpctl/dump-flows -m): hit rate, miss and upcall rates, lost packets, failed upcalls,
// flow-limit pressure, megaflow churn, and the busiest megaflows of a port.
import { formatMs } from '../../engine/duration.js';
import type { ChartSpec, Params, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import {
  appctl,
  bridgesInScope,
  COMMAND_TIMEOUT_MS,
  compactKey,
  coverageTables,
  flowId,
  grow,
  isDropAction,
  megaflowScope,
  ovsProbe,
  parseCoverage,
  parseDpctlShow,
  parseDpifShow,
  parseDumpFlows,
  parsePmdStats,
  parseUpcallShow,
  resolveInPort,
  type DpifDatapath,
  type Megaflow,
  type OvsScope,
  type OvsVm,
  type PortRef,
} from '../lib/ovs.js';
import { hasVmIdentity, identityText, vmIdentityOf, vmScopeParams } from '../lib/vm-scope.js';
import { durationParam, topParam } from '../lib/params.js';
import { DATA, type OvsMegaflowData } from './data.js';

const EXEC = { timeoutMs: COMMAND_TIMEOUT_MS };

/** Coverage counters about the flow table and upcalls, reported as deltas. */
const FLOW_COUNTERS = [
  'dpif_flow_put',
  'dpif_flow_del',
  'dpif_flow_flush',
  'upcall_flow_limit_hit',
  'upcall_flow_limit_kill',
  'upcall_ukey_contention',
  'upcall_ukey_replace',
  'handler_duplicate_upcall',
  'revalidate_missed_dp_flow',
  'dumped_duplicate_flow',
  'dumped_new_flow',
  'datapath_drop_upcall_error',
  'xlate_actions',
];

export type MegaflowDatapath = OvsMegaflowData['datapaths'][number];
export type MegaflowPmd = OvsMegaflowData['pmd'][number];
export type MegaflowTopFlow = OvsMegaflowData['topFlows'][number];

export type { OvsMegaflowData } from './data.js';

interface Scope extends OvsScope {
  /** The VM, when vm_macs or vm_ips name it. */
  vm: OvsVm | null;
}

function resolveScope(dps: DpifDatapath[], params: Params): Scope {
  const bridge = typeof params.bridge === 'string' && params.bridge !== '' ? params.bridge : null;
  const devName = typeof params.dev === 'string' && params.dev !== '' ? params.dev : undefined;
  const { dev, bridges } = bridgesInScope(dps, bridge, devName);
  const id = vmIdentityOf(params);
  const vm = hasVmIdentity(id) ? { id, port: dev ? { name: dev.port.name, ofport: dev.port.ofport } : null } : null;
  return { bridge, dev, bridges, datapaths: dps.filter((d) => d.bridges.some((b) => bridges.includes(b.name))), vm };
}

async function sample(io: ProbeIO, phase: 'start' | 'end', scope: Scope): Promise<void> {
  await Promise.all([
    io.exec(`${phase}-dpif-show`, appctl('dpif/show'), EXEC),
    io.exec(`${phase}-dpctl-show`, appctl('dpctl/show'), { ...EXEC, allowFailure: true }),
    io.exec(`${phase}-upcall-show`, appctl('upcall/show'), { ...EXEC, allowFailure: true }),
    // Only the userspace datapath has PMD statistics.
    ...(scope.datapaths.some((d) => d.type === 'netdev')
      ? [io.exec(`${phase}-pmd-stats`, appctl('dpif-netdev/pmd-stats-show'), { ...EXEC, allowFailure: true })]
      : []),
    io.exec(`${phase}-coverage`, appctl('coverage/show'), { ...EXEC, allowFailure: true }),
    ...scope.datapaths.map((dp) => io.exec(`${phase}-flows-${dp.id}`, appctl('dpctl/dump-flows', '-m', dp.id), { ...EXEC, allowFailure: true })),
  ]);
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const topo = parseDpifShow((await io.exec('topology', appctl('dpif/show'), EXEC)).stdout);
  const scope = resolveScope(topo, params);
  await sample(io, 'start', scope);
  await io.sleep(params.duration as number);
  await sample(io, 'end', scope);
}

const find = (records: RawRecord[], name: string) => records.find((r) => r.name === name);
const good = (r: RawRecord | undefined): r is RawRecord => r !== undefined && r.error === undefined && r.exitCode === 0;
const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 10000) / 10000 : null);
const perSec = (n: number, ms: number) => (ms > 0 ? Math.round((n / (ms / 1000)) * 100) / 100 : 0);
const pct = (r: number | null) => (r === null ? 'n/a' : `${(r * 100).toFixed(1)}%`);

function pmdDeltas(start: RawRecord | undefined, end: RawRecord | undefined): MegaflowPmd[] {
  if (!good(end)) return [];
  const before = new Map((good(start) ? parsePmdStats(start.stdout) : []).map((t) => [t.thread, t.values]));
  return parsePmdStats(end.stdout).map((t) => {
    const b = before.get(t.thread) ?? {};
    const d = (label: string) => grow(b[label], t.values[label] ?? 0);
    const emcHits = d('emc hits');
    const smcHits = d('smc hits');
    const megaflowHits = d('megaflow hits');
    const simpleMatchHits = d('simple match hits');
    const phwolHits = d('phwol hits');
    const upcallsOk = d('miss with success upcall');
    const upcallsFailed = d('miss with failed upcall');
    const hitsAll = emcHits + smcHits + megaflowHits + simpleMatchHits + phwolHits;
    const processing = t.values['processing cycles'] !== undefined ? d('processing cycles') : null;
    const idle = t.values['idle cycles'] !== undefined ? d('idle cycles') : null;
    const packets = d('packets received');
    return {
      thread: t.thread,
      packets,
      recirculations: d('packet recirculations'),
      emcHits,
      smcHits,
      megaflowHits,
      simpleMatchHits,
      phwolHits,
      upcallsOk,
      upcallsFailed,
      hitRate: ratio(hitsAll, hitsAll + upcallsOk + upcallsFailed),
      cyclesPerPacket: processing !== null && packets > 0 ? Math.round((processing / packets) * 10) / 10 : null,
      busy: processing !== null && idle !== null ? ratio(processing, processing + idle) : null,
    };
  });
}

function parse(records: RawRecord[], params: Params): ProbeResult<OvsMegaflowData> {
  const topoRec = find(records, 'topology');
  if (!good(topoRec)) throw new Error(`ovs-appctl dpif/show: ${topoRec ? (topoRec as RawRecord).error ?? `exit ${(topoRec as RawRecord).exitCode}` : 'not in the evidence'}`);
  const topo = parseDpifShow(topoRec.stdout);
  const scope = resolveScope(topo, params);
  const top = Math.max(1, (params.top as number | undefined) ?? 10);
  const notes: string[] = [];
  const startAt = find(records, 'start-dpif-show')?.at;
  const endAt = find(records, 'end-dpif-show')?.at;
  const durationMs = startAt !== undefined && endAt !== undefined ? endAt - startAt : 0;

  const show = (phase: string) => {
    const r = find(records, `${phase}-dpif-show`);
    return good(r) ? parseDpifShow(r.stdout) : [];
  };
  const dpctl = (phase: string) => {
    const r = find(records, `${phase}-dpctl-show`);
    return good(r) ? parseDpctlShow(r.stdout) : [];
  };
  const upcallEnd = good(find(records, 'end-upcall-show')) ? parseUpcallShow(find(records, 'end-upcall-show')!.stdout) : [];
  const [showStart, showEnd, dpctlStart, dpctlEnd] = [show('start'), show('end'), dpctl('start'), dpctl('end')];

  const topFlows: MegaflowTopFlow[] = [];
  let portHits = 0;
  let portMisses = 0;
  let portFlows = 0;
  const vmShare = { hits: 0, misses: 0, megaflows: 0, dropped: 0, anyMegaflows: 0, anyPackets: 0 };
  const datapaths: MegaflowDatapath[] = scope.datapaths.map((dp) => {
    const s = showStart.find((d) => d.id === dp.id);
    const e = showEnd.find((d) => d.id === dp.id);
    const ls = dpctlStart.find((d) => d.id === dp.id);
    const le = dpctlEnd.find((d) => d.id === dp.id);
    const hits = e ? grow(s?.hit, e.hit) : 0;
    const missed = e ? grow(s?.missed, e.missed) : 0;
    const lost = le ? grow(ls?.lost, le.lost) : 0;
    const up = upcallEnd.find((u) => u.id === dp.id);
    // Megaflows: churn between the dumps, and the busiest ones in scope.
    let megaflows = 0;
    let installed = 0;
    let removed = 0;
    const fs = find(records, `start-flows-${dp.id}`);
    const fe = find(records, `end-flows-${dp.id}`);
    if (good(fs) && good(fe)) {
      const before = new Map(parseDumpFlows(fs.stdout).map((f) => [flowId(dp.id, f), f]));
      const after = parseDumpFlows(fe.stdout);
      const afterIds = new Set(after.map((f) => flowId(dp.id, f)));
      megaflows = after.length;
      installed = after.filter((f) => !before.has(flowId(dp.id, f))).length;
      removed = [...before.keys()].filter((id) => !afterIds.has(id)).length;
      for (const f of after) {
        const port = inPortOf(topo, dp.id, f);
        if (!port ? scope.bridge !== null || scope.dev !== null : !scope.bridges.includes(port.bridge)) continue;
        const fromDev = scope.dev !== null && port?.port.name === scope.dev.port.name;
        const inPort = port?.port.name ?? f.items.get('in_port')?.get('')?.value ?? null;
        // Scoped to a VM, the flows to it count too (they come in on other ports).
        const flowScope = scope.vm ? megaflowScope(f.items, inPort, scope.vm) : undefined;
        if (scope.dev && !fromDev && flowScope === undefined) continue;
        const b = before.get(flowId(dp.id, f));
        const packets = grow(b?.packets, f.packets);
        if (fromDev) {
          portFlows++;
          portHits += packets;
          if (!b) portMisses++;
        }
        if (flowScope === 'vm') {
          vmShare.megaflows++;
          vmShare.hits += packets;
          if (!b) vmShare.misses++;
          if (isDropAction(f.actions)) vmShare.dropped += packets + (b ? 0 : 1);
        } else if (flowScope === 'any') {
          vmShare.anyMegaflows++;
          vmShare.anyPackets += packets;
        }
        if (flowScope !== undefined && flowScope !== 'vm') continue;
        if (packets === 0 && b) continue;
        topFlows.push({
          key: compactKey(f.items),
          inPort,
          bridge: port?.bridge ?? null,
          actions: f.actions,
          drop: isDropAction(f.actions),
          packets,
          bytes: grow(b?.bytes, f.bytes),
          new: !b,
          ...(flowScope !== undefined ? { scope: flowScope } : {}),
        });
      }
    } else {
      const why = [fs, fe].map((r) => r?.error).find((e) => e !== undefined);
      if (why) notes.push(`${dp.id}: megaflows not read: ${why}`);
    }
    return {
      id: dp.id,
      type: dp.type,
      bridges: dp.bridges.map((b) => b.name),
      hits,
      missed,
      lost,
      hitRate: ratio(hits, hits + missed),
      missPerSec: perSec(missed, durationMs),
      lostPerSec: perSec(lost, durationMs),
      flows: up?.flows ?? null,
      flowLimitPressure: up?.flows ? ratio(up.flows.current, up.flows.limit) : null,
      dumpDurationMs: up?.dumpDurationMs ?? null,
      megaflows,
      installed,
      removed,
    };
  });
  topFlows.sort((a, b) => b.packets - a.packets || Number(b.new) - Number(a.new) || a.key.localeCompare(b.key));

  const pmd = scope.datapaths.some((d) => d.type === 'netdev') ? pmdDeltas(find(records, 'start-pmd-stats'), find(records, 'end-pmd-stats')) : [];
  const counters: Record<string, number> = {};
  const cs = find(records, 'start-coverage');
  const ce = find(records, 'end-coverage');
  if (good(cs) && good(ce)) {
    const before = parseCoverage(cs.stdout);
    const after = parseCoverage(ce.stdout);
    for (const name of FLOW_COUNTERS) {
      const d = grow(before.get(name) ?? 0, after.get(name) ?? 0);
      if (d > 0) counters[name] = d;
    }
  }

  const sum = (f: (d: MegaflowDatapath) => number) => datapaths.reduce((n, d) => n + f(d), 0);
  const hits = sum((d) => d.hits);
  const missed = sum((d) => d.missed);
  const lost = sum((d) => d.lost);
  const failedPmd = pmd.reduce((n, t) => n + t.upcallsFailed, 0);
  const okPmd = pmd.reduce((n, t) => n + t.upcallsOk, 0);
  const kernelMissed = datapaths.filter((d) => d.type !== 'netdev').reduce((n, d) => n + d.missed, 0);
  const pressures = datapaths.map((d) => d.flowLimitPressure).filter((p): p is number => p !== null);
  const data: OvsMegaflowData = {
    durationMs,
    scope: { bridge: scope.bridge, dev: scope.dev?.port.name ?? null, bridges: scope.bridges },
    datapath: [...new Set(topo.map((d) => d.type))].sort(),
    datapaths,
    hits,
    missed,
    lost,
    hitRate: ratio(hits, hits + missed),
    missPerSec: perSec(missed, durationMs),
    // A failed userspace upcall is counted by its thread and by datapath_drop_upcall_error: once.
    failedUpcalls: Math.max(failedPmd, counters.datapath_drop_upcall_error ?? 0) + lost,
    upcalls: okPmd + kernelMissed,
    pmd,
    churn: {
      installed: sum((d) => d.installed),
      removed: sum((d) => d.removed),
      puts: counters.dpif_flow_put ?? 0,
      deletes: counters.dpif_flow_del ?? 0,
      putsPerSec: perSec(counters.dpif_flow_put ?? 0, durationMs),
      flushes: counters.dpif_flow_flush ?? 0,
    },
    flowLimit: {
      pressure: pressures.length ? Math.max(...pressures) : null,
      hits: counters.upcall_flow_limit_hit ?? 0,
      kills: counters.upcall_flow_limit_kill ?? 0,
    },
    counters,
    topFlows: topFlows.slice(0, top),
    ...(scope.dev ? { port: { name: scope.dev.port.name, hits: portHits, misses: portMisses, hitRate: ratio(portHits, portHits + portMisses), megaflows: portFlows } } : {}),
    ...(scope.vm
      ? { vm: { macs: scope.vm.id.macs, ips: scope.vm.id.ips, ...vmShare, hitRate: ratio(vmShare.hits, vmShare.hits + vmShare.misses) } }
      : {}),
    assessment: [],
    notes,
  };
  data.assessment = assess(data);
  const trouble = data.lost > 0 || data.failedUpcalls > 0;
  const pressure = (data.flowLimit.pressure ?? 0) >= 0.8 || data.flowLimit.hits > 0 || data.flowLimit.kills > 0;
  return {
    data,
    summary: summarize(data, params.duration as number),
    severity: trouble ? 'critical' : pressure ? 'warning' : 'info',
    charts: charts(data, top),
    tables: tables(data, top),
  };
}

function inPortOf(topo: DpifDatapath[], dp: string, f: Megaflow): PortRef | undefined {
  return resolveInPort(topo, dp, f.items.get('in_port')?.get('')?.value);
}

/** Each number against what a healthy datapath shows. */
function assess(d: OvsMegaflowData): string[] {
  const out: string[] = [];
  const lookups = d.hits + d.missed;
  if (lookups === 0) out.push('no packets went through the datapaths in scope during the window: nothing to judge');
  else {
    out.push(
      `hit rate ${pct(d.hitRate)} over ${lookups} lookups (${d.missed} misses, ${d.missPerSec}/s): steady traffic is served by megaflows; misses (upcalls to ovs-vswitchd) come with new flows, a few per new connection. Sustained hit rates below ~90% under steady load, or thousands of misses per second, mean flows churn (short connections, a flow table that keeps changing, megaflows too specific).`,
    );
  }
  out.push(
    d.lost === 0 && d.failedUpcalls === 0
      ? 'no lost packets and no failed upcalls: normal'
      : `${d.lost} lost and ${d.failedUpcalls} failed upcalls: ovs-vswitchd did not take packets the datapath sent it (handler threads overloaded, netlink socket buffers full) — those packets were dropped. Normal is 0.`,
  );
  for (const dp of d.datapaths) {
    if (dp.flows) {
      out.push(
        `${dp.id}: ${dp.flows.current} megaflows of a limit of ${dp.flows.limit} (${pct(dp.flowLimitPressure)}), dump ${dp.dumpDurationMs ?? '?'} ms: normal is well under the limit and dumps of a few ms to a few hundred; OVS lowers the limit itself when dumps take over a second, and past the limit new flows are not installed (every packet of them becomes an upcall).`,
      );
    }
  }
  if (d.flowLimit.hits > 0 || d.flowLimit.kills > 0) out.push(`the flow limit was hit ${d.flowLimit.hits} times and ${d.flowLimit.kills} flows killed for it: not normal`);
  if (d.churn.installed + d.churn.removed > 0 || d.churn.puts > 0) {
    out.push(`churn: ${d.churn.installed} megaflows installed and ${d.churn.removed} removed between the two dumps (${d.churn.puts} flow puts, ${d.churn.putsPerSec}/s); idle megaflows expire after 10 s by default, so a little churn is normal.`);
  }
  if (d.churn.flushes > 0) {
    out.push(`the datapath's megaflows were flushed ${d.churn.flushes} time(s) during the window (a bridge deleted or reconfigured, dpctl/del-flows): every flow started again with a miss; not normal outside maintenance.`);
  }
  if (d.port) {
    out.push(
      `port ${d.port.name}: ${d.port.hits} packets hit its megaflows and ${d.port.misses} megaflow(s) were installed for it (each from at least one miss): hit rate ${pct(d.port.hitRate)}.`,
    );
  }
  if (d.vm) {
    const who = identityText({ macs: d.vm.macs, ips: d.vm.ips, devs: [], bridges: [] });
    out.push(
      `VM (${who}): ${d.vm.hits} packets hit its ${d.vm.megaflows} megaflow(s) (from its port, or to its MAC or addresses) and ${d.vm.misses} were installed in the window: hit rate ${pct(d.vm.hitRate)}${d.vm.dropped > 0 ? `; ${d.vm.dropped} of its packets went to dropping megaflows` : ''}. ${d.vm.anyMegaflows} other megaflow(s) (${d.vm.anyPackets} packets) can carry its packets without naming it (a port or protocol match, a flood).`,
    );
  }
  return out;
}

function summarize(d: OvsMegaflowData, requestedMs: number): string {
  const when = `in ${formatMs(requestedMs)}`;
  const parts = [`hit rate ${pct(d.hitRate)} ${when} (${d.hits} hits, ${d.missed} misses, ${d.lost} lost)`];
  if (d.failedUpcalls > 0) parts.push(`${d.failedUpcalls} failed upcalls`);
  const flows = d.datapaths.filter((x) => x.flows).map((x) => `${x.id} ${x.flows!.current}/${x.flows!.limit} flows`);
  if (flows.length) parts.push(flows.join(', '));
  parts.push(`${d.churn.installed} installed, ${d.churn.removed} removed`);
  if (d.port) parts.push(`port ${d.port.name}: ${d.port.hits} hits, ${d.port.misses} new megaflows`);
  if (d.vm) parts.push(`VM: ${d.vm.hits} hits, ${d.vm.misses} new megaflows${d.vm.dropped > 0 ? `, ${d.vm.dropped} dropped` : ''}`);
  return parts.join('; ');
}

function charts(d: OvsMegaflowData, top: number): ChartSpec[] {
  const out: ChartSpec[] = [];
  if (d.hits + d.missed + d.lost > 0) {
    out.push({ kind: 'bar', title: 'Datapath lookups over the window', unit: 'packets', bars: [{ label: 'hit', value: d.hits }, { label: 'missed (upcall)', value: d.missed }, { label: 'lost', value: d.lost }] });
  }
  if (d.topFlows.length > 0) {
    out.push({ kind: 'bar', title: 'Busiest megaflows', unit: 'packets', bars: d.topFlows.slice(0, top).map((f) => ({ label: f.key, value: f.packets })) });
  }
  return out;
}

function tables(d: OvsMegaflowData, top: number): TableSpec[] {
  const out: TableSpec[] = [
    {
      title: 'Datapaths over the window',
      columns: ['datapath', 'hits', 'missed', 'lost', 'hit rate', 'misses/s', 'flows', 'limit', 'dump ms', 'installed', 'removed'],
      rows: d.datapaths.map((x) => [x.id, x.hits, x.missed, x.lost, pct(x.hitRate), x.missPerSec, x.flows?.current ?? '', x.flows?.limit ?? '', x.dumpDurationMs ?? '', x.installed, x.removed]),
    },
  ];
  if (d.pmd.length > 0) {
    out.push({
      title: 'Userspace datapath threads (pmd-stats-show) over the window',
      columns: ['thread', 'packets', 'EMC hits', 'SMC hits', 'megaflow hits', 'upcalls ok', 'upcalls failed', 'hit rate', 'cycles/packet', 'busy'],
      rows: d.pmd.map((t) => [t.thread, t.packets, t.emcHits, t.smcHits, t.megaflowHits, t.upcallsOk, t.upcallsFailed, pct(t.hitRate), t.cyclesPerPacket ?? '', t.busy === null ? '' : pct(t.busy)]),
    });
  }
  if (d.topFlows.length > 0) {
    out.push({
      title: d.vm ? 'Busiest megaflows of the VM' : d.scope.dev ? `Busiest megaflows of ${d.scope.dev}` : 'Busiest megaflows',
      columns: ['in port', 'key', 'actions', 'packets', 'bytes', 'new'],
      rows: d.topFlows.slice(0, top).map((f) => [f.inPort ?? '', f.key, f.actions, f.packets, f.bytes, f.new ? 'yes' : '']),
    });
  }
  return [...out, ...coverageTables('Flow and upcall counters (coverage/show) over the window', d.counters, 'count')];
}

export const ovsMegaflow = ovsProbe<OvsMegaflowData>({
  id: 'ovs.megaflow',
  title: 'Open vSwitch megaflow and upcall health',
  description: `Measures how well Open vSwitch's datapath serves packets from its megaflow cache over \`duration\`. At the start and the end it reads each datapath's lookups (\`ovs-appctl dpif/show\`, \`dpctl/show\`: hit, missed, lost), the flow table (\`upcall/show\`: current, average, maximum flows, the limit, how long a dump takes), the userspace datapath's threads (\`dpif-netdev/pmd-stats-show\`: EMC, SMC and megaflow hits, upcalls that worked or failed, cycles per packet), ovs-vswitchd's flow counters (\`coverage/show\`: flow puts and deletes, flow-limit hits) and the megaflows (\`dpctl/dump-flows -m\`).

It reports the hit rate, misses (upcalls) per second, lost packets and failed upcalls, flow-limit pressure (flows / limit), megaflow churn (installed and removed between the two dumps) and the busiest megaflows; with \`dev\` (a VM's port), that port's megaflows, packets that hit them and how many were installed in the window (each from at least one miss). Lookup counters belong to a datapath, shared by all its bridges.

**Scoped to a VM** (\`vm_macs\`, \`vm_ips\`, with \`dev\` its port): \`vm\` counts the megaflows whose key names the VM, from it (\`in_port\` its port, its MAC or address as source) and to it (its MAC or address as destination): packets that hit them (\`hits\`), those installed in the window (\`misses\`, one miss each at least), their hit rate and the packets of its dropping megaflows; megaflows that can carry its packets without naming it (an in_port alone, a flood) are counted apart (\`anyMegaflows\`, \`anyPackets\`), and \`topFlows\` are the VM's own, each with its \`scope\`.

Replaces the seed's \`ovs/ovs_userspace_megaflow.py\` (PROBES.md row 31) and the command part of \`ovs_upcall_latency_summary.py\` (row 45; per-upcall latency needs kprobes on the kernel datapath).`,
  normal: `Under steady traffic almost every packet hits a megaflow (hit rate above ~90%), the VM's own (\`vm.hitRate\`) too; misses come with new flows, a few per new connection, and settle once flows exist. \`lost\` and failed upcalls are 0. Flows stay well under the limit (default 200000 on the kernel datapath) and a dump takes milliseconds. Megaflows idle for 10 s expire, so some churn is normal; thousands of installs per second are not.`,
  replaces: ['ovs/ovs_userspace_megaflow.py', 'ovs_upcall_latency_summary.py'],
  params: {
    bridge: { type: 'string', description: 'Only this OVS bridge (its datapath; default every bridge).' },
    dev: { type: 'string', description: "A VM's OVS port: its megaflows, hits and new megaflows.", cliOption: 'dev' },
    duration: durationParam('Time between the two reads.', { min: 200 }),
    top: topParam('How many megaflows to list.', { default: 10, max: 1000 }),
    ...vmScopeParams({
      macs: 'megaflows from or to one of them are the VM\'s (`vm`).',
      ips: 'megaflows from or to one of them (IPv4 or IPv6, masks included) are the VM\'s (`vm`).',
    }),
  },
  overhead: 'none',
  data: DATA,
  collect,
  parse,
});
