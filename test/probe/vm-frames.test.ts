// vm.frames on a hypervisor in miniature (test/helpers/vm-frames-lab.ts): a switch whose host
// has no address on it, two "VMs" (veths whose other end sits in a namespace, as a tap's other
// side is the guest) and an uplink to a peer. Faults drop some of VM A's frames in the switch;
// the probe scoped to A must count exactly those (against the rule's own counter) and the
// probe scoped to B must count nothing lost. The Linux bridge drops by an nft bridge rule,
// OVS's userspace datapath by an OpenFlow rule the kernel never sees.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { stat } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { liveHandles } from '../../engine/native/guard.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params } from '../../engine/probe/types.js';
import { readDump } from '../../probes/vm.frames/dump.js';
import { framesFinding, type AttachCapture, type FramesData } from '../../probes/vm.frames/findings.js';
import { attachPlan, closeWindow, DEFAULT_GRACE_MS, vmFrames } from '../../probes/vm.frames/probe.js';
import { scopeGlobals, type Scope } from '../../probes/vm.frames/scope.js';
import { assertEveryFlavourAttaches } from '../helpers/attach-plan.js';
import { tempBundle, type TempBundle } from '../helpers/bundle.js';
import { assertProbeListedAndShown } from '../helpers/cli.js';
import { canBuildTopologies, needs } from '../helpers/netns.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { buildFramesLab, settled, type FramesHost, type FramesLab } from '../helpers/vm-frames-lab.js';
import { canRunOvs } from '../lab/ovs.js';

const cannot = await canBuildTopologies();
const noOvs = cannot ?? (await canRunOvs());

/** Peer → A: N datagrams, K of them to the port a rule drops; peer → B: M; A → peer: N2, K2 dropped. */
const N = 400;
const K = 37;
const M = 250;
const N2 = 300;
const K2 = 23;
/** UDP payloads: the largest packets are these plus 28 bytes of IPv4 and UDP headers. */
const SIZE_TO_A = 1400;
const SIZE_FROM_A = 1200;
const ETH = 14;

const request = (params: Record<string, unknown>) => ({ step: 's', alias: 'frames', probe: vmFrames.id, params: params as Params });

function paramsFor(lab: FramesLab, vm: FramesHost, other: FramesHost, name: string, duration = '1s'): Record<string, unknown> {
  return { devs: [vm.port], macs: [vm.mac], ports: [lab.peer.port, other.port], duration, vm: name };
}

/**
 * The traffic of a loss test, inside the windows of two probes: the one scoped to B runs
 * around the one scoped to A, so both see all of it. Returns both findings.
 */
async function lossRun(lab: FramesLab, bundle: TempBundle, tag: string): Promise<{ a: Finding; b: Finding; paramsA: Record<string, unknown>; paramsB: Record<string, unknown> }> {
  const traffic = async () => {
    const sent = [
      await lab.sendUdp(lab.peer, lab.a, { port: 9, count: N - K, size: SIZE_TO_A, intervalMs: 1 }),
      await lab.sendUdp(lab.peer, lab.a, { port: 10, count: K, size: SIZE_TO_A, intervalMs: 1 }),
      await lab.sendUdp(lab.peer, lab.b, { port: 9, count: M, size: SIZE_TO_A, intervalMs: 1 }),
      await lab.sendUdp(lab.a, lab.peer, { port: 9, count: N2 - K2, size: SIZE_FROM_A, intervalMs: 1 }),
      await lab.sendUdp(lab.a, lab.peer, { port: 11, count: K2, size: SIZE_FROM_A, intervalMs: 1 }),
    ];
    assert.deepEqual(sent.map((s) => s.sent), [N - K, K, M, N2 - K2, K2]);
  };
  const paramsA = paramsFor(lab, lab.a, lab.b, 'vm-a');
  const paramsB = paramsFor(lab, lab.b, lab.a, 'vm-b', '200ms');
  const inner = withTrafficInWindow(vmFrames, traffic);
  const found: Finding[] = [];
  const outer = withTrafficInWindow(vmFrames, async () => {
    found.push(await runProbe(inner, request(paramsA), bundle.opts(`${tag}-a`)));
  });
  const b = await runProbe(outer, request(paramsB), bundle.opts(`${tag}-b`));
  const a = found[0];
  assert.ok(a);
  assert.equal(a.status, 'ok', a.reason);
  assert.equal(b.status, 'ok', b.reason);
  return { a, b, paramsA, paramsB };
}

