// net.nft scoped to one VM on a shared Linux bridge: a bridge (in a namespace of its own,
// like a hypervisor's) with a peer and two endpoints A and B (namespaces on veths, standing
// for two VMs) as ports, and bridge-family rules in its forward chain: `ip daddr A udp dport
// 9 counter drop` and its IPv6 twin are A's (with the datagrams sent, as their own counters
// say) and another's for B (otherDroppers, never in total); `oifname <B's port>` is B's and
// another's for A; `udp dport 8` names nothing and is `any` for both. Rules reached through a
// jump or a verdict map take the scope of the match that leads there. Then, what the
// classifier does with what this kernel cannot load (ibrname/obrname) and with iptables text.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { readEvidence } from '../../engine/probe/evidence.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params, ProbeDefinition } from '../../engine/probe/types.js';
import { netNft, type NftData } from '../../probes/net.nft/probe.js';
import { iptRuleScope, nftRuleScope } from '../../probes/net.nft/scope.js';
import { vmIdentityOf } from '../../probes/lib/vm-scope.js';
import { createBridgeLan, type BridgeLan, type LanHost } from '../helpers/bridge-lan.js';
import { tempBundle } from '../helpers/bundle.js';
import { addIpv6, pinNeighbours, sendUdpFrom, udpReceived } from '../helpers/ns-endpoints.js';
import { run, cannotBuildWith } from '../helpers/netns.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';

const cannot = await cannotBuildWith([['nft', '--version'], 'nftables']);
/** Datagrams per kind, all different, so that every count tells which traffic it is. */
const N = { a4: 12, b4: 8, a6: 9, b6: 7, anyA: 5, anyB: 4, toB10: 6 };

/** The counter of the rule whose text (nft -a) contains `needle`. */
async function counterOf(lan: BridgeLan, needle: string): Promise<number> {
  const { stdout } = await lan.inNs(['nft', '-a', 'list', 'table', 'bridge', 'ebpfnet_scope']);
  const line = stdout.split('\n').find((l) => l.includes(needle));
  const m = line ? /counter packets (\d+)/.exec(line) : null;
  assert.ok(m, `no rule with "${needle}": ${stdout}`);
  return Number(m[1]);
}

