// qdisc.drops under a UDP burst (issue #3 item 6): a tbf with a tiny limit on the host side of
// a veth pair drops most of a burst of datagrams sent from the root namespace to the peer in
// the test's namespace. The probe's kernel count of QDISC_* drops on that device must equal
// tc's drop delta exactly, and both must equal what `tc -s` says when read by the test itself.
//
// Why exact: both counters are bumped for the same packets, at enqueue (tc's qdisc drop
// counter, then the free with the qdisc's drop reason), and nothing else crosses the tbf:
// IPv6 is off and both neighbours are static (no ARP). The burst lies wholly between the
// probe's two tc reads (checked from the evidence's timestamps, not assumed), and its drops
// happen inside sendmsg, before the send callback, so no drop can fall outside the window.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { liveHandles } from '../../engine/native/guard.js';
import { readEvidence } from '../../engine/probe/evidence.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params } from '../../engine/probe/types.js';
import { qdiscDrops, type QdiscDropsData } from '../../probes/qdisc.drops/probe.js';
import { tempBundle } from '../helpers/bundle.js';
import { createVethPair, run, cannotBuildWith } from '../helpers/netns.js';

const cannot = await cannotBuildWith([['tc', '-V'], 'iproute2']);

/** Datagrams in the burst, and their payload (1042-byte frames: two fit the tbf's 3000-byte queue). */
const N = 400;
const PAYLOAD = 1000;
const PORT = 9; // discard: nothing listens in the namespace, the peer device still counts them

/** Sends `count` datagrams back to back; resolves once every send completed (the enqueue, or the drop, is done by then). */
async function udpBurst(to: string, count: number): Promise<{ sent: number; startedAt: number; endedAt: number }> {
  const socket = createSocket('udp4');
  const payload = Buffer.alloc(PAYLOAD, 0x5a);
  try {
    const startedAt = Date.now();
    const sends = Array.from(
      { length: count },
      () => new Promise<void>((resolve, reject) => socket.send(payload, PORT, to, (err) => (err ? reject(err) : resolve()))),
    );
    await Promise.all(sends);
    return { sent: sends.length, startedAt, endedAt: Date.now() };
  } finally {
    socket.close();
  }
}

/** The drops tc counts on the device's root qdisc, read by the test itself. */
async function tcDrops(dev: string): Promise<{ kind: string; drops: number; backlog: number }> {
  const r = await run(['tc', '-s', '-j', 'qdisc', 'show', 'dev', dev, 'root']);
  const q = (JSON.parse(r.stdout) as Array<{ kind: string; root?: boolean; drops: number; backlog: number }>).find((x) => x.root);
  assert.ok(q, `no root qdisc on ${dev}: ${r.stdout}`);
  return { kind: q.kind, drops: q.drops, backlog: q.backlog };
}

