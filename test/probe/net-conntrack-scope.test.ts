// net.conntrack scoped to one VM: a host namespace H whose bridge carries two endpoints A and B
// (namespaces standing for two VMs) tracks the connections they open to it, over IPv4 and
// IPv6, each datagram from a source port of its own (a new entry each), and those A opens to
// H's port 7777, which H DNATs to B (their reply tuple has B's address). Scoped to A, the
// events are exactly A's connections; scoped to B, B's and the DNATed ones; an IPv6 src_ip
// keeps that address's; unscoped, all of them. The independent counts: the datagrams sent, and
// what H's and B's stacks received.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { readEvidence } from '../../engine/probe/evidence.js';
import { resolveParams } from '../../engine/probe/params.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { ProbeDefinition } from '../../engine/probe/types.js';
import { netConntrack, type ConntrackData } from '../../probes/net.conntrack/probe.js';
import { parseEventLine } from '../../probes/net.conntrack/events.js';
import { createBridgeLan, type BridgeLan, type LanHost } from '../helpers/bridge-lan.js';
import { tempBundle } from '../helpers/bundle.js';
import { addIpv6, pinNeighbours, sendUdpFrom, udpReceived, type NsHost } from '../helpers/ns-endpoints.js';
import { cannotBuildWith } from '../helpers/netns.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';

const cannot = await cannotBuildWith([['nft', '--version'], 'nftables']);
/** Connections per kind (one datagram each, from its own source port). */
const N = { a4: 6, b4: 4, a6: 5, b6: 3, dnat: 2 };

