// other.udp-path on a LAN inside namespaces (test/helpers/bridge-lan.ts): host A → veth →
// bridge br0 (in a middle namespace) → veth → host B, where a UDP listener reads. A sends N
// datagrams of the flow and N of another port; every hop of the flow's path counts exactly N,
// in the real order (A's queue and xmit, the bridge port's receive, the other port's queue and
// xmit, B's receive, the socket delivery, the free), and the other port is not counted. Then an
// nftables rule in B's input drops the flow: the path ends at kfree_skb with NETFILTER_DROP and
// count N. Each finding replays from its evidence. Needs root, iproute2, nftables and python3.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params } from '../../engine/probe/types.js';
import { hasTracepoint } from '../../engine/host/tracefs.js';
import { attachPlan, recentEntries } from '../../probes/other.udp-path/attach.js';
import { globalsOf, readHopsAndPairs } from '../../probes/other.udp-path/collect.js';
import type { UdpPathData } from '../../probes/other.udp-path/findings.js';
import { otherUdpPath } from '../../probes/other.udp-path/probe.js';
import { createBridgeLan, type BridgeLan, type LanHost } from '../helpers/bridge-lan.js';
import { tempBundle } from '../helpers/bundle.js';
import { run, type TeardownHost, cannotBuildWith } from '../helpers/netns.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { flavoursInOrder, TP_BTF_FIRST, withAllLoaded } from '../helpers/attach-plan.js';
import { assertReplaysWithoutBpf } from '../helpers/replay.js';

const cannot = await cannotBuildWith([['nft', '--version'], 'nftables'], [['python3', '--version'], 'python3']);

const N = 20;
const SPORT = 40001;
const DPORT = 40002;
const OTHER_PORT = 40003;
const A_IP = '10.251.7.2';
const B_IP = '10.251.7.3';
/** Whether the kernel has the socket's tracepoints (6.3+): before, a read datagram ends at the consume_skb of its read. */
const SOCKET_STAGE = await hasTracepoint('sock:sk_data_ready');

/**
 * The path of one datagram delivered from host `from` to host `to` through bridge ports `inPort`
 * then `outPort`, in order: hook, device, namespace (a: host A, mid: the bridge's, b: host B).
 */
function deliveredPath(from: 'a' | 'b', to: 'a' | 'b', inPort: string, outPort: string): string[][] {
  return [
    ['net_dev_queue', 'eth0', from],
    ['net_dev_start_xmit', 'eth0', from],
    ['netif_receive_skb', inPort, 'mid'],
    ['net_dev_queue', outPort, 'mid'],
    ['net_dev_start_xmit', outPort, 'mid'],
    ['netif_receive_skb', 'eth0', to],
    ...(SOCKET_STAGE ? [['sk_data_ready', '-', to], ['sock_recv_length', '-', to]] : [['consume_skb', '-', '-']]),
  ];
}

const DELIVERED_PATH = deliveredPath('a', 'b', 'p1', 'p2');

/** Reads datagrams on host B's ports until killed, echoing those of the first; prints `ready` once bound. */
const LISTENER = `
import select, socket, sys
socks = []
for port in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('0.0.0.0', int(port)))
    socks.append(s)
print('ready', flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        data, addr = s.recvfrom(65535)
        if s is socks[0]:
            s.sendto(data, addr)
`;

/** Sends `n` datagrams from A_IP:sport to B_IP:dport, 10 ms apart; with `echo`, reads each answer (1 s at most). */
const SENDER = `
import socket, sys, time
sport, dport, n, echo = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == '1'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('${A_IP}', sport))
s.settimeout(1)
for i in range(n):
    s.sendto(b'x' * 64, ('${B_IP}', dport))
    if echo:
        try:
            s.recv(65535)
        except socket.timeout:
            pass
    time.sleep(0.01)
`;

async function lan(t: TeardownHost): Promise<{ lan: BridgeLan; a: LanHost; b: LanHost; listener: ChildProcess }> {
  const l = await createBridgeLan(t, '10.251.7', [
    { ip: A_IP, mac: '02:00:00:07:00:02' },
    { ip: B_IP, mac: '02:00:00:07:00:03' },
  ]);
  const [a, b] = l.hosts as [LanHost, LanHost];
  // Neighbours known up front: no ARP in the window, and the bridge has learned both MACs.
  await a.inNs(['ping', '-c', '1', '-W', '2', B_IP]);
  return { lan: l, a, b, listener: await startListener(t, b) };
}

