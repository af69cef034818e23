// vm.frames and the host's own port of the switch (test/helpers/vm-frames-lab.ts with the
// host's address on the switch: on the Linux bridge's device, on the OVS bridge's internal
// port), the host being VM A's gateway. Frames between A and the host cross that port the
// other way round: A's frames are received by the host on it (forwarded, out of the switch),
// the host's are transmitted on it (entered, into the switch). A pings the host and exchanges
// UDP with it and with the uplink peer: nothing is lost, and the host port's counts are
// ping's own and the host's sockets' own. A drop in the host's stack (an nft `input` rule,
// after the switch delivered the frame) is not the switch's loss; a drop by the switch on the
// way to or from the host's port is.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params } from '../../engine/probe/types.js';
import type { FramesData, PortCounts } from '../../probes/vm.frames/findings.js';
import { vmFrames } from '../../probes/vm.frames/probe.js';
import { tempBundle, type TempBundle } from '../helpers/bundle.js';
import { canBuildTopologies, needs, run } from '../helpers/netns.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { buildFramesLab, settled, type FramesHost, type FramesLab } from '../helpers/vm-frames-lab.js';
import { canRunOvs } from '../lab/ovs.js';

const cannot = await canBuildTopologies();
const noOvs = cannot ?? (await canRunOvs());

/** A pings the host PINGS times; UDP A → host (to a socket), host → A, A → peer, peer → A. */
const PINGS = 60;
const TO_HOST = 150;
const FROM_HOST = 120;
const TO_PEER = 90;
const FROM_PEER = 80;
/** A's datagrams to the host that the host's own `input` chain drops, after the switch delivered them. */
const DROPPED_BY_HOST = 33;
/** The switch's drops on the host's port path: A → host, host → A. */
const SWITCH_DROPS_TO_HOST = 21;
const SWITCH_DROPS_FROM_HOST = 17;
const SIZE = 200;
/** A UDP datagram of SIZE bytes as a frame: + UDP, IPv4 and Ethernet headers. */
const UDP_FRAME = SIZE + 8 + 20 + 14;
/** ping's default 56 bytes of data: + ICMP, IPv4 and Ethernet headers. */
const PING_FRAME = 56 + 8 + 20 + 14;

const request = (params: Record<string, unknown>) => ({ step: 's', alias: 'frames', probe: vmFrames.id, params: params as Params });

/** Datagrams the host's sockets received, by port: the host's own count. */
async function hostListener(host: FramesHost, ports: number[]): Promise<{ received: Map<number, number>; close(): void }> {
  const received = new Map(ports.map((p) => [p, 0]));
  const sockets: Socket[] = [];
  for (const port of ports) {
    const s = createSocket('udp4');
    s.on('message', () => received.set(port, received.get(port)! + 1));
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, host.ip4, resolve);
    });
    sockets.push(s);
  }
  return { received, close: () => sockets.forEach((s) => s.close()) };
}

/** ping's own summary: "N packets transmitted, M received". */
async function ping(from: FramesHost, to: FramesHost, count: number): Promise<{ transmitted: number; received: number }> {
  const r = await from.exec(['ping', '-c', String(count), '-i', '0.01', '-W', '1', to.ip4]);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  if (!m) throw new Error(`no summary from ping: ${r.stdout}`);
  return { transmitted: Number(m[1]), received: Number(m[2]) };
}

const port = (d: FramesData, dev: string): PortCounts | undefined => d.byPort.find((p) => p.dev === dev);