describe('net.conntrack scoped to one VM (IPv4, IPv6, a DNATed connection)', () => {
  const undo: Array<() => unknown> = [];
  after(async () => {
    for (const step of undo.reverse()) await step();
  });
  let lan: BridgeLan;
  let h: NsHost;
  let a: LanHost & { ip6?: string };
  let b: LanHost & { ip6?: string };

  before(async () => {
    assert.equal(cannot, null, `cannot build test topologies: ${cannot}`);
    lan = await createBridgeLan({ after: (fn) => undo.push(fn) }, '10.78.0', [
      { ip: '10.78.0.2', mac: '02:00:00:00:0b:02' },
      { ip: '10.78.0.3', mac: '02:00:00:00:0b:03' },
    ]);
    [a, b] = lan.hosts as [LanHost, LanHost];
    h = { ns: lan.ns, ip: lan.bridgeIp, mac: lan.bridgeMac };
    await addIpv6(h, 'fd00:78::1', 'br0');
    await addIpv6(a, 'fd00:78::2');
    await addIpv6(b, 'fd00:78::3');
    await pinNeighbours(h, a, { a: 'br0' });
    await pinNeighbours(h, b, { a: 'br0' });
    await pinNeighbours(a, b);
    // H tracks what it receives, DNATs its port 7777 to B, and answers nothing (no ICMP errors, no redirects).
    await lan.inNs(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.br0.send_redirects=0']);
    await execa('ip', ['netns', 'exec', lan.ns, 'nft', '-f', '-'], {
      input: `table inet ebpfnet_ct {
        chain input { type filter hook input priority 0; policy accept; ct state new counter accept; }
        chain out { type filter hook output priority 0; icmp type destination-unreachable drop; icmpv6 type destination-unreachable drop; }
      }
      table ip ebpfnet_nat { chain pre { type nat hook prerouting priority -100; udp dport 7777 dnat to ${b.ip}; }; }`,
    });
    for (const x of [a, b]) {
      await execa('ip', ['netns', 'exec', x.ns, 'nft', '-f', '-'], {
        input: 'table inet ebpfnet_quiet { chain out { type filter hook output priority 0; icmp type destination-unreachable drop; icmpv6 type destination-unreachable drop; }; }',
      });
    }
  });

  it("the VM's connections only, by its IPv4 and IPv6 addresses, a DNATed one by its reply tuple", async (t) => {
    const bundle = await tempBundle(t, 'ebpfnet-ct-scope-');
    const before = { h4: await udpReceived(h.ns, 4), h6: await udpReceived(h.ns, 6), b4: await udpReceived(b.ns, 4) };
    const vmA = { vm_ips: [a.ip, a.ip6!] };
    const params = { netns: lan.ns, duration: '700ms', drop_reasons: false, kprobes: false, ...vmA };
    const def = withTrafficInWindow(netConntrack, async () => {
      const send = async (from: string, to: string, port: number, count: number, srcPortBase: number) =>
        assert.equal(await sendUdpFrom(from, { to, port, count, newSocketEach: true, srcPortBase }), count);
      await send(a.ns, h.ip, 9999, N.a4, 20000);
      await send(b.ns, h.ip, 9999, N.b4, 21000);
      await send(a.ns, h.ip6!, 9999, N.a6, 22000);
      await send(b.ns, h.ip6!, 9999, N.b6, 23000);
      await send(a.ns, h.ip, 7777, N.dnat, 24000);
    });
    const f = await runProbe(def as ProbeDefinition, { step: 's', alias: 'ct', probe: netConntrack.id, params }, bundle.opts('live'));
    assert.equal(f.status, 'ok', f.reason);
    // What the stacks took in, apart from the probe: H every datagram to it, B the DNATed ones.
    assert.deepEqual(
      { h4: (await udpReceived(h.ns, 4)) - before.h4, h6: (await udpReceived(h.ns, 6)) - before.h6, b4: (await udpReceived(b.ns, 4)) - before.b4 },
      { h4: N.a4 + N.b4, h6: N.a6 + N.b6, b4: N.dnat },
    );
    const d = f.data as ConntrackData;
    t.diagnostic(`${f.summary} | ${JSON.stringify(d.events?.byProtocol)} | ${d.notes.join(' / ')}`);
    assert.deepEqual(d.vmIps, [a.ip, a.ip6]);
    assert.equal(d.events?.listened, true, d.events?.error);
    assert.deepEqual(d.events?.byType, { NEW: N.a4 + N.a6 + N.dnat, UPDATE: 0, DESTROY: 0 });
    const flows = d.events!.topFlows.map((x) => x.flow);
    assert.ok(flows.every((x) => x.includes(`${a.ip}:`) || x.includes(`${a.ip6}:`)), flows.join('\n'));
    assert.ok(!flows.some((x) => x.includes(`${b.ip}:`) || x.includes(`${b.ip6}:`)), "none of B's own connections");
    assert.match(f.summary, /; the VM's events NEW 13,/);
    await assertReplaysSame(netConntrack, params, bundle, 'live', f);

    // The same events for B, A's IPv6 address, and everyone (the same recording, parsed again).
    const records = (await readEvidence(bundle.dir('live'))).records;
    const parse = (p: Record<string, unknown>) => netConntrack.parse(records, resolveParams(netConntrack, { ...params, vm_ips: undefined, ...p })).data as ConntrackData;
    const forB = parse({ vm_ips: [b.ip, b.ip6!] });
    assert.deepEqual(forB.events?.byType.NEW, N.b4 + N.b6 + N.dnat, 'B: its own and the DNATed connections (B in their reply tuple)');
    const dnat = forB.events!.topFlows.filter((x) => x.flow.endsWith(`${h.ip}:7777`));
    assert.equal(dnat.length, N.dnat, forB.events!.topFlows.map((x) => x.flow).join('\n'));
    assert.equal(parse({ src_ip: a.ip6 }).events?.byType.NEW, N.a6, 'an IPv6 src_ip');
    assert.equal(parse({ dst_ip: 'FD00:78:0::1' }).events?.byType.NEW, N.a6 + N.b6, 'an IPv6 dst_ip, written another way');
    // Unscoped: every UDP connection (the host's own other traffic, ICMPv6 and the like, may add events of other protocols).
    const all = parse({}).events!;
    t.diagnostic(`unscoped: ${JSON.stringify(all.byProtocol)}`);
    assert.equal(all.byProtocol.udp?.NEW, N.a4 + N.b4 + N.a6 + N.b6 + N.dnat, 'unscoped: every UDP connection');
  });

  it('reads the reply tuple of a NATed entry, and only then', () => {
    const natted = parseEventLine('[1.5]\t    [NEW] ipv4     2 udp      17 30 src=10.0.0.2 dst=10.0.0.1 sport=24000 dport=7777 [UNREPLIED] src=10.0.0.3 dst=10.0.0.2 sport=7777 dport=24000 id=7');
    assert.deepEqual(natted?.reply, { src: '10.0.0.3', dst: '10.0.0.2' });
    const plain = parseEventLine('[1.5]\t    [NEW] ipv6     10 udp      17 30 src=fd00::2 dst=fd00::1 sport=22000 dport=9999 [UNREPLIED] src=fd00::1 dst=fd00::2 sport=9999 dport=22000 id=8');
    assert.equal(plain?.reply, undefined);
    assert.equal(plain?.src, 'fd00::2');
  });
});
