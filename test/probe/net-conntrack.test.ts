// net.conntrack in a namespace whose conntrack table is full: an nftables `ct state` rule makes
// the namespace track its input, nf_conntrack_max (global) is lowered to 8, and 100 UDP
// datagrams arrive from a new source port each inside the probe's window. Every datagram
// is either tracked (and reaches UDP, counted by the namespace's own SNMP counters) or
// dropped by conntrack: the probe's `drop` plus what UDP saw must be exactly 100.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { execa } from 'execa';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params } from '../../engine/probe/types.js';
import { netConntrack, parseConntrackStat, type ConntrackData } from '../../probes/net.conntrack/probe.js';
import { tempBundle } from '../helpers/bundle.js';
import { canBuildTopologies, createVethPair, run, type VethPair } from '../helpers/netns.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';

const CT_MAX = '/proc/sys/net/netfilter/nf_conntrack_max';
const SENT = 100;
const MAX = 8;
const cannot = (await canBuildTopologies()) ?? (await run(['nft', '--version']).then(() => null, () => 'needs nft (apt-get install nftables)'));

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

    const replay = await runProbe(netConntrack, request({ netns: pair.ns, duration: '1s' }), b.opts('replay', { replayFrom: b.dir('live') }));
    assert.equal(replay.driver, 'replay');
    assert.deepEqual(replay.data, f.data);
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

    const missing = await runProbe(netConntrack, request({ netns: 'ebpfnet-nosuch-ns', duration: 0 }), b.opts('missing'));
    assert.equal(missing.status, 'error');
    assert.match(missing.reason!, /^no network namespace ebpfnet-nosuch-ns: /);
  });
});
