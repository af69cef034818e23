// ovs.drops on a real Open vSwitch (userspace `netdev` datapath) with a real VM on a tap and a
// peer namespace on a veth, both ports of one lab bridge. A healthy bridge reports no drops
// while the VM receives every datagram; an OpenFlow rule dropping UDP to one port makes the
// probe report the dropping megaflow, ovs-vswitchd's drop counter and the rule, each counting
// the datagrams sent (which the VM never receives); the recorded evidence replays to the same
// finding; a host without a running ovs-vswitchd gives a skip saying to start it; and the
// kernel-datapath BPF object (only used where openvswitch.ko is loaded) passes the verifier.
//
// The traffic is sent while the probe waits between its two reads (the probe's sleep starts
// it), so every datagram lies inside the window, however slow the machine is. The OVS daemons
// are shared with other labs: deleting any bridge flushes every megaflow of the datapath, so a
// window during which that happened (OVS's own dpif_flow_flush counter says so) is run again.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readEvidence } from '../../engine/probe/evidence.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params, ProbeDefinition, ProbeResult } from '../../engine/probe/types.js';
import { detectFeatures } from '../../engine/host/features.js';
import { LiveIO } from '../../engine/probe/live-io.js';
import { OVS_PROGRAMS, openOvsObject, parseKernel, runKernelSession } from '../../probes/ovs.drops/kernel.js';
import { OVS_KERNEL_BUDGET } from '../../probes/lib/ovs.js';
import { ovsDrops, type OvsDropsData } from '../../probes/ovs.drops/probe.js';
import { deleteMegaflowsFrom } from '../lab/ovs.js';
import type { LabTopology } from '../lab/topology.js';
import { tempBundle } from '../helpers/bundle.js';
import { guestStats, udpIn, undisturbed, withTrafficInWindow } from '../helpers/probe-window.js';
import { run } from '../helpers/netns.js';
import { assertVerified } from '../helpers/attach-plan.js';
import { cannotRunOvsVm, ovsVmLabForSuite, withoutOvsVswitchd } from '../helpers/ovs-vm-suite.js';

const cannot = await cannotRunOvsVm();
const DROPPED = 40;
const DELIVERED = 30;
const DROP_PORT = 9999;
const DROP_RULE = `priority=100,udp,tp_dst=${DROP_PORT},actions=drop`;

