// vm.frames' window close under traffic that crosses it: entries stop counting when the window
// closes, deliveries of what entered before are counted for the grace, and frames that enter
// during the grace are left out. With traffic both ways through the switch and nothing
// dropped, the probe must find exactly as many frames delivered as entered, both ways, on a
// Linux bridge and on OVS's userspace datapath, with the uplink peer or the host (its address
// on the switch's own port) at the other end. The grace needed is measured: the slowest
// crossing of the switch the probe saw during the grace, and what a run without grace loses.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params } from '../../engine/probe/types.js';
import type { FramesData } from '../../probes/vm.frames/findings.js';
import { DEFAULT_GRACE_MS, vmFrames } from '../../probes/vm.frames/probe.js';
import { tempBundle } from '../helpers/bundle.js';
import { canBuildTopologies, deviceCounter } from '../helpers/netns.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { buildFramesLab, type FramesHost, type FramesLab } from '../helpers/vm-frames-lab.js';
import { canRunOvs } from '../lab/ovs.js';

const cannot = await canBuildTopologies();
const noOvs = cannot ?? (await canRunOvs());
const packets = (dev: string, way: 'tx' | 'rx') => deviceCounter(dev, `${way}_packets`);

/**
 * One session of `grace` over traffic both ways between A and `other` (the peer, or the host
 * on its port) that starts inside the window and ends well after it.
 */
async function acrossTheClose(lab: FramesLab, t: { after(fn: () => unknown): void }, grace: string, perTick: number, host?: FramesHost): Promise<FramesData> {
  const bundle = await tempBundle(t, 'ebpfnet-frames-grace-');
  const other = host ?? lab.peer;
  // Frames from A reach the peer by its port's transmit, the host by its port's receive.
  const reachedOther = () => packets(other.port, host ? 'rx' : 'tx');
  const streams: Array<Promise<{ sent: number }>> = [];
  const traffic = async () => {
    // Both ways through the switch: the window opens once frames flow (a sender's Node takes a while to start).
    const before = [await packets(lab.a.port, 'tx'), await reachedOther()];
    streams.push(lab.stream(other, lab.a, { seconds: 4, perTick, size: 300, port: 9 }));
    streams.push(lab.stream(lab.a, other, { seconds: 4, perTick, size: 300, port: 9 }));
    for (let i = 0; i < 500; i++) {
      const now = [await packets(lab.a.port, 'tx'), await reachedOther()];
      if (now[0]! - before[0]! >= 20 && now[1]! - before[1]! >= 20) return;
      await delay(10);
    }
    throw new Error('no traffic through the switch after 5 s');
  };
  const params = { devs: [lab.a.port], macs: [lab.a.mac], ports: [lab.peer.port, lab.b.port], ...(host ? { host_ports: [host.port] } : {}), duration: '1s', grace, vm: 'vm-a' };
  const f = await runProbe(withTrafficInWindow(vmFrames, traffic), { step: 's', alias: 'frames', probe: vmFrames.id, params: params as Params }, bundle.opts(`grace-${grace}-${perTick}`));
  const sent = await Promise.all(streams);
  assert.equal(f.status, 'ok', f.reason);
  const d = f.data as FramesData;
  // The traffic outlasted the window and its grace: the close really was crossed.
  assert.ok(d.grace.afterEntered > 0 && d.grace.afterSent > 0, JSON.stringify(d.grace));
  assert.ok(d.toVm.entered.packets < sent[0]!.sent && d.fromVm.sent.unicast.packets < sent[1]!.sent);
  return d;
}

