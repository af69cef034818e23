// Real VMs on real bridges: a guest booted by QEMU on an OVS netdev bridge and on a Linux
// bridge answers ping and UDP from a peer namespace, the counters on the way move by exactly
// what was sent, and teardown leaves nothing behind. Needs root, qemu-system-x86,
// openvswitch-switch and the guest image (scripts/setup.sh installs and builds all three):
// without them the tests fail, saying what is missing.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { deviceCounter } from '../helpers/netns.js';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { join } from 'node:path';
import { isAlive, LAB_RUN_DIR, labQemuProcesses, newLabName } from './names.js';
import { runningPid } from './ovs.js';
import { buildLabTopology, type LabTopology } from './topology.js';
import { bootVm, HOST_VIRT, type GuestNetStats } from './vm.js';

const DATAGRAMS = 50;

for (const kind of ['ovs', 'linux'] as const) {
  describe(`lab VM on ${kind === 'ovs' ? 'an Open vSwitch netdev bridge' : 'a Linux bridge'}`, () => {
    let lab: LabTopology;
    before(async () => {
      // Two VMs on the Linux bridge (they boot side by side), one on OVS: the suite stays short.
      lab = await buildLabTopology(undefined, { bridge: kind, vms: kind === 'linux' ? 2 : 1 });
    });
    after(() => lab?.teardown());

    test('QEMU runs under the host\'s accelerator (TCG here, KVM in the kernel lab) with named vCPU threads, the tap and MAC it reports', async () => {
      const { vm } = lab;
      assert.ok(vm.running(), 'QEMU is running');
      const cmdline = (await readFile(`/proc/${vm.pid}/cmdline`, 'utf8')).split('\0');
      assert.equal(cmdline[cmdline.indexOf('-name') + 1], `${vm.name},debug-threads=on`);
      assert.equal(cmdline[cmdline.indexOf('-accel') + 1], HOST_VIRT.accel);
      assert.ok(cmdline.some((a) => a.endsWith(`vhost=${HOST_VIRT.vhost ? 'on' : 'off'}`)), cmdline.join(' '));
      assert.ok(cmdline.some((a) => a.startsWith(`tap,id=net0,ifname=${vm.tap},`)), cmdline.join(' '));
      const vcpu = `CPU 0/${HOST_VIRT.accel.toUpperCase()}`;
      assert.ok((await vm.threads()).some((t) => t.name === vcpu), `a thread named "${vcpu}"`);
      assert.ok(existsSync(`/sys/class/net/${vm.tap}`), `tap ${vm.tap} exists`);
      assert.equal((await vm.sh(`cat /sys/class/net/${vm.guestDev}/address`)).trim(), vm.mac);
      assert.match(await vm.sh('ip -4 addr show'), new RegExp(`inet ${vm.cidr.replace(/\./g, '\\.')} `));
      assert.ok(vm.bootMs > 0 && vm.bootMs < 60_000, `booted in ${vm.bootMs} ms`);
    });

    test('the guest answers every ping from the peer namespace', async () => {
      const r = await lab.peer.ping(lab.vm.ip, { count: 10, interval: 0.05, wait: 2 });
      assert.equal(r.transmitted, 10);
      assert.equal(r.received, 10, r.stdout);
    });

    test(`${DATAGRAMS} UDP datagrams to the discard port move every counter on the way by exactly ${DATAGRAMS}`, async () => {
      const { vm, peer } = lab;
      // No ARP request may join the datagrams: the peer knows the guest's MAC for good.
      await peer.pinNeighbor(vm.ip, vm.mac);
      const tapTx = () => deviceCounter(vm.tap, 'tx_packets');
      const before = { guest: await vm.netStats(), tap: await tapTx(), peerTx: await peer.counter('tx_packets'), port: await lab.ovs?.portStats(vm.tap) };

      const sent = await peer.sendUdp({ to: vm.ip, port: 9, count: DATAGRAMS, intervalMs: 1 });
      assert.equal(sent.sent, DATAGRAMS);
      const guest = await waitForGuest(lab, (s) => udpIn(s) - udpIn(before.guest) >= DATAGRAMS);

      assert.equal(udpIn(guest) - udpIn(before.guest), DATAGRAMS, 'guest Udp InDatagrams');
      assert.equal(guest.snmp.Udp!.InCsumErrors! - before.guest.snmp.Udp!.InCsumErrors!, 0, 'guest Udp InCsumErrors');
      assert.equal(guest.snmp.Udp!.NoPorts! - before.guest.snmp.Udp!.NoPorts!, 0, 'guest Udp NoPorts');
      assert.equal(guest.iface.rx_packets! - before.guest.iface.rx_packets!, DATAGRAMS, `guest ${vm.guestDev} rx_packets`);
      assert.equal((await peer.counter('tx_packets')) - before.peerTx, DATAGRAMS, 'peer veth tx_packets');
      // The host side of a tap counts what it hands to the guest as tx.
      assert.equal((await tapTx()) - before.tap, DATAGRAMS, `tap ${vm.tap} tx_packets`);
      if (lab.ovs) {
        const port = await lab.ovs.portStats(vm.tap);
        assert.equal(port.txPackets - before.port!.txPackets, DATAGRAMS, 'OVS port tx pkts');
        assert.equal(port.txDropped - before.port!.txDropped, 0, 'OVS port tx drop');
      }
    });

    test('every UDP datagram to the echo port comes back', async () => {
      const r = await lab.peer.sendUdp({ to: lab.vm.ip, port: 7, count: 100, intervalMs: 1, expectEcho: true, echoWaitMs: 3000 });
      assert.deepEqual([r.sent, r.echoed], [100, 100]);
    });

    test('a paused VM does not drain its tap; on resume it takes what waited there', async () => {
      const { vm, peer } = lab;
      const before = udpIn(await vm.netStats());
      await vm.pause();
      try {
        assert.deepEqual(await vm.qmp('query-status'), { status: 'paused', singlestep: false, running: false });
        const r = await peer.sendUdp({ to: vm.ip, port: 7, count: 20, intervalMs: 1, expectEcho: true, echoWaitMs: 500 });
        assert.deepEqual([r.sent, r.echoed], [20, 0], 'no echo from a paused guest');
      } finally {
        await vm.resume();
      }
      const after = await waitForGuest(lab, (s) => udpIn(s) - before >= 20);
      assert.equal(udpIn(after) - before, 20, 'the queued datagrams reach the guest after resume');
    });

    if (kind === 'linux') {
      test('two VMs on one bridge reach each other', async () => {
        const [a, b] = lab.vms;
        assert.ok(a && b, 'two VMs');
        assert.notEqual(a.mac, b.mac);
        const r = await a.exec(`ping -c 3 -W 2 ${b.ip}`);
        assert.equal(r.code, 0, r.stdout);
        assert.match(r.stdout, /3 packets transmitted, 3 packets received/);
      });
    }

    test('teardown leaves no QEMU, tap, bridge, namespace or run directory', async () => {
      const { vms, peer, bridge } = lab;
      await lab.teardown();
      for (const vm of vms) {
        assert.equal(isAlive(vm.pid) && !(await isZombie(vm.pid)), false, `QEMU pid ${vm.pid} is gone`);
        assert.deepEqual((await labQemuProcesses()).filter((p) => p.name === vm.name), []);
        assert.equal(existsSync(vm.runDir), false, `${vm.runDir} is gone`);
      }
      for (const dev of [...vms.map((vm) => vm.tap), bridge.name, peer.hostDev]) {
        assert.equal(existsSync(`/sys/class/net/${dev}`), false, `device ${dev} is gone`);
      }
      const netns = await execa('ip', ['netns', 'list'], { stdin: 'ignore' });
      assert.doesNotMatch(String(netns.stdout), new RegExp(`^${peer.ns}\\b`, 'm'));
      if (kind === 'ovs' && (await runningPid('ovsdb-server'))) {
        const exists = await execa('ovs-vsctl', ['--timeout=5', 'br-exists', bridge.name], { reject: false, stdin: 'ignore' });
        assert.equal(exists.exitCode, 2, `ovs-vsctl br-exists ${bridge.name}: no such bridge`);
      }
    });
  });
}

