import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runProbe } from '../../engine/probe/runtime.js';
import { devQueueLoad, joinNameOnly, otherDevQueue, readDump, type DevQueueData } from '../../probes/other.dev-queue/probe.js';
import { tempBundle } from '../helpers/bundle.js';
import { canBuildTopologies } from '../helpers/netns.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { quietPair, request, udpFrameBytes, udpFromNs, udpSink } from '../helpers/netdev-probes.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { netdevFilter, netdevGlobals, netdevPlan, type NetdevMethod } from '../../probes/lib/netdev.js';
import { loadFirstWorking } from '../../engine/native/attach-plan.js';
import { udpInterleaved } from '../helpers/xmit-traffic.js';
import { assertEveryFlavourAttaches } from '../helpers/attach-plan.js';

const cannot = await canBuildTopologies();
const TRACEPOINTS = { dev_queue: 'net:net_dev_queue', dev_xmit: 'net:net_dev_xmit' };

describe('other.dev-queue on a veth pair', () => {
  before(() => assert.equal(cannot, null, `cannot run: ${cannot}`));

  it('counts N UDP datagrams and N × frame bytes handed to the namespace end, all taken by the driver, nothing on the receiving end, and replays it', async (t) => {
    const pair = await quietPair(t);
    const sink = await udpSink(t, pair);

    const n = 25;
    const payload = 300;
    const frame = udpFrameBytes(payload);
    const b = await tempBundle(t, 'ebpfnet-devq-');
    const sendParams = { dev: pair.peerDev, netns: pair.ns, duration: '2s' };
    const recvParams = { dev: pair.hostDev, duration: '2s' };
    const probe = withTrafficInWindow(otherDevQueue, () => udpFromNs(pair, n, payload));
    const [f, idle] = await Promise.all([
      runProbe(probe, request(otherDevQueue.id, sendParams), b.opts('send')),
      runProbe(otherDevQueue, request(otherDevQueue.id, recvParams), b.opts('recv')),
    ]);
    assert.equal(f.status, 'ok', f.reason);
    assert.equal(f.driver, 'native');
    assert.equal(sink.received(), n, 'every datagram arrived');

    const data = f.data as DevQueueData;
    t.diagnostic(f.summary);
    // tp_btf first (plain loads of the skb and device), relocated against the kernel's BTF.
    assert.equal(data.method, 'tp_btf', data.fallback);
    assert.equal(data.btf, 'vmlinux');
    assert.deepEqual(data.attach.map((a) => a.program), ['dev_queue_tp_btf', 'dev_xmit_tp_btf']);
    assert.equal(data.fallback, undefined);
    t.diagnostic(`load ${data.loadMs} ms, attach ${data.attach.map((a) => a.attachMs).join(' + ')} ms`);
    assert.deepEqual(data.filter, { dev: pair.peerDev, netns: pair.ns });
    assert.equal(data.devices.length, 1, JSON.stringify(data.devices.map((d) => d.device)));
    const d = data.devices[0]!;
    assert.equal(d.device, `${pair.peerDev}@${pair.ns}`);
    assert.equal(d.netns, pair.ns);
    assert.equal(d.packets, n);
    assert.equal(d.bytes, n * frame);
    assert.equal(data.packets, n);
    assert.equal(data.bytes, n * frame);
    assert.equal(d.meanBytes, frame);
    assert.deepEqual(d.buckets, [{ low: 256, high: 511, packets: n }]);
    assert.equal(d.p99Bytes, 511);
    assert.deepEqual(d.l3, { ipv4: n, ipv6: 0, arp: 0, other: 0 });
    assert.deepEqual(d.l4, { tcp: 0, udp: n, icmp: 0, otherIp: 0, notIp: 0 });
    assert.equal(d.gsoPackets, 0);
    assert.equal(d.gsoAnomalies, 0);
    // veth has no queue of its own: each packet goes straight to the driver, which takes it.
    assert.deepEqual(d.xmit, { ok: n, busy: 0, drop: 0, congested: 0, error: 0, other: 0 });
    assert.equal(d.xmitBytes, n * frame);
    assert.equal(data.lost, 0);
    assert.equal(f.severity, 'info');
    assert.match(f.summary, new RegExp(`: ${n} packets, ${n * frame} bytes \\(mean ${frame} B\\)`));
    assert.deepEqual(f.tables[0]?.rows[0]?.slice(0, 3), [d.device, n, n * frame]);

    assert.equal(idle.status, 'ok', idle.reason);
    const quiet = idle.data as DevQueueData;
    assert.equal(quiet.packets, 0);
    assert.deepEqual(quiet.devices, []);
    assert.match(idle.summary, new RegExp(`^nothing handed to ${pair.hostDev} for transmit`));

    await assertReplaysSame(otherDevQueue, sendParams, b, 'send', f);
    await assertReplaysSame(otherDevQueue, recvParams, b, 'recv', idle);
  });

  it('every flavour of other.dev-queue.bpf.o (raw_tp, tp_btf, classic tracepoint) loads and attaches', () => {
    assertEveryFlavourAttaches('other.dev-queue', netdevPlan(TRACEPOINTS), netdevGlobals({ dev: null, netns: null, netnsInode: 0 }), ['net_dev_queue', 'net_dev_xmit']);
  });

  it('raw_tp and tp_btf count the same; exactly when a CPU\'s way keeps changing class (sizes interleaved) and where a CPU has no way', async (t) => {
    const pair = await quietPair(t);
    await udpSink(t, pair);
    const globals = netdevGlobals(await netdevFilter({ dev: pair.peerDev, netns: pair.ns }));
    const n = 4;
    // Runs of three: a way holds three packets when the other size slot takes it.
    const kinds = [100, 100, 100, 300, 300, 300].map((payload) => ({ payload, port: 9 }));
    const small = udpFrameBytes(100);
    const large = udpFrameBytes(300);
    for (const [what, ways, cpu] of [['ways', devQueueLoad().maxEntries!, 0], ['no way', { queue_pending: 1, xmit_pending: 1 }, 1]] as const) {
      for (const method of ['tp_btf', 'raw_tracepoint'] as NetdevMethod[]) {
        const plan = netdevPlan(TRACEPOINTS, { prefer: 'tp_btf' }).filter((s) => s.method === method);
        const loaded = await loadFirstWorking(bpfObjectPath('other.dev-queue'), plan, { what: `other.dev-queue (${method})`, open: { globals, maxEntries: ways } });
        let dump: ReturnType<typeof readDump>;
        try {
          await udpInterleaved(pair, n, kinds, cpu);
          dump = readDump(loaded.obj);
        } finally {
          loaded.obj.close();
        }
        const e = dump.entries[0]!;
        const label = `${what}, ${method}`;
        assert.equal(dump.entries.length, 1, label);
        assert.deepEqual([e.packets, e.bytes, dump.queued, dump.xmits], [6 * n, 3 * n * (small + large), 6 * n, 6 * n], label);
        assert.equal(e.slots[8], 3 * n, `${label}: ${small}-byte frames`);
        assert.equal(e.slots[9], 3 * n, `${label}: ${large}-byte frames`);
        assert.deepEqual([e.l3[0], e.l4[1], e.gsoPackets, e.xmit[0], e.xmitBytes], [6 * n, 6 * n, 0, 6 * n, 3 * n * (small + large)], label);
      }
    }
  });

  it('the classic tracepoint flavour counts the same (the fallback where tp_btf is refused); driver results, named only, join their device', async (t) => {
    const pair = await quietPair(t);
    await udpSink(t, pair);
    const name = new Uint8Array(16);
    name.set(Buffer.from(pair.peerDev));
    const o = BpfObject.open(bpfObjectPath('other.dev-queue'), {
      autoload: { dev_queue_tp_btf: false, dev_xmit_tp_btf: false, dev_queue_tracepoint: true, dev_xmit_tracepoint: true },
      globals: { targ_dev: name },
    });
    try {
      o.load();
      assert.match(o.program('dev_queue_tracepoint').attachTracepoint('net', 'net_dev_queue').target, /net_dev_queue/);
      assert.match(o.program('dev_xmit_tracepoint').attachTracepoint('net', 'net_dev_xmit').target, /net_dev_xmit/);
      const n = 12;
      await udpFromNs(pair, n, 100);
      const dump = readDump(o);
      // Queued packets carry the device; the driver's results only its name (ifindex, netns 0).
      assert.deepEqual(
        dump.entries.map((e) => [e.ifindex === 0, e.packets, e.xmit[0]]),
        [
          [false, n, 0],
          [true, 0, n],
        ],
      );
      const notes: string[] = [];
      const [joined, ...rest] = joinNameOnly(dump.entries, notes);
      assert.deepEqual(rest, []);
      assert.deepEqual(notes, []);
      assert.equal(joined!.bytes, n * udpFrameBytes(100));
      assert.equal(joined!.xmit[0], n);
      assert.equal(joined!.xmitBytes, n * udpFrameBytes(100));
    } finally {
      o.close();
    }
  });
});