describe('net.nft scoped to one VM on a shared Linux bridge', () => {
  let lan: BridgeLan;
  let peer: LanHost & { ip6?: string };
  let a: LanHost & { ip6?: string };
  let b: LanHost & { ip6?: string };
  const vm = (h: LanHost & { ip6?: string }, port: string): Params => ({ vm_ips: [h.ip, h.ip6!], vm_macs: [h.mac], vm_devs: [port] });

  const undo: Array<() => unknown> = [];
  after(async () => {
    for (const step of undo.reverse()) await step();
  });

  before(async () => {
    assert.equal(cannot, null, `cannot build test topologies: ${cannot}`);
    lan = await createBridgeLan({ after: (fn) => undo.push(fn) }, '10.77.0', [
      { ip: '10.77.0.10', mac: '02:00:00:00:0a:10' },
      { ip: '10.77.0.2', mac: '02:00:00:00:0a:02' },
      { ip: '10.77.0.3', mac: '02:00:00:00:0a:03' },
    ]);
    [peer, a, b] = lan.hosts as [LanHost, LanHost, LanHost];
    for (const [h, n] of [[peer, 10], [a, 2], [b, 3]] as const) await addIpv6(h, `fd00:77::${n}`);
    // The bridge learns every MAC (nothing is flooded, each frame crosses the forward chain once).
    for (const h of [a, b]) await run(['ip', 'netns', 'exec', h.ns, 'ping', '-c', '1', '-W', '2', peer.ip]);
    await pinNeighbours(peer, a);
    await pinNeighbours(peer, b);
    for (const h of [peer, a, b]) {
      await execa('ip', ['netns', 'exec', h.ns, 'nft', '-f', '-'], {
        input: 'table inet ebpfnet_quiet { chain out { type filter hook output priority 0; icmp type destination-unreachable drop; icmpv6 type destination-unreachable drop; }; }',
      });
    }
    await execa('ip', ['netns', 'exec', lan.ns, 'nft', '-f', '-'], {
      input: `table bridge ebpfnet_scope {
        chain forward {
          type filter hook forward priority 0; policy accept;
          ip daddr ${a.ip} udp dport 9 counter drop
          ip6 daddr ${a.ip6} udp dport 9 counter drop
          udp dport 8 counter drop
          oifname "p3" udp dport 10 counter drop
        }
      }`,
    });
  });

  it(`A's rules are A's and another's for B; B's port rule is B's; a port-only rule is 'any' for both`, async (t) => {
    const needles = { a4: `ip daddr ${a.ip}`, a6: `ip6 daddr ${a.ip6}`, any: 'udp dport 8', b10: 'oifname "p3"' };
    const read = async () => ({
      a4: await counterOf(lan, needles.a4),
      a6: await counterOf(lan, needles.a6),
      any: await counterOf(lan, needles.any),
      b10: await counterOf(lan, needles.b10),
      aIn: (await udpReceived(a.ns, 4)) + (await udpReceived(a.ns, 6)),
      bIn4: await udpReceived(b.ns, 4),
      bIn6: await udpReceived(b.ns, 6),
    });
    const before = await read();
    const b0 = await tempBundle(t, 'ebpfnet-nft-scope-');
    const params: Params = { netns: lan.ns, duration: '500ms', ...vm(a, 'p2') };
    const def = withTrafficInWindow(netNft, async () => {
      const send = async (to: string, port: number, count: number) => assert.equal(await sendUdpFrom(peer.ns, { to, port, count }), count);
      await send(a.ip, 9, N.a4);
      await send(b.ip, 9, N.b4);
      await send(a.ip6!, 9, N.a6);
      await send(b.ip6!, 9, N.b6);
      await send(a.ip, 8, N.anyA);
      await send(b.ip, 8, N.anyB);
      await send(b.ip, 10, N.toB10);
    });
    const f = await runProbe(def as ProbeDefinition, { step: 's', alias: 'nft', probe: netNft.id, params }, b0.opts('live'));
    assert.equal(f.status, 'ok', f.reason);
    const after = await read();
    const moved = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
    t.diagnostic(`${f.summary} | counters ${JSON.stringify(moved)}`);
    // What the kernel counted, apart from the probe: each rule its datagrams; A received none, B its own.
    assert.deepEqual(moved, { a4: N.a4, a6: N.a6, any: N.anyA + N.anyB, b10: N.toB10, aIn: 0, bIn4: N.b4, bIn6: N.b6 });

    const row = (d: NftData['droppers'][number]) => [d.rule.replace(/ counter drop$/, ''), d.scope, d.packets];
    const da = f.data as NftData;
    assert.deepEqual(da.droppers.map(row), [
      [`ip daddr ${a.ip} udp dport 9`, 'vm', N.a4],
      [`ip6 daddr ${a.ip6} udp dport 9`, 'vm', N.a6],
      ['udp dport 8', 'any', N.anyA + N.anyB],
    ]);
    assert.deepEqual(da.otherDroppers.map(row), [['oifname "p3" udp dport 10', 'other', N.toB10]]);
    assert.deepEqual([da.vmTotal, da.total, da.otherTotal], [N.a4 + N.a6, N.a4 + N.a6 + N.anyA + N.anyB, N.toB10]);
    assert.deepEqual(da.vm?.bridges, ['br0'], "the taps' bridge, read with ip link");
    assert.equal(f.severity, 'critical');
    assert.match(f.summary, new RegExp(`^bridge ebpfnet_scope forward handle \\d+ \`ip daddr ${a.ip.replace(/\./g, '\\.')} udp dport 9 counter drop\` dropped ${N.a4} packets .* \\(it names the VM\\); 3 droppers, ${da.total} packets in all; 1 rules of other addresses or devices dropped ${N.toB10} packets \\(not the VM's\\)`));

    // The same window scoped to B: A's rules are another's; B's port rule is B's.
    const fb = await runProbe(netNft, { step: 's', alias: 'nft', probe: netNft.id, params: { ...params, ...vm(b, 'p3') } }, b0.opts('b', { replayFrom: b0.dir('live') }));
    assert.equal(fb.status, 'ok', fb.reason);
    const db = fb.data as NftData;
    assert.deepEqual(db.droppers.map(row), [
      ['oifname "p3" udp dport 10', 'vm', N.toB10],
      ['udp dport 8', 'any', N.anyA + N.anyB],
    ]);
    assert.deepEqual(db.otherDroppers.map(row), [
      [`ip daddr ${a.ip} udp dport 9`, 'other', N.a4],
      [`ip6 daddr ${a.ip6} udp dport 9`, 'other', N.a6],
    ]);
    assert.deepEqual([db.vmTotal, db.otherTotal], [N.toB10, N.a4 + N.a6]);
    // Scoped to B by its address alone (no tap): its port rule says nothing of it, A's are still another's.
    const records = (await readEvidence(b0.dir('live'))).records;
    const byIp = netNft.parse(records, { netns: lan.ns, duration: 500, vm_ips: [b.ip] }).data as NftData;
    assert.deepEqual(byIp.droppers.map((d) => d.scope), ['any', 'any', 'any']);
    assert.equal(byIp.vmTotal, 0);
    assert.deepEqual(byIp.otherDroppers.map((d) => d.packets), [N.a4]);
    assert.equal(byIp.droppers.find((d) => d.rule.startsWith('ip6'))?.scope, 'any', 'an IPv6 rule says nothing of a VM whose IPv6 address is not known');
    // Unscoped, as before: every dropper, most packets first.
    const all = netNft.parse(records, { netns: lan.ns, duration: 500 }).data as NftData;
    assert.deepEqual(all.droppers.map((d) => d.packets), [N.a4, N.a6, N.toB10, N.anyA + N.anyB].sort((x, y) => y - x));
    assert.deepEqual([all.otherDroppers, all.vm, all.total], [[], null, N.a4 + N.a6 + N.toB10 + N.anyA + N.anyB]);
  });

  it('rules reached through a jump or a verdict map take the scope of what leads there; a named set and a concatenation too', async (t) => {
    await execa('ip', ['netns', 'exec', lan.ns, 'nft', '-f', '-'], {
      input: `table bridge ebpfnet_paths {
        set vms { type ipv4_addr; flags interval; elements = { ${a.ip}, 10.77.1.0/24 } }
        chain from_a { udp dport 7 counter drop; }
        chain to_b { udp dport 7 counter drop; }
        chain per_port { udp dport 4 counter drop; }
        chain forward {
          type filter hook forward priority 10; policy accept;
          ether saddr ${a.mac} jump from_a
          ip daddr != ${a.ip} ip daddr ${b.ip} jump to_b
          ip saddr @vms udp dport 6 counter drop
          ip saddr . ip daddr { ${a.ip} . ${b.ip} } udp dport 5 counter drop
          iifname vmap { "p2" : jump per_port, "p9" : accept }
        }
      }`,
    });
    t.after(() => execa('ip', ['netns', 'exec', lan.ns, 'nft', 'delete', 'table', 'bridge', 'ebpfnet_paths'], { reject: false }));
    await pinNeighbours(a, b);
    const M = { fromA7: 4, toB7: 3, set6: 5, concat5: 2, perPort: 6 };
    const bundle = await tempBundle(t, 'ebpfnet-nft-paths-');
    const params: Params = { netns: lan.ns, duration: '500ms', ...vm(a, 'p2') };
    const def = withTrafficInWindow(netNft, async () => {
      await sendUdpFrom(a.ns, { to: peer.ip, port: 7, count: M.fromA7 });
      await sendUdpFrom(peer.ns, { to: b.ip, port: 7, count: M.toB7 });
      await sendUdpFrom(a.ns, { to: peer.ip, port: 6, count: M.set6 });
      await sendUdpFrom(a.ns, { to: b.ip, port: 5, count: M.concat5 });
      await sendUdpFrom(a.ns, { to: peer.ip, port: 4, count: M.perPort });
    });
    const f = await runProbe(def as ProbeDefinition, { step: 's', alias: 'nft', probe: netNft.id, params }, bundle.opts('live'));
    assert.equal(f.status, 'ok', f.reason);
    t.diagnostic(f.summary);
    const byChain = (d: NftData) => Object.fromEntries([...d.droppers, ...d.otherDroppers].filter((x) => x.table === 'ebpfnet_paths').map((x) => [`${x.chain} ${x.rule.replace(/ counter drop$/, '')}`, [x.scope, x.packets]]));
    const forA = byChain(f.data as NftData);
    assert.deepEqual(forA, {
      'from_a udp dport 7': ['vm', M.fromA7],
      'to_b udp dport 7': ['other', M.toB7],
      'forward ip saddr @vms udp dport 6': ['vm', M.set6],
      [`forward ip saddr . ip daddr { ${a.ip} . ${b.ip} } udp dport 5`]: ['vm', M.concat5],
      'per_port udp dport 4': ['vm', M.perPort],
    });
    const fb = await runProbe(netNft, { step: 's', alias: 'nft', probe: netNft.id, params: { ...params, ...vm(b, 'p3') } }, bundle.opts('b', { replayFrom: bundle.dir('live') }));
    assert.deepEqual(byChain(fb.data as NftData), {
      'from_a udp dport 7': ['other', M.fromA7],
      'to_b udp dport 7': ['vm', M.toB7],
      'forward ip saddr @vms udp dport 6': ['other', M.set6],
      [`forward ip saddr . ip daddr { ${a.ip} . ${b.ip} } udp dport 5`]: ['vm', M.concat5],
      'per_port udp dport 4': ['any', M.perPort],
    });
  });

  it('iptables-nft rules: -s by the nft match, --mac-source by the iptables text (nft -j cannot show it)', async (t) => {
    const h = { ns: lan.ns, ip: lan.bridgeIp, mac: lan.bridgeMac };
    await pinNeighbours(h, a, { a: 'br0' });
    await pinNeighbours(h, b, { a: 'br0' });
    await lan.inNs(['iptables', '-A', 'INPUT', '-s', a.ip, '-p', 'udp', '--dport', '9', '-j', 'DROP']);
    await lan.inNs(['iptables', '-A', 'INPUT', '-m', 'mac', '--mac-source', b.mac, '-p', 'udp', '--dport', '9', '-j', 'DROP']);
    t.after(() => lan.inNs(['iptables', '-F', 'INPUT']).catch(() => undefined));
    const saved = async () => (await lan.inNs(['iptables-save', '-c'])).stdout;
    const count = (text: string, needle: string) => Number(new RegExp(`^\\[(\\d+):\\d+\\] .*${needle}`, 'm').exec(text)?.[1] ?? NaN);
    const before = await saved();
    const M = { a: 7, b: 4 };
    const bundle = await tempBundle(t, 'ebpfnet-nft-ipt-');
    const params: Params = { netns: lan.ns, duration: '500ms', ...vm(a, 'p2') };
    const def = withTrafficInWindow(netNft, async () => {
      await sendUdpFrom(a.ns, { to: h.ip, port: 9, count: M.a });
      await sendUdpFrom(b.ns, { to: h.ip, port: 9, count: M.b });
    });
    const f = await runProbe(def as ProbeDefinition, { step: 's', alias: 'nft', probe: netNft.id, params }, bundle.opts('live'));
    assert.equal(f.status, 'ok', f.reason);
    const after = await saved();
    assert.equal(count(after, `-s ${a.ip}`) - count(before, `-s ${a.ip}`), M.a);
    assert.equal(count(after, b.mac) - count(before, b.mac), M.b);
    const row = (d: NftData['droppers'][number]) => [d.iptables, d.scope, d.packets];
    const ruleA = `-A INPUT -s ${a.ip}/32 -p udp -m udp --dport 9 -j DROP`;
    const ruleB = `-A INPUT -p udp -m mac --mac-source ${b.mac.toUpperCase()} -m udp --dport 9 -j DROP`;
    const da = f.data as NftData;
    t.diagnostic(`${f.summary} | ${JSON.stringify(da.droppers.map(row))}`);
    const norm = (rows: unknown[][]) => rows.map(([text, ...rest]) => [String(text).toUpperCase(), ...rest]);
    assert.deepEqual(norm(da.droppers.filter((d) => d.table === 'filter').map(row)), norm([[ruleA, 'vm', M.a]]));
    assert.deepEqual(norm(da.otherDroppers.filter((d) => d.table === 'filter').map(row)), norm([[ruleB, 'other', M.b]]));
    const fb = await runProbe(netNft, { step: 's', alias: 'nft', probe: netNft.id, params: { ...params, ...vm(b, 'p3') } }, bundle.opts('b', { replayFrom: bundle.dir('live') }));
    const db = fb.data as NftData;
    assert.deepEqual(norm(db.droppers.filter((d) => d.table === 'filter').map(row)), norm([[ruleB, 'vm', M.b]]));
    assert.deepEqual(norm(db.otherDroppers.filter((d) => d.table === 'filter').map(row)), norm([[ruleA, 'other', M.a]]));
  });
});

