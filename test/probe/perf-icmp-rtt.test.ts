// perf.icmp-rtt in a namespace joined to the host by a veth pair. This kernel has no netem,
// so the faults are made in the namespace: a slow peer (the kernel's echo replies off, a
// user-space responder answering each request 20 ms late), and a firewall dropping the peer's
// replies (nftables). The host's pings then come back in ~20 ms while the host answers the
// peer's pings at once; inside the namespace the peer's own answer time carries the 20 ms; with
// the replies dropped every request is lost. Each finding replays from its evidence. Needs
// root, iproute2, iputils-ping, nftables and python3 (scripts/setup.sh installs them).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { liveHandles } from '../../engine/native/guard.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params } from '../../engine/probe/types.js';
import { attachPlan, HOOKS } from '../../probes/perf.icmp-rtt/attach.js';
import { perfIcmpRtt, type IcmpRttData, type IcmpRttPeer } from '../../probes/perf.icmp-rtt/probe.js';
import { tempBundle, type TempBundle } from '../helpers/bundle.js';
import { createVethPair, run, type TeardownHost, type VethPair, cannotBuildWith } from '../helpers/netns.js';
import { flavoursInOrder, TP_BTF_FIRST, withAllLoaded } from '../helpers/attach-plan.js';
import { assertReplaysWithoutBpf } from '../helpers/replay.js';

const cannot = await cannotBuildWith([['nft', '--version'], 'nftables'], [['python3', '--version'], 'python3']);

/** How late the slow peer answers. */
const DELAY_MS = 20;
/** How far the probe's RTTs may be from ping's own (ping times its send path too). */
const SLACK_MS = 2;

/** ping's summary: `rtt min/avg/max/mdev = 20.1/20.5/21.0/0.2 ms`. */
function pingRtt(stdout: string): { minMs: number; avgMs: number } {
  const m = /= ([\d.]+)\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(stdout);
  assert.ok(m, `no rtt line in ping's output: ${stdout}`);
  return { minMs: Number(m[1]), avgMs: Number(m[2]) };
}

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

/** Answers ICMP echo requests `argv[1]` seconds late from a raw socket (threads: one per request). */
const SLOW_RESPONDER = `
import socket, struct, sys, threading, time
delay = float(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def checksum(b):
    b += b'\\0' * (len(b) % 2)
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff)
    return ~(t + (t >> 16)) & 0xffff
def answer(icmp, addr):
    time.sleep(delay)
    reply = b'\\0\\0\\0\\0' + icmp[4:]
    s.sendto(reply[:2] + struct.pack('!H', checksum(reply)) + reply[4:], addr)
print('ready', flush=True)
while True:
    data, addr = s.recvfrom(65535)
    icmp = data[(data[0] & 15) * 4:]
    if icmp[0] == 8:
        threading.Thread(target=answer, args=(icmp, addr), daemon=True).start()
`;

/**
 * Makes the peer slow: its kernel stops answering pings (a per-namespace sysctl) and a
 * user-space responder answers each one `ms` late. Stopped when the test ends.
 */
async function slowPeer(t: TeardownHost, pair: VethPair, ms: number): Promise<void> {
  await pair.inNs(['sysctl', '-q', '-w', 'net.ipv4.icmp_echo_ignore_all=1']);
  const child = spawn('ip', ['netns', 'exec', pair.ns, 'python3', '-c', SLOW_RESPONDER, String(ms / 1000)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => void child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the slow responder did not start within 10 s')), 10_000);
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && (clearTimeout(timer), resolve()));
    child.on('exit', (code) => reject(new Error(`the slow responder exited (${code})`)));
  });
}