describe('ovs.drops on an OVS netdev bridge with a VM', () => {
  let lab: LabTopology;
  ovsVmLabForSuite(cannot, async (built) => {
    lab = built;
    // OVS learns both MACs from a ping: what follows is unicast, nothing is flooded.
    const ping = await lab.peer.ping(lab.vm.ip, { count: 3, interval: 0.1, wait: 2 });
    assert.equal(ping.received, 3, ping.stdout);
  });

  it('a healthy bridge: no drops while the VM receives every datagram', async (t) => {
    const { vm, peer } = lab;
    const bridge = lab.ovs!.name;
    const f = await undisturbed(t, async () => {
      const before = udpIn(await vm.netStats());
      const b = await tempBundle(t, 'ebpfnet-ovs-drops-');
      const def = withTrafficInWindow(ovsDrops, async () => {
        const r = await peer.sendUdp({ to: vm.ip, port: 9, count: DELIVERED, intervalMs: 2 });
        assert.equal(r.sent, DELIVERED);
      });
      const found = await runProbe(def as ProbeDefinition, { step: 's', alias: 'ovs', probe: ovsDrops.id, params: { bridge, duration: '2s' } }, b.opts('live'));
      assert.equal(found.status, 'ok', found.reason);
      const guest = await guestStats(lab, (s) => udpIn(s) - before >= DELIVERED);
      assert.equal(udpIn(guest) - before, DELIVERED, 'the guest received every datagram');
      return found;
    });

    const data = f.data as OvsDropsData;
    t.diagnostic(`${f.summary} | notes: ${data.notes.join(' / ')}`);
    assert.deepEqual(data.datapath, [lab.ovs!.datapath]);
    assert.deepEqual(data.scope.bridges, [bridge]);
    assert.equal(data.total, 0);
    assert.equal(data.totalSource, 'none');
    assert.equal(data.flowDrops, 0);
    assert.equal(data.ruleDrops, 0);
    assert.deepEqual(data.droppingFlows, []);
    assert.deepEqual(data.dropRules, []);
    assert.equal(data.portDrops, 0);
    // Unless another lab flushed the datapath after the datagrams, their megaflow is still there.
    if (data.flushes === 0) assert.ok(data.megaflows >= 1, `the datagrams' megaflow is in scope (${data.megaflows})`);
    assert.equal(f.severity, 'info');
    assert.match(f.summary, new RegExp(`^no OVS drops in 2s \\(${bridge}\\) \\(${lab.ovs!.datapath} datapath, \\d+ megaflows?\\)`));
  });

  it(`an OpenFlow drop rule: the dropping megaflow, drop_action_of_pipeline and the rule count the ${DROPPED} datagrams`, async (t) => {
    const { vm, peer } = lab;
    const ovs = lab.ovs!;
    await ovs.addFlow(DROP_RULE);
    t.after(() => ovs.delFlows(`udp,tp_dst=${DROP_PORT}`).catch(() => undefined));
    // The megaflows installed before the rule are revalidated against it before any datagram goes.
    await run(['ovs-appctl', 'revalidator/wait']);
    const request = { step: 's', alias: 'ovs', probe: ovsDrops.id, params: { bridge: ovs.name, duration: '2s' } as Params };
    const { f, b, before } = await undisturbed(t, async () => {
      // No megaflow of the peer's port survives from earlier: the first datagram meets none.
      await deleteMegaflowsFrom(peer.hostDev);
      const stats = await vm.netStats();
      const bundle = await tempBundle(t, 'ebpfnet-ovs-drops-');
      const def = withTrafficInWindow(ovsDrops, async () => {
        const r = await peer.sendUdp({ to: vm.ip, port: DROP_PORT, count: DROPPED, intervalMs: 2 });
        assert.equal(r.sent, DROPPED);
      });
      return { f: await runProbe(def as ProbeDefinition, request, bundle.opts('live')), b: bundle, before: stats };
    });
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as OvsDropsData;
    t.diagnostic(f.summary);
    t.diagnostic(JSON.stringify({ byCause: data.byCause, droppingFlows: data.droppingFlows, dropRules: data.dropRules, notes: data.notes }));

    // None reached the guest (it would count them as NoPorts: nothing listens on 9999).
    const guest = await vm.netStats();
    assert.equal(udpIn(guest) - udpIn(before), 0, 'guest Udp InDatagrams');
    assert.equal((guest.snmp.Udp?.NoPorts ?? 0) - (before.snmp.Udp?.NoPorts ?? 0), 0, 'guest Udp NoPorts');

    // The megaflow: from the peer's port, UDP to the port, action drop. Its own count misses the
    // datagram whose upcall installed it; `new` says so, and the two make the datagrams sent.
    assert.equal(data.droppingFlows.length, 1, JSON.stringify(data.droppingFlows));
    const flow = data.droppingFlows[0]!;
    assert.equal(flow.inPort, peer.hostDev);
    assert.equal(flow.bridge, ovs.name);
    assert.equal(flow.actions, 'drop');
    assert.equal(flow.fields.proto, 17);
    assert.equal(flow.fields.dstPort, String(DROP_PORT));
    assert.equal(flow.fields.recircId, '0');
    assert.equal(flow.new, true, 'installed in the window (the rule is new)');
    assert.equal(flow.packets + 1, DROPPED, `megaflow packets ${flow.packets} + the upcalled one`);
    assert.match(flow.key, new RegExp(`in_port\\(${peer.hostDev}\\).*udp\\(dst=${DROP_PORT}\\)`));
    // Traced back to the OpenFlow rule, whose own count is every datagram.
    assert.deepEqual(flow.rule, { bridge: ovs.name, table: 0, priority: 100, match: `udp,tp_dst=${DROP_PORT}`, cookie: null, tableMiss: false, packets: DROPPED });
    assert.equal(data.dropRules.length, 1);
    assert.deepEqual(
      { bridge: data.dropRules[0]!.bridge, match: data.dropRules[0]!.match, packets: data.dropRules[0]!.packets },
      { bridge: ovs.name, match: `udp,tp_dst=${DROP_PORT}`, packets: DROPPED },
    );
    assert.equal(data.flowDrops, DROPPED);
    assert.equal(data.ruleDrops, DROPPED);
    assert.equal(data.total, DROPPED);
    assert.equal(data.totalSource, 'megaflows');
    // ovs-vswitchd's own counter: all of ovs-vswitchd, so other bridges' drops may add to it;
    // with no other bridge in the datapath it is exactly ours.
    const cause = data.byCause.drop_action_of_pipeline ?? 0;
    assert.ok(cause >= DROPPED, `drop_action_of_pipeline moved by ${cause}`);
    const records = (await readEvidence(b.dir('live'))).records;
    const alone = ['start-dpif-show', 'end-dpif-show'].every((n) => {
      const rec = records.find((r) => r.name === n);
      return rec !== undefined && (rec.stdout.match(/^ {2}\S+:$/gm) ?? []).length === 1;
    });
    if (alone) assert.equal(cause, DROPPED, 'the only bridge: the counter moved by exactly the datagrams dropped');
    assert.equal(data.portDrops, 0);
    if (!existsSync('/sys/module/openvswitch')) assert.equal(data.kernel, undefined, 'no kernel datapath: no BPF');
    assert.equal(f.severity, 'critical');
    assert.match(f.summary, new RegExp(`^OVS dropped ${DROPPED} packets in 2s \\(${ovs.name}\\): [^;]*drop_action_of_pipeline \\d+[^;]*; 1 dropping megaflow, .* by OpenFlow rule table=0,priority=100,udp,tp_dst=${DROP_PORT} on ${ovs.name}$`));

    // The recorded evidence answers the same.
    const replay = await runProbe(ovsDrops as ProbeDefinition, { ...request, params: request.params }, b.opts('replay', { replayFrom: b.dir('live') }));
    assert.equal(replay.status, 'ok', replay.reason);
    assert.deepEqual(replay.data, f.data);
    assert.equal(replay.summary, f.summary);

    // Scoped to the peer's port and the VM's address: the same flow, counted from megaflows only.
    const scoped = await runProbe(
      ovsDrops as ProbeDefinition,
      { ...request, params: { dev: peer.hostDev, dst_ip: vm.ip, protocol: 'udp', duration: '2s' } },
      b.opts('scoped', { replayFrom: b.dir('live') }),
    );
    assert.equal(scoped.status, 'ok', scoped.reason);
    const sd = scoped.data as OvsDropsData;
    assert.equal(sd.total, DROPPED);
    assert.deepEqual(sd.droppingFlows.map((x) => x.key), [flow.key]);
    // A filter the flow cannot match (TCP) leaves nothing.
    const tcp = ovsDrops.parse(records, { dev: peer.hostDev, protocol: 'tcp', duration: 2000, traces: 5, top: 10, kernel: true }) as ProbeResult<OvsDropsData>;
    assert.equal(tcp.data.total, 0);
    assert.deepEqual(tcp.data.droppingFlows, []);
  });

  it('no ovs-vswitchd (OVS_RUNDIR without its control socket): skipped, saying to start Open vSwitch', async (t) => {
    await withoutOvsVswitchd(async (empty) => {
      const b = await tempBundle(t, 'ebpfnet-ovs-drops-');
      const request = { step: 's', alias: 'ovs', probe: ovsDrops.id, params: { duration: '1s' } as Params };
      const f = await runProbe(ovsDrops as ProbeDefinition, request, b.opts('live'));
      assert.equal(f.status, 'skipped');
      assert.match(f.reason ?? '', new RegExp(`^${empty}/ovs-vswitchd\\.pid missing: ovs-vswitchd is not running .*start Open vSwitch`));
      assert.doesNotMatch(f.reason ?? '', /\n/);
      const replay = await runProbe(ovsDrops as ProbeDefinition, request, b.opts('replay', { replayFrom: b.dir('live') }));
      assert.equal(replay.status, 'skipped');
      assert.equal(replay.reason, f.reason);
    });
  });
});

