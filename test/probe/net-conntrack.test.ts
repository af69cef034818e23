// net.conntrack in a namespace whose conntrack table is full: an nftables `ct state` rule makes
// the namespace track its input, nf_conntrack_max (global) is lowered to 8, and 100 UDP
// datagrams arrive from a new source port each inside the probe's window. Every datagram
// is either tracked (and reaches UDP, counted by the namespace's own SNMP counters) or
// dropped by conntrack: the probe's `drop` plus what UDP saw must be exactly 100; the tracker's
// NEW events (conntrack -E) are exactly the datagrams that got an entry, and the kernel's
// NETFILTER_DROP frees (skb:kfree_skb) exactly the ones it dropped. TCP segments without a
// handshake (a raw socket, strict TCP tracking in the namespace) count as `invalid`, one each,
// and make no event. The kprobe programs (nf_conntrack_in verdicts) pass the verifier and their
// recorded output parses; on a kernel without kprobes they are reported as not attached.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../engine/package-info.js';
import { before, describe, it } from 'node:test';
import { execa } from 'execa';
import { detectFeatures } from '../../engine/host/features.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params, RawRecord } from '../../engine/probe/types.js';
import { netConntrack, parseConntrackStat, type ConntrackData } from '../../probes/net.conntrack/probe.js';
import { parseEventLine, recordedEvents, summariseEvents } from '../../probes/net.conntrack/events.js';
import { CT_PROGRAMS, NETFILTER_CT_PROGRAMS, openConntrackObject, parseConntrackKprobes } from '../../probes/lib/conntrack-kprobes.js';
import { tempBundle } from '../helpers/bundle.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { createVethPair, type VethPair, cannotBuildWith } from '../helpers/netns.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { assertVerified } from '../helpers/attach-plan.js';

const CT_MAX = '/proc/sys/net/netfilter/nf_conntrack_max';
const SENT = 100;
const INVALID = 12;
const VALID = 5;
const MAX = 8;
const cannot = await cannotBuildWith([['nft', '--version'], 'nftables']);

const TCP_RAW = join(packageRoot(), 'test', 'fixtures', 'tcp-raw.py');
const KPROBES_FIXTURE = join(packageRoot(), 'test', 'fixtures', 'conntrack-kprobes.json');

const request = (params: Record<string, unknown>) => ({ step: 's', alias: 'ct', probe: netConntrack.id, params: params as Params });

/** One datagram from a new socket (a new source port, so a new conntrack entry) each. */
async function sendFlows(ip: string, port: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const s = createSocket('udp4');
    await new Promise<void>((resolve, reject) => s.send(Buffer.alloc(32), port, ip, (err) => (err ? reject(err) : resolve())));
    s.close();
  }
}

/** UDP datagrams the namespace's stack received (delivered or for a closed port). */
async function udpIn(pair: VethPair): Promise<number> {
  const { stdout } = await pair.inNs(['cat', '/proc/net/snmp']);
  const lines = stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const [head, values] = [lines[0]!.split(/\s+/), lines[1]!.split(/\s+/).map(Number)];
  return values[head.indexOf('InDatagrams')]! + values[head.indexOf('NoPorts')]!;
}