test('a VM that is not ready in time is killed, and its tap and run directory removed', async () => {
  const names = newLabName();
  await assert.rejects(
    bootVm(undefined, { ip: '10.250.0.2/24', name: names.name, tap: names.dev('t'), readyTimeoutMs: 300 }),
    (err: Error) => {
      // The error carries what a person needs: why, QEMU's output, the console and the command.
      assert.match(err.message, /did not boot: guest not ready after 300 ms/);
      assert.match(err.message, /--- console \(ttyS0\) ---[\s\S]*--- command ---\nqemu-system-x86_64 -name /);
      return true;
    },
  );
  assert.deepEqual((await labQemuProcesses()).filter((p) => p.name === names.name), []);
  assert.equal(existsSync(`/sys/class/net/${names.dev('t')}`), false, 'tap removed');
  assert.equal(existsSync(join(LAB_RUN_DIR, names.name)), false, 'run directory removed');
});

function udpIn(s: GuestNetStats): number {
  return s.snmp.Udp?.InDatagrams ?? Number.NaN;
}

/** The guest's counters once `done` holds (the guest runs slowly under TCG), or after 5 s. */
async function waitForGuest(lab: LabTopology, done: (s: GuestNetStats) => boolean): Promise<GuestNetStats> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const s = await lab.vm.netStats();
    if (done(s) || Date.now() > deadline) return s;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function isZombie(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat === '' || / Z /.test(stat.slice(stat.lastIndexOf(')')));
}
