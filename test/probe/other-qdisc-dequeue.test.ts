import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runProbe } from '../../engine/probe/runtime.js';
import { otherQdiscDequeue, readDump, type QdiscDequeueData } from '../../probes/other.qdisc-dequeue/probe.js';
import { netdevGlobals, netdevPlan, tcHandle } from '../../probes/lib/netdev.js';
import { tempBundle } from '../helpers/bundle.js';
import { canBuildTopologies, run } from '../helpers/netns.js';
import { COUNTING_BUDGET, withTrafficInWindow } from '../helpers/probe-window.js';
import { nsQdiscStats, quietPair, request, udpFrameBytes, udpFromNs } from '../helpers/netdev-probes.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { assertEveryFlavourAttaches } from '../helpers/attach-plan.js';

const cannot = await canBuildTopologies();

describe('other.qdisc-dequeue on a tbf-shaped veth', () => {
  before(() => assert.equal(cannot, null, `cannot run: ${cannot}`));

  it('counts every packet of a UDP burst dequeued from a 1mbit tbf in a namespace, the queue it left, nothing on a quiet device, and replays it', async (t) => {
    const shaped = await quietPair(t);
    const quiet = await quietPair(t);
    await run(['tc', '-n', shaped.ns, 'qdisc', 'add', 'dev', shaped.peerDev, 'root', 'handle', '9:', 'tbf', 'rate', '1mbit', 'burst', '2k', 'latency', '400ms']);
    await run(['tc', 'qdisc', 'add', 'dev', quiet.hostDev, 'root', 'handle', '7:', 'tbf', 'rate', '1mbit', 'burst', '2k', 'latency', '400ms']);
    const [before] = await nsQdiscStats(shaped, shaped.peerDev);

    // 40 datagrams of 200 bytes = 40 frames of 242 bytes: 9680 bytes, far more than the 2 KiB
    // bucket (so most wait) and far less than the tbf's limit (so none is dropped).
    const n = 40;
    const b = await tempBundle(t, 'ebpfnet-qdeq-');
    const nsParams = { netns: shaped.ns, duration: '2s' };
    const quietParams = { dev: quiet.hostDev, duration: '2s' };
    const probe = withTrafficInWindow(otherQdiscDequeue, () => udpFromNs(shaped, n, 200));
    // Its program runs for every dequeue of the host: the guard must not end the window before
    // the burst drained (COUNTING_BUDGET).
    const budget = COUNTING_BUDGET;
    const [f, idle] = await Promise.all([
      runProbe(probe, request(otherQdiscDequeue.id, nsParams), b.opts('shaped', { budget })),
      runProbe(otherQdiscDequeue, request(otherQdiscDequeue.id, quietParams), b.opts('quiet', { budget })),
    ]);
    assert.equal(f.status, 'ok', f.reason);
    assert.doesNotMatch(f.summary, /stopped/, f.summary);
    assert.equal(f.driver, 'native');
    const [after] = await nsQdiscStats(shaped, shaped.peerDev);
    assert.equal(after!.packets - before!.packets, n, 'tc saw the burst leave the tbf');
    assert.equal(after!.drops, 0, 'the tbf dropped nothing');

    const data = f.data as QdiscDequeueData;
    t.diagnostic(f.summary);
    // The shared plan's first flavour: raw_tp programs relocated against a cached minimal BTF.
    assert.equal(data.method, 'raw_tracepoint', data.fallback);
    assert.equal(data.btf, 'minimal (cached)');
    assert.deepEqual(data.attach.map((a) => a.program), ['qdisc_dequeue_raw_tp']);
    assert.equal(data.fallback, undefined);
    t.diagnostic(`load ${data.loadMs} ms, attach ${data.attach.map((a) => a.attachMs).join(' + ')} ms`);
    assert.deepEqual(data.filter, { dev: null, netns: shaped.ns });
    // Nothing else leaves a qdisc in that namespace: one row, the tbf, with exactly the burst.
    assert.equal(data.qdiscs.length, 1, JSON.stringify(data.qdiscs.map((q) => q.device)));
    const q = data.qdiscs[0]!;
    assert.equal(q.dev, shaped.peerDev);
    assert.equal(q.netns, shaped.ns);
    assert.equal(q.device, `${shaped.peerDev}@${shaped.ns}`);
    assert.equal(q.kind, 'tbf');
    assert.equal(q.handle, '9:');
    assert.equal(q.parent, 'root');
    assert.equal(q.packets, n, f.summary);
    assert.equal(data.packets, n);
    // Shaping: the tbf said "nothing yet" while packets waited for tokens, and a queue stood.
    assert.ok(q.empty > 0, `empty dequeues ${q.empty}`);
    assert.equal(q.calls, data.calls);
    // Every call that dequeued something took at least one packet of the burst.
    assert.ok(q.calls - q.empty >= 1 && q.calls - q.empty <= n, `calls ${q.calls}, empty ${q.empty}`);
    assert.ok(q.qlenMax > 0 && q.qlenMax < n, `qlen max ${q.qlenMax}`);
    assert.ok(q.backlogMaxBytes > 0 && q.backlogMaxBytes % udpFrameBytes(200) === 0, `backlog max ${q.backlogMaxBytes}`);
    assert.equal(q.requeues, 0);
    assert.equal(q.gsoAnomalies, 0);
    assert.equal(data.lost, 0);
    assert.equal(q.buckets.reduce((s, k) => s + k.calls, 0), q.calls, 'the histogram holds every call');
    assert.equal(q.buckets.find((k) => k.low === 0)?.calls, q.empty);
    assert.equal(f.severity, 'warning');
    assert.match(f.summary, new RegExp(`^tbf 9: on ${q.device}: ${n} packets in ${q.calls} dequeues \\(${q.empty} empty\\), queue up to ${q.qlenMax} packets / ${q.backlogMaxBytes} B`));
    assert.equal(f.charts[0]?.kind, 'histogram');
    assert.deepEqual(f.tables[0]?.rows[0]?.slice(0, 6), [q.device, 'tbf', '9:', 'root', q.calls, n]);

    assert.equal(idle.status, 'ok', idle.reason);
    const quietData = idle.data as QdiscDequeueData;
    assert.equal(quietData.calls, 0);
    assert.deepEqual(quietData.qdiscs, []);
    assert.equal(idle.severity, 'info');
    assert.match(idle.summary, new RegExp(`^no qdisc dequeue on ${quiet.hostDev}`));

    await assertReplaysSame(otherQdiscDequeue, nsParams, b, 'shaped', f);
    await assertReplaysSame(otherQdiscDequeue, quietParams, b, 'quiet', idle);
  });

  it('every flavour of other.qdisc-dequeue.bpf.o (raw_tp, tp_btf, classic tracepoint) loads and attaches', () => {
    assertEveryFlavourAttaches('other.qdisc-dequeue', netdevPlan({ qdisc_dequeue: 'qdisc:qdisc_dequeue' }), netdevGlobals({ dev: null, netns: null, netnsInode: 0 }), ['qdisc_dequeue']);
  });

  it('the classic tracepoint flavour counts the same burst (the fallback where tp_btf is refused)', async (t) => {
    const shaped = await quietPair(t);
    await run(['tc', '-n', shaped.ns, 'qdisc', 'add', 'dev', shaped.peerDev, 'root', 'handle', '9:', 'tbf', 'rate', '1mbit', 'burst', '2k', 'latency', '400ms']);
    const name = new Uint8Array(16);
    name.set(Buffer.from(shaped.peerDev));
    const o = BpfObject.open(bpfObjectPath('other.qdisc-dequeue'), { autoload: { qdisc_dequeue_tp_btf: false, qdisc_dequeue_tracepoint: true }, globals: { targ_dev: name } });
    try {
      o.load();
      assert.match(o.program('qdisc_dequeue_tracepoint').attachTracepoint('qdisc', 'qdisc_dequeue').target, /qdisc_dequeue/);
      const n = 20;
      await udpFromNs(shaped, n, 200);
      await new Promise((resolve) => setTimeout(resolve, 500)); // 20 x 242 bytes leave a 1mbit tbf within ~40 ms
      const dump = readDump(o);
      assert.equal(dump.entries.length, 1);
      const e = dump.entries[0]!;
      assert.deepEqual([e.name, e.kind, tcHandle(e.handle), tcHandle(e.parent), e.packets], [shaped.peerDev, 'tbf', '9:', 'root', n]);
      assert.ok(e.empty > 0 && e.backlogMax > 0, JSON.stringify(e));
    } finally {
      o.close();
    }
  });

  it('names handles as tc does', () => {
    assert.equal(tcHandle(0xffffffff), 'root');
    assert.equal(tcHandle(0xfffffff1), 'ingress');
    assert.equal(tcHandle(0x90000), '9:');
    assert.equal(tcHandle(0x10010), '1:10');
    assert.equal(tcHandle(0), 'none');
  });
});