describe('net.conntrack', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('sums the per-CPU hex rows of /proc/net/stat/nf_conntrack; entries is one global count', () => {
    const text = [
      'entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart',
      '00000010  00000000 00000000 00000000 00000003 00000000 00000000 00000000 00000000 00000001 0000000a 00000002 00000000  00000000 00000000 00000000 00000000',
      '00000010  00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000014 00000000 00000000  00000000 00000000 00000000 00000005',
    ].join('\n');
    const s = parseConntrackStat(text);
    assert.equal(s.entries, 16);
    assert.equal(s.drop, 30);
    assert.equal(s.early_drop, 2);
    assert.equal(s.insert_failed, 1);
    assert.equal(s.invalid, 4);
    assert.equal(s.search_restart, 5);
    assert.throws(() => parseConntrackStat('garbage\n1 2 3'), /does not start with its header line/);
  });

  it(`a full table in a namespace: drop + what UDP received = the ${SENT} datagrams sent, and it replays`, async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    await execa('ip', ['netns', 'exec', pair.ns, 'nft', '-f', '-'], {
      input: 'table inet ebpfnet_ct { chain input { type filter hook input priority 0; policy accept; ct state new counter accept; }; }',
    });
    await pair.ping({ count: 1 }); // ARP resolved, and one ICMP entry in the table
    // The limit is every namespace's: a host whose own table tracks (OVS's ct, NAT, an earlier
    // test) would refuse these datagrams at its output (EPERM) before the namespace sees them.
    // Untracked on the host, only the namespace's table decides.
    const notrack = `ebpfnet_notrack_${process.pid}`;
    await execa('nft', ['-f', '-'], {
      input: `table ip ${notrack} { chain out { type filter hook output priority raw; ip daddr ${pair.peerIp} udp dport 9999 notrack; }; }`,
    });
    t.after(() => execa('nft', ['delete', 'table', 'ip', notrack], { reject: false }));
    const oldMax = readFileSync(CT_MAX, 'utf8').trim();
    t.after(() => writeFileSync(CT_MAX, oldMax));
    writeFileSync(CT_MAX, String(MAX));
    const b = await tempBundle(t);
    const before = await udpIn(pair);
    const def = withTrafficInWindow(netConntrack, () => sendFlows(pair.peerIp, 9999, SENT));
    const f = await runProbe(def, request({ netns: pair.ns, duration: '1s' }), b.opts('live'));
    writeFileSync(CT_MAX, oldMax);
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as ConntrackData;
    const received = (await udpIn(pair)) - before;
    assert.equal(data.netns, pair.ns);
    assert.equal(data.max, MAX);
    assert.ok(data.count <= MAX, `count ${data.count}`);
    assert.equal(data.full, true);
    assert.ok(data.drops > SENT / 2, `drop ${data.drops}`);
    assert.equal(data.drops + received, SENT, `drop ${data.drops} + received ${received}`);
    assert.equal(data.losses[0]?.stat, 'drop');
    assert.equal(f.severity, 'critical');
    assert.match(f.summary, new RegExp(`^drop \\+${data.drops}.*; table \\d+ of ${MAX} entries \\(\\d+(\\.\\d)?%\\), full$`));
    // The events: one NEW per datagram that got an entry (the others were dropped, no entry made).
    const ev = data.events!;
    t.diagnostic(`${f.summary} | events ${JSON.stringify(ev.byProtocol)} early ${ev.destroyedEarly} | drop reasons ${JSON.stringify(data.dropReasons)} | ${data.notes.join(' / ')}`);
    assert.equal(ev.listened, true, ev.error);
    assert.equal(ev.overflows, 0);
    assert.equal(ev.byProtocol.udp?.NEW, received, `NEW ${ev.byProtocol.udp?.NEW} = datagrams that got an entry (${received})`);
    assert.equal(ev.byProtocol.udp!.NEW + data.drops, SENT);
    // Every entry made is in the table, or was evicted unassured (early_drop: a DESTROY each).
    assert.equal(ev.destroyedEarlyByProtocol.udp ?? 0, ev.byProtocol.udp!.DESTROY);
    assert.equal(ev.topFlows[0]?.proto, 'udp');
    assert.match(ev.topFlows[0]!.flow, new RegExp(`^udp ${pair.hostIp.replace(/\./g, '\\.')}:\\d+ > ${pair.peerIp.replace(/\./g, '\\.')}:9999$`));
    // The kernel freed each dropped datagram as NETFILTER_DROP in that namespace.
    assert.equal(data.dropReasons?.byReason.NETFILTER_DROP, data.drops, JSON.stringify(data.dropReasons));
    await assertKprobesReported(data);

    const replay = await runProbe(netConntrack, request({ netns: pair.ns, duration: '1s' }), b.opts('replay', { replayFrom: b.dir('live') }));
    assert.equal(replay.driver, 'replay');
    assert.deepEqual(replay.data, f.data);
    // A filter on another port leaves no event.
    const other = await runProbe(netConntrack, request({ netns: pair.ns, duration: '1s', dst_port: 53 }), b.opts('port53', { replayFrom: b.dir('live') }));
    assert.equal((other.data as ConntrackData).events?.total, 0);
  });

  it(`TCP without a handshake: each of ${INVALID} bare ACKs is invalid, makes no entry and no event; ${VALID} UDP flows make ${VALID} NEW`, async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    await execa('ip', ['netns', 'exec', pair.ns, 'nft', '-f', '-'], {
      input: 'table inet ebpfnet_ct { chain input { type filter hook input priority 0; ct state invalid counter drop; ct state new counter accept; }; }',
    });
    // Strict TCP tracking in this namespace only: an ACK that opens nothing is invalid.
    await pair.inNs(['sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_tcp_loose=0']);
    await pair.ping({ count: 1 });
    const b = await tempBundle(t);
    const def = withTrafficInWindow(netConntrack, async () => {
      const r = await execa('python3', [TCP_RAW, pair.hostIp, pair.peerIp, '7777', String(INVALID), 'A']);
      assert.equal(r.stdout.trim(), String(INVALID));
      await sendFlows(pair.peerIp, 9999, VALID);
    });
    const params = { netns: pair.ns, duration: '700ms' };
    const f = await runProbe(def, request(params), b.opts('live'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as ConntrackData;
    t.diagnostic(`${f.summary} | ${JSON.stringify(data.events?.byType)}`);
    assert.equal(data.stats.invalid, INVALID);
    assert.deepEqual(data.losses.map((l) => [l.stat, l.delta]), [['invalid', INVALID]]);
    assert.equal(f.severity, 'warning');
    assert.equal(data.events?.byProtocol.tcp, undefined, 'no TCP entry, no TCP event');
    assert.equal(data.events?.byProtocol.udp?.NEW, VALID);
    assert.equal(data.events?.byType.NEW, VALID);
    // Dropped by the `ct state invalid drop` rule: NETFILTER_DROP, one per segment.
    assert.equal(data.dropReasons?.byReason.NETFILTER_DROP, INVALID);
    await assertReplaysSame(netConntrack, params, b, 'live', f);
  });

  it('parses conntrack -E lines: type, protocol, state, the original tuple, flags and the entry id (ICMP has an id of its own)', () => {
    const tcp = parseEventLine('[1796171569.839567]\t[DESTROY] ipv4     2 tcp      6 120 CLOSE src=127.0.0.1 dst=127.0.0.2 sport=42732 dport=22 [UNREPLIED] src=127.0.0.2 dst=127.0.0.1 sport=22 dport=42732 id=3066274447');
    assert.deepEqual(tcp, { at: 1796171569.839567, type: 'DESTROY', family: 'ipv4', proto: 'tcp', state: 'CLOSE', src: '127.0.0.1', dst: '127.0.0.2', sport: 42732, dport: 22, flags: ['UNREPLIED'], id: '3066274447' });
    const icmp = parseEventLine('[1796171569.835277]\t [UPDATE] ipv4     2 icmp     1 30 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=19942 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=19942 id=3679364513');
    assert.equal(icmp?.id, '3679364513');
    assert.equal(icmp?.state, null);
    assert.equal(icmp?.sport, null);
    assert.equal(parseEventLine('conntrack v1.4.7 (conntrack-tools): 5 flow events have been shown.'), null);
    const lines = [
      '[1.000000]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=1000 dport=80 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=1000 id=1',
      '[1.250000]\t[DESTROY] ipv4     2 tcp      6 CLOSE src=10.0.0.1 dst=10.0.0.2 sport=1000 dport=80 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=1000 id=1',
      '[2.000000]\t    [NEW] ipv4     2 udp      17 30 src=10.0.0.1 dst=10.0.0.3 sport=2000 dport=53 [UNREPLIED] src=10.0.0.3 dst=10.0.0.1 sport=53 dport=2000 id=2',
      '[2.100000]\t [UPDATE] ipv4     2 udp      17 120 src=10.0.0.1 dst=10.0.0.3 sport=2000 dport=53 src=10.0.0.3 dst=10.0.0.1 sport=53 dport=2000 [ASSURED] id=2',
    ];
    const records = [
      { seq: 1, op: 'capture', name: 'conntrack-listen', at: 0, durationMs: 0, stdout: '{"started":true,"pid":1}', stderr: '', exitCode: 0 },
      { seq: 2, op: 'capture', name: 'conntrack-events', at: 0, durationMs: 0, stdout: JSON.stringify({ stdout: `${lines.join('\n')}\n`, stderr: 'conntrack v1.4.7 (conntrack-tools): 4 flow events have been shown.\n', exitCode: 0 }), stderr: '', exitCode: 0 },
    ] satisfies RawRecord[];
    const rec = recordedEvents(records)!;
    assert.equal(rec.shown, 4);
    const all = summariseEvents(rec, {}, 10);
    assert.deepEqual(all.byType, { NEW: 2, UPDATE: 1, DESTROY: 1 });
    assert.deepEqual(all.byState, { 'tcp SYN_SENT': 1, 'tcp CLOSE': 1 });
    assert.equal(all.destroyedEarly, 1);
    assert.deepEqual(all.earlyDestroys, [{ flow: 'tcp 10.0.0.1:1000 > 10.0.0.2:80', proto: 'tcp', state: 'CLOSE', lifetimeMs: 250 }]);
    assert.deepEqual(all.topFlows.map((x) => [x.flow, x.events, x.assured]), [['tcp 10.0.0.1:1000 > 10.0.0.2:80', 2, false], ['udp 10.0.0.1:2000 > 10.0.0.3:53', 2, true]]);
    assert.equal(summariseEvents(rec, { proto: 'udp', dstPort: 53 }, 10).total, 2);
    assert.equal(summariseEvents(rec, { dstIp: '10.0.0.9' }, 10).total, 0);
  });

  it('the kprobe programs (nf_conntrack_in, __nf_conntrack_confirm, ovs_ct_execute) pass the verifier', () => {
    const obj = openConntrackObject({ saddr: '10.0.0.1', proto: 6 });
    try {
      obj.load();
      assertVerified(obj, CT_PROGRAMS);
      assert.deepEqual(obj.maps().map((m) => m.name).filter((n) => !n.includes('.')).sort(), ['calls', 'counts', 'in_ovs', 'totals']);
    } finally {
      obj.close();
    }
  });

  it('a kprobe session written by hand (fixture, not recorded; the real one runs in the kernel lab) parses into verdicts per path and hook', () => {
    const records = JSON.parse(readFileSync(KPROBES_FIXTURE, 'utf8')) as RawRecord[];
    const k = parseConntrackKprobes(records, 'kprobes-')!;
    assert.equal(k.attachable, true);
    assert.deepEqual(k.failed, []);
    assert.equal(k.attached.length, CT_PROGRAMS.length);
    assert.deepEqual(k.netfilter.byVerdict, { tracked: 40, invalid: 12, drop: 92, untracked: 0, other: 0 });
    assert.deepEqual(k.netfilter.tracked, { new: 8, established: 30, 'established reply': 2 });
    assert.deepEqual(k.netfilter.byHook['ipv4 prerouting'], { tracked: 40, invalid: 12, drop: 92 });
    assert.equal(k.netfilter.confirmFailures, 3);
    assert.deepEqual(k.ovs.byVerdict, { tracked: 20, invalid: 7, drop: 0, untracked: 0, other: 0 });
    assert.equal(k.ovs.calls, 28);
    assert.deepEqual(k.ovs.errors, { '-12': 1 });
    assert.equal(k.lost, 0);
  });

  it('a healthy namespace: no conntrack loss; one that does not exist: a clear error', async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    await execa('ip', ['netns', 'exec', pair.ns, 'nft', '-f', '-'], { input: 'table inet ebpfnet_ct { chain input { type filter hook input priority 0; ct state new accept; }; }' });
    const b = await tempBundle(t);
    const def = withTrafficInWindow(netConntrack, () => sendFlows(pair.peerIp, 9999, 20));
    const f = await runProbe(def, request({ netns: pair.ns, duration: '500ms' }), b.opts('healthy'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as ConntrackData;
    assert.equal(data.drops, 0);
    assert.deepEqual(data.losses, []);
    assert.ok(data.count >= 20, `${data.count} entries after 20 new flows`); // (the `new` statistic stays 0 on current kernels)
    assert.equal(f.severity, 'info');
    assert.equal(data.events?.byProtocol.udp?.NEW, 20);
    assert.equal(data.events?.destroyedEarly, 0);
    assert.equal(data.dropReasons?.total, 0);

    const missing = await runProbe(netConntrack, request({ netns: 'ebpfnet-nosuch-ns', duration: 0 }), b.opts('missing'));
    assert.equal(missing.status, 'error');
    assert.match(missing.reason!, /^no network namespace ebpfnet-nosuch-ns: /);
  });
});

/** The kprobe programs load; where kprobes do not attach each is reported, and nothing is counted. */
async function assertKprobesReported(data: ConntrackData): Promise<void> {
  const k = data.kprobes;
  assert.ok(k, 'the kprobe session ran');
  if ((await detectFeatures()).kprobes.present !== false) {
    assert.deepEqual(k.failed, [], 'every netfilter kprobe attaches where kprobes exist');
    assert.equal(k.attached.length, NETFILTER_CT_PROGRAMS.length);
    return;
  }
  assert.equal(k.attachable, false);
  assert.deepEqual(k.attached, []);
  for (const p of NETFILTER_CT_PROGRAMS) assert.ok(k.failed.some((x) => x.startsWith(`${p.kind} ${p.target}: `)), `${p.kind} ${p.target} reported: ${k.failed.join('; ')}`);
  assert.equal(k.failed.length, NETFILTER_CT_PROGRAMS.length, 'the OVS programs are not tried here');
  assert.ok(data.notes.some((n) => n.startsWith('nf_conntrack_in verdicts not counted: 3 of 3 kprobe programs did not attach')), data.notes.join(' / '));
}
