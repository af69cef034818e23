// ovs.megaflow on a real Open vSwitch (userspace `netdev` datapath) with a real VM on a tap and
// a peer namespace on a veth. The first datagrams of a new flow from the peer's port miss the
// megaflow cache (one upcall installs a megaflow) and the rest hit it; a second window with the
// same traffic is all hits on the megaflow that now exists. The port-scoped numbers are exact
// (only the peer sends on its port); the datapath-wide ones are shared with whatever else
// uses this OVS, so they are checked as lower bounds. The evidence replays to the same finding,
// and without ovs-vswitchd the probe is skipped, saying to start Open vSwitch.
//
// The traffic is sent while the probe waits between its two reads (the probe's sleep starts it).
// The OVS daemons are shared with other labs: deleting any bridge flushes every megaflow of the
// datapath, so a window during which that happened (OVS's dpif_flow_flush counter) is run again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params, ProbeDefinition } from '../../engine/probe/types.js';
import { ovsMegaflow, type OvsMegaflowData } from '../../probes/ovs.megaflow/probe.js';
import { deleteMegaflowsFrom } from '../lab/ovs.js';
import type { LabTopology } from '../lab/topology.js';
import { tempBundle } from '../helpers/bundle.js';
import { guestStats, udpIn, undisturbed, withTrafficInWindow } from '../helpers/probe-window.js';
import { cannotRunOvsVm, ovsVmLabForSuite, withoutOvsVswitchd } from '../helpers/ovs-vm-suite.js';

const cannot = await cannotRunOvsVm();
const N = 40;