describe('ovs.drops kernel-datapath BPF object', () => {
  it('a kernel session on this host: what attaches is used, what cannot is reported, the maps are read and parsed', async (t) => {
    assert.equal(process.geteuid?.(), 0, 'needs root');
    const io = new LiveIO(new AbortController().signal, OVS_KERNEL_BUDGET);
    await runKernelSession(io, { ifindex: 0, saddr: null, daddr: null, proto: 0 }, (windowIO) => windowIO.sleep(300));
    await io.settled();
    const records = io.records();
    assert.deepEqual(records.map((r) => r.name), ['kernel-reasons', 'kernel-attach', 'kernel-dump', 'kernel-overhead', 'kernel-symbols']);
    const k = parseKernel(records);
    assert.ok(k, 'parsed');
    t.diagnostic(JSON.stringify({ ...k, overhead: undefined }));
    // The tracepoints attach on any BTF kernel; the kprobes attach exactly where kprobes exist.
    const features = await detectFeatures();
    assert.ok(k.attached.includes('tp_btf kfree_skb') && k.attached.includes('tp_btf consume_skb'), k.attached.join(', '));
    const kprobes = OVS_PROGRAMS.filter((p) => p.kind !== 'tp_btf').map((p) => `${p.kind} ${p.target}`);
    if (features.kprobes.present === false) {
      for (const p of kprobes) assert.ok(k.failed.some((f) => f.startsWith(`${p}: `)), `${p} reported as not attached: ${k.failed.join('; ')}`);
    }
    // Without openvswitch.ko nothing enters a kernel datapath: nothing to count.
    if (!existsSync('/sys/module/openvswitch')) {
      assert.equal(k.drops, 0);
      assert.deepEqual(k.received, {});
    }
    assert.ok(k.overhead, 'the overhead guard watched the session');
  });

  it('every program (kprobes on ovs_vport_receive, ovs_dp_process_packet, ovs_dp_upcall; tp_btf kfree_skb, consume_skb) passes the verifier', () => {
    assert.equal(process.geteuid?.(), 0, 'needs root');
    const obj = openOvsObject({ ifindex: 1, saddr: Uint8Array.from([10, 0, 0, 1]), daddr: null, proto: 17 });
    try {
      for (const p of OVS_PROGRAMS) assert.equal(obj.program(p.program).autoload, true, `${p.program} loads`);
      obj.load();
      assertVerified(obj, OVS_PROGRAMS, (p) => (p.kind === 'tp_btf' ? 'tracing' : 'kprobe'));
      assert.deepEqual(obj.maps().map((m) => m.name).filter((n) => !n.includes('.')).sort(), ['counts', 'inflight', 'unkeyed', 'upcall_dev']);
    } finally {
      obj.close();
    }
  });
});
