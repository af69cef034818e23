// perf.icmp-rtt in a namespace joined to the host by a veth pair: netem delays the peer's
// egress by 20 ms, so the host's pings come back in ~20 ms while the host answers the peer's
// pings at once; from inside the namespace the peer's own answer time carries the 20 ms (netem
// sits before its driver); 100% loss on the peer's egress makes every request lost. Each
// finding replays from its evidence. Needs root, iproute2 (tc) and iputils-ping.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { liveHandles } from '../../engine/native/guard.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params } from '../../engine/probe/types.js';
import { attachPlan, HOOKS } from '../../probes/perf.icmp-rtt/attach.js';
import { perfIcmpRtt, type IcmpRttData, type IcmpRttPeer } from '../../probes/perf.icmp-rtt/probe.js';
import { tempBundle, type TempBundle } from '../helpers/bundle.js';
import { canBuildTopologies, createVethPair, run, type VethPair } from '../helpers/netns.js';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cannot = (await canBuildTopologies()) ?? (await run(['tc', '-V']).then(() => null, () => 'needs tc (apt-get install iproute2)'));

const NETEM_MS = 20;
/** How far above the injected delay an RTT may be on a busy 2-CPU machine. */
const SLACK_MS = 3;

function request(params: Record<string, unknown>) {
  return { step: 'rtt', alias: 'rtt', probe: 'perf.icmp-rtt', params: params as Params };
}

/** Starts the probe and resolves once both its programs are attached (the addon's live link count says so). */
async function startProbe(b: TempBundle, name: string, params: Record<string, unknown>): Promise<Promise<Finding>[]> {
  const base = liveHandles().links;
  const finding = runProbe(perfIcmpRtt, request(params), b.opts(name));
  let done = false;
  void finding.finally(() => (done = true));
  const started = Date.now();
  while (liveHandles().links < base + HOOKS.length && !done) {
    if (Date.now() - started > 20_000) throw new Error(`${name}: programs not attached after 20 s`);
    await delay(20);
  }
  return [finding]; // wrapped: an async function returning a promise would wait for it
}

async function replaySame(b: TempBundle, name: string, params: Record<string, unknown>, live: Finding): Promise<void> {
  const handles = liveHandles();
  const r = await runProbe(perfIcmpRtt, request(params), b.opts(`${name}-replay`, { replayFrom: b.dir(name) }));
  assert.equal(r.status, 'ok', r.reason);
  assert.equal(r.driver, 'replay');
  assert.deepEqual(r.data, live.data);
  assert.equal(r.summary, live.summary);
  assert.equal(r.severity, live.severity);
  assert.deepEqual(r.charts, live.charts);
  assert.deepEqual(r.tables, live.tables);
  assert.deepEqual(liveHandles(), handles, 'a replay loads no BPF');
}

function peerOf(f: Finding, direction: IcmpRttPeer['direction']): IcmpRttPeer {
  const p = (f.data as IcmpRttData).peers.find((x) => x.direction === direction);
  assert.ok(p, `no ${direction} peer in ${JSON.stringify((f.data as IcmpRttData).peers)}`);
  return p;
}

function ordered(p: IcmpRttPeer): void {
  assert.ok(p.minMs <= p.meanMs && p.meanMs <= p.maxMs, JSON.stringify(p));
  assert.ok(p.p50Ms <= p.p95Ms && p.p95Ms <= p.p99Ms && p.p99Ms <= p.maxMs, JSON.stringify(p));
  assert.equal(p.buckets.reduce((s, b) => s + b.count, 0), p.replies);
}

/** `ping` from inside the namespace to the host. */
async function pingFromPeer(pair: VethPair, count: number): Promise<void> {
  await pair.inNs(['ping', '-n', '-q', '-c', String(count), '-i', '0.05', '-W', '2', pair.hostIp]);
}

/** A permanent neighbour entry for the peer: with its egress dropping everything, no ARP reply would come back. */
async function pinPeerNeighbour(pair: VethPair): Promise<void> {
  const mac = (await pair.inNs(['cat', `/sys/class/net/${pair.peerDev}/address`])).stdout.trim();
  await run(['ip', 'neigh', 'replace', pair.peerIp, 'lladdr', mac, 'dev', pair.hostDev, 'nud', 'permanent']);
}

