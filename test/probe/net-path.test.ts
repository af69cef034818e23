import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { readEvidence } from '../../engine/probe/evidence.js';
import { resolveParams } from '../../engine/probe/params.js';
import { runProbe, type RunProbeOptions } from '../../engine/probe/runtime.js';
import type { Params, RawRecord } from '../../engine/probe/types.js';
import { readingsOf } from '../../engine/probe/netns.js';
import { parseSnmp } from '../../probes/lib/snmp.js';
import { netPath, type PathData } from '../../probes/net.path/probe.js';
import { canBuildTopologies, createVethPair, ping, run, type VethPair } from '../helpers/netns.js';
import { tempBundle } from '../helpers/bundle.js';
import { runWindowOverTraffic } from '../helpers/probe-window.js';
import { asymmetricSource, baseOf, fragmentingRouter, pingCount, sideLink } from '../helpers/route-faults.js';

function path(params: Record<string, unknown>) {
  return { step: 'path', alias: 'path', probe: 'net.path', params: params as Params };
}

const cannot = await canBuildTopologies();

async function macOf(pair: VethPair, dev: string): Promise<string> {
  const [link] = JSON.parse((await pair.inNs(['ip', '-j', 'link', 'show', 'dev', dev])).stdout) as Array<{ address: string }>;
  return link!.address;
}

/** Waits until `read` says yes (at most 20s); returns its last answer. */
async function until(read: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (await read()) return true;
    await delay(100);
  }
  return false;
}

/** Runs net.path with `traffic` inside its window: after its first counter read, before its last. */
function windowed(params: Record<string, unknown>, opts: RunProbeOptions, traffic: () => Promise<void>) {
  return runWindowOverTraffic(netPath, path(params), opts, traffic);
}

/** A counter of the namespace's /proc/net/snmp or netstat (`TcpExt.<name>`). */
async function nsCounter(pair: VethPair, name: string): Promise<number> {
  const [snmp, netstat] = await Promise.all([pair.inNs(['cat', '/proc/net/snmp']), pair.inNs(['cat', '/proc/net/netstat'])]);
  return parseSnmp(snmp.stdout, '', netstat.stdout).get(name) ?? -1;
}