describe('qdisc.drops under a UDP burst', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('tbf with a tiny limit: the kernel QDISC_* drops equal the tc -s drop delta exactly', async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    const hostMac = (await readFile(`/sys/class/net/${pair.hostDev}/address`, 'utf8')).trim();
    const peerMac = (await pair.inNs(['cat', `/sys/class/net/${pair.peerDev}/address`])).stdout.trim();
    await run(['ip', 'neigh', 'replace', pair.peerIp, 'lladdr', peerMac, 'dev', pair.hostDev, 'nud', 'permanent']);
    await pair.inNs(['ip', 'neigh', 'replace', pair.hostIp, 'lladdr', hostMac, 'dev', pair.peerDev, 'nud', 'permanent']);
    await run(['tc', 'qdisc', 'add', 'dev', pair.hostDev, 'root', 'handle', '9:', 'tbf', 'rate', '1mbit', 'burst', '5000', 'limit', '3000']);

    const b = await tempBundle(t, 'ebpfnet-qdrops-udp-');
    const params = { dev: pair.hostDev, duration: '3s' };
    const rxBefore = await pair.peerCounter('rx_packets');
    const request = { step: 's', alias: qdiscDrops.id, probe: qdiscDrops.id, params: params as unknown as Params };
    const probe = runProbe(qdiscDrops, request, b.opts('live'));
    // Attached (our addon holds a link), then a moment for the probe's first tc read.
    for (let i = 0; liveHandles().links === 0; i++) {
      assert.ok(i < 500, 'the probe did not attach within 5 s');
      await delay(10);
    }
    await delay(400);
    const tcBefore = await tcDrops(pair.hostDev);
    const burst = await udpBurst(pair.peerIp, N);
    await delay(200); // the tbf drains its queue (3000 bytes at 1 Mbit/s: 24 ms)
    const tcAfter = await tcDrops(pair.hostDev);
    const f = await probe;
    assert.equal(f.status, 'ok', f.reason);
    const rxDelta = (await pair.peerCounter('rx_packets')) - rxBefore;

    // The burst was inside the probe's window: after its first tc read ended, before its last began.
    const records = (await readEvidence(b.dir('live'))).records;
    const start = records.find((r) => r.name === `tc-start-${pair.hostDev}`);
    const end = records.find((r) => r.name === `tc-end-${pair.hostDev}`);
    assert.ok(start && end, `tc reads missing: ${records.map((r) => r.name).join(', ')}`);
    assert.ok(start.at + start.durationMs < burst.startedAt, `the burst began (${burst.startedAt}) before the probe's first tc read ended (${start.at} + ${start.durationMs} ms)`);
    assert.ok(burst.endedAt < end.at, `the burst ended (${burst.endedAt}) after the probe's last tc read began (${end.at})`);

    const data = f.data as QdiscDropsData;
    const dev = data.devices.find((d) => d.dev === pair.hostDev);
    assert.ok(dev, JSON.stringify(data.devices));
    const expected = tcAfter.drops - tcBefore.drops;
    t.diagnostic(
      `${burst.sent} datagrams in ${burst.endedAt - burst.startedAt} ms: tc -s ${expected} drops, the probe's tc delta ${dev.tcDrops}, kernel ${JSON.stringify(dev.kernelReasons)}, other reasons ${JSON.stringify(dev.otherReasons)}, peer received ${rxDelta}`,
    );
    assert.equal(burst.sent, N);
    assert.equal(tcAfter.backlog, 0, 'the tbf drained');
    // tc -s read by the test and by the probe agree, and the burst was mostly, not wholly, dropped.
    assert.equal(dev.tcDrops, expected, JSON.stringify(dev));
    assert.ok(expected > 0 && expected < burst.sent, `tc drops ${expected} of ${burst.sent}`);
    assert.deepEqual(dev.dropper, { kind: 'tbf', handle: '9:', drops: expected });
    // Every drop is a datagram the peer did not get, and every datagram the peer did not get a drop.
    assert.equal(expected + rxDelta, burst.sent, `tc drops ${expected} + peer received ${rxDelta} != sent ${burst.sent}`);
    // The kernel freed each of them with one QDISC_* reason (as this kernel names it): exactly tc's count.
    const reasons = Object.keys(dev.kernelReasons);
    assert.equal(reasons.length, 1, JSON.stringify(dev.kernelReasons));
    assert.match(reasons[0]!, /^QDISC_/);
    assert.equal(dev.kernelReasons[reasons[0]!], expected, JSON.stringify(dev));
    assert.equal(dev.kernelDrops, expected);
    assert.equal(dev.agree, true);
    assert.equal(data.agree, true);
    assert.match(f.summary, new RegExp(`^tbf 9: on ${pair.hostDev}: tc counted ${expected} drops in 3s, the kernel ${expected} \\(${reasons[0]} ${expected}\\): agree`));
    assert.equal(f.severity, 'critical');

    // The recorded evidence answers the same.
    const replay = await runProbe(qdiscDrops, request, b.opts('replay', { replayFrom: b.dir('live') }));
    assert.equal(replay.status, 'ok', replay.reason);
    assert.deepEqual(replay.data, f.data);
    assert.equal(replay.summary, f.summary);
  });
});
