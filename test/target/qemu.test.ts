// resolveVm on real QEMU processes (no libvirt): the VM is found by its -name in
// /proc, its tap by -netdev ifname=, and what the tap is plugged into by asking
// the host (a Linux bridge, an Open vSwitch bridge on the netdev datapath).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { resolveVm } from '../../engine/target/index.js';
import type { LinuxBridgeAttachment, OvsAttachment, VmFacts } from '../../engine/target/types.js';
import { cleanupLeftovers, linuxBridge, ovsBridge, sh, startQemu, sysfs, threadComm, vethUplink, type TestQemu } from './support.js';

// No inventory: these VMs must be found through /proc alone.
const noInventory = { env: {}, inventory: undefined };

function assertTapBasics(vm: VmFacts, q: TestQemu) {
  assert.equal(vm.source, 'qemu');
  assert.equal(vm.name, q.name);
  assert.equal(vm.state, 'running');
  assert.equal(vm.pid, q.pid);
  assert.equal(vm.taps.length, 1, JSON.stringify(vm.taps));
  const tap = vm.taps[0]!;
  assert.equal(tap.name, q.tap);
  assert.equal(tap.present, true);
  assert.equal(tap.ifindex, Number(sysfs(q.tap, 'ifindex')));
  assert.equal(tap.hostMac, sysfs(q.tap, 'address'));
  assert.equal(tap.guestMac, q.mac);
  assert.equal(tap.model, 'virtio-net-pci');
  assert.equal(tap.vhost, null, 'vhost= was not given');
  assert.deepEqual(tap.queues, { rx: 1, tx: 1 });
  assert.ok(tap.flags.includes('tap') && tap.flags.includes('vnet_hdr'), tap.flags.join(' '));
  assert.equal(typeof tap.counters.rx_packets, 'number');
  assert.equal(typeof tap.counters.tx_dropped, 'number');
  // TCG with one vCPU: one thread named "CPU 0/TCG", a real thread of the process.
  assert.deepEqual(vm.vcpuThreads.map((t) => [t.index, t.name]), [[0, 'CPU 0/TCG']]);
  for (const t of vm.vcpuThreads) assert.equal(threadComm(q.pid, t.tid), t.name);
  assert.deepEqual(vm.vhostThreads, [], 'no vhost=on, no vhost workers');
  assert.deepEqual(vm.notes, []);
}

describe('QEMU processes', () => {
  before(cleanupLeftovers);

  test('a tap on a Linux bridge with a veth uplink, and the guest IP from the neighbour table', async (t) => {
    const br = await linuxBridge(t);
    const uplink = await vethUplink(t, br);
    const q = await startQemu(t, { bridge: br });
    // A second VM on the same bridge: its tap is another VM's port, not an uplink.
    const other = await startQemu(t, { bridge: br });
    const ip = `198.18.${(q.pid >> 8) & 0xff}.${q.pid & 0xff || 1}`;
    await sh(['ip', 'neigh', 'replace', ip, 'lladdr', q.mac, 'dev', br, 'nud', 'permanent']);

    const vm = await resolveVm(q.name, noInventory);
    assertTapBasics(vm, q);
    const at = vm.taps[0]!.attachment as LinuxBridgeAttachment;
    assert.equal(at.kind, 'linux-bridge');
    assert.equal(at.bridge, br);
    assert.equal(at.ifindex, Number(sysfs(br, 'ifindex')));
    assert.deepEqual(at.uplinks, [{ name: uplink, kind: 'veth', ifindex: Number(sysfs(uplink, 'ifindex')) }]);
    assert.ok(!at.uplinks.some((u) => u.name === other.tap));
    assert.deepEqual(vm.ips, [{ address: ip, source: 'neighbour', dev: br, state: 'PERMANENT' }]);
  });

  test('a tap on an Open vSwitch bridge (netdev datapath): bridge, port, ofport, datapath type, uplink', async (t) => {
    const br = await ovsBridge(t);
    const uplink = await vethUplink(t, br, true);
    const q = await startQemu(t, { ovsBridge: br });

    const vm = await resolveVm(q.name, noInventory);
    assertTapBasics(vm, q);
    const at = vm.taps[0]!.attachment as OvsAttachment;
    assert.equal(at.kind, 'ovs');
    assert.equal(at.bridge, (await sh(['ovs-vsctl', 'port-to-br', q.tap])).trim());
    assert.equal(at.port, q.tap);
    assert.equal(at.datapathType, 'netdev');
    assert.equal(at.ofport, Number((await sh(['ovs-vsctl', 'get', 'interface', q.tap, 'ofport'])).trim()));
    // The bridge's own (internal) port is not an uplink; the veth is.
    assert.deepEqual(at.uplinks, [{ name: uplink, kind: 'veth', ifindex: Number(sysfs(uplink, 'ifindex')) }]);
  });

  test('a tap on no bridge; vCPU threads unnamed without debug-threads=on are a note, not a guess', async (t) => {
    const q = await startQemu(t, { debugThreads: false });
    const vm = await resolveVm(q.name, noInventory);
    assert.equal(vm.pid, q.pid);
    assert.equal(vm.taps[0]?.name, q.tap);
    assert.equal(vm.taps[0]?.attachment, null);
    assert.deepEqual(vm.vcpuThreads, []);
    assert.match(vm.notes.join('\n'), /vCPU threads of pid \d+ are not named .*debug-threads=on/);
  });

  test('an unknown name lists the VMs found, with their source', async (t) => {
    const a = await startQemu(t);
    const b = await startQemu(t);
    await assert.rejects(resolveVm(`${a.name}-nope`, noInventory), (err: Error) => {
      assert.equal(err.name, 'VmNotFoundError');
      assert.match(err.message, new RegExp(`^no VM named "${a.name}-nope"; found: .*\\(qemu\\)`));
      const qemuGroup = /found: (?:.*\(libvirt\), )?(.*) \(qemu\)/.exec(err.message)?.[1] ?? '';
      assert.ok(qemuGroup.split(', ').includes(a.name) && qemuGroup.split(', ').includes(b.name), err.message);
      assert.ok(!err.message.includes('\n'), 'one line');
      assert.match(err.message, new RegExp(`did you mean "${a.name}"\\?`));
      return true;
    });
    // A libvirt that cannot be reached hides VMs: the message says so (a missing virsh is just skipped).
    await assert.rejects(resolveVm('nope', { ...noInventory, libvirtUri: 'qemu:///system?socket=/nonexistent-ebpfnet.sock' }), (err: Error) => {
      assert.match(err.message, /; libvirt not asked: virsh list failed: failed to connect to the hypervisor: .*nonexistent-ebpfnet\.sock/);
      return true;
    });
  });
});