async function startListener(t: TeardownHost, b: LanHost): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', b.ns, 'python3', '-c', LISTENER, String(DPORT), String(OTHER_PORT)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => void child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the listener did not start within 10 s')), 10_000);
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && (clearTimeout(timer), resolve()));
    child.on('exit', (code) => reject(new Error(`the listener exited (${code})`)));
  });
  return child;
}

/** N datagrams of the flow (with `echo`, each answer awaited) and N to another port of B. */
async function send(a: LanHost, echo = true): Promise<void> {
  const sender = (sport: number, dport: number, wait: boolean) => a.inNs(['python3', '-c', SENDER, String(sport), String(dport), String(N), wait ? '1' : '0']);
  await Promise.all([sender(SPORT, DPORT, echo), sender(SPORT + 10, OTHER_PORT, false)]);
  await new Promise((resolve) => setTimeout(resolve, 200)); // the listener reads the last ones
}

function flowParams(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { src_ip: A_IP, dst_ip: B_IP, src_port: SPORT, dst_port: DPORT, duration: '1500ms', ...extra };
}

async function runWithTraffic(b: Awaited<ReturnType<typeof tempBundle>>, name: string, params: Record<string, unknown>, traffic: () => Promise<void>): Promise<Finding> {
  const request = { step: 'path', alias: 'path', probe: otherUdpPath.id, params: params as Params };
  const f = await runProbe(withTrafficInWindow(otherUdpPath, traffic), request, b.opts(name));
  assert.equal(f.status, 'ok', f.reason);
  return f;
}

/** The hops as [hook, device, namespace tag], the namespaces named by `tags`. */
function hopsOf(d: UdpPathData, tags: Record<string, string>): Array<[string, string, string, number]> {
  return d.hops.map((h) => [h.hook, h.device, tags[h.netns] ?? h.netns, h.packets]);
}

