// resolveVm on real libvirt domains (transient, TCG): found through virsh, with the
// tap libvirt chose (it hands QEMU a descriptor, so only libvirt's XML and the
// kernel's fdinfo name it), libvirt's pid file, and the bridge libvirt plugged it in.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { before, describe, test } from 'node:test';
import { discoverVms, resolveVm } from '../../engine/target/index.js';
import { qemuTaps, scanQemuProcesses } from '../../engine/target/qemu-procs.js';
import type { LinuxBridgeAttachment, OvsAttachment } from '../../engine/target/types.js';
import { createDomain, defineDomain, ensureLibvirt, guestBoot } from '../helpers/libvirt.js';
import { cleanupLeftovers, freeSubnet, guestMac, linuxBridge, ovsBridge, sh, sysfs, threadComm, vethUplink } from './support.js';

const noInventory = { env: {} };

describe('libvirt domains', () => {
  before(async () => {
    await ensureLibvirt();
    await cleanupLeftovers();
  });

  test('a domain on a Linux bridge: found through libvirt with the tap libvirt chose, before the QEMU processes', async (t) => {
    const br = await linuxBridge(t);
    const uplink = await vethUplink(t, br);
    const mac = guestMac();
    const dom = await createDomain(t, { interfaces: [{ bridge: br, mac }] });
    assert.equal(dom.taps.length, 1, `virsh domiflist: ${dom.taps.join(' ')}`);
    const tapName = dom.taps[0]!;

    const vm = await resolveVm(dom.name, noInventory);
    assert.equal(vm.source, 'libvirt');
    assert.equal(vm.state, 'running');
    assert.equal(vm.pid, dom.pid);
    assert.equal(vm.uuid, (await sh(['virsh', 'domuuid', '--domain', dom.name])).trim());
    assert.equal(vm.taps.length, 1, JSON.stringify(vm.taps));
    const tap = vm.taps[0]!;
    assert.equal(tap.name, tapName);
    assert.equal(tap.ifindex, Number(sysfs(tapName, 'ifindex')));
    assert.equal(tap.guestMac, mac);
    // libvirt gives the tap the guest's MAC with fe: as the first byte.
    assert.equal(tap.hostMac, `fe${mac.slice(2)}`);
    assert.equal(tap.model, 'virtio');
    assert.deepEqual(tap.configured, { type: 'bridge', sourceBridge: br, sourceNetwork: null, virtualport: null });
    const at = tap.attachment as LinuxBridgeAttachment;
    assert.equal(at.kind, 'linux-bridge');
    assert.equal(at.bridge, br);
    assert.deepEqual(at.uplinks.map((u) => [u.name, u.kind]), [[uplink, 'veth']]);
    assert.ok(existsSync(`/sys/class/net/${br}/brif/${tapName}`), `${tapName} is a port of ${br}`);
    assert.deepEqual(vm.vcpuThreads.map((v) => v.index), [0]);
    for (const v of vm.vcpuThreads) assert.equal(threadComm(dom.pid, v.tid), v.name);
    assert.deepEqual(vm.notes, []);

    // QEMU's own command line only has a descriptor (-netdev {"type":"tap","fd":"N"}); the kernel's fdinfo names the tap.
    const proc = (await scanQemuProcesses()).find((p) => p.pid === dom.pid);
    assert.equal(proc?.name, dom.name);
    assert.deepEqual((await qemuTaps(proc!)).map((q) => [q.name, q.nic?.ifname, q.nic?.fds.length, q.nic?.mac, q.nic?.model]), [[tapName, null, 1, mac, 'virtio-net-pci']]);

    // libvirt comes first: its QEMU process is not listed again as a plain QEMU VM.
    const found = await discoverVms(noInventory);
    assert.deepEqual(found.vms.filter((v) => v.name === dom.name).map((v) => [v.source, v.pid]), [['libvirt', dom.pid]]);
    assert.ok(found.sources.find((s) => s.source === 'libvirt')?.names.includes(dom.name));
    assert.ok(!found.sources.find((s) => s.source === 'qemu')?.names.includes(dom.name));
    await assert.rejects(resolveVm('no-such-vm-ebpfnet', noInventory), (err: Error) => {
      assert.match(err.message, new RegExp(`^no VM named "no-such-vm-ebpfnet"; found: (.*, )?${dom.name}(, .*)? \\(libvirt\\)`));
      return true;
    });
  });

  test("a domain on Open vSwitch (virtualport type='openvswitch'): libvirt adds the port, OVS names the bridge", async (t) => {
    const br = await ovsBridge(t);
    const mac = guestMac();
    const dom = await createDomain(t, { interfaces: [{ bridge: br, mac, virtualport: 'openvswitch' }] });
    const vm = await resolveVm(dom.name, noInventory);
    const tap = vm.taps[0]!;
    assert.equal(tap.name, dom.taps[0]);
    assert.equal(tap.configured?.virtualport, 'openvswitch');
    const at = tap.attachment as OvsAttachment;
    assert.equal(at.kind, 'ovs');
    assert.equal(at.bridge, br);
    assert.equal(at.port, tap.name);
    assert.equal(at.datapathType, 'netdev');
    assert.deepEqual(at.uplinks, []);
    assert.deepEqual(vm.notes, []);
  });

  test('a defined domain that is not running: found through libvirt, shut off, no process', async (t) => {
    const br = await linuxBridge(t);
    const mac = guestMac();
    const name = await defineDomain(t, { interfaces: [{ bridge: br, mac }] });
    const vm = await resolveVm(name, noInventory);
    assert.equal(vm.source, 'libvirt');
    assert.equal(vm.state, 'shut off');
    assert.equal(vm.pid, null);
    // No tap exists until libvirt starts the domain and creates one.
    assert.deepEqual(vm.taps, []);
    assert.deepEqual(vm.vcpuThreads, []);
    assert.deepEqual(vm.notes, []);
  });

  test("a booted guest: its IP comes from the host's neighbour table, by the guest MAC", async (t) => {
    assert.ok(guestBoot(), 'no guest kernel at build/guest/{vmlinuz,initrd.img}: run scripts/build-guest.sh (scripts/setup.sh does)');
    const br = await linuxBridge(t);
    const subnet = await freeSubnet();
    await sh(['ip', 'addr', 'add', `${subnet}.1/24`, 'dev', br]);
    const mac = guestMac();
    const dom = await createDomain(t, { interfaces: [{ bridge: br, mac }], kernelArgs: [`ebpfnet.ip=${subnet}.2/24`, `ebpfnet.mac=${mac}`] });
    // The guest boots under TCG in seconds; it answers once its init has configured the NIC.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const r = await execa('ping', ['-n', '-q', '-c', '1', '-W', '1', '-I', br, `${subnet}.2`], { reject: false, stdin: 'ignore' });
      if (r.exitCode === 0) break;
      assert.ok(Date.now() < deadline, `the guest never answered ping on ${br}`);
    }
    const vm = await resolveVm(dom.name, noInventory);
    // (The host may also have learnt the guest's IPv6 link-local address; that is the guest's too.)
    assert.deepEqual(vm.ips.filter((a) => !a.address.startsWith('fe80:')).map((a) => [a.address, a.source, a.dev]), [[`${subnet}.2`, 'neighbour', br]]);
    assert.ok(vm.taps[0]!.counters.rx_packets! > 0 && vm.taps[0]!.counters.tx_packets! > 0, JSON.stringify(vm.taps[0]!.counters));
  });

  test('a tap moved off the bridge libvirt plugged it into is reported as drift', async (t) => {
    const br = await linuxBridge(t);
    const dom = await createDomain(t, { interfaces: [{ bridge: br, mac: guestMac() }] });
    await sh(['ip', 'link', 'set', dom.taps[0]!, 'nomaster']);
    const vm = await resolveVm(dom.name, noInventory);
    assert.equal(vm.taps[0]?.attachment, null);
    assert.deepEqual(vm.notes, [`libvirt plugs ${dom.taps[0]} into ${br}, but it is on no bridge`]);
  });
});