for (const kind of ['linux', 'ovs'] as const) {
  describe(`vm.frames closing its window on ${kind === 'linux' ? 'a Linux bridge' : "OVS's userspace datapath"}`, () => {
    const skip = (kind === 'linux' ? cannot : noOvs) ?? false;

    it(`with the default grace (${DEFAULT_GRACE_MS} ms): as many frames delivered as entered, both ways, at two rates`, { skip }, async (t) => {
      const lab = await buildFramesLab(t, kind);
      for (const perTick of [1, 8]) {
        const d = await acrossTheClose(lab, t, `${DEFAULT_GRACE_MS}ms`, perTick);
        const what = `${perTick} datagram(s) a tick each way`;
        assert.equal(d.toVm.delivered.packets, d.toVm.entered.packets, `${what}: to the VM ${JSON.stringify(d.grace)}`);
        assert.equal(d.fromVm.forwarded.unicast.packets, d.fromVm.sent.unicast.packets, `${what}: from the VM ${JSON.stringify(d.grace)}`);
        assert.deepEqual(d.lost, { toVm: 0, fromVm: 0, total: 0, share: 0 });
        // Frames entering during the grace reached the VM then, and were left out.
        assert.ok(d.grace.skippedDelivered > 0 && d.grace.skippedForwarded > 0, JSON.stringify(d.grace));
        assert.ok(d.grace.slowestTransitMs !== null && d.grace.slowestTransitMs < DEFAULT_GRACE_MS, `slowest crossing ${d.grace.slowestTransitMs} ms`);
        t.diagnostic(
          `${kind}, ${what}: ${d.toVm.entered.packets} entered in ${d.windowMs} ms; in the ${d.graceMs} ms grace ${d.grace.lateDelivered} late deliveries counted (last ${d.grace.lastLateMs} ms after the close), ` +
            `${d.grace.skippedDelivered} of frames entered after it left out; slowest crossing ${d.grace.slowestTransitMs} ms`,
        );
      }
      // The same without a grace: what was in flight at the close shows as lost (measured, not asserted).
      const bare = await acrossTheClose(lab, t, '0ms', 8);
      t.diagnostic(`${kind}, no grace, 8 datagrams a tick: ${bare.lost.toVm} of ${bare.toVm.entered.packets} frames to the VM and ${bare.lost.fromVm} of ${bare.fromVm.sent.unicast.packets} from it counted lost`);
    });

    it(`with the host at the other end (its address on the switch's own port), the default grace: as many frames delivered as entered, both ways`, { skip }, async (t) => {
      const lab = await buildFramesLab(t, kind);
      // A sends only the stream (no IPv6 multicast, whose copies the host's port gets too).
      await lab.a.exec(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
      const host = await lab.addHost();
      // A socket on the host takes A's datagrams (no port unreachable back).
      const sink = createSocket('udp4');
      await new Promise<void>((resolve) => sink.bind(9, host.ip4, resolve));
      t.after(() => sink.close());
      const d = await acrossTheClose(lab, t, `${DEFAULT_GRACE_MS}ms`, 4, host);
      const hostPort = d.byPort.find((p) => p.dev === host.port);
      // All of it through the host's port, none through the uplink.
      assert.ok(hostPort?.host && hostPort.entered.packets === d.toVm.entered.packets && hostPort.forwarded.packets === d.fromVm.forwarded.unicast.packets, JSON.stringify(d.byPort));
      assert.equal(d.toVm.delivered.packets, d.toVm.entered.packets, JSON.stringify(d.grace));
      assert.equal(d.fromVm.forwarded.unicast.packets, d.fromVm.sent.unicast.packets, JSON.stringify(d.grace));
      assert.deepEqual(d.lost, { toVm: 0, fromVm: 0, total: 0, share: 0 });
      assert.ok(d.grace.skippedDelivered > 0 && d.grace.skippedForwarded > 0, JSON.stringify(d.grace));
      t.diagnostic(
        `${kind}, host ↔ A: ${d.toVm.entered.packets} entered by the host's port and ${d.fromVm.sent.unicast.packets} sent in ${d.windowMs} ms; in the grace ${d.grace.lateDelivered}/${d.grace.lateForwarded} late counted, ` +
          `${d.grace.skippedDelivered}/${d.grace.skippedForwarded} of frames entered after the close left out; slowest crossing ${d.grace.slowestTransitMs} ms`,
      );
    });

  });
}
