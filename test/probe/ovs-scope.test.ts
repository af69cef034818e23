// ovs.drops and ovs.megaflow scoped to one VM on a shared Open vSwitch bridge (netdev
// datapath): two endpoints A and B (namespaces on veths, standing for two VMs) and a peer, all
// ports of one bridge, with traffic from the peer to both. An OpenFlow rule dropping only A's
// UDP (`nw_dst=A`, and `ipv6_dst=A`) is the VM's for the run scoped to A, with the datagrams
// sent (the rule's own n_packets, read with ovs-ofctl, says the same, and A's stack received
// none) and another's for the run scoped to B (vmTotal 0, B received all of its own); a rule
// naming no address (`udp,tp_dst=9`) is `any` for both. The megaflows of the traffic to A are
// A's (hits and misses exact), those to B are not. Unscoped, the probe reports as before.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runProbe } from '../../engine/probe/runtime.js';
import { readEvidence } from '../../engine/probe/evidence.js';
import type { Finding, Params, ProbeDefinition, ProbeResult } from '../../engine/probe/types.js';
import { OVS_PROGRAMS, openOvsObject } from '../../probes/ovs.drops/kernel.js';
import { ovsDrops, type OvsDropsData } from '../../probes/ovs.drops/probe.js';
import { ovsMegaflow, type OvsMegaflowData } from '../../probes/ovs.megaflow/probe.js';
import { canRunOvs, createOvsBridge, deleteMegaflowsFrom, startOvs, type OvsBridge, type OvsDaemons } from '../lab/ovs.js';
import { newLabName, sweepLabLeftovers } from '../lab/names.js';
import { tempBundle, type TempBundle } from '../helpers/bundle.js';
import { addIpv6, createEndpoint, pinNeighbours, sendUdpFrom, udpReceived, type Endpoint } from '../helpers/ns-endpoints.js';
import { run, type TeardownHost } from '../helpers/netns.js';
import { undisturbed, withTrafficInWindow } from '../helpers/probe-window.js';

const cannot = process.geteuid?.() !== 0 ? 'needs root' : await canRunOvs();
const TO_A = 30;
const TO_B = 20;

/** A rule's n_packets as ovs-ofctl reads it now (the first rule whose match contains `needle`). */
async function ruleCount(br: OvsBridge, needle: string): Promise<number> {
  const { stdout } = await run(['ovs-ofctl', '--no-names', 'dump-flows', br.name]);
  const line = stdout.split('\n').find((l) => l.includes(needle));
  const m = line ? /n_packets=(\d+)/.exec(line) : null;
  assert.ok(m, `no rule with ${needle} on ${br.name}: ${stdout}`);
  return Number(m[1]);
}