describe('other.udp-path', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('every program of other.udp-path.bpf.o whose tracepoint this kernel has passes the verifier; tp_btf, raw_tp, tracepoint in that order', () => {
    const all = flavoursInOrder(attachPlan(SOCKET_STAGE), TP_BTF_FIRST);
    // The socket's programs cannot load where the kernel lacks their tracepoints (before 6.3).
    const socketOnly = flavoursInOrder(attachPlan(true), TP_BTF_FIRST).filter((p) => !all.includes(p));
    assert.deepEqual([all.length, socketOnly.length], SOCKET_STAGE ? [24, 0] : [18, 6]);
    withAllLoaded('other.udp-path', all, {}, undefined, socketOnly);
  });

  it('each flavour (tp_btf, raw_tp, classic tracepoint), loaded alone, attaches and counts every hop of the flow, in the CPUs\' recent entries or straight in pairs', async (t) => {
    const { a } = await lan(t);
    const setup = { srcIp: A_IP, dstIp: B_IP, srcPort: SPORT, dstPort: DPORT, both: false, samples: 0, timeoutMs: 1000 };
    // `recent` sized per CPU (as the probe sizes it), or one entry: then nearly every hop counts in `pairs`.
    for (const [sizing, recent] of [['per CPU', recentEntries().recent], ['one entry', 1]] as const) {
      for (const step of attachPlan(SOCKET_STAGE)) {
        const what = `${step.method}, recent ${sizing}`;
        const o = BpfObject.open(bpfObjectPath('other.udp-path'), { globals: globalsOf(setup), maxEntries: { recent } });
        try {
          for (const p of o.programs()) p.autoload = step.programs.includes(p.name);
          o.load();
          step.attach(o);
          await send(a);
          const counts = readHopsAndPairs(o).hops.map((h) => h.packets);
          assert.deepEqual(counts, DELIVERED_PATH.map(() => N), what);
          const held = o.map('recent').readAllDecoded<number, { v: { count: number } }>().reduce((n, e) => n + e.value.v.count, 0);
          if (sizing === 'per CPU') assert.ok(held > 0, `${what}: the recent entries count`);
        } finally {
          o.close();
        }
      }
    }
  });

  it('refuses to run without the whole flow', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-udppath-noflow-');
    const f = await runProbe(otherUdpPath, { step: 'path', alias: 'path', probe: otherUdpPath.id, params: { src_ip: A_IP, dst_ip: B_IP, src_port: SPORT } as Params }, b.opts('noflow'));
    assert.equal(f.status, 'error');
    assert.match(f.reason ?? '', /dst_port.*missing/);
    const v6 = await runProbe(otherUdpPath, { step: 'path', alias: 'path', probe: otherUdpPath.id, params: { src_ip: 'fd00::1', dst_ip: B_IP, src_port: SPORT, dst_port: DPORT, duration: 200 } as Params }, b.opts('v6'));
    assert.equal(v6.status, 'error');
    assert.match(v6.reason ?? '', /fd00::1: only IPv4 addresses can be filtered/);
  });

  it('a delivered flow: every hop counts N in the real order, the other port is not counted, the answers only with both; and replays', async (t) => {
    const { lan: l, a, b: hostB, listener } = await lan(t);
    const tags = { [a.ns]: 'a', [l.ns]: 'mid', [hostB.ns]: 'b' };
    const b = await tempBundle(t, 'ebpfnet-udppath-ok-');
    const params = flowParams();
    const f = await runWithTraffic(b, 'ok', params, () => send(a));
    const d = f.data as UdpPathData;
    t.diagnostic(f.summary);
    t.diagnostic(`${d.method} (${d.btf}): load ${d.loadMs} ms, attach ${d.attach.map((x) => x.attachMs).join(' + ')} ms`);
    t.diagnostic(JSON.stringify(hopsOf(d, tags)));
    t.diagnostic(JSON.stringify(d.pairs.map((p) => [p.from, p.to, p.count, p.meanUs, p.maxUs])));
    assert.equal(d.method, 'tp_btf');
    assert.deepEqual(hopsOf(d, tags), DELIVERED_PATH.map(([hook, dev, ns]) => [hook, dev, ns, N]));
    assert.ok(d.hops.every((h) => h.way === 'forward'), 'the answers are not followed without both');
    // Consecutive hops, N packets each, and nothing else.
    assert.deepEqual(d.pairs.map((p) => [p.from, p.to, p.count]), DELIVERED_PATH.slice(1).map((_, i) => [i, i + 1, N]));
    for (const p of d.pairs) assert.ok(p.meanUs <= p.maxUs && p.buckets.reduce((s, x) => s + x.count, 0) === N, JSON.stringify(p));
    assert.deepEqual([d.packets.forward, d.delivered.forward, d.dropped, d.lostCount], [N, N, 0, 0]);
    assert.equal(d.verdict, 'delivered');
    assert.equal(d.findings[0], 'delivered');
    assert.ok(d.slowest && d.findings[1] === `slowest ${d.slowest.from} → ${d.slowest.to}`, JSON.stringify(d.findings));
    // The first 8 packets' journeys: every hop in path order, time since the first hop rising.
    assert.equal(d.samples.length, 8);
    for (const s of d.samples) {
      assert.deepEqual(s.hops.map((h) => h.hop), d.hops.map((h) => h.label));
      assert.ok(s.hops.every((h, i) => i === 0 ? h.atUs === 0 : h.atUs >= s.hops[i - 1]!.atUs), JSON.stringify(s));
    }
    assert.equal(d.lostEvents, 0);
    assert.equal(f.severity, 'info');
    assert.deepEqual(d.notes.length, SOCKET_STAGE ? 0 : 1, d.notes.join(' / '));
    assert.match(f.summary, new RegExp(`^UDP ${A_IP}:${SPORT} → ${B_IP}:${DPORT}: ${N} packets over ${DELIVERED_PATH.length} hops, ${N} delivered; slowest `));
    await assertReplaysWithoutBpf(otherUdpPath, params, b, 'ok', f);

    // Both ways: B's echoes retrace the path backwards to A's socket.
    const bothParams = flowParams({ both: true, samples: 0 });
    const both = await runWithTraffic(b, 'both', bothParams, () => send(a));
    const bd = both.data as UdpPathData;
    t.diagnostic(JSON.stringify(hopsOf(bd, tags)));
    const reversePath = deliveredPath('b', 'a', 'p2', 'p1');
    assert.deepEqual(hopsOf(bd, tags), [...DELIVERED_PATH, ...reversePath].map(([hook, dev, ns]) => [hook, dev, ns, N]));
    assert.deepEqual(bd.hops.map((h) => h.way), [...DELIVERED_PATH.map(() => 'forward'), ...reversePath.map(() => 'reverse')]);
    assert.deepEqual([bd.packets, bd.delivered, bd.verdict], [{ forward: N, reverse: N }, { forward: N, reverse: N }, 'delivered']);
    assert.equal(bd.samples.length, 0);
    await assertReplaysWithoutBpf(otherUdpPath, bothParams, b, 'both', both);

    // The application stops reading: the datagrams stay queued on its socket.
    listener.kill('SIGSTOP');
    t.after(() => void listener.kill('SIGCONT'));
    const stuck = await runWithTraffic(b, 'stuck', params, () => send(a, false));
    const sd = stuck.data as UdpPathData;
    t.diagnostic(stuck.summary);
    t.diagnostic(JSON.stringify(hopsOf(sd, tags)));
    // Queued on B's socket (sk_data_ready), or received by B (before 6.3), and never read.
    const unread = SOCKET_STAGE ? 7 : 6;
    assert.deepEqual(hopsOf(sd, tags), DELIVERED_PATH.slice(0, unread).map(([hook, dev, ns]) => [hook, dev, ns, N]));
    const queued = sd.hops[unread - 1]!.label;
    const read = SOCKET_STAGE ? `sock_recv_length -@${hostB.ns}` : `a socket read @${hostB.ns} (not seen before 6.3)`;
    assert.deepEqual(sd.lost, [{ way: 'forward', after: queued, before: read, count: N }]);
    assert.deepEqual([sd.verdict, sd.findings[0], sd.delivered.forward], ['lost', `lost between ${queued} and ${read}`, 0]);
    assert.equal(stuck.severity, 'critical');
    await assertReplaysWithoutBpf(otherUdpPath, params, b, 'stuck', stuck);
  });

  it('an nftables drop in B\'s input: the path ends at kfree_skb NETFILTER_DROP ×N; and replays', async (t) => {
    const { lan: l, a, b: hostB } = await lan(t);
    // A qdisc on A's eth0 (veth has none; tbf, which no packet bypasses): the path gains its dequeue.
    await a.inNs(['tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', '100mbit', 'burst', '32k', 'latency', '50ms']);
    await hostB.inNs(['nft', `add table ip ebpfnet_udppath; add chain ip ebpfnet_udppath in { type filter hook input priority 0; }; add rule ip ebpfnet_udppath in udp dport ${DPORT} drop`]);
    const tags = { [a.ns]: 'a', [l.ns]: 'mid', [hostB.ns]: 'b' };
    const b = await tempBundle(t, 'ebpfnet-udppath-drop-');
    const params = flowParams({ samples: 2 });
    const f = await runWithTraffic(b, 'drop', params, () => send(a, false));
    const d = f.data as UdpPathData;
    t.diagnostic(f.summary);
    t.diagnostic(JSON.stringify(hopsOf(d, tags)));
    t.diagnostic(JSON.stringify(d.drops));
    const path = [DELIVERED_PATH[0]!, ['qdisc_dequeue', 'eth0', 'a'], ...DELIVERED_PATH.slice(1, 6), ['kfree_skb', 'eth0', 'b']];
    assert.deepEqual(hopsOf(d, tags), path.map(([hook, dev, ns]) => [hook, dev, ns, N]));
    assert.deepEqual(d.pairs.map((p) => [p.from, p.to, p.count]), path.slice(1).map((_, i) => [i, i + 1, N]));
    assert.equal(d.drops.length, 1);
    const drop = d.drops[0]!;
    assert.deepEqual([drop.reason, drop.count, drop.device, drop.hop, drop.after], ['NETFILTER_DROP', N, 'eth0', 7, d.hops[6]!.label]);
    assert.doesNotMatch(drop.location, /^0x/, 'the drop location is a kernel symbol');
    assert.deepEqual([d.packets.forward, d.delivered.forward, d.dropped, d.lostCount], [N, 0, N, 0]);
    assert.equal(d.verdict, 'dropped');
    assert.equal(d.findings[0], `dropped at ${d.hops[7]!.label} (NETFILTER_DROP)`);
    assert.equal(d.samples.length, 2);
    assert.equal(d.samples[0]!.hops.at(-1)!.reason, 'NETFILTER_DROP');
    assert.equal(f.severity, 'critical');
    assert.match(f.summary, new RegExp(`: ${N} packets over 8 hops, dropped at kfree_skb eth0@\\S+ \\(NETFILTER_DROP\\)`));
    await assertReplaysWithoutBpf(otherUdpPath, params, b, 'drop', f);
  });
});
