import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { TracepointMethod } from '../../engine/native/attach-plan.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, RawRecord } from '../../engine/probe/types.js';
import { otherOffload, readOffload, type OffloadData, type OffloadDevice } from '../../probes/other.offload/probe.js';
import { xmitFilter, xmitGlobals } from '../../probes/lib/xmit.js';
import { tempBundle } from '../helpers/bundle.js';
import { canBuildTopologies, type VethPair } from '../helpers/netns.js';
import { quietPair, request, udpFrameBytes, udpFromNs } from '../helpers/netdev-probes.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { countWithFlavour, gate, tcpFromNs, tcpSink, udpGsoFromNs, udpInterleaved } from '../helpers/xmit-traffic.js';

const cannot = await canBuildTopologies();

/** TCP payload bytes per bulk transfer. */
const BULK = 1_000_000;
/** The MSS on a 1500-byte MTU with TCP timestamps: 1500 - 20 (IP) - 20 (TCP) - 12 (options). */
const MSS = 1448;
/** Ethernet + IPv4 + TCP with timestamps: the headers of every data and ACK packet. */
const TCP_HEADERS = 14 + 20 + 32;

async function txCounters(pair: VethPair): Promise<{ packets: number; bytes: number }> {
  return { packets: await pair.peerCounter('tx_packets'), bytes: await pair.peerCounter('tx_bytes') };
}

/** One bulk transfer from the namespace's end, seen by three concurrent runs: the device only, a matching flow filter, filters that match nothing. */
async function bulkRuns(t: Parameters<typeof tempBundle>[0], pair: VethPair) {
  const sink = await tcpSink(t, pair);
  const b = await tempBundle(t, 'ebpfnet-offload-');
  const dev = { dev: pair.peerDev, netns: pair.ns, duration: '1500ms' };
  const params = {
    all: dev,
    flow: { ...dev, protocol: 'tcp', src_ip: pair.peerIp, dst_ip: pair.hostIp, dst_port: sink.port },
    none: { ...dev, protocol: 'udp', dst_port: sink.port },
  };
  const before = await txCounters(pair);
  const traffic = gate(3, () => tcpFromNs(pair, sink.port, BULK));
  const probe = withTrafficInWindow(otherOffload, traffic);
  const [all, flow, none] = await Promise.all((['all', 'flow', 'none'] as const).map((k) => runProbe(probe, request(otherOffload.id, params[k]), b.opts(k))));
  const after = await txCounters(pair);
  assert.equal(sink.received(), BULK, 'the whole transfer arrived');
  for (const f of [all, flow, none]) assert.equal(f!.status, 'ok', f!.reason);
  return { b, params, all: all!, flow: flow!, none: none!, tx: { packets: after.packets - before.packets, bytes: after.bytes - before.bytes } };
}

function only(f: Finding): OffloadDevice {
  const data = f.data as OffloadData;
  assert.equal(data.devices.length, 1, JSON.stringify(data.devices.map((d) => d.device)));
  return data.devices[0]!;
}

/** What holds whether or not the stack segmented: every packet the driver got, its bytes, its checksum state, nothing abnormal. */
function assertBulk(d: OffloadDevice, pair: VethPair, tx: { packets: number; bytes: number }): void {
  assert.equal(d.device, `${pair.peerDev}@${pair.ns}`);
  assert.equal(d.mtu, 1500);
  assert.equal(d.packets, tx.packets, "the device's TX packet counter");
  assert.equal(d.bytes, tx.bytes, "the device's TX byte counter");
  // Each packet handed over carries one set of headers at least (a GSO packet one for all its
  // segments); retransmissions and SACK options under load add to the payload and headers.
  assert.ok(d.bytes >= BULK + d.packets * TCP_HEADERS, `${d.bytes} bytes in ${d.packets} packets`);
  assert.equal(d.packets, d.gsoPackets + d.nonGsoPackets);
  assert.deepEqual(d.checksum, { none: 0, unnecessary: 0, complete: 0, partial: d.packets });
  assert.deepEqual(Object.values(d.anomalies), [0, 0, 0, 0, 0]);
}

