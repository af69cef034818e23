import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { TracepointMethod } from '../../engine/native/attach-plan.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding } from '../../engine/probe/types.js';
import { otherVlanUdp, readVlanUdp, type VlanUdpData, type VlanUdpFlow } from '../../probes/other.vlan-udp/probe.js';
import { xmitFilter, xmitGlobals } from '../../probes/lib/xmit.js';
import { tempBundle } from '../helpers/bundle.js';
import { canBuildTopologies, type VethPair } from '../helpers/netns.js';
import { quietPair, request, udpFrameBytes, udpFromNs } from '../helpers/netdev-probes.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { countWithFlavour, gate, udpInterleaved, vlanPort, vlanTagger } from '../helpers/xmit-traffic.js';

const cannot = await canBuildTopologies();

/** Datagrams per VLAN (and untagged, to port 9), and their payload. */
const SENT = { 100: 30, 200: 20, untagged: 10 };
const PAYLOAD = 200;
const VLAN_HLEN = 4;

async function traffic(pair: VethPair): Promise<void> {
  await udpFromNs(pair, SENT[100], PAYLOAD, { port: vlanPort(100) });
  await udpFromNs(pair, SENT[200], PAYLOAD, { port: vlanPort(200) });
  await udpFromNs(pair, SENT.untagged, PAYLOAD);
}

/** Concurrent runs over the same traffic, one per params set; the traffic starts once all are attached. */
async function runsOver(t: Parameters<typeof tempBundle>[0], pair: VethPair, params: Record<string, Record<string, unknown>>) {
  const b = await tempBundle(t, 'ebpfnet-vlan-udp-');
  const names = Object.keys(params);
  const probe = withTrafficInWindow(otherVlanUdp, gate(names.length, () => traffic(pair)));
  const runs = await Promise.all(names.map((k) => runProbe(probe, request(otherVlanUdp.id, params[k]!), b.opts(k))));
  const out: Record<string, Finding> = {};
  names.forEach((k, i) => {
    assert.equal(runs[i]!.status, 'ok', runs[i]!.reason);
    out[k] = runs[i]!;
  });
  return { b, runs: out };
}

const dataOf = (f: Finding) => f.data as VlanUdpData;
const flowOf = (f: Finding, vlan: number | null): VlanUdpFlow | undefined => dataOf(f).flows.find((x) => x.vlan === vlan);