/** The lab with the host on the switch; A sends no IPv6 (no multicast of its own), so that every frame of A is one the test sent. */
async function hostLab(t: { after(fn: () => unknown): void }, kind: 'linux' | 'ovs'): Promise<{ lab: FramesLab; host: FramesHost }> {
  const lab = await buildFramesLab(t, kind);
  await lab.a.exec(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
  const host = await lab.addHost();
  return { lab, host };
}

function paramsFor(lab: FramesLab, host: FramesHost, vm: FramesHost, other: FramesHost, name: string, duration = '1s'): Record<string, unknown> {
  return { devs: [vm.port], macs: [vm.mac], ports: [lab.peer.port, other.port], host_ports: [host.port], duration, vm: name };
}

/** Runs `traffic` inside the windows of probes nested outermost first: each sees all of it. */
async function nested(bundle: TempBundle, tag: string, params: Array<Record<string, unknown>>, traffic: () => Promise<void>): Promise<Finding[]> {
  const found: Finding[] = new Array(params.length);
  let inner = traffic;
  for (let i = params.length - 1; i >= 0; i--) {
    const run = inner;
    inner = async () => {
      found[i] = await runProbe(withTrafficInWindow(vmFrames, run), request(params[i]!), bundle.opts(`${tag}-${i}`));
    };
  }
  await inner();
  for (const f of found) assert.equal(f.status, 'ok', f.reason);
  return found;
}

for (const kind of ['linux', 'ovs'] as const) {
  const where = kind === 'linux' ? "on a Linux bridge (the host's address on the bridge's device)" : "on OVS's userspace datapath (the host's address on the internal port)";
  const lacking = kind === 'linux' ? cannot : noOvs;

  describe(`vm.frames with the host on the switch, ${where}`, () => {
    it("A pings the host and exchanges UDP with it and with the peer: nothing lost both ways, the host port's counts are ping's and the host's sockets'; with ports empty the host's port is found; B healthy; replays the same", async (t) => {
      needs(lacking);
      const { lab, host } = await hostLab(t, kind);
      const bundle = await tempBundle(t, 'ebpfnet-frames-host-');
      const listener = await hostListener(host, [9]);
      t.after(() => listener.close());
      let pings = { transmitted: 0, received: 0 };
      const traffic = async () => {
        pings = await ping(lab.a, host, PINGS);
        const sent = [
          await lab.sendUdp(lab.a, host, { port: 9, count: TO_HOST, size: SIZE, intervalMs: 1 }),
          await lab.sendUdp(host, lab.a, { port: 9, count: FROM_HOST, size: SIZE, intervalMs: 1 }),
          await lab.sendUdp(lab.a, lab.peer, { port: 9, count: TO_PEER, size: SIZE, intervalMs: 1 }),
          await lab.sendUdp(lab.peer, lab.a, { port: 9, count: FROM_PEER, size: SIZE, intervalMs: 1 }),
        ];
        assert.deepEqual(sent.map((s) => s.sent), [TO_HOST, FROM_HOST, TO_PEER, FROM_PEER]);
      };
      const paramsB = paramsFor(lab, host, lab.b, lab.a, 'vm-b', '200ms');
      const paramsA = paramsFor(lab, host, lab.a, lab.b, 'vm-a');
      const paramsAny = { devs: [lab.a.port], macs: [lab.a.mac], duration: '1s', vm: 'vm-a' };
      const [fb, fa, fany] = await nested(bundle, `host-${kind}`, [paramsB, paramsA, paramsAny], traffic);
      const [b, a, any] = [fb!.data as FramesData, fa!.data as FramesData, fany!.data as FramesData];
      // ping's and the host socket's own counts.
      assert.equal(pings.transmitted, PINGS);
      assert.equal(pings.received, PINGS, 'every echo answered');
      assert.equal(listener.received.get(9), TO_HOST, "the host's socket got every datagram");

      for (const [d, what] of [[a, 'ports given'], [any, 'ports empty']] as const) {
        const hostPort = port(d, host.port);
        assert.deepEqual(hostPort, { dev: host.port, host: true, entered: { packets: PINGS + FROM_HOST, bytes: PINGS * PING_FRAME + FROM_HOST * UDP_FRAME }, forwarded: { packets: PINGS + TO_HOST, bytes: PINGS * PING_FRAME + TO_HOST * UDP_FRAME } }, what);
        assert.deepEqual(port(d, lab.peer.port), { dev: lab.peer.port, host: false, entered: { packets: FROM_PEER, bytes: FROM_PEER * UDP_FRAME }, forwarded: { packets: TO_PEER, bytes: TO_PEER * UDP_FRAME } }, what);
        assert.equal(d.toVm.entered.packets, PINGS + FROM_HOST + FROM_PEER, what);
        assert.equal(d.toVm.delivered.packets, d.toVm.entered.packets, what);
        assert.deepEqual(d.fromVm.sent.unicast, { packets: PINGS + TO_HOST + TO_PEER, bytes: PINGS * PING_FRAME + (TO_HOST + TO_PEER) * UDP_FRAME }, what);
        assert.deepEqual(d.fromVm.forwarded.unicast, d.fromVm.sent.unicast, what);
        assert.deepEqual([d.fromVm.sent.multicast.packets, d.fromVm.sent.broadcast.packets, d.flooded], [0, 0, 0], what);
        assert.deepEqual(d.lost, { toVm: 0, fromVm: 0, total: 0, share: 0 }, what);
        assert.deepEqual(d.notes.filter((n) => /more reached the VM|more left the switch/.test(n)), [], what);
      }
      assert.deepEqual(a.scope.hostPorts.map((p) => p.name), [host.port]);
      assert.equal(a.scope.hostPortsFrom, 'params');
      // Ports empty: the host's port found (the tap's Linux bridge; OVS's internal ports, this bridge's among them).
      assert.equal(any.scope.hostPortsFrom, 'found');
      assert.ok(any.scope.hostPorts.some((p) => p.name === host.port), JSON.stringify(any.scope.hostPorts));
      // The tap's own bridge first; the others are OVS internal ports (another lab's may be there), never another Linux bridge.
      if (kind === 'linux') assert.equal(any.scope.hostPorts[0]?.name, host.port);
      assert.deepEqual(any.scope.hostPorts.filter((p) => p.name !== host.port && existsSync(`/sys/class/net/${p.name}/bridge`)), []);
      assert.match(fa!.summary, new RegExp(`^no frame of vm-a lost in the switch \\(${PINGS + FROM_HOST + FROM_PEER} to it, ${PINGS + TO_HOST + TO_PEER} from it\\)`));
      assert.equal(fa!.severity, 'info');
      // B, the neighbour: none of A's traffic with the host is its.
      assert.deepEqual(b.lost, { toVm: 0, fromVm: 0, total: 0, share: 0 });
      assert.deepEqual([b.toVm.entered.packets, b.fromVm.sent.unicast.packets], [0, 0]);
      await assertReplaysSame(vmFrames, paramsA, bundle, `host-${kind}-1`, fa!);
      await assertReplaysSame(vmFrames, paramsAny, bundle, `host-${kind}-2`, fany!);
      t.diagnostic(`A: host port ${JSON.stringify(port(a, host.port))}; found host ports ${any.scope.hostPorts.map((p) => p.name).join(', ')}`);
    });

    it("A's datagrams the host's own input chain drops are not the switch's loss; the switch's drops on the host port's path are", async (t) => {
      needs(lacking);
      const { lab, host } = await hostLab(t, kind);
      const bundle = await tempBundle(t, 'ebpfnet-frames-host-drop-');
      const listener = await hostListener(host, [9, 10]);
      t.after(() => listener.close());
      // The host's stack drops them after its port received them: ip input, in ebpfnet's namespace, on the lab's device only.
      const table = `ebpfnet_frames_host_${process.pid}`;
      t.after(() => execa('nft', ['delete', 'table', 'inet', table], { reject: false, stdin: 'ignore' }));
      await run(['nft', 'add', 'table', 'inet', table]);
      await run(['nft', 'add', 'chain', 'inet', table, 'input', '{ type filter hook input priority 0; }']);
      await run(['nft', 'add', 'rule', 'inet', table, 'input', 'iifname', host.port, 'ip', 'saddr', lab.a.ip4, 'udp', 'dport', '10', 'counter', 'drop']);
      const inputDrops = async () => {
        const listed = JSON.parse((await run(['nft', '-j', 'list', 'chain', 'inet', table, 'input'])).stdout) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> };
        return listed.nftables.flatMap((x) => x.rule?.expr ?? []).find((e) => e.counter)?.counter?.packets ?? -1;
      };
      // The switch drops A → host on port 11 and host → A on port 12: an nft bridge rule on
      // the way up to the bridge's device and down from it, an OpenFlow rule on OVS.
      const [switchToHost, switchFromHost] =
        kind === 'linux'
          ? [await lab.dropRule(`ether saddr ${lab.a.mac} udp dport 11`, 'input'), await lab.dropRule(`ether daddr ${lab.a.mac} udp dport 12`, 'output')]
          : [await lab.dropFlow(`udp,dl_src=${lab.a.mac},dl_dst=${host.mac},tp_dst=11`), await lab.dropFlow(`udp,dl_src=${host.mac},dl_dst=${lab.a.mac},tp_dst=12`)];
      const traffic = async () => {
        const sent = [
          await lab.sendUdp(lab.a, host, { port: 9, count: TO_HOST, size: SIZE, intervalMs: 1 }),
          await lab.sendUdp(lab.a, host, { port: 10, count: DROPPED_BY_HOST, size: SIZE, intervalMs: 1 }),
          await lab.sendUdp(lab.a, host, { port: 11, count: SWITCH_DROPS_TO_HOST, size: SIZE, intervalMs: 1 }),
          await lab.sendUdp(host, lab.a, { port: 9, count: FROM_HOST, size: SIZE, intervalMs: 1 }),
          await lab.sendUdp(host, lab.a, { port: 12, count: SWITCH_DROPS_FROM_HOST, size: SIZE, intervalMs: 1 }),
        ];
        assert.deepEqual(sent.map((s) => s.sent), [TO_HOST, DROPPED_BY_HOST, SWITCH_DROPS_TO_HOST, FROM_HOST, SWITCH_DROPS_FROM_HOST]);
      };
      const params = paramsFor(lab, host, lab.a, lab.b, 'vm-a');
      const [f] = await nested(bundle, `host-drop-${kind}`, [params], traffic);
      const d = f!.data as FramesData;
      // The rules' own counts, and the host's sockets'.
      assert.equal(await inputDrops(), DROPPED_BY_HOST);
      assert.equal(await settled(switchToHost, SWITCH_DROPS_TO_HOST), SWITCH_DROPS_TO_HOST);
      assert.equal(await settled(switchFromHost, SWITCH_DROPS_FROM_HOST), SWITCH_DROPS_FROM_HOST);
      assert.deepEqual([listener.received.get(9), listener.received.get(10)], [TO_HOST, 0]);

      // The host's input drops reached the host's port: forwarded, not lost. The switch's are lost.
      assert.deepEqual(port(d, host.port), {
        dev: host.port,
        host: true,
        entered: { packets: FROM_HOST + SWITCH_DROPS_FROM_HOST, bytes: (FROM_HOST + SWITCH_DROPS_FROM_HOST) * UDP_FRAME },
        forwarded: { packets: TO_HOST + DROPPED_BY_HOST, bytes: (TO_HOST + DROPPED_BY_HOST) * UDP_FRAME },
      });
      assert.equal(d.fromVm.sent.unicast.packets, TO_HOST + DROPPED_BY_HOST + SWITCH_DROPS_TO_HOST);
      assert.equal(d.toVm.delivered.packets, FROM_HOST);
      assert.deepEqual([d.lost.fromVm, d.lost.toVm], [SWITCH_DROPS_TO_HOST, SWITCH_DROPS_FROM_HOST]);
      assert.match(f!.summary, new RegExp(`^${SWITCH_DROPS_FROM_HOST} of ${FROM_HOST + SWITCH_DROPS_FROM_HOST} frames to vm-a lost in the switch; ${SWITCH_DROPS_TO_HOST} of ${TO_HOST + DROPPED_BY_HOST + SWITCH_DROPS_TO_HOST} frames from it lost in the switch`));
    });
  });
}