describe('other.offload on a veth pair', () => {
  before(() => assert.equal(cannot, null, `cannot run: ${cannot}`));

  it('TCP bulk with TSO/GSO on: GSO packets of type TCPV4, gso_size the MSS, gso_segs > 1, all bytes counted; filters; replays it', async (t) => {
    const pair = await quietPair(t);
    const { b, params, all, flow, none, tx } = await bulkRuns(t, pair);
    t.diagnostic(all.summary);
    const data = all.data as OffloadData;
    assert.equal(data.method, 'tp_btf');
    const d = only(all);
    assertBulk(d, pair, tx);
    assert.ok(d.gsoPackets >= 5, `GSO packets: ${d.gsoPackets}`);
    assert.deepEqual(d.gsoTypes, { TCPV4: d.gsoPackets });
    assert.deepEqual(d.gsoTypeSets, { TCPV4: d.gsoPackets });
    assert.equal(d.maxGsoSize, MSS);
    assert.deepEqual(d.gsoSize, [{ low: 1024, high: 2047, packets: d.gsoPackets }]);
    assert.ok(d.meanGsoSegs > 1, `mean gso_segs ${d.meanGsoSegs}`);
    assert.ok(d.gsoSegs.every((s) => s.low >= 2), JSON.stringify(d.gsoSegs));
    // Segments of the GSO packets + single packets: at least the payload in MSS-sized pieces.
    assert.ok(d.gsoSegments + d.nonGsoPackets >= Math.ceil(BULK / MSS), `${d.gsoSegments} + ${d.nonGsoPackets}`);
    assert.deepEqual(d.gsoChecksum, { none: 0, unnecessary: 0, complete: 0, partial: d.gsoPackets });
    assert.deepEqual(data.anomalies, []);
    assert.equal(all.severity, 'info');
    assert.match(all.summary, new RegExp(`: ${d.packets} packets in .*, ${d.gsoPackets} GSO \\(TCPV4 ${d.gsoPackets};`));
    assert.deepEqual(all.tables.find((x) => x.title === 'GSO packets per gso_type')?.rows, [[d.device, d.gsoPackets]]);

    // The flow filter (protocol, both addresses, the server's port) keeps all but the server's ACKs' direction: everything sent.
    const f = only(flow);
    assert.equal(f.packets, d.packets);
    assert.equal(f.gsoPackets, d.gsoPackets);
    assert.deepEqual((flow.data as OffloadData).filter, { dev: pair.peerDev, netns: pair.ns, srcIp: pair.peerIp, dstIp: pair.hostIp, srcPort: null, dstPort: params.flow.dst_port, protocol: 'tcp' });
    assert.equal((none.data as OffloadData).packets, 0);
    assert.deepEqual((none.data as OffloadData).devices, []);
    assert.match(none.summary, /^nothing handed to .*, udp to \*:\d+ for transmit/);

    await assertReplaysSame(otherOffload, params.all, b, 'all', all);
    await assertReplaysSame(otherOffload, params.none, b, 'none', none);
  });

  it('TCP bulk with TSO and GSO off: no GSO packet, every segment handed to the driver alone', async (t) => {
    const pair = await quietPair(t);
    await pair.inNs(['ethtool', '-K', pair.peerDev, 'tso', 'off', 'gso', 'off']);
    const { all, tx } = await bulkRuns(t, pair);
    t.diagnostic(all.summary);
    const d = only(all);
    assertBulk(d, pair, tx);
    assert.equal(d.gsoPackets, 0);
    assert.deepEqual(d.gsoTypes, {});
    assert.deepEqual(d.gsoSize, []);
    assert.ok(d.nonGsoPackets >= Math.ceil(BULK / MSS), `${d.nonGsoPackets} packets`);
    assert.ok(d.maxLen <= 1514, `longest ${d.maxLen}`);
    assert.equal((all.data as OffloadData).gsoPackets, 0);
    assert.match(all.summary, /, no GSO, /);
  });

  it('UDP with UDP_SEGMENT: GSO packets of type UDP_L4 with the segment size asked for', async (t) => {
    const pair = await quietPair(t);
    const b = await tempBundle(t, 'ebpfnet-offload-udp-');
    const [n, segment, size] = [4, 1000, 8000];
    const params = { dev: pair.peerDev, netns: pair.ns, protocol: 'udp', dst_port: 9, duration: '1s' };
    const f = await runProbe(withTrafficInWindow(otherOffload, () => udpGsoFromNs(pair, n, segment, size, 9)), request(otherOffload.id, params), b.opts('udp'));
    assert.equal(f.status, 'ok', f.reason);
    t.diagnostic(f.summary);
    const d = only(f);
    assert.equal(d.packets, n);
    assert.equal(d.gsoPackets, n);
    assert.equal(d.bytes, n * udpFrameBytes(size));
    assert.deepEqual(d.gsoTypes, { UDP_L4: n });
    assert.equal(d.gsoSegments, n * (size / segment));
    assert.deepEqual(d.gsoSize, [{ low: 512, high: 1023, packets: n }]);
    assert.deepEqual(d.gsoSegs, [{ low: 8, high: 15, packets: n }]);
    assert.equal(d.maxGsoSize, segment);
    assert.deepEqual(d.gsoChecksum, { none: 0, unnecessary: 0, complete: 0, partial: n });
    assert.equal(f.severity, 'info');
    await assertReplaysSame(otherOffload, params, b, 'udp', f);
  });

  it('a route MTU above the device MTU: non-GSO packets longer than the link takes are an oversize finding naming the device', async (t) => {
    const pair = await quietPair(t);
    const b = await tempBundle(t, 'ebpfnet-offload-mtu-');
    // The route lets 4000-byte datagrams out unfragmented on a 1500-byte link.
    await pair.inNs(['ip', 'route', 'add', `${pair.hostIp}/32`, 'dev', pair.peerDev, 'mtu', 'lock', '9000']);
    const n = 3;
    const payload = 4000;
    const params = { dev: pair.peerDev, netns: pair.ns, duration: '1s' };
    const f = await runProbe(withTrafficInWindow(otherOffload, () => udpFromNs(pair, n, payload)), request(otherOffload.id, params), b.opts('mtu'));
    assert.equal(f.status, 'ok', f.reason);
    t.diagnostic(f.summary);
    const data = f.data as OffloadData;
    const d = only(f);
    assert.equal(d.packets, n);
    assert.equal(d.anomalies.oversize, n);
    assert.equal(d.maxLen, udpFrameBytes(payload));
    assert.deepEqual(data.anomalies, [{ kind: 'oversize', device: d.device, packets: n, detail: `up to ${udpFrameBytes(payload)} bytes on MTU 1500` }]);
    assert.equal(f.severity, 'warning');
    assert.match(f.summary, new RegExp(`abnormal: ${n} oversize on ${d.device.replace(/\./g, '\\.')}`));
    await assertReplaysSame(otherOffload, params, b, 'mtu', f);
  });

  it('every flavour (raw_tp, tp_btf, classic tracepoint) passes the verifier and counts the same', async (t) => {
    const pair = await quietPair(t);
    const globals = xmitGlobals(await xmitFilter({ dev: pair.peerDev, netns: pair.ns }));
    const n = 7;
    for (const method of ['raw_tracepoint', 'tp_btf', 'tracepoint'] as TracepointMethod[]) {
      const dump = await countWithFlavour('other.offload', 'offload_xmit', method, globals, () => udpFromNs(pair, n, 100), readOffload);
      assert.deepEqual(
        dump.entries.map((e) => [e.name, e.packets, e.bytes, e.gsoPackets]),
        [[pair.peerDev, n, n * udpFrameBytes(100), 0]],
        method,
      );
      assert.equal(dump.seen, n, method);
    }
  });

  it('counts exactly when a CPU\'s way keeps changing class (oversize and not, interleaved) and where a CPU has no way', async (t) => {
    const pair = await quietPair(t);
    await pair.inNs(['ip', 'route', 'add', `${pair.hostIp}/32`, 'dev', pair.peerDev, 'mtu', 'lock', '9000']);
    const globals = xmitGlobals(await xmitFilter({ dev: pair.peerDev, netns: pair.ns }));
    // Runs of three: a way holds three packets when the other class takes it.
    const n = 4;
    const kinds = [4000, 4000, 4000, 100, 100, 100].map((payload) => ({ payload, port: 9 }));
    // Every CPU's ways (each packet moves the other class's count on), then ways for CPU 0 only and the traffic on CPU 1.
    for (const [what, ways, cpu] of [['ways', undefined, 0], ['no way', 1, 1]] as const) {
      for (const method of ['tp_btf', 'raw_tracepoint'] as TracepointMethod[]) {
        const dump = await countWithFlavour('other.offload', 'offload_xmit', method, globals, () => udpInterleaved(pair, n, kinds, cpu), readOffload, ways);
        const e = dump.entries[0]!;
        assert.deepEqual(
          [dump.entries.length, e.packets, e.bytes, e.oversize, e.maxLen, e.gsoPackets, e.csum.reduce((a, b) => a + b, 0), dump.seen],
          [1, 6 * n, 3 * n * (udpFrameBytes(4000) + udpFrameBytes(100)), 3 * n, udpFrameBytes(4000), 0, 6 * n, 6 * n],
          `${what}, ${method}`,
        );
      }
    }
  });
});