describe('perf.icmp-rtt', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('every program of icmprtt.bpf.o passes the verifier; raw_tp, tp_btf, tracepoint in that order', () => {
    const plan = attachPlan();
    assert.deepEqual(plan.map((s) => s.method), ['raw_tracepoint', 'tp_btf', 'tracepoint']);
    const all = plan.flatMap((s) => s.programs);
    assert.equal(all.length, 6);
    const o = BpfObject.open(bpfObjectPath('icmprtt'), { autoload: Object.fromEntries(all.map((p) => [p, true])), globals: { targ_ifindex: 1 } });
    try {
      o.load();
      assert.deepEqual(o.programs().map((p) => p.name).sort(), [...all].sort());
    } finally {
      o.close();
    }
  });

  it('fails with a clear reason for a device that does not exist', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-icmprtt-nodev-');
    const f = await runProbe(perfIcmpRtt, request({ dev: 'ebnosuchdev0', duration: '200ms' }), b.opts('nodev'));
    assert.equal(f.status, 'error');
    assert.match(f.reason ?? '', /no device ebnosuchdev0 in this network namespace/);
  });

  it('20 ms of netem on the peer: the host RTT is ~20 ms, its own answer time is not, the peer\'s is; and replays', async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    await pair.inNs(['tc', 'qdisc', 'add', 'dev', pair.peerDev, 'root', 'netem', 'delay', `${NETEM_MS}ms`]);
    const b = await tempBundle(t, 'ebpfnet-icmprtt-delay-');
    const hostParams = { dev: pair.hostDev, duration: '3s' };
    const peerParams = { dev: pair.peerDev, netns: pair.ns, direction: 'incoming', duration: '3s' };
    // The host's own pings only: the kernel filters leave the peer's pings out.
    const outParams = { dev: pair.hostDev, dst_ip: pair.peerIp, direction: 'outgoing', duration: '3s' };
    const [hostRun] = await startProbe(b, 'host', hostParams);
    const [peerRun] = await startProbe(b, 'peer', peerParams);
    const [outRun] = await startProbe(b, 'out', outParams);
    const [pinged] = await Promise.all([pair.ping({ count: 20, interval: 0.05, wait: 2 }), pingFromPeer(pair, 10)]);
    const [host, peer, outOnly] = await Promise.all([hostRun!, peerRun!, outRun!]);
    for (const f of [host, peer, outOnly]) assert.equal(f.status, 'ok', f.reason);
    assert.equal(pinged.received, 20);

    // On the host's side of the veth: its 20 pings, timed from request out to reply in.
    const data = host.data as IcmpRttData;
    assert.equal(data.method, 'raw_tracepoint');
    assert.equal(data.attach.length, 2);
    assert.ok(data.overhead && !data.overhead.stopped, JSON.stringify(data.overhead));
    assert.equal(data.peers.length, 2, JSON.stringify(data.peers));
    const out = peerOf(host, 'outgoing');
    assert.deepEqual([out.local, out.peer], [pair.hostIp, pair.peerIp]);
    assert.deepEqual([out.requests, out.replies, out.lost, out.inFlight, out.unmatchedReplies], [20, 20, 0, 0, 0]);
    ordered(out);
    assert.ok(out.minMs >= NETEM_MS, `min ${out.minMs} ms ≥ the injected ${NETEM_MS} ms`);
    assert.ok(Math.abs(out.meanMs - NETEM_MS) <= SLACK_MS, `mean ${out.meanMs} ms within ${SLACK_MS} ms of ${NETEM_MS} ms`);
    // 20 ms lies in the log2 bucket [16.384, 32.768) ms: its upper bound capped at the exact max.
    assert.deepEqual(out.buckets.map((x) => [x.lowUs, x.highUs]), [[16384, 32768]]);
    assert.ok(out.p50Ms >= NETEM_MS && out.p50Ms <= NETEM_MS + SLACK_MS, `p50 ${out.p50Ms} ms`);
    assert.equal(out.p99Ms, out.maxMs);
    // The peer's 10 pings, answered by the host at once: the netem delay is not in them.
    const inc = peerOf(host, 'incoming');
    assert.deepEqual([inc.local, inc.peer], [pair.hostIp, pair.peerIp]);
    assert.deepEqual([inc.requests, inc.replies, inc.lost], [10, 10, 0]);
    ordered(inc);
    assert.ok(inc.maxMs < NETEM_MS / 2, `host answer time max ${inc.maxMs} ms`);
    assert.deepEqual(data.worst, { local: pair.hostIp, peer: pair.peerIp, direction: 'outgoing', lost: 0, p99Ms: out.p99Ms });
    assert.equal(data.requests, 30);
    assert.equal(data.lost, 0);
    assert.equal(host.severity, 'info');
    assert.match(host.summary, new RegExp(`^${pair.hostIp} → ${pair.peerIp} \\(outgoing\\): 20 requests, 0 lost, RTT p50 2\\d ms`));
    assert.equal(host.charts.filter((c) => c.kind === 'histogram').length, 2);
    assert.equal(host.tables[0]!.rows.length, 2);

    // Inside the namespace, incoming only: the peer answered the host's 20 pings, its netem
    // (before its driver) in its answer time; its own pings to the host are left out.
    const pdata = peer.data as IcmpRttData;
    assert.equal(pdata.peers.length, 1, JSON.stringify(pdata.peers));
    const ans = peerOf(peer, 'incoming');
    assert.deepEqual([ans.local, ans.peer], [pair.peerIp, pair.hostIp]);
    assert.deepEqual([ans.requests, ans.replies, ans.lost], [20, 20, 0]);
    assert.ok(Math.abs(ans.meanMs - NETEM_MS) <= SLACK_MS, `peer answer time mean ${ans.meanMs} ms`);
    assert.ok(ans.meanMs <= out.meanMs, `answer ${ans.meanMs} ms within the RTT ${out.meanMs} ms`);

    const filtered = outOnly.data as IcmpRttData;
    assert.equal(filtered.peers.length, 1, JSON.stringify(filtered.peers));
    assert.deepEqual([filtered.peers[0]!.direction, filtered.peers[0]!.requests, filtered.peers[0]!.replies], ['outgoing', 20, 20]);

    await replaySame(b, 'host', hostParams, host);
    await replaySame(b, 'peer', peerParams, peer);
  });

  it('100% loss on the peer: every request is lost, none in flight, critical; and replays', async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    await pinPeerNeighbour(pair);
    await pair.inNs(['tc', 'qdisc', 'add', 'dev', pair.peerDev, 'root', 'netem', 'loss', '100%']);
    const b = await tempBundle(t, 'ebpfnet-icmprtt-loss-');
    const params = { dev: pair.hostDev, dst_ip: pair.peerIp, duration: '2s', timeout: '500ms' };
    const [probe] = await startProbe(b, 'loss', params);
    const pinged = await pair.ping({ count: 20, interval: 0.05, wait: 1, deadline: 1 });
    const f = await probe!;
    assert.equal(f.status, 'ok', f.reason);
    assert.equal(pinged.received, 0);
    const data = f.data as IcmpRttData;
    assert.equal(data.peers.length, 1, JSON.stringify(data.peers));
    const p = peerOf(f, 'outgoing');
    assert.deepEqual([p.requests, p.replies, p.lost, p.inFlight, p.lossRatio], [pinged.transmitted, 0, pinged.transmitted, 0, 1]);
    assert.ok(pinged.transmitted >= 15, `ping sent ${pinged.transmitted}`);
    assert.equal(data.lost, pinged.transmitted);
    assert.equal(f.severity, 'critical');
    assert.equal(f.charts.length, 0, 'no RTT to chart');
    assert.match(f.summary, new RegExp(`^${pair.hostIp} → ${pair.peerIp} \\(outgoing\\): ${pinged.transmitted} requests, ${pinged.transmitted} lost$`));
    await replaySame(b, 'loss', params, f);
  });
});