describe('vm.frames host_ports given wrong, or not given', () => {
  it("a bridge's device given in ports, a device in two lists, an unknown host port: one line each saying what to fix; without host_ports the host's traffic shows as lost, and a note says to give them", async (t) => {
    needs(cannot);
    const { lab, host } = await hostLab(t, 'linux');
    const bundle = await tempBundle(t, 'ebpfnet-frames-host-bad-');
    const base = { devs: [lab.a.port], macs: [lab.a.mac], duration: '100ms' };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ports: [lab.peer.port, host.port] }, `ports: ${host.port} is a Linux bridge's own device, the host's port of the switch: give it in host_ports`],
      [{ host_ports: [lab.a.port] }, `${lab.a.port}: in both devs and host_ports; a tap of the VM is not the host's port`],
      [{ ports: [host.port], host_ports: [host.port] }, `${host.port}: in both ports and host_ports; give the host's own port of the switch (the bridge device, an OVS internal port) in host_ports only`],
      [{ host_ports: ['nosuch2'] }, "host_ports: no device nosuch2 in ebpfnet's network namespace (see `ip link`)"],
    ];
    for (const [i, [params, reason]] of cases.entries()) {
      const f = await runProbe(vmFrames, request({ ...base, ...params }), bundle.opts(`bad-${i}`));
      assert.deepEqual([f.status, f.reason], ['error', reason]);
    }

    // The ports given, the host's port not: A's pings to the host look lost, the answers delivered without entering.
    let pings = { transmitted: 0, received: 0 };
    const [f] = await nested(bundle, 'no-host-ports', [{ ...base, ports: [lab.peer.port, lab.b.port], duration: '500ms' }], async () => {
      pings = await ping(lab.a, host, 20);
    });
    const d = f!.data as FramesData;
    assert.deepEqual([d.scope.hostPorts, d.scope.hostPortsFrom], [[], 'none']);
    assert.deepEqual([pings.transmitted, pings.received], [20, 20]);
    assert.deepEqual([d.fromVm.sent.unicast.packets, d.lost.fromVm, d.toVm.entered.packets, d.toVm.delivered.packets], [20, 20, 0, 20]);
    assert.match(d.notes.join('\n'), /20 frames more reached the VM than entered by the ports: some come from a port not watched \(the host's own address on the bridge: give the bridge device or OVS internal port in host_ports\)/);
  });
});