/** What both loss tests assert of A and B, given the rules' own counts of what they dropped. */
function assertLoss(lab: FramesLab, a: FramesData, b: FramesData, droppedToA: number, droppedFromA: number): void {
  assert.equal(droppedToA, K, 'the rule dropping frames to A counted them all');
  assert.equal(droppedFromA, K2, 'the rule dropping frames from A counted them all');
  // To A: every datagram entered by the uplink, all but the dropped ones reached A's tap.
  assert.deepEqual(a.toVm.entered, { packets: N, bytes: N * (SIZE_TO_A + 28 + ETH) });
  assert.equal(a.toVm.delivered.packets, N - droppedToA);
  assert.equal(a.lost.toVm, droppedToA);
  // From A: every datagram sent on its tap, all but the dropped ones left by the uplink.
  assert.deepEqual(a.fromVm.sent.unicast, { packets: N2, bytes: N2 * (SIZE_FROM_A + 28 + ETH) });
  assert.equal(a.fromVm.forwarded.unicast.packets, N2 - droppedFromA);
  assert.equal(a.lost.fromVm, droppedFromA);
  assert.equal(a.packets, N + N2 + a.toVm.multicast.packets + a.toVm.broadcast.packets + a.fromVm.sent.multicast.packets + a.fromVm.sent.broadcast.packets);
  assert.equal(a.lost.share, Math.round(((K + K2) / a.packets) * 1e6) / 1e6);
  assert.deepEqual(a.maxPacket, { toVm: { bytes: SIZE_TO_A + 28, dev: lab.peer.port }, fromVm: { bytes: SIZE_FROM_A + 28, dev: lab.a.port } });
  const uplink = a.byPort.find((p) => p.dev === lab.peer.port);
  // Every copy leaving by the uplink: A's datagrams, and its multicast (IPv6 router solicitations, MLD) if any.
  assert.equal(uplink?.entered.packets, N);
  assert.equal(uplink?.forwarded.packets, N2 - droppedFromA + a.fromVm.forwarded.multicast.packets + a.fromVm.forwarded.broadcast.packets);
  // Learned from A's own frames: its IPv4 address (maybe its link-local, from a router
  // solicitation in the window), nothing of B's or the peer's.
  assert.ok(a.learnedAddresses.some((x) => x.address === lab.a.ip4 && x.via.includes('ipv4') && x.mac === lab.a.mac), JSON.stringify(a.learnedAddresses));
  assert.deepEqual(a.learnedAddresses.filter((x) => x.address !== lab.a.ip4 && x.address !== lab.a.linkLocal), []);

  // B, the healthy neighbour: all of its frames through, none of A's counted as its.
  assert.deepEqual(b.toVm.entered, { packets: M, bytes: M * (SIZE_TO_A + 28 + ETH) });
  assert.equal(b.toVm.delivered.packets, M);
  assert.deepEqual(b.lost, { toVm: 0, fromVm: 0, total: 0, share: 0 });
  assert.equal(b.fromVm.sent.unicast.packets, 0);
  assert.deepEqual(b.learnedAddresses.filter((x) => x.address !== lab.b.linkLocal), []);
}