describe('perf.icmp-rtt', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('every program of perf.icmp-rtt.bpf.o passes the verifier; tp_btf, raw_tp, tracepoint in that order', () => {
    const all = flavoursInOrder(attachPlan(), TP_BTF_FIRST);
    assert.equal(all.length, 6);
    withAllLoaded('perf.icmp-rtt', all, { targ_ifindex: 1 });
  });

  it('each flavour (tp_btf, raw_tp, classic tracepoint), loaded alone, attaches and matches every echo', async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    const ifindex = Number((await run(['cat', `/sys/class/net/${pair.hostDev}/ifindex`])).stdout.trim());
    for (const step of attachPlan()) {
      const o = BpfObject.open(bpfObjectPath('perf.icmp-rtt'), { globals: { targ_ifindex: ifindex, targ_dirs: 1 } });
      try {
        for (const p of o.programs()) p.autoload = step.programs.includes(p.name);
        o.load();
        step.attach(o);
        const pinged = await pair.ping({ count: 5, interval: 0.02, wait: 2 });
        assert.equal(pinged.received, 5);
        const entries = o.map('peers').readAllDecoded<unknown, { requests: number; matched: number }>();
        assert.equal(entries.length, 1, `${step.method}: one peer`);
        const v = entries[0]!.value;
        assert.deepEqual([v.requests, v.matched], [5, 5], step.method);
      } finally {
        o.close();
      }
    }
  });

  it('fails with a clear reason for a device that does not exist', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-icmprtt-nodev-');
    const f = await runProbe(perfIcmpRtt, request({ dev: 'ebnosuchdev0', duration: '200ms' }), b.opts('nodev'));
    assert.equal(f.status, 'error');
    assert.match(f.reason ?? '', /no device ebnosuchdev0 in this network namespace/);
  });

  it('a peer answering 20 ms late: the host RTT is ~20 ms, its own answer time is not, the peer\'s is; and replays', async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    await slowPeer(t, pair, DELAY_MS);
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
    assert.equal(data.method, 'tp_btf');
    assert.equal(data.attach.length, 2);
    assert.ok(data.overhead && !data.overhead.stopped, JSON.stringify(data.overhead));
    assert.equal(data.peers.length, 2, JSON.stringify(data.peers));
    const out = peerOf(host, 'outgoing');
    assert.deepEqual([out.local, out.peer], [pair.hostIp, pair.peerIp]);
    assert.deepEqual([out.requests, out.replies, out.lost, out.inFlight, out.unmatchedReplies], [20, 20, 0, 0, 0], JSON.stringify(out));
    ordered(out);
    // The responder sleeps at least 20 ms; a busy machine (or an emulated one) wakes it later.
    // ping's own RTTs are the independent count: they add only ping's send path to the kernel's.
    assert.ok(out.minMs >= DELAY_MS && out.meanMs >= DELAY_MS, `min ${out.minMs} ms, mean ${out.meanMs} ms, at least the injected ${DELAY_MS} ms`);
    const rtt = pingRtt(pinged.stdout);
    assert.ok(Math.abs(rtt.minMs - out.minMs) <= SLACK_MS && Math.abs(rtt.avgMs - out.meanMs) <= SLACK_MS, `min ${out.minMs} and mean ${out.meanMs} ms within ${SLACK_MS} ms of ping's ${rtt.minMs} and ${rtt.avgMs} ms`);
    // 20 ms lies in the log2 bucket [16.384, 32.768) ms; a percentile is the upper bound of its
    // bucket capped at the exact max: never below the true value, never above the max.
    const bucket = out.buckets.find((x) => x.lowUs === 16384 && x.highUs === 32768);
    assert.ok(bucket && bucket.count >= 18, `RTT buckets ${JSON.stringify(out.buckets)}`);
    assert.ok(out.p50Ms >= DELAY_MS && out.p50Ms <= Math.min(32.768, out.maxMs), `p50 ${out.p50Ms} ms`);
    // The peer's 10 pings, answered by the host at once: the slow responder is not in them.
    const inc = peerOf(host, 'incoming');
    assert.deepEqual([inc.local, inc.peer], [pair.hostIp, pair.peerIp]);
    assert.deepEqual([inc.requests, inc.replies, inc.lost], [10, 10, 0], JSON.stringify(inc));
    ordered(inc);
    assert.ok(inc.maxMs < DELAY_MS / 2, `host answer time max ${inc.maxMs} ms`);
    assert.deepEqual(data.worst, { local: pair.hostIp, peer: pair.peerIp, direction: 'outgoing', lost: 0, p99Ms: out.p99Ms });
    assert.equal(data.requests, 30);
    assert.equal(data.lost, 0);
    assert.equal(host.severity, 'info');
    assert.match(host.summary, new RegExp(`^${pair.hostIp} → ${pair.peerIp} \\(outgoing\\): 20 requests, 0 lost, RTT p50 \\d+ ms`)); // ~20 ms here, ~30 under the kernel lab's TCG
    assert.equal(host.charts.filter((c) => c.kind === 'histogram').length, 2);
    assert.equal(host.tables[0]!.rows.length, 2);

    // Inside the namespace, incoming only: the peer answered the host's 20 pings, its delay
    // in its answer time; its own pings to the host are left out.
    const pdata = peer.data as IcmpRttData;
    assert.equal(pdata.peers.length, 1, JSON.stringify(pdata.peers));
    const ans = peerOf(peer, 'incoming');
    assert.deepEqual([ans.local, ans.peer], [pair.peerIp, pair.hostIp]);
    assert.deepEqual([ans.requests, ans.replies, ans.lost], [20, 20, 0], JSON.stringify(ans));
    assert.ok(ans.minMs >= DELAY_MS, `peer answer time min ${ans.minMs} ms`);
    // The host's RTT is the peer's answer time plus two veth crossings: the same to within 1 ms.
    assert.ok(ans.meanMs <= out.meanMs && out.meanMs - ans.meanMs < 1, `answer ${ans.meanMs} ms vs RTT ${out.meanMs} ms`);

    t.diagnostic(`${data.method}: load ${data.loadMs} ms, attach ${data.attach.map((a) => a.attachMs).join(' + ')} ms; overhead ${JSON.stringify(data.overhead)}`);
    t.diagnostic(`outgoing RTT: min ${out.minMs} mean ${out.meanMs} max ${out.maxMs} ms; host answer time max ${inc.maxMs} ms; peer answer time mean ${ans.meanMs} ms`);
    const filtered = outOnly.data as IcmpRttData;
    assert.equal(filtered.peers.length, 1, JSON.stringify(filtered.peers));
    assert.deepEqual([filtered.peers[0]!.direction, filtered.peers[0]!.requests, filtered.peers[0]!.replies], ['outgoing', 20, 20], JSON.stringify(filtered.peers));

    await assertReplaysWithoutBpf(perfIcmpRtt, hostParams, b, 'host', host);
    await assertReplaysWithoutBpf(perfIcmpRtt, peerParams, b, 'peer', peer);
  });

  it('a firewall dropping the peer\'s replies: every request is lost, none in flight, critical; and replays', async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    await pair.inNs(['nft', 'add table ip ebpfnet_icmprtt; add chain ip ebpfnet_icmprtt out { type filter hook output priority 0; }; add rule ip ebpfnet_icmprtt out icmp type echo-reply drop']);
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
    t.diagnostic(`sent ${pinged.transmitted}: requests ${p.requests}, lost ${p.lost}, in flight ${p.inFlight}`);
    assert.equal(f.severity, 'critical');
    assert.equal(f.charts.length, 0, 'no RTT to chart');
    assert.match(f.summary, new RegExp(`^${pair.hostIp} → ${pair.peerIp} \\(outgoing\\): ${pinged.transmitted} requests, ${pinged.transmitted} lost$`));
    await assertReplaysWithoutBpf(perfIcmpRtt, params, b, 'loss', f);
  });
});