describe('ovs.drops and ovs.megaflow scoped to one VM on a shared OVS bridge', () => {
  const undo: Array<() => unknown> = [];
  const host: TeardownHost = { after: (fn) => undo.push(fn) };
  let daemons: OvsDaemons | undefined;
  let br: OvsBridge;
  let peer: Endpoint;
  let a: Endpoint;
  let b: Endpoint;
  const base = `10.252.${process.pid % 250}`;
  const base6 = `fd00:eb:${(process.pid % 0xffff).toString(16)}:`;

  before(async () => {
    assert.equal(cannot, null, `cannot run: ${cannot}`);
    await sweepLabLeftovers();
    daemons = await startOvs();
    br = await createOvsBridge(undefined, newLabName().dev('b'));
    const plug = (dev: string) => br.addPort(dev);
    peer = await createEndpoint(host, { ip: `${base}.1`, plug });
    a = await createEndpoint(host, { ip: `${base}.2`, plug });
    b = await createEndpoint(host, { ip: `${base}.3`, plug });
    await pinNeighbours(peer, a);
    await pinNeighbours(peer, b);
    // OVS learns every MAC from a ping: what follows is unicast, nothing flooded.
    for (const e of [a, b]) await e.exec(['ping', '-c', '1', '-W', '2', peer.ip]);
  });
  after(async () => {
    await br?.teardown();
    for (const step of undo.reverse()) await step();
    await daemons?.stop();
  });

  const vmParams = (e: Endpoint): Params => ({ dev: e.hostDev, vm_macs: [e.mac], vm_ips: [e.ip, ...(e.ip6 ? [e.ip6] : [])], duration: '2s' });

  /** ovs.drops over a window in which the peer sends `toA` datagrams to A and `toB` to B (IPv4 or IPv6), to `port`. */
  async function dropsWindow(t: TeardownHost & { diagnostic(m: string): void }, params: Params, port: number, family: 4 | 6, needle: string) {
    const addr = (e: Endpoint) => (family === 4 ? e.ip : e.ip6!);
    return undisturbed(t, async () => {
      await deleteMegaflowsFrom(peer.hostDev);
      const [rule0, a0, b0] = [await ruleCount(br, needle), await udpReceived(a.ns, family), await udpReceived(b.ns, family)];
      const bundle = await tempBundle(t, 'ebpfnet-ovs-scope-');
      const def = withTrafficInWindow(ovsDrops, async () => {
        assert.equal(await sendUdpFrom(peer.ns, { to: addr(a), port, count: TO_A }), TO_A);
        assert.equal(await sendUdpFrom(peer.ns, { to: addr(b), port, count: TO_B }), TO_B);
      });
      const f = await runProbe(def as ProbeDefinition, { step: 's', alias: 'ovs', probe: ovsDrops.id, params }, bundle.opts('live'));
      assert.equal(f.status, 'ok', f.reason);
      const counts = { rule: (await ruleCount(br, needle)) - rule0, a: (await udpReceived(a.ns, family)) - a0, b: (await udpReceived(b.ns, family)) - b0 };
      t.diagnostic(`${f.summary} | ${JSON.stringify(counts)}`);
      return { f, data: f.data as OvsDropsData, counts, bundle };
    });
  }

  /** The live evidence of `b` parsed with other params (no collection runs again). */
  async function reparse(b: TempBundle, params: Params): Promise<OvsDropsData> {
    const records = (await readEvidence(b.dir('live'))).records;
    return (ovsDrops.parse(records, { duration: 2000, traces: 5, top: 10, kernel: true, ...params }) as ProbeResult<OvsDropsData>).data;
  }

  async function replay(f: Finding, b: TempBundle, params: Params, def: ProbeDefinition = ovsDrops as ProbeDefinition): Promise<Finding> {
    const r = await runProbe(def, { step: 's', alias: 'ovs', probe: def.id, params }, b.opts(`replay-${Math.random().toString(36).slice(2)}`, { replayFrom: b.dir('live') }));
    assert.equal(r.status, 'ok', r.reason);
    return r;
  }

  it('a rule naming no address (udp,tp_dst=9): `any` for A and for B, never the VM\'s own', async (t) => {
    const match = 'udp,tp_dst=9';
    await br.addFlow(`priority=100,${match},actions=drop`);
    t.after(() => br.delFlows(match).catch(() => undefined));
    await run(['ovs-appctl', 'revalidator/wait']);
    for (const e of [a, b]) {
      const w = await dropsWindow(t, vmParams(e), 9, 4, 'tp_dst=9');
      assert.equal(w.counts.rule, TO_A + TO_B, 'the rule dropped what was sent to both');
      assert.deepEqual([w.counts.a, w.counts.b], [0, 0]);
      const d = w.data;
      assert.deepEqual(d.dropRules.map((r) => [r.match, r.packets, r.scope]), [[match, TO_A + TO_B, 'any']]);
      assert.ok(d.droppingFlows.length >= 1 && d.droppingFlows.every((f) => f.scope === 'any' && f.inPort === peer.hostDev), JSON.stringify(d.droppingFlows));
      assert.equal(d.droppingFlows.reduce((n, f) => n + f.packets + (f.new ? 1 : 0), 0), TO_A + TO_B);
      assert.equal(d.anyTotal, TO_A + TO_B);
      assert.equal(d.total, TO_A + TO_B);
      assert.deepEqual([d.vmTotal, d.vmFlows, d.vmRules, d.otherFlows, d.otherRules], [0, [], [], [], []]);
      assert.equal(w.f.severity, 'warning');
      assert.match(w.f.summary, new RegExp(`^no OVS drop names the VM .*; ${TO_A + TO_B} packets dropped by flows or rules that can carry the VM's packets but name nothing of it`));
    }
  });

  it("ovs.megaflow: the megaflows to A are A's (hits and misses exact), those to B are B's", async (t) => {
    const { f, bundle } = await undisturbed(t, async () => {
      await deleteMegaflowsFrom(peer.hostDev);
      const b0 = await udpReceived(b.ns, 4);
      const a0 = await udpReceived(a.ns, 4);
      const bundle = await tempBundle(t, 'ebpfnet-ovs-scope-');
      const def = withTrafficInWindow(ovsMegaflow, async () => {
        await sendUdpFrom(peer.ns, { to: a.ip, port: 9, count: TO_A });
        await sendUdpFrom(peer.ns, { to: b.ip, port: 9, count: TO_B });
      });
      const params = { ...vmParams(a), duration: '1500ms' };
      const f = await runProbe(def as ProbeDefinition, { step: 's', alias: 'mf', probe: ovsMegaflow.id, params }, bundle.opts('live'));
      assert.equal(f.status, 'ok', f.reason);
      assert.equal((await udpReceived(a.ns, 4)) - a0, TO_A);
      assert.equal((await udpReceived(b.ns, 4)) - b0, TO_B);
      return { f, bundle };
    });
    const d = f.data as OvsMegaflowData;
    t.diagnostic(`${f.summary} | ${JSON.stringify(d.vm)} | ${JSON.stringify(d.topFlows)}`);
    // One megaflow to A installed by the first datagram's miss; the others hit it.
    assert.equal(d.vm?.hits, TO_A - 1);
    assert.equal(d.vm?.misses, 1);
    assert.equal(d.vm?.dropped, 0);
    assert.ok(d.topFlows.length >= 1 && d.topFlows.every((x) => x.scope === 'vm'), JSON.stringify(d.topFlows));
    assert.match(d.topFlows[0]!.key, new RegExp(`in_port\\(${peer.hostDev}\\),.*eth\\(src=${peer.mac},dst=${a.mac}\\)`));
    assert.ok(!d.topFlows.some((x) => x.key.includes(`dst=${b.mac}`)), "B's megaflow is not A's");
    // The port block (what comes in on A's port) is as before: A sent nothing.
    assert.equal(d.port?.hits, 0);
    // The same evidence scoped to B: B's megaflow, and not A's.
    const fb = (await replay(f, bundle, { ...vmParams(b), duration: '1500ms' }, ovsMegaflow as ProbeDefinition)).data as OvsMegaflowData;
    assert.equal(fb.vm?.hits, TO_B - 1);
    assert.equal(fb.vm?.misses, 1);
    assert.ok(fb.topFlows.every((x) => !x.key.includes(`dst=${a.mac}`)));
  });
  for (const family of [4, 6] as const) {
    const what = family === 4 ? 'nw_dst' : 'ipv6_dst';
    it(`an OpenFlow rule dropping A's UDP (${what}=A): A's with the ${TO_A} datagrams sent, another's for B`, async (t) => {
      if (family === 6) {
        for (const [e, n] of [[peer, 1], [a, 2], [b, 3]] as const) await addIpv6(e, `${base6}:${n}`);
        await pinNeighbours(peer, a);
        await pinNeighbours(peer, b);
      }
      const aAddr = family === 4 ? a.ip : a.ip6!;
      const match = family === 4 ? `udp,nw_dst=${aAddr}` : `udp6,ipv6_dst=${aAddr}`;
      await br.addFlow(`priority=100,${match},actions=drop`);
      t.after(() => br.delFlows(match).catch(() => undefined));
      await run(['ovs-appctl', 'revalidator/wait']);
      const needle = `${what}=${aAddr}`;

      // Scoped to A: the megaflow and the rule name A's address.
      const A = await dropsWindow(t, vmParams(a), 9999, family, needle);
      assert.equal(A.counts.rule, TO_A, "the rule's own n_packets: every datagram to A");
      assert.equal(A.counts.a, 0, "A's stack received none");
      assert.equal(A.counts.b, TO_B, 'B received all of its own');
      const d = A.data;
      if (br.datapath === 'system') {
        // The kernel programs scoped to A (what enters on its port, frames to its MAC): the
        // datagrams to A entered on the peer's port; those to B are not A's.
        t.diagnostic(`kernel: ${JSON.stringify({ ...d.kernel, overhead: undefined })}`);
        const { [peer.hostDev]: fromPeer, ...rest } = d.kernel?.received ?? {};
        assert.equal(fromPeer, TO_A, JSON.stringify(d.kernel?.received));
        // With IPv6 A's own noise may enter on its port (an MLD report or a solicitation after
        // its address was added, late on a slow machine): a few frames there, nothing elsewhere.
        const noise = family === 6 ? 3 : 0;
        assert.ok(Object.entries(rest).every(([dev, n]) => dev === a.hostDev && n <= noise), JSON.stringify(d.kernel?.received));
      }
      assert.equal(d.vmFlows.length, 1, JSON.stringify(d.vmFlows));
      const flow = d.vmFlows[0]!;
      assert.equal(flow.scope, 'vm');
      assert.equal(flow.inPort, peer.hostDev);
      assert.equal(flow.fields.dstIp, aAddr);
      assert.equal(flow.packets + (flow.new ? 1 : 0), TO_A, `megaflow packets ${flow.packets}${flow.new ? ' + the upcalled one' : ''}`);
      assert.deepEqual(d.vmRules.map((r) => [r.match, r.packets, r.scope]), [[match, TO_A, 'vm']]);
      assert.equal(d.vmTotal, TO_A);
      assert.equal(d.anyTotal, 0);
      assert.equal(d.total, TO_A);
      assert.deepEqual([d.otherFlows, d.otherRules], [[], []]);
      assert.deepEqual(d.droppingFlows, d.vmFlows);
      assert.deepEqual(d.scope.vmMacs, [a.mac]);
      assert.equal(A.f.severity, 'critical');
      assert.match(A.f.summary, new RegExp(`^OVS dropped ${TO_A} packets of the VM \\(port ${a.hostDev}, `));
      const again = await replay(A.f, A.bundle, vmParams(a));
      assert.deepEqual(again.data, A.f.data);
      assert.equal(again.summary, A.f.summary);
      // The same evidence unscoped (the bridge): as before, the drop is in the total, labelled `any`.
      // (Parsed, not replayed: on the kernel datapath the programs' filters were the VM's.)
      const plain = await reparse(A.bundle, { bridge: br.name });
      assert.equal(plain.total, TO_A);
      assert.deepEqual(plain.droppingFlows.map((f) => [f.key, f.scope]), [[flow.key, 'any']]);
      assert.deepEqual([plain.vmTotal, plain.vmFlows, plain.otherFlows], [0, [], []]);
      // And filtered the old way (the peer's port, A's address, UDP): the flow, from megaflows only; TCP: nothing.
      const filtered = { dev: peer.hostDev, dst_ip: aAddr, protocol: 'udp' };
      const old = await reparse(A.bundle, filtered);
      assert.deepEqual([old.total, old.droppingFlows.map((f) => f.key)], [TO_A, [flow.key]]);
      if (br.datapath === 'netdev') assert.equal(old.totalSource, 'megaflows');
      const tcp = await reparse(A.bundle, { ...filtered, protocol: 'tcp' });
      assert.deepEqual([tcp.total, tcp.droppingFlows], [0, []]);

      // Scoped to B: the same rule and megaflow are another's, never counted.
      const B = await dropsWindow(t, vmParams(b), 9999, family, needle);
      assert.equal(B.counts.rule, TO_A);
      assert.equal(B.counts.b, TO_B);
      const e = B.data;
      assert.deepEqual(e.otherRules.map((r) => [r.match, r.packets, r.scope]), [[match, TO_A, 'other']]);
      assert.equal(e.otherFlows.length, 1, JSON.stringify(e.otherFlows));
      assert.equal(e.otherFlows[0]!.packets + (e.otherFlows[0]!.new ? 1 : 0), TO_A);
      assert.equal(e.otherFlows[0]!.scope, 'other');
      assert.deepEqual([e.vmFlows, e.vmRules, e.droppingFlows, e.dropRules], [[], [], [], []]);
      assert.equal(e.vmTotal, 0);
      assert.equal(e.total, 0);
      assert.notEqual(B.f.severity, 'critical');
      assert.match(B.f.summary, /^no OVS drop names the VM .*; 2 dropping megaflow\(s\) and rule\(s\) of other addresses or MACs not counted$/);
    });
  }
});

describe('ovs.drops kernel-datapath programs with an IPv6 address filter', () => {
  it('pass the verifier (the 16-byte address globals set, the filter compiled in)', () => {
    assert.equal(process.geteuid?.(), 0, 'needs root');
    const fd00 = Uint8Array.from([0xfd, 0, ...Array<number>(13).fill(0), 2]);
    const obj = openOvsObject({ ifindex: 0, saddr: null, daddr: fd00, proto: 17 });
    try {
      obj.load();
      for (const p of OVS_PROGRAMS) assert.notEqual(obj.program(p.program).info.fd, null, `${p.program} was accepted by the verifier`);
    } finally {
      obj.close();
    }
  });
});