describe('net.path on veth pairs and namespaces', () => {
  // CI runs as root with iproute2 and ping installed: a missing tool is a failure, not a skip.
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('names both ends of a veth whose peer has a lower MTU, with the route and neighbour, and replays identically', async (t) => {
    const pair = await createVethPair(t, { hostMtu: 1500, peerMtu: 1000 });
    const pong = await pair.ping({ count: 2 });
    assert.equal(pong.received, 2);
    const b = await tempBundle(t, 'ebpfnet-path-');
    // One read of the IP counters: the host namespace is shared, so a window could catch other tests' fragments.
    const params = { devs: [pair.hostDev], ips: [pair.peerIp], duration: 0 };
    const f = await runProbe(netPath, path(params), b.opts('mtu'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as PathData;
    assert.deepEqual(data.mtuMismatches, [{ dev: pair.hostDev, mtu: 1500, peer: pair.peerDev, peerMtu: 1000, relation: 'veth-peer', peerNetns: pair.ns }]);
    const dev = data.devices.find((d) => d.dev === pair.hostDev);
    assert.ok(dev, JSON.stringify(data.devices));
    assert.deepEqual([dev.kind, dev.mtu, dev.peer, dev.peerMtu, dev.peerNetns, dev.ipv4], ['veth', 1500, pair.peerDev, 1000, pair.ns, [pair.hostIp]]);
    assert.deepEqual(data.routes, [{ ip: pair.peerIp, dev: pair.hostDev, via: null, src: pair.hostIp, type: 'unicast', offPath: false }]);
    const mac = await macOf(pair, pair.peerDev);
    assert.equal(data.neighbours.length, 1, JSON.stringify(data.neighbours));
    const n = data.neighbours[0]!;
    assert.deepEqual([n.ip, n.dev, n.mac], [pair.peerIp, pair.hostDev, mac]);
    assert.match(n.state, /REACHABLE|STALE|DELAY|PROBE/);
    assert.deepEqual(data.failedNeighbours, []);
    assert.deepEqual(data.rpFilterDrops, []);
    assert.ok(data.reversePathChecks.every((c) => c.ok), 'a symmetric route passes any rp_filter');
    assert.equal(data.cumulative, true);
    assert.deepEqual(data.problems.map((p) => p.kind), ['mtu']);
    assert.equal(f.summary, `MTU mismatch: ${pair.hostDev} has 1500, its veth peer ${pair.peerDev} (netns ${pair.ns}) has 1000; 1 device, 1 IP`);
    assert.equal(f.severity, 'warning');
    assert.ok(f.tables.some((tb) => tb.title === 'Devices on the path' && tb.rows.some((r) => r[0] === pair.hostDev && r[6] === 1000)));

    const replay = await runProbe(netPath, path(params), b.opts('mtu-replay', { replayFrom: b.dir('mtu') }));
    assert.equal(replay.status, 'ok', replay.reason);
    assert.equal(replay.driver, 'replay');
    assert.deepEqual(replay.data, f.data);
    assert.equal(replay.summary, f.summary);
    assert.deepEqual(replay.tables, f.tables);
  });

  it('finds the veth peer from inside the namespace too (in the host namespace) with matching MTUs', async (t) => {
    const pair = await createVethPair(t);
    const b = await tempBundle(t, 'ebpfnet-path-');
    const f = await runProbe(netPath, path({ netns: pair.ns, devs: [pair.peerDev], duration: 0 }), b.opts('inside'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as PathData;
    const dev = data.devices.find((d) => d.dev === pair.peerDev)!;
    assert.deepEqual([dev.peer, dev.peerMtu, dev.peerNetns], [pair.hostDev, 1500, 'host']);
    assert.deepEqual(data.mtuMismatches, []);
    assert.equal(data.cumulative, true);
    assert.deepEqual(data.problems, []);
    assert.equal(f.severity, 'info');
    assert.equal(f.summary, `path looks healthy: routes, MTUs, rp_filter and neighbours agree; 1 device, 0 IPs in ${pair.ns}`);
  });

  it('reports the error and the route type for an unreachable, a blackhole and a prohibit route', async (t) => {
    const pair = await createVethPair(t);
    const base = baseOf(pair);
    const [unreach, hole, prohibit] = [`${base}.77`, `${base}.78`, `${base}.79`];
    await pair.inNs(['ip', 'route', 'add', 'unreachable', `${unreach}/32`]);
    await pair.inNs(['ip', 'route', 'add', 'blackhole', `${hole}/32`]);
    await pair.inNs(['ip', 'route', 'add', 'prohibit', `${prohibit}/32`]);
    const b = await tempBundle(t, 'ebpfnet-path-');
    const params = { netns: pair.ns, ips: [unreach, hole, prohibit, pair.hostIp], duration: 0 };
    const f = await runProbe(netPath, path(params), b.opts('unreach'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as PathData;
    assert.deepEqual(
      data.routes.map((r) => [r.ip, r.type, r.error, r.matched, r.dev]),
      [
        [unreach, 'unreachable', 'No route to host', `unreachable ${unreach}`, null],
        [hole, 'blackhole', 'Invalid argument', `blackhole ${hole}`, null],
        [prohibit, 'prohibit', 'Permission denied', `prohibit ${prohibit}`, null],
        [pair.hostIp, 'unicast', undefined, undefined, pair.peerDev],
      ],
    );
    assert.deepEqual(data.devices.map((d) => d.dev), [pair.peerDev], 'with no devs, the path is where the routes leave');
    assert.deepEqual(data.problems.map((p) => p.kind), ['route', 'route', 'route']);
    assert.equal(f.severity, 'critical');
    assert.match(f.summary, new RegExp(`^no route to ${unreach.replace(/\./g, '\\.')}: No route to host \\(unreachable ${unreach.replace(/\./g, '\\.')}\\) \\(\\+2 more problems\\)`));

    const replay = await runProbe(netPath, path(params), b.opts('unreach-replay', { replayFrom: b.dir('unreach') }));
    assert.deepEqual(replay.data, f.data);
  });

  it('shows rp_filter=1 refusing packets from a source routed elsewhere, as the kernel does, and loose mode accepting them', async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    const far = await asymmetricSource(pair);
    assert.equal((await pair.ping({ count: 1 })).received, 1, 'the host knows the peer MAC');
    const before = await nsCounter(pair, 'TcpExt.IPReversePathFilter');
    const b = await tempBundle(t, 'ebpfnet-path-');
    const params = { netns: pair.ns, devs: [pair.peerDev], ips: [far, pair.hostIp], duration: '300ms' };
    let sent = 0;
    const f = await windowed(params, b.opts('strict'), async () => {
      sent = await pingCount(pair.peerIp, far, []);
      await until(async () => (await nsCounter(pair, 'TcpExt.IPReversePathFilter')) >= before + sent);
    });
    assert.equal(f.status, 'ok', f.reason);
    assert.ok(sent > 0);
    const data = f.data as PathData;
    assert.deepEqual(data.rpFilter, [{ dev: pair.peerDev, value: 1, all: 0, effective: 1 }]);
    // The kernel's words for the refusal: EXDEV before 6.13, EINVAL (every input-route drop) since.
    const refusal = data.rpFilterDrops[0]?.error;
    assert.ok(refusal === 'Invalid argument' || refusal === 'Invalid cross-device link', JSON.stringify(data.rpFilterDrops));
    assert.deepEqual(data.rpFilterDrops, [
      {
        ip: far,
        dev: pair.peerDev,
        dst: pair.peerIp,
        rpFilter: 1,
        ok: false,
        error: refusal,
        reason: `rp_filter=1 (strict) on ${pair.peerDev}, but the route back to ${far} leaves by side0`,
      },
    ]);
    assert.equal(data.rpFilterDropped, sent, 'the kernel dropped every packet from that source, as the check said');
    assert.deepEqual(data.reversePathChecks.map((c) => [c.ip, c.ok]), [
      [far, false],
      [pair.hostIp, true],
    ]);
    assert.deepEqual(data.routes.map((r) => [r.ip, r.dev, r.offPath]), [
      [far, 'side0', true],
      [pair.hostIp, pair.peerDev, false],
    ]);
    assert.equal(data.problems[0]!.kind, 'rp_filter');
    assert.equal(f.severity, 'critical');
    assert.match(f.summary, new RegExp(`^packets from ${far.replace(/\./g, '\\.')} arriving on ${pair.peerDev} fail the reverse-path check`));

    const replay = await runProbe(netPath, path(params), b.opts('strict-replay', { replayFrom: b.dir('strict') }));
    assert.deepEqual(replay.data, f.data);
    assert.equal(replay.summary, f.summary);
    // The other kernels' words for the same refusal (this recording with its errno swapped, not
    // one made there): the same drop, the kernel's words kept.
    const other = refusal === 'Invalid argument' ? 'Invalid cross-device link' : 'Invalid argument';
    const swapped = (await readEvidence(b.dir('strict'))).records.map((r) => (r.name.startsWith('rpcheck-') && r.stderr ? { ...r, stderr: r.stderr.replace(refusal!, other) } : r));
    const asOther = netPath.parse(swapped, resolveParams(netPath, params)).data as PathData;
    assert.deepEqual(asOther.rpFilterDrops, [{ ...data.rpFilterDrops[0]!, error: other }]);

    // Loose mode only wants some route back, which there is.
    await pair.inNs(['sysctl', '-q', '-w', `net.ipv4.conf.${pair.peerDev}.rp_filter=2`]);
    const loose = await runProbe(netPath, path({ ...params, duration: 0 }), b.opts('loose'));
    const ld = loose.data as PathData;
    assert.deepEqual(ld.rpFilter, [{ dev: pair.peerDev, value: 2, all: 0, effective: 2 }]);
    assert.deepEqual(ld.rpFilterDrops, []);
    assert.deepEqual(ld.reversePathChecks.map((c) => [c.ip, c.ok]), [
      [far, true],
      [pair.hostIp, true],
    ]);
    // `all` wins when it is higher: strict again without touching the device.
    await pair.inNs(['sysctl', '-q', '-w', `net.ipv4.conf.${pair.peerDev}.rp_filter=0`, 'net.ipv4.conf.all.rp_filter=1']);
    const viaAll = await runProbe(netPath, path({ ...params, duration: 0 }), b.opts('all'));
    const vd = viaAll.data as PathData;
    assert.deepEqual(vd.rpFilter, [{ dev: pair.peerDev, value: 0, all: 1, effective: 1 }]);
    assert.deepEqual(vd.rpFilterDrops.map((c) => c.ip), [far]);
  });

  it('lists a neighbour stuck FAILED after pinging an address nobody has', async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    const ghost = `${baseOf(pair)}.99`;
    const pong = await ping(ghost, pair.hostDev, { count: 1, wait: 1 });
    assert.equal(pong.received, 0);
    const failed = await until(async () => {
      const { stdout } = await run(['ip', '-j', 'neigh', 'show', 'to', ghost, 'dev', pair.hostDev]);
      return (JSON.parse(stdout || '[]') as Array<{ state?: string[] }>).some((e) => e.state?.includes('FAILED'));
    });
    assert.ok(failed, 'the kernel gave up resolving the address');
    const b = await tempBundle(t, 'ebpfnet-path-');
    const f = await runProbe(netPath, path({ devs: [pair.hostDev], ips: [ghost], duration: 0 }), b.opts('failed'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as PathData;
    assert.deepEqual(data.failedNeighbours, [{ ip: ghost, dev: pair.hostDev, state: 'FAILED', mac: null }]);
    assert.deepEqual(data.neighbours, data.failedNeighbours);
    assert.deepEqual(data.routes.map((r) => [r.ip, r.dev, r.error]), [[ghost, pair.hostDev, undefined]]);
    assert.equal(data.problems[0]!.kind, 'neighbour');
    assert.equal(f.severity, 'critical');
    assert.match(f.summary, new RegExp(`^neighbour ${ghost.replace(/\./g, '\\.')} on ${pair.hostDev} is FAILED`));
  });

  it('counts the fragmentation failures of a router whose next hop has a smaller MTU', async (t) => {
    // host --veth--> namespace (forwarding) --side0 (MTU 1000)--> ...: DF packets of 1228 bytes
    // cannot be forwarded, and the namespace counts each in FragFails.
    const pair = await createVethPair(t, { noIpv6: true });
    const dst = await fragmentingRouter(pair);
    const before = await nsCounter(pair, 'FragFails');

    const b = await tempBundle(t, 'ebpfnet-path-');
    let sent = 0;
    const f = await windowed({ netns: pair.ns, devs: [pair.peerDev, 'side0'], duration: '300ms' }, b.opts('frag'), async () => {
      // -M do: DF set; 1228 bytes do not fit side0's 1000.
      sent = await pingCount(dst, pair.hostDev, ['-M', 'do', '-s', '1200']);
      await until(async () => (await nsCounter(pair, 'FragFails')) >= before + sent);
    });
    assert.equal(f.status, 'ok', f.reason);
    assert.ok(sent > 0, 'pings were sent');
    const data = f.data as PathData;
    assert.equal(data.frag.FragFails, sent);
    assert.equal(data.fragFailures, sent);
    assert.equal(data.ipForward, true);
    assert.deepEqual(data.mtuMismatches, [], 'side0 and side1 agree: the two sides of a router may differ');
    assert.ok(data.problems.some((p) => p.kind === 'fragmentation' && p.text.startsWith(`${sent} IP fragmentation/reassembly failures in 300ms (FragFails ${sent}`)), JSON.stringify(data.problems));
    assert.equal(f.severity, 'critical');
  });

  it('fails clearly for a device or a namespace that does not exist, and for a bad IP', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-path-');
    const noDev = await runProbe(netPath, path({ devs: ['ebtnosuch0'], duration: 0 }), b.opts('nodev'));
    assert.equal(noDev.status, 'error');
    assert.match(noDev.reason!, /^no device ebtnosuch0 in this network namespace; devices here: .*\blo\b/);
    const noNs = await runProbe(netPath, path({ netns: 'ebpfnet-nosuch-ns', ips: ['10.0.0.1'], duration: 0 }), b.opts('nons'));
    assert.equal(noNs.status, 'error');
    assert.match(noNs.reason!, /^no network namespace ebpfnet-nosuch-ns: /);
    const badIp = await runProbe(netPath, path({ ips: ['10.0.0.300'], duration: 0 }), b.opts('badip'));
    assert.equal(badIp.status, 'error');
    assert.equal(badIp.reason, 'not an IP address: 10.0.0.300');
  });
});

/**
 * A VM on a Linux bridge, as on a hypervisor whose host has no address on the bridge: the bridge
 * lives in the namespace of `uplink` (a pair whose root-namespace end plays the network), the
 * "tap" is a second pair's root end moved into that namespace, and its other end, in the second
 * pair's namespace, is the VM (an address in the uplink's subnet).
 */
async function bridgedVm(t: Parameters<typeof createVethPair>[0], opts: { uplinkMtu: number; tapMtu: number }) {
  const uplink = await createVethPair(t, { hostMtu: opts.uplinkMtu, peerMtu: opts.uplinkMtu, noIpv6: true });
  const vm = await createVethPair(t, { noIpv6: true });
  const bridge = 'brvm0';
  const tap = vm.hostDev;
  const vmIp = `${baseOf(uplink)}.3`;
  await uplink.inNs(['ip', 'addr', 'flush', 'dev', uplink.peerDev]);
  await uplink.inNs(['ip', 'link', 'add', bridge, 'type', 'bridge']);
  await uplink.inNs(['ip', 'link', 'set', uplink.peerDev, 'master', bridge]);
  await run(['ip', 'link', 'set', tap, 'netns', uplink.ns]);
  await uplink.inNs(['ip', 'link', 'set', tap, 'mtu', String(opts.tapMtu), 'master', bridge, 'up']);
  await uplink.inNs(['ip', 'link', 'set', bridge, 'up']);
  await vm.inNs(['ip', 'addr', 'flush', 'dev', vm.peerDev]);
  await vm.inNs(['ip', 'addr', 'add', `${vmIp}/24`, 'dev', vm.peerDev]);
  const bridgeMtu = async () => (JSON.parse((await uplink.inNs(['ip', '-j', 'link', 'show', 'dev', bridge])).stdout) as Array<{ mtu: number }>)[0]!.mtu;
  return { uplink, vm, bridge, tap, vmIp, bridgeMtu };
}

/** DF pings of `l3` bytes (the IPv4 packet's size) run with `prefix` (a namespace's `ip netns exec`); how many came back. */
async function dfPings(prefix: string[], dst: string, dev: string, l3: number): Promise<{ sent: number; received: number }> {
  const argv = [...prefix, 'ping', '-n', '-q', '-c', '3', '-i', '0.05', '-W', '1', '-M', 'do', '-s', String(l3 - 28), '-I', dev, dst];
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, env: { LC_ALL: 'C' } });
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(String(r.stdout));
  assert.ok(m, `ping printed no summary: ${String(r.stdout)} ${String(r.stderr)}`);
  return { sent: Number(m[1]), received: Number(m[2]) };
}

const inRoot: string[] = [];
const inNs = (pair: VethPair) => ['ip', 'netns', 'exec', pair.ns];

describe("net.path's MTU check on a VM's switch", () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('a 9000-byte uplink beside a 1500-byte tap is no fault for 1472-byte packets; 8972-byte ones name the tap, to the VM; replays the same', async (t) => {
    const lab = await bridgedVm(t, { uplinkMtu: 9000, tapMtu: 1500 });
    // What crosses, counted by the kernel's answers: 1472 bytes both ways, 8972 not to the VM.
    const small = await dfPings(inRoot, lab.vmIp, lab.uplink.hostDev, 1472);
    assert.deepEqual(small, { sent: 3, received: 3 }, '1472-byte packets cross to the VM and back');
    const big = await dfPings(inRoot, lab.vmIp, lab.uplink.hostDev, 8972);
    assert.deepEqual(big, { sent: 3, received: 0 }, '8972-byte packets do not reach the VM');

    const b = await tempBundle(t, 'ebpfnet-path-');
    const common = { netns: lab.uplink.ns, taps: [lab.tap], uplinks: [lab.uplink.peerDev], duration: 0 };
    const fits = await runProbe(netPath, path({ ...common, packets_to_vm: 1472, packets_from_vm: 1472 }), b.opts('fits'));
    assert.equal(fits.status, 'ok', fits.reason);
    const fd = fits.data as PathData;
    assert.equal(await lab.bridgeMtu(), 1500, 'the bridge took its smallest port');
    assert.deepEqual(fd.mtuMismatches, []);
    const pair = (d: PathData, a: string, c: string) => d.mtuDifferences.find((m) => [m.dev, m.peer].sort().join() === [a, c].sort().join());
    assert.deepEqual(pair(fd, lab.tap, lab.uplink.peerDev), { dev: lab.tap, mtu: 1500, peer: lab.uplink.peerDev, peerMtu: 9000, relation: 'bridge-port' });
    assert.deepEqual(pair(fd, lab.uplink.peerDev, lab.bridge), { dev: lab.uplink.peerDev, mtu: 9000, peer: lab.bridge, peerMtu: 1500, relation: 'bridge' });
    assert.deepEqual(fd.mtuCheck, { taps: [lab.tap], uplinks: [lab.uplink.peerDev], packetsToVm: 1472, packetsFromVm: 1472 });
    assert.deepEqual(fd.problems, []);
    assert.equal(fits.severity, 'info');
    assert.ok(fd.notes.some((n) => /MTU differences on the path \(mtuDifferences\) are not a fault by itself/.test(n)), fd.notes.join('\n'));

    const jumbo = await runProbe(netPath, path({ ...common, packets_to_vm: 8972, packets_from_vm: 1472 }), b.opts('jumbo'));
    assert.equal(jumbo.status, 'ok', jumbo.reason);
    const jd = jumbo.data as PathData;
    assert.deepEqual(jd.mtuMismatches[0], { dev: lab.tap, mtu: 1500, packetBytes: 8972, direction: 'to-vm', relation: 'bridge', peer: lab.bridge, peerMtu: 1500 });
    // Past the tap, the VM's own end of the veth is as small: named too, never the uplink.
    assert.deepEqual(jd.mtuMismatches.slice(1), [{ dev: lab.vm.peerDev, mtu: 1500, packetBytes: 8972, direction: 'to-vm', relation: 'veth-peer', peer: lab.tap, peerMtu: 1500, devNetns: lab.vm.ns }]);
    assert.deepEqual(jd.problems.map((p) => p.kind), ['mtu', 'mtu']);
    assert.equal(jumbo.severity, 'warning');
    assert.match(jumbo.summary, new RegExp(`^MTU mismatch: ${lab.tap} has 1500, smaller than the 8972-byte packets to the VM that must cross it, a port of bridge ${lab.bridge} \\(MTU 1500\\)`));

    const replay = await runProbe(netPath, path({ ...common, packets_to_vm: 8972, packets_from_vm: 1472 }), b.opts('jumbo-replay', { replayFrom: b.dir('jumbo') }));
    assert.equal(replay.status, 'ok', replay.reason);
    assert.equal(replay.driver, 'replay');
    assert.deepEqual(replay.data, jumbo.data);
    assert.equal(replay.summary, jumbo.summary);

    // Without packet sizes nothing is claimed, whatever differs.
    const unsized = await runProbe(netPath, path(common), b.opts('unsized'));
    const ud = unsized.data as PathData;
    assert.deepEqual(ud.mtuMismatches, []);
    assert.ok(ud.mtuDifferences.length >= 2);
    assert.ok(ud.notes.some((n) => n.startsWith('packets_to_vm not given')) && ud.notes.some((n) => n.startsWith('packets_from_vm not given')), ud.notes.join('\n'));
  });

  it('a tap of MTU 1000 is named for 1200-byte packets, which the kernel drops there both ways', async (t) => {
    const lab = await bridgedVm(t, { uplinkMtu: 1500, tapMtu: 1000 });
    assert.deepEqual(await dfPings(inRoot, lab.vmIp, lab.uplink.hostDev, 1000), { sent: 3, received: 3 }, '1000-byte packets cross');
    assert.deepEqual(await dfPings(inRoot, lab.vmIp, lab.uplink.hostDev, 1200), { sent: 3, received: 0 }, '1200-byte packets to the VM are dropped');
    // The VM's own end is 1500: it sends 1200 bytes, and the veth "tap" refuses them.
    assert.deepEqual(await dfPings(inNs(lab.vm), lab.uplink.hostIp, lab.vm.peerDev, 1200), { sent: 3, received: 0 }, '1200-byte packets from the VM are dropped');

    const b = await tempBundle(t, 'ebpfnet-path-');
    const f = await runProbe(netPath, path({ netns: lab.uplink.ns, taps: [lab.tap], uplinks: [lab.uplink.peerDev], packets_to_vm: 1200, packets_from_vm: 1200, duration: 0 }), b.opts('small-tap'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as PathData;
    const bridgeMtu = await lab.bridgeMtu();
    assert.deepEqual(data.mtuMismatches, [
      { dev: lab.tap, mtu: 1000, packetBytes: 1200, direction: 'to-vm', relation: 'bridge', peer: lab.bridge, peerMtu: bridgeMtu },
      { dev: lab.tap, mtu: 1000, packetBytes: 1200, direction: 'from-vm', relation: 'veth-peer', peer: lab.vm.peerDev, peerMtu: 1500, peerNetns: lab.vm.ns },
    ]);
    assert.ok(!data.mtuMismatches.some((m) => m.dev === lab.uplink.peerDev), 'the 1500-byte uplink carries 1200 bytes');
    assert.equal(f.severity, 'warning');
  });
});

/**
 * An IPv6 /64 of this test process's own, `fdXX:YYYY:N` (append `::1`), from the pid and a
 * counter; `g` is its second group, for documentation prefixes of its own (2001:db8:g::/48).
 * Every group is written as `ip` prints it.
 */
let prefixes = 0;
function ownPrefix(): { p: string; g: string } {
  const g = (process.pid & 0xffff || 1).toString(16);
  const hi = ((process.pid >> 16) & 0xff).toString(16).padStart(2, '0');
  return { p: `fd${hi}:${g}:${(++prefixes).toString(16)}`, g };
}

/** Adds an IPv6 address without duplicate address detection (usable at once). */
async function addr6(pair: VethPair, where: 'host' | 'peer', cidr: string): Promise<void> {
  const argv = ['ip', '-6', 'addr', 'add', cidr, 'dev', where === 'host' ? pair.hostDev : pair.peerDev, 'nodad'];
  if (where === 'host') await run(argv);
  else await pair.inNs(argv);
}

/** Ip6* counters of the namespace (/proc/net/snmp6). */
async function nsCounter6(pair: VethPair, name: string): Promise<number> {
  return parseSnmp('', (await pair.inNs(['cat', '/proc/net/snmp6'])).stdout).get(name) ?? -1;
}

describe('net.path with IPv6', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('finds IPv6 routes (a gateway, an unreachable prefix), policy rules, a FAILED neighbour, and skips a link-local route; replays the same', async (t) => {
    const pair = await createVethPair(t);
    const { p, g } = ownPrefix();
    const [hostIp, nsIp, ghost] = [`${p}::1`, `${p}::2`, `${p}::99`];
    await addr6(pair, 'host', `${hostIp}/64`);
    await addr6(pair, 'peer', `${nsIp}/64`);
    const [far, nowhere] = [`2001:db8:${g}::5`, `2001:db8:${g}:1::5`];
    await pair.inNs(['ip', '-6', 'route', 'add', `2001:db8:${g}::/64`, 'via', hostIp, 'dev', pair.peerDev]);
    await pair.inNs(['ip', '-6', 'route', 'add', 'unreachable', `2001:db8:${g}:1::/64`]);
    await pair.inNs(['ip', '-6', 'rule', 'add', 'from', `${p}::/64`, 'lookup', '100', 'pref', '1000']);
    await pair.inNs(['sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
    // The gateway answers ND; the ghost does not.
    const pong = await pair.inNs(['ping', '-6', '-n', '-q', '-c', '1', '-W', '2', hostIp]);
    assert.match(pong.stdout, /1 received/);
    await pair.inNs(['ping', '-6', '-n', '-q', '-c', '1', '-W', '1', ghost]).catch(() => undefined);
    const failed = await until(async () => {
      const { stdout } = await pair.inNs(['ip', '-6', '-j', 'neigh', 'show', 'to', ghost, 'dev', pair.peerDev]);
      return (JSON.parse(stdout || '[]') as Array<{ state?: string[] }>).some((e) => e.state?.includes('FAILED'));
    });
    assert.ok(failed, 'the kernel gave up resolving the IPv6 address');

    const b = await tempBundle(t, 'ebpfnet-path-');
    // The gateway written long-hand: compared in the form `ip` prints.
    const longHand = `${p.split(':').map((x) => x.padStart(4, '0')).join(':')}:0000:0000:0000:0000:0001`;
    const params = { netns: pair.ns, ips: [ghost, far, nowhere, `fe80::1%${pair.peerDev}`, longHand], duration: 0 };
    const f = await runProbe(netPath, path(params), b.opts('v6'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as PathData;
    const hostMac = (JSON.parse((await run(['ip', '-j', 'link', 'show', 'dev', pair.hostDev])).stdout) as Array<{ address: string }>)[0]!.address;
    assert.deepEqual(
      data.routes.map((r) => [r.ip, r.type, r.dev, r.via, r.error, r.matched]),
      [
        [ghost, 'unicast', pair.peerDev, null, undefined, undefined],
        [far, 'unicast', pair.peerDev, hostIp, undefined, undefined],
        [nowhere, 'unreachable', null, null, 'No route to host', `unreachable 2001:db8:${g}:1::/64 dev lo`],
        [hostIp, 'unicast', pair.peerDev, null, undefined, undefined],
      ],
    );
    assert.deepEqual(data.failedNeighbours.filter((n) => n.ip === ghost), [{ ip: ghost, dev: pair.peerDev, state: 'FAILED', mac: null }]);
    const gw = data.neighbours.find((n) => n.for === far);
    assert.ok(gw && gw.ip === hostIp && gw.dev === pair.peerDev && gw.mac === hostMac && /REACHABLE|STALE|DELAY|PROBE/.test(gw.state), JSON.stringify(data.neighbours));
    assert.ok(data.neighbours.some((n) => n.ip === 'fe80::1' && n.dev === pair.peerDev && n.state === 'NONE'), 'the link-local address is looked up on its zone');
    assert.ok(data.rules.some((r) => r.priority === 1000 && r.text === `from ${p}::/64 lookup 100`), JSON.stringify(data.rules));
    const forwarding = (await pair.inNs(['cat', '/proc/sys/net/ipv6/conf/all/forwarding'])).stdout.trim();
    assert.equal(data.ip6Forward, forwarding === '1');
    assert.equal(data.ip6Forward, true);
    assert.ok(data.notes.some((n) => n.startsWith('fe80::1 is link-local')), data.notes.join('\n'));
    assert.ok(data.notes.some((n) => n.startsWith("rp_filter is IPv4's")), data.notes.join('\n'));
    assert.deepEqual(data.reversePathChecks, []);
    assert.deepEqual([...new Set(data.problems.map((q) => q.kind))], ['route', 'neighbour']);
    assert.equal(f.severity, 'critical');

    const replay = await runProbe(netPath, path(params), b.opts('v6-replay', { replayFrom: b.dir('v6') }));
    assert.equal(replay.status, 'ok', replay.reason);
    assert.deepEqual(replay.data, f.data);
    assert.equal(replay.summary, f.summary);
  });

  it('counts the IPv6 packets a router refuses as too big for its next hop (Ip6FragFails)', async (t) => {
    // client namespace --veth--> router namespace (forwarding) --side0 (MTU 1280)--> ...: the
    // router answers "packet too big" to 1400-byte packets and counts each in Ip6FragFails.
    // IPv6 keeps the PMTU it learns whatever the route says, so the client forgets it after
    // each ping (its own namespace's route cache).
    const router = await createVethPair(t);
    const client = await createVethPair(t);
    await sideLink(router, 1280);
    const { p } = ownPrefix();
    const [routerIp, clientIp, dst] = [`${p}::1`, `${p}::2`, `${p}::200`];
    const routerDev = client.hostDev;
    await run(['ip', 'link', 'set', routerDev, 'netns', router.ns]);
    await router.inNs(['ip', 'link', 'set', routerDev, 'up']);
    await router.inNs(['ip', '-6', 'addr', 'add', `${routerIp}/64`, 'dev', routerDev, 'nodad']);
    await addr6(client, 'peer', `${clientIp}/64`);
    await router.inNs(['sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
    await router.inNs(['ip', '-6', 'route', 'add', `${dst}/128`, 'dev', 'side0']);
    await client.inNs(['ip', '-6', 'route', 'add', `${dst}/128`, 'via', routerIp]);
    const before6 = await nsCounter6(router, 'Ip6FragFails');

    const b = await tempBundle(t, 'ebpfnet-path-');
    let sent = 0;
    const f = await windowed({ netns: router.ns, devs: [routerDev, 'side0'], ips: [dst], duration: '300ms' }, b.opts('frag6'), async () => {
      for (let i = 0; i < 3; i++) {
        const r = await execa('ip', ['netns', 'exec', client.ns, 'ping', '-6', '-n', '-q', '-c', '1', '-W', '1', '-M', 'do', '-s', '1352', dst], { reject: false, env: { LC_ALL: 'C' } });
        sent += Number(/(\d+) packets transmitted/.exec(String(r.stdout))?.[1] ?? 0);
        await client.inNs(['ip', '-6', 'route', 'flush', 'cache']);
      }
      await until(async () => (await nsCounter6(router, 'Ip6FragFails')) >= before6 + sent);
    });
    assert.equal(f.status, 'ok', f.reason);
    assert.equal(sent, 3, 'pings were sent');
    const data = f.data as PathData;
    assert.equal(data.frag.Ip6FragFails, sent);
    assert.equal(data.fragFailures, sent);
    assert.equal(data.ip6Forward, true);
    assert.deepEqual(data.routes.map((r) => [r.ip, r.dev]), [[dst, 'side0']]);
    assert.ok(data.problems.some((q) => q.kind === 'fragmentation' && q.text.startsWith(`${sent} IP fragmentation/reassembly failures in 300ms (FragFails ${sent}`)), JSON.stringify(data.problems));
    assert.equal(f.severity, 'critical');
  });
});

// ---------------------------------------------------------------------------------------------

function exec(seq: number, name: string, stdout: string, extra: Partial<RawRecord> = {}): RawRecord {
  return { seq, op: 'exec', name, argv: ['ip'], at: seq, durationMs: 1, stdout, stderr: '', exitCode: 0, ...extra };
}

describe('net.path parser', () => {
  it('finds the MTU mismatches around a bridge: port vs bridge and port vs port', () => {
    const link = (ifindex: number, ifname: string, mtu: number, extra: Record<string, unknown> = {}) => ({ ifindex, ifname, mtu, operstate: 'UP', addr_info: [], ...extra });
    const links = [
      link(1, 'lo', 65536),
      link(5, 'br0', 1500, { linkinfo: { info_kind: 'bridge' }, addr_info: [{ family: 'inet', local: '10.0.0.1', prefixlen: 24 }] }),
      link(6, 'tap0', 1500, { master: 'br0', linkinfo: { info_kind: 'tun', info_slave_kind: 'bridge' } }),
      link(7, 'tap1', 1450, { master: 'br0', linkinfo: { info_kind: 'tun', info_slave_kind: 'bridge' } }),
      link(8, 'vlan9', 1500, { link: 'tap1', linkinfo: { info_kind: 'vlan' } }),
    ];
    const sysctl = JSON.stringify([
      { path: '/proc/sys/net/ipv4/ip_forward', text: '1\n' },
      { path: '/proc/sys/net/ipv4/conf/all/rp_filter', text: '0\n' },
      { path: '/proc/sys/net/ipv4/conf/tap0/rp_filter', text: '0\n' },
      { path: '/proc/sys/net/ipv4/conf/vlan9/rp_filter', text: '0\n' },
      { path: '/proc/sys/net/ipv4/conf/br0/rp_filter', text: '1\n' },
    ]);
    const records: RawRecord[] = [
      { ...exec(1, 'snmp-start', '[]'), op: 'readfiles', paths: ['/proc/net/snmp', '/proc/net/snmp6'] },
      exec(2, 'links', JSON.stringify(links)),
      exec(3, 'rules', JSON.stringify([{ priority: 0, src: 'all', table: 'local' }, { priority: 100, src: '10.0.0.0', srclen: 24, table: '42' }, { priority: 32766, src: 'all', table: 'main' }])),
      { ...exec(4, 'sysctl', sysctl), op: 'readfiles', paths: ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv4/conf/all/rp_filter', '/proc/sys/net/ipv4/conf/tap0/rp_filter', '/proc/sys/net/ipv4/conf/vlan9/rp_filter', '/proc/sys/net/ipv4/conf/br0/rp_filter'] },
      exec(5, 'neigh', '[]'),
    ];
    const r = netPath.parse(records, { devs: ['tap0', 'vlan9'], ips: [], duration: 0 });
    const data = r.data as PathData;
    // Two ports of one bridge that differ are no fault without packets bigger than the smaller
    // (none given): listed, not claimed. vlan9 is routed: the host sends it up to 1500 bytes.
    assert.deepEqual(
      data.mtuDifferences.map((m) => [m.dev, m.mtu, m.peer, m.peerMtu, m.relation]),
      [
        ['tap0', 1500, 'tap1', 1450, 'bridge-port'],
        ['vlan9', 1500, 'tap1', 1450, 'lower'],
      ],
    );
    assert.deepEqual(
      data.mtuMismatches.map((m) => [m.dev, m.mtu, m.peer, m.peerMtu, m.relation]),
      [['vlan9', 1500, 'tap1', 1450, 'lower']],
    );
    assert.deepEqual(data.devices.find((d) => d.dev === 'br0')?.ports, ['tap0', 'tap1']);
    assert.deepEqual(data.devices.find((d) => d.dev === 'tap0')?.l3dev, 'br0');
    assert.deepEqual(data.rpFilter.map((e) => [e.dev, e.effective]), [
      ['tap0', 0],
      ['vlan9', 0],
      ['br0', 1],
    ]);
    assert.deepEqual(data.rules, [{ priority: 100, text: 'from 10.0.0.0/24 lookup 42' }]);
    assert.equal(data.ipForward, true);
    assert.ok(data.notes.some((n) => n.includes("a tap's other end is the VM")));
    assert.equal(r.severity, 'warning');
  });

  it('checks packet sizes against an OVS tap, a routed tap, a VLAN uplink over a smaller device, and skips a Linux bridge given as an uplink (records written by hand: no OVS kernel datapath here)', () => {
    const link = (ifindex: number, ifname: string, mtu: number, extra: Record<string, unknown> = {}) => ({ ifindex, ifname, mtu, operstate: 'UP', addr_info: [], ...extra });
    const links = [
      link(1, 'lo', 65536),
      link(2, 'ovs-system', 1500, { linkinfo: { info_kind: 'openvswitch' } }),
      link(3, 'vnet0', 1500, { master: 'ovs-system', linkinfo: { info_kind: 'tun', info_slave_kind: 'openvswitch' } }),
      link(4, 'vnet1', 1400, { linkinfo: { info_kind: 'tun' } }),
      link(5, 'eth1', 1500),
      link(6, 'eth1.100', 9000, { link: 'eth1', master: 'ovs-system', linkinfo: { info_kind: 'vlan', info_slave_kind: 'openvswitch' } }),
      link(7, 'br0', 1500, { linkinfo: { info_kind: 'bridge' } }),
    ];
    const records: RawRecord[] = [exec(1, 'links', JSON.stringify(links)), exec(2, 'rules', '[]'), exec(3, 'neigh', '[]')];
    const params = { devs: [], ips: [], taps: ['vnet0', 'vnet1', 'vnet9'], uplinks: ['eth1.100', 'br0'], packets_to_vm: 1450, packets_from_vm: 4000, duration: 0 };
    const r = netPath.parse(records, params);
    const data = r.data as PathData;
    // vnet0 (1500) carries 1450; vnet1 is routed (the packets reach it from the host's stack) and
    // does not; eth1.100 (9000) carries 4000 bytes, the device below it does not.
    assert.deepEqual(data.mtuMismatches, [
      { dev: 'vnet1', mtu: 1400, packetBytes: 1450, direction: 'to-vm', relation: 'route', peer: null, peerMtu: null },
      { dev: 'eth1', mtu: 1500, packetBytes: 4000, direction: 'from-vm', relation: 'lower', peer: 'eth1.100', peerMtu: 9000 },
    ]);
    // A 1500-byte OVS port is named for 4000-byte packets, by its switch.
    const smaller = netPath.parse(records, { ...params, uplinks: ['vnet0'], packets_to_vm: 0 }).data as PathData;
    assert.deepEqual(smaller.mtuMismatches, [{ dev: 'vnet0', mtu: 1500, packetBytes: 4000, direction: 'from-vm', relation: 'switch', peer: 'ovs-system', peerMtu: 1500 }]);
    assert.deepEqual(data.mtuCheck, { taps: ['vnet0', 'vnet1'], uplinks: ['eth1.100', 'br0'], packetsToVm: 1450, packetsFromVm: 4000 });
    assert.ok(data.notes.includes('tap vnet9 is not a device here: its MTU is not checked'), data.notes.join('\n'));
    assert.ok(data.notes.some((n) => n.startsWith('uplink br0 is a Linux bridge device')), data.notes.join('\n'));
    assert.match(r.summary, /^MTU mismatch: vnet1 has 1400, smaller than the 1450-byte packets to the VM that must cross it \(\+1 more problem\)/);
    assert.equal(r.severity, 'warning');
  });

  it('reads procfs files read by grep inside a namespace, and /proc/net/snmp', () => {
    const paths = ['/proc/net/snmp', '/proc/net/snmp6', '/proc/sys/net/ipv4/conf/x/rp_filter'];
    const rec = exec(1, 'snmp', '/proc/net/snmp:Ip: Forwarding ReasmFails FragFails\n/proc/net/snmp:Ip: 1 3 4\n/proc/net/snmp6:Ip6ReasmFails                   \t2\n', {
      exitCode: 2,
      stderr: 'grep: /proc/sys/net/ipv4/conf/x/rp_filter: No such file or directory\n',
      error: 'exited with code 2',
    });
    const r = readingsOf(rec, paths);
    assert.equal(r.get('/proc/net/snmp')?.text, 'Ip: Forwarding ReasmFails FragFails\nIp: 1 3 4\n');
    assert.equal(r.get('/proc/net/snmp6')?.text, 'Ip6ReasmFails                   \t2\n');
    assert.deepEqual(r.get('/proc/sys/net/ipv4/conf/x/rp_filter'), { error: 'No such file or directory' });
    const counters = parseSnmp(r.get('/proc/net/snmp')!.text!, r.get('/proc/net/snmp6')!.text!);
    assert.deepEqual([counters.get('ReasmFails'), counters.get('FragFails'), counters.get('Ip6ReasmFails')], [3, 4, 2]);
  });
});