describe('other.offload findings from recorded sessions', () => {
  it('names the abnormal GSO packets of each device, worst first', () => {
    // A recorded dump: a device got GSO packets of a type it does not offload, one without a type, and one with a checksum left COMPLETE.
    const f = recordedFinding();
    assert.deepEqual(
      f.data.anomalies.map((a) => [a.kind, a.device, a.packets]),
      [
        ['unsupportedType', 'tap0', 2],
        ['sizeWithoutType', 'tap0', 1],
        ['checksumMismatch', 'tap0', 1],
        ['sizeOverMtu', 'tap0', 1],
      ],
    );
    assert.equal(f.data.anomalies[0]!.detail, 'UDP_TUNNEL not in the device\'s features 0x1');
    assert.deepEqual(f.data.devices[0]!.gsoTypeSets, { UDP_TUNNEL: 2, TCPV4: 1, none: 1 });
    assert.equal(f.severity, 'critical');
  });
});

/** A finding parsed from hand-made records (the kernel cannot be made to produce these on a veth). */
function recordedFinding() {
  const zero = (n: number) => Array.from({ length: n }, () => 0);
  const at = (n: number, i: number, v: number) => zero(n).map((x, k) => (k === i ? v : x));
  const entry = {
    ifindex: 7, netns: 1, name: 'tap0', packets: 10, bytes: 30000, gsoPackets: 4, gsoBytes: 20000, gsoSegs: 20,
    gsoTypes: [{ type: 1 << 10, packets: 2 }, { type: 1, packets: 1 }, { type: 0, packets: 1 }], sizeSlots: at(17, 11, 4), segsSlots: at(17, 3, 4), csum: [0, 0, 1, 9], gsoCsum: [0, 0, 1, 3],
    sizeWithoutType: 1, sizeOverMtu: 1, unsupported: 2, oversize: 0, unsupportedBits: String(1 << 10), features: '1', mtu: 1500, maxGsoSize: 1600, maxLen: 1514,
  };
  const capture = (seq: number, name: string, stdout: string): RawRecord => ({ seq, op: 'capture', name, at: 0, durationMs: 0, stdout, stderr: '', exitCode: 0 });
  const records = [
    capture(1, 'gso-types', JSON.stringify({ 0: 'TCPV4', 10: 'UDP_TUNNEL' })),
    capture(2, 'attach', JSON.stringify({ method: 'raw_tracepoint', btf: 'minimal (cached)', loadMs: 1, attach: [], filter: { dev: null, netns: null, netnsInode: 0, srcIp: null, dstIp: null, srcPort: null, dstPort: null, protocol: 'all' } })),
    capture(3, 'dump', JSON.stringify({ seen: 10, unkeyed: 0, entries: [entry], windowMs: 1000, hostNetns: 1, namespaces: {} })),
    capture(4, 'overhead', 'null'),
  ];
  return otherOffload.parse(records, {}) as unknown as { data: OffloadData; severity: string };
}