describe('ovs.megaflow on an OVS netdev bridge with a VM', () => {
  let lab: LabTopology;
  // No ARP and no earlier packet from the peer: its first datagram meets no megaflow.
  ovsVmLabForSuite(cannot, (built) => void (lab = built));

  /** One window of the probe on the peer's port while the peer sends N datagrams to the guest's discard port. */
  async function window(t: Parameters<typeof tempBundle>[0], name: string) {
    const { vm, peer } = lab;
    const before = udpIn(await vm.netStats());
    const b = await tempBundle(t, 'ebpfnet-ovs-megaflow-');
    const def = withTrafficInWindow(ovsMegaflow, async () => {
      const r = await peer.sendUdp({ to: vm.ip, port: 9, count: N, intervalMs: 2 });
      assert.equal(r.sent, N);
    });
    const request = { step: 's', alias: name, probe: ovsMegaflow.id, params: { dev: peer.hostDev, duration: '1500ms' } as Params };
    const f = await runProbe(def as ProbeDefinition, request, b.opts('live'));
    assert.equal(f.status, 'ok', f.reason);
    const guest = await guestStats(lab, (s) => udpIn(s) - before >= N);
    assert.equal(udpIn(guest) - before, N, 'the guest received every datagram');
    return { f, data: f.data as OvsMegaflowData, b, request };
  }

  it(`a new flow: its first datagram misses (one upcall installs the megaflow), the other ${N - 1} hit`, async (t) => {
    const { f, data, b, request } = await undisturbed(t, async () => {
      // The peer's first datagram meets no megaflow (one left by a disturbed attempt is removed).
      await deleteMegaflowsFrom(lab.peer.hostDev);
      return window(t, 'first');
    });
    t.diagnostic(f.summary);
    t.diagnostic(JSON.stringify({ port: data.port, topFlows: data.topFlows, datapaths: data.datapaths, pmd: data.pmd }));
    const { peer } = lab;

    // The port's own numbers are exact: one megaflow installed for it, N - 1 packets on it.
    assert.deepEqual(data.port, { name: peer.hostDev, hits: N - 1, misses: 1, hitRate: Math.round(((N - 1) / N) * 10000) / 10000, megaflows: 1 });
    assert.equal(data.topFlows.length, 1, JSON.stringify(data.topFlows));
    const flow = data.topFlows[0]!;
    assert.equal(flow.inPort, peer.hostDev);
    assert.equal(flow.new, true);
    assert.equal(flow.packets, N - 1);
    assert.equal(flow.drop, false);
    // To the VM's tap (and the bridge's own port too, while OVS has not learnt the VM's MAC).
    assert.ok(flow.actions.split(',').includes(lab.vm.tap), `actions ${flow.actions}`);
    assert.match(flow.key, new RegExp(`in_port\\(${peer.hostDev}\\),.*eth\\(src=${peer.mac},dst=${lab.vm.mac}\\)`));

    // The datapath (shared with anything else on this OVS): at least our miss and our hits.
    assert.deepEqual(data.datapath, [lab.ovs!.datapath]);
    assert.equal(data.datapaths.length, 1);
    const dp = data.datapaths[0]!;
    assert.equal(dp.type, lab.ovs!.datapath);
    assert.ok(dp.missed >= 1, `datapath missed ${dp.missed}`);
    assert.ok(dp.hits >= N - 1, `datapath hits ${dp.hits}`);
    assert.ok(dp.installed >= 1, `megaflows installed ${dp.installed}`);
    assert.ok(dp.flows && dp.flows.limit > 0 && dp.flows.current >= 1, JSON.stringify(dp.flows));
    assert.ok((dp.flowLimitPressure ?? 1) < 0.8, `flow-limit pressure ${dp.flowLimitPressure}`);
    // The userspace datapath's threads (the kernel datapath has none): our upcall worked, none failed, the rest were cache hits.
    if (lab.ovs!.datapath === 'netdev') {
      const upcallsOk = data.pmd.reduce((n, p) => n + p.upcallsOk, 0);
      const cacheHits = data.pmd.reduce((n, p) => n + p.emcHits + p.smcHits + p.megaflowHits + p.simpleMatchHits + p.phwolHits, 0);
      assert.ok(upcallsOk >= 1, `upcalls that worked: ${upcallsOk}`);
      assert.ok(cacheHits >= N - 1, `cache hits ${cacheHits}`);
    }
    assert.equal(data.failedUpcalls, 0);
    assert.equal(data.lost, 0);
    assert.equal(f.severity, 'info');
    assert.ok(data.assessment.some((a) => a.startsWith(`port ${peer.hostDev}: ${N - 1} packets hit its megaflows and 1 megaflow(s) were installed`)), data.assessment.join('\n'));

    // The recorded evidence answers the same.
    const replay = await runProbe(ovsMegaflow as ProbeDefinition, request, b.opts('replay', { replayFrom: b.dir('live') }));
    assert.equal(replay.status, 'ok', replay.reason);
    assert.deepEqual(replay.data, f.data);
    assert.equal(replay.summary, f.summary);
  });

  it(`the same traffic again: the megaflow exists, all ${N} datagrams hit it`, async (t) => {
    const { f, data } = await undisturbed(t, async () => {
      // The megaflow exists before the window (a flush since the first test removed it).
      const before = udpIn(await lab.vm.netStats());
      await lab.peer.sendUdp({ to: lab.vm.ip, port: 9, count: 3, intervalMs: 2 });
      await guestStats(lab, (s) => udpIn(s) - before >= 3);
      return window(t, 'again');
    });
    t.diagnostic(f.summary);
    assert.deepEqual(data.port, { name: lab.peer.hostDev, hits: N, misses: 0, hitRate: 1, megaflows: 1 });
    assert.equal(data.topFlows[0]?.new, false);
    assert.equal(data.topFlows[0]?.packets, N);
    assert.ok(data.hits >= N, `datapath hits ${data.hits}`);
    assert.equal(data.failedUpcalls, 0);
  });

  it('no ovs-vswitchd (OVS_RUNDIR without its control socket): skipped, saying to start Open vSwitch', async (t) => {
    await withoutOvsVswitchd(async () => {
      const b = await tempBundle(t, 'ebpfnet-ovs-megaflow-');
      const f = await runProbe(ovsMegaflow as ProbeDefinition, { step: 's', alias: 'm', probe: ovsMegaflow.id, params: {} }, b.opts('live'));
      assert.equal(f.status, 'skipped');
      assert.match(f.reason ?? '', /ovs-vswitchd is not running .*: start Open vSwitch/);
      assert.match(f.summary, /^skipped: /);
    });
  });
});