describe('other.vlan-udp on a veth pair whose namespace end tags UDP by port', () => {
  before(() => assert.equal(cannot, null, `cannot run: ${cannot}`));

  it('counts exactly the packets sent per VLAN and 5-tuple on the trunk, separates two VLANs, flags the untagged UDP; filters; replays it', async (t) => {
    const pair = await quietPair(t);
    await vlanTagger(pair);
    const dev = { dev: pair.peerDev, netns: pair.ns, duration: '1500ms' };
    const { b, runs } = await runsOver(t, pair, {
      all: dev,
      vlan200: { ...dev, vlan: 200 },
      flow: { ...dev, vlan: 100, src_ip: pair.peerIp, dst_ip: pair.hostIp, dst_port: vlanPort(100) },
      none: { ...dev, vlan: 300 },
      otherIp: { ...dev, dst_ip: '192.0.2.1' },
    });
    const all = runs.all!;
    t.diagnostic(all.summary);
    const data = dataOf(all);
    const device = `${pair.peerDev}@${pair.ns}`;
    const frame = udpFrameBytes(PAYLOAD); // the accelerated tag is not in skb->len
    assert.equal(data.method, 'tp_btf');
    assert.deepEqual(
      data.vlans.map((v) => [v.vlan, v.packets, v.bytes, v.flows, v.devices]),
      [
        [100, SENT[100], SENT[100] * frame, 1, [device]],
        [200, SENT[200], SENT[200] * frame, 1, [device]],
      ],
    );
    const v100 = flowOf(all, 100)!;
    assert.deepEqual(
      { device: v100.device, family: v100.family, src: v100.src, dst: v100.dst, dport: v100.dport, packets: v100.packets, bytes: v100.bytes, tagging: v100.tagging },
      { device, family: 4, src: pair.peerIp, dst: pair.hostIp, dport: vlanPort(100), packets: SENT[100], bytes: SENT[100] * frame, tagging: 'hw' },
    );
    assert.ok(v100.sport > 0);
    assert.equal(v100.pps, Math.round((SENT[100] / (data.windowMs / 1000)) * 10) / 10);
    assert.equal(flowOf(all, 200)!.packets, SENT[200]);
    assert.equal(flowOf(all, null)!.packets, SENT.untagged);
    assert.equal(data.flowCount, 3);
    assert.equal(data.packets, SENT[100] + SENT[200] + SENT.untagged);
    assert.equal(data.tagged, SENT[100] + SENT[200]);
    assert.equal(data.untagged, SENT.untagged);
    assert.deepEqual(data.untaggedWhereExpected, [{ device, packets: SENT.untagged, flows: 1, expected: 'carries VLAN 100, 200 tagged' }]);
    assert.equal(all.severity, 'warning');
    assert.match(all.summary, new RegExp(`^VLAN 100: ${SENT[100]} packets .* in 1 flow; VLAN 200: ${SENT[200]} packets`));
    assert.deepEqual(all.tables[0]?.rows.map((r) => r.slice(0, 3)), [
      [100, SENT[100], SENT[100] * frame],
      [200, SENT[200], SENT[200] * frame],
    ]);

    // vlan 200: that VLAN and the untagged UDP only.
    const v200 = dataOf(runs.vlan200!);
    assert.deepEqual(v200.vlans.map((v) => [v.vlan, v.packets]), [[200, SENT[200]]]);
    assert.equal(v200.untagged, SENT.untagged);
    // The 5-tuple and VLAN 100: exactly that flow.
    const flow = dataOf(runs.flow!);
    assert.deepEqual(flow.flows.map((f) => [f.vlan, f.dport, f.packets]), [[100, vlanPort(100), SENT[100]]]);
    // Filters that match nothing see nothing (vlan 300 still keeps the untagged UDP).
    const none = dataOf(runs.none!);
    assert.deepEqual(none.vlans, []);
    assert.equal(none.tagged, 0);
    // ...and, VLAN 300 being expected on that device, flags it.
    assert.deepEqual(none.untaggedWhereExpected, [{ device, packets: SENT.untagged, flows: 1, expected: `VLAN 300 expected on ${pair.peerDev}` }]);
    assert.equal(dataOf(runs.otherIp!).packets, 0);
    assert.match(runs.otherIp!.summary, /^no UDP handed to .*to 192\.0\.2\.1 for transmit/);

    await assertReplaysSame(otherVlanUdp, dev, b, 'all', all);
    await assertReplaysSame(otherVlanUdp, { ...dev, vlan: 200 }, b, 'vlan200', runs.vlan200!);
  });

  it('reads the tag from the frame when the device does not offload VLAN tagging (802.1Q header in-band)', async (t) => {
    const pair = await quietPair(t);
    await vlanTagger(pair);
    await pair.inNs(['ethtool', '-K', pair.peerDev, 'txvlan', 'off']);
    const { runs } = await runsOver(t, pair, { all: { dev: pair.peerDev, netns: pair.ns, duration: '1s' } });
    const all = runs.all!;
    t.diagnostic(all.summary);
    const frame = udpFrameBytes(PAYLOAD) + VLAN_HLEN;
    assert.deepEqual(
      dataOf(all).vlans.map((v) => [v.vlan, v.packets, v.bytes]),
      [
        [100, SENT[100], SENT[100] * frame],
        [200, SENT[200], SENT[200] * frame],
      ],
    );
    assert.equal(flowOf(all, 100)!.tagging, 'in-band');
    assert.equal(flowOf(all, 100)!.dst, pair.hostIp);
    assert.equal(flowOf(all, null)!.packets, SENT.untagged);
  });

  it('every flavour (raw_tp, tp_btf, classic tracepoint) passes the verifier and counts the same', async (t) => {
    const pair = await quietPair(t);
    await vlanTagger(pair);
    const globals = { ...xmitGlobals(await xmitFilter({ dev: pair.peerDev, netns: pair.ns })), targ_vlan_set: false, targ_vlan: 0 };
    const n = 6;
    for (const method of ['raw_tracepoint', 'tp_btf', 'tracepoint'] as TracepointMethod[]) {
      const dump = await countWithFlavour('other.vlan-udp', 'vlan_udp_xmit', method, globals, () => udpFromNs(pair, n, 100, { port: vlanPort(42) }), readVlanUdp);
      assert.deepEqual(
        dump.entries.map((e) => [e.name, e.vlan, e.dport, e.packets, e.hwTagged]),
        [[pair.peerDev, 42, vlanPort(42), n, n]],
        method,
      );
    }
  });

  it('counts exactly when flows interleave (more flows than a CPU has ways, two packets each in turn) and where a CPU has no way', async (t) => {
    const pair = await quietPair(t);
    await vlanTagger(pair);
    const globals = { ...xmitGlobals(await xmitFilter({ dev: pair.peerDev, netns: pair.ns })), targ_vlan_set: false, targ_vlan: 0 };
    const n = 5;
    const ports = [vlanPort(100), vlanPort(200), 9, 10, 11, 12];
    const vlanOf = (port: number) => (port === vlanPort(100) ? 100 : port === vlanPort(200) ? 200 : null);
    for (const [what, ways, cpu] of [['ways', undefined, 0], ['no way', 1, 1]] as const) {
      for (const method of ['tp_btf', 'raw_tracepoint'] as TracepointMethod[]) {
        const dump = await countWithFlavour('other.vlan-udp', 'vlan_udp_xmit', method, globals, () => udpInterleaved(pair, n, ports.flatMap((port) => [port, port].map(() => ({ payload: 100, port }))), cpu), readVlanUdp, ways);
        assert.deepEqual(
          dump.entries.map((e) => [e.dport, e.vlan, e.packets, e.bytes, e.hwTagged]).sort((a, b) => a[0]! - b[0]!),
          [...ports].sort((a, b) => a - b).map((port) => [port, vlanOf(port), 2 * n, 2 * n * udpFrameBytes(100), vlanOf(port) === null ? 0 : 2 * n]),
          `${what}, ${method}`,
        );
        assert.equal(dump.seen, 2 * n * ports.length, `${what}, ${method}`);
        assert.ok(dump.entries.every((e) => e.spanNs > 0), `${what}, ${method}: first and last packet times`);
      }
    }
  });
});