describe('vm.frames', () => {
  it('is listed by the CLI, and `probes show` gives its params', () => {
    const shown = assertProbeListedAndShown('vm.frames');
    for (const p of ['devs', 'macs', 'ports', 'host_ports', 'grace']) assert.match(shown, new RegExp(`\\b${p}\\b`));
  });

  it('on a Linux bridge (IPv6 on, no IPv4 address): exactly the frames an nft bridge rule dropped to and from VM A; none of VM B; replays the same', async (t) => {
    needs(cannot);
    const lab = await buildFramesLab(t, 'linux');
    const bundle = await tempBundle(t, 'ebpfnet-frames-');
    const toA = await lab.dropRule(`ether daddr ${lab.a.mac} udp dport 10`);
    const fromA = await lab.dropRule(`ether saddr ${lab.a.mac} udp dport 11`);
    const run = await lossRun(lab, bundle, 'linux');
    const a = run.a.data as FramesData;
    const b = run.b.data as FramesData;
    assertLoss(lab, a, b, await toA(), await fromA());
    assert.equal(a.method, 'raw_tracepoint');
    assert.equal(a.graceMs >= DEFAULT_GRACE_MS * 0.9, true, `grace ${a.graceMs} ms`);
    assert.deepEqual(a.scope.devs.map((d) => d.name), [lab.a.port]);
    assert.deepEqual(a.scope.ports?.map((d) => d.name), [lab.peer.port, lab.b.port]);
    assert.match(run.a.summary, new RegExp(`^${K} of ${N} frames to vm-a lost in the switch; ${K2} of ${N2} frames from it lost in the switch; learned ${lab.a.ip4.replace(/\./g, '\\.')} \\(ipv4\\)`));
    assert.match(run.b.summary, new RegExp(`^no frame of vm-b lost in the switch \\(${M} to it, \\d+ from it\\)`));
    assert.equal(run.a.severity, 'critical');
    assert.equal(run.b.severity, 'info');

    const handles = liveHandles();
    assert.equal(handles.objects, 0, 'the live runs closed their objects');
    await assertReplaysSame(vmFrames, run.paramsA, bundle, 'linux-a', run.a);
    await assertReplaysSame(vmFrames, run.paramsB, bundle, 'linux-b', run.b);
    assert.deepEqual(liveHandles(), handles);
    t.diagnostic(`A: ${JSON.stringify(a.grace)}; load ${a.loadMs} ms`);
  });

  it("learns the addresses VM A uses from its own frames: its IPv4 (ARP, IPv4), link-local and global IPv6 (IPv6, and ND for the global one's duplicate address detection)", async (t) => {
    needs(cannot);
    const lab = await buildFramesLab(t, 'linux');
    const bundle = await tempBundle(t, 'ebpfnet-frames-learn-');
    const { a, peer } = lab;
    const traffic = async () => {
      await a.exec(['ip', 'neigh', 'del', peer.ip4, 'dev', a.dev]); // A asks by ARP
      await a.exec(['ping', '-c', '2', '-i', '0.2', '-W', '1', peer.ip4]);
      await lab.addGlobal(a); // duplicate address detection: a solicitation from ::
      await a.exec(['ping', '-6', '-c', '2', '-i', '0.2', '-W', '1', peer.ip6]);
      await a.exec(['ping', '-6', '-c', '2', '-i', '0.2', '-W', '1', `${peer.linkLocal}%${a.dev}`]);
    };
    const params = paramsFor(lab, a, lab.b, 'vm-a', '500ms');
    const f = await runProbe(withTrafficInWindow(vmFrames, traffic), request(params), bundle.opts('learn'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as FramesData;
    const learned = Object.fromEntries(data.learnedAddresses.map((x) => [x.address, { mac: x.mac, via: x.via }]));
    assert.deepEqual(learned, {
      [a.ip4]: { mac: a.mac, via: ['arp', 'ipv4'] },
      [a.linkLocal]: { mac: a.mac, via: ['ipv6'] },
      [a.ip6]: { mac: a.mac, via: ['ipv6', 'nd'] },
    });
    assert.ok(data.learnedAddresses.every((x) => x.packets > 0));
    assert.deepEqual(data.lost, { toVm: 0, fromVm: 0, total: 0, share: 0 });
    assert.equal(f.severity, 'info');
    assert.match(f.summary, /^no frame of vm-a lost in the switch \(\d+ to it, \d+ from it\); learned /);
    await assertReplaysSame(vmFrames, params, bundle, 'learn', f);
  });

  it("counts a frame the switch floods to every port once: A's datagrams to a MAC the bridge never learned reach the uplink and B's tap, and none is lost", async (t) => {
    needs(cannot);
    const lab = await buildFramesLab(t, 'linux');
    const bundle = await tempBundle(t, 'ebpfnet-frames-flood-');
    // A host that never speaks: A knows its MAC, the bridge never learns where it is.
    const ghost = { ip4: lab.a.ip4.replace(/\.\d+$/, '.99'), mac: '02:eb:00:00:00:99' };
    await lab.a.exec(['ip', 'neigh', 'replace', ghost.ip4, 'lladdr', ghost.mac, 'dev', lab.a.dev, 'nud', 'permanent']);
    const COUNT = 120;
    const traffic = async () => {
      assert.equal((await lab.sendUdp(lab.a, ghost, { port: 9, count: COUNT, size: 100, intervalMs: 1 })).sent, COUNT);
    };
    const paramsA = paramsFor(lab, lab.a, lab.b, 'vm-a');
    const paramsB = paramsFor(lab, lab.b, lab.a, 'vm-b', '200ms');
    const found: Finding[] = [];
    const outer = withTrafficInWindow(vmFrames, async () => {
      found.push(await runProbe(withTrafficInWindow(vmFrames, traffic), request(paramsA), bundle.opts('flood-a')));
    });
    const fb = await runProbe(outer, request(paramsB), bundle.opts('flood-b'));
    const a = found[0]!.data as FramesData;
    const b = fb.data as FramesData;
    const toGhost = (d: FramesData, dev: string) => d.byPort.find((p) => p.dev === dev)?.forwarded.packets ?? 0;
    // Every datagram left by both other ports; each counted once.
    assert.ok(toGhost(a, lab.peer.port) >= COUNT && toGhost(a, lab.b.port) >= COUNT, JSON.stringify(a.byPort));
    assert.equal(a.fromVm.sent.unicast.packets, COUNT);
    assert.equal(a.fromVm.forwarded.unicast.packets, COUNT);
    assert.equal(a.lost.fromVm, 0);
    assert.ok(a.flooded >= COUNT, `flooded ${a.flooded}`);
    assert.match(a.notes.join('\n'), /copies of the VM's frames left by more than one port/);
    // B's tap carried them too: flooded to B, not B's traffic.
    assert.equal(b.toVm.otherUnicast.packets, COUNT);
    assert.deepEqual([b.toVm.entered.packets, b.lost.total], [0, 0]);
  });

  it('loads every program of vm.frames.bpf.o with its filters set, and each flavour attaches here', async () => {
    needs(cannot);
    const scope: Scope = { vm: null, devs: [{ name: 'x', ifindex: 7, mtu: 1500 }], macs: ['02:00:00:00:00:01'], ports: null, netnsInode: (await stat('/proc/self/ns/net')).ino, devices: {} };
    assertEveryFlavourAttaches('vm.frames', attachPlan(), scopeGlobals(scope), ['net_dev_start_xmit', 'netif_receive_skb']);
  });

  it("the fallback flavours (tp_btf, classic tracepoints) count the same frames, with ports given and with any port, the host's port included", async (t) => {
    needs(cannot);
    const lab = await buildFramesLab(t, 'linux');
    // A sends only what the test sends (no IPv6 multicast), and exchanges datagrams with the host on the bridge's device.
    await lab.a.exec(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
    const host = await lab.addHost();
    const sink = createSocket('udp4');
    await new Promise<void>((resolve) => sink.bind(9, host.ip4, resolve));
    t.after(() => sink.close());
    const toA = await lab.dropRule(`ether daddr ${lab.a.mac} udp dport 10`);
    const ifindex = async (dev: string) => Number((await readFile(`/sys/class/net/${dev}/ifindex`, 'utf8')).trim());
    const dev = async (name: string) => ({ name, ifindex: await ifindex(name), mtu: 1500 });
    const base: Scope = {
      vm: null,
      devs: [await dev(lab.a.port)],
      macs: [lab.a.mac],
      ports: [await dev(lab.peer.port), await dev(lab.b.port)],
      hostPorts: [await dev(host.port)],
      netnsInode: (await stat('/proc/self/ns/net')).ino,
      devices: {},
    };
    let dropped = 0;
    for (const method of ['raw_tracepoint', 'tp_btf', 'tracepoint'] as const) {
      for (const scope of [base, { ...base, ports: null }]) {
        const what = `${method}, ${scope.ports ? 'ports given' : 'any port'}`;
        const step = attachPlan().find((s) => s.method === method)!;
        const o = BpfObject.open(bpfObjectPath('vm.frames'), { globals: scopeGlobals(scope) });
        try {
          for (const p of o.programs()) p.autoload = step.programs.includes(p.name);
          o.load();
          step.attach(o);
          await lab.sendUdp(lab.peer, lab.a, { port: 9, count: 50, size: 200, intervalMs: 1 });
          await lab.sendUdp(lab.peer, lab.a, { port: 10, count: 5, size: 200, intervalMs: 1 });
          await lab.sendUdp(lab.a, lab.peer, { port: 9, count: 30, size: 100, intervalMs: 1 });
          await lab.sendUdp(host, lab.a, { port: 9, count: 20, size: 150, intervalMs: 1 });
          await lab.sendUdp(lab.a, host, { port: 9, count: 25, size: 100, intervalMs: 1 });
          closeWindow(o);
          await delay(50);
          const att: AttachCapture = { method, btf: 'vmlinux', loadMs: 0, attach: [], scope };
          const d = framesFinding(att, readDump(o, { windowMs: 1, graceMs: 50 }), null).data;
          const now = await toA();
          assert.equal(now - dropped, 5, what);
          dropped = now;
          assert.deepEqual([d.toVm.entered.packets, d.toVm.delivered.packets, d.lost.toVm], [75, 70, 5], what);
          assert.deepEqual([d.fromVm.sent.unicast.packets, d.fromVm.forwarded.unicast.packets, d.lost.fromVm], [55, 55, 0], what);
          const hostPort = d.byPort.find((p) => p.host);
          assert.deepEqual([hostPort?.dev, hostPort?.entered.packets, hostPort?.forwarded.packets], [`if${base.hostPorts![0]!.ifindex}`, 20, 25], what);
          assert.deepEqual(d.maxPacket.toVm, { bytes: 228, dev: `if${base.ports![0]!.ifindex}` }, what);
          t.diagnostic(`${what}: flooded ${d.flooded}, by port ${JSON.stringify(d.byPort.map((p) => [p.dev, p.entered.packets, p.forwarded.packets]))}`);
        } finally {
          o.close();
        }
      }
    }
  });

  it('on OVS (userspace datapath): the frames an OpenFlow rule dropped, which the kernel never sees, to and from VM A; none of VM B; replays the same', async (t) => {
    needs(noOvs);
    const lab = await buildFramesLab(t, 'ovs');
    const bundle = await tempBundle(t, 'ebpfnet-frames-ovs-');
    const toA = await lab.dropFlow(`udp,dl_dst=${lab.a.mac},tp_dst=10`);
    const fromA = await lab.dropFlow(`udp,dl_src=${lab.a.mac},tp_dst=11`);
    const run = await lossRun(lab, bundle, 'ovs');
    const a = run.a.data as FramesData;
    const b = run.b.data as FramesData;
    assertLoss(lab, a, b, await settled(toA, K), await settled(fromA, K2));
    assert.match(run.a.summary, new RegExp(`^${K} of ${N} frames to vm-a lost in the switch; ${K2} of ${N2} frames from it lost in the switch`));
    await assertReplaysSame(vmFrames, run.paramsA, bundle, 'ovs-a', run.a);
    await assertReplaysSame(vmFrames, run.paramsB, bundle, 'ovs-b', run.b);
    t.diagnostic(`A: ${JSON.stringify(a.grace)}`);
  });

  it('fails with one line saying what to fix for an unknown device, a bad MAC or a tap given as a port', async (t) => {
    needs(cannot);
    const bundle = await tempBundle(t, 'ebpfnet-frames-bad-');
    const run = (params: Record<string, unknown>, name: string) => runProbe(vmFrames, request({ duration: '100ms', ...params }), bundle.opts(name));
    const dev = await run({ devs: ['nosuch0'], macs: ['02:00:00:00:00:01'] }, 'dev');
    assert.equal(dev.status, 'error');
    assert.equal(dev.reason, "devs: no device nosuch0 in ebpfnet's network namespace (see `ip link`)");
    const port = await run({ devs: ['lo'], macs: ['02:00:00:00:00:01'], ports: ['nosuch1'] }, 'port');
    assert.equal(port.reason, "ports: no device nosuch1 in ebpfnet's network namespace (see `ip link`)");
    const mac = await run({ devs: ['lo'], macs: ['02:00:00:00:01'] }, 'mac');
    assert.equal(mac.reason, 'macs: "02:00:00:00:01" is not a MAC address: give the VM\'s guest MACs as 52:54:00:12:34:56');
    const tun = await run({ devs: ['lo'], macs: ['02:00:00:00:00:01'] }, 'lo');
    assert.equal(tun.reason, "devs: lo is not an Ethernet device (link/loopback): give the VM's taps");
    const both = await run({ devs: ['lo'], macs: ['02:00:00:00:00:01'], ports: ['lo'] }, 'both');
    assert.equal(both.reason, 'lo: in both devs and ports; a tap of the VM is not one of the other ports');
    for (const f of [dev, port, mac, tun, both]) assert.doesNotMatch(f.reason ?? '', /\n/);
    assert.equal(liveHandles().objects, 0);
  });
});