describe('net.nft scope classifier (matches this kernel cannot load, and iptables text, as written here)', () => {
  const vmA = { ...vmIdentityOf({ vm_ips: ['10.0.0.2', 'fd00::2'], vm_macs: ['52:54:00:00:00:02'], vm_devs: ['tap2'] }), bridges: ['br0'] };
  const ctx = { vm: vmA, family: 'bridge', table: 't', sets: new Map<string, unknown[]>() };
  const meta = (key: string, right: unknown, op = '==') => ({ match: { op, left: { meta: { key } }, right } });

  it('ibrname/obrname: the VM\'s bridge says nothing, another bridge excludes it', () => {
    assert.equal(nftRuleScope([meta('ibrname', 'br0'), { drop: null }], ctx), 'any');
    assert.equal(nftRuleScope([meta('obrname', 'br1'), { drop: null }], ctx), 'other');
    assert.equal(nftRuleScope([meta('obrname', 'br0', '!='), { drop: null }], ctx), 'other');
    assert.equal(nftRuleScope([meta('ibrname', 'br1'), meta('iifname', 'tap2'), { drop: null }], ctx), 'vm', 'a field naming the VM wins');
  });

  it('iptables-save rules: -s/-d (prefixes, negation), -i/-o, --mac-source, --physdev, ranges', () => {
    const s = (text: string) => iptRuleScope(text, vmA);
    assert.equal(s('-A FORWARD -d 10.0.0.2/32 -p udp -j DROP'), 'vm');
    assert.equal(s('-A FORWARD -d 10.0.0.0/24 -j DROP'), 'vm');
    assert.equal(s('-A FORWARD -d 10.0.0.3/32 -j DROP'), 'other');
    assert.equal(s('-A FORWARD ! -s 10.0.0.2/32 -i tap2 -j DROP'), 'vm', "the VM's anti-spoofing rule is its own");
    assert.equal(s('-A FORWARD ! -d 10.0.0.2/32 -j DROP'), 'other');
    assert.equal(s('-A FORWARD -i eth0 -p udp -j DROP'), 'any', 'an input device that is not the VM\'s says nothing');
    assert.equal(s('-A FORWARD -o tap3 -j DROP'), 'other');
    assert.equal(s('-A FORWARD -o br0 -j DROP'), 'any', "routed traffic to the VM leaves by its bridge");
    assert.equal(s('-A INPUT -m mac --mac-source 52:54:00:00:00:03 -j DROP'), 'other');
    assert.equal(s('-A INPUT -m mac --mac-source 52:54:00:00:00:02 -j DROP'), 'vm');
    assert.equal(s('-A FORWARD -m physdev --physdev-out tap3 -j DROP'), 'other');
    assert.equal(s('-A FORWARD -m physdev --physdev-in tap3 -j DROP'), 'any');
    assert.equal(s('-A FORWARD -m iprange --dst-range 10.0.0.1-10.0.0.9 -j DROP'), 'vm');
    assert.equal(s('-A FORWARD -d ff02::1/128 -j DROP'), 'any', 'a multicast destination can be the VM\'s');
    assert.equal(s('-A FORWARD -d fd00::3/128 -j DROP'), 'other');
  });
});
