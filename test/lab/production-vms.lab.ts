// The VM runbooks on what production hypervisors run, end to end: VMs under KVM on vhost-net,
// plugged into Open vSwitch's kernel datapath (`datapath_type=system`), two sharing the bridge
// with traffic of their own, noise, no address of the host on the bridge and no inventory.
// This machine has neither KVM, vhost-net nor openvswitch.ko, so the file runs in the kernel lab
// only (nested KVM guests there); `npm test` never lists it (*.lab.ts). One fault hits VM A;
// `ebpfnet diagnose vm-loss` runs through the CLI for A and for its healthy neighbour B.
//
// IT DOES NOT PASS YET, and CI does not run it: on this machine kind the lab's own kernel
// panics (a stack overflow in error_entry during KVM_RUN, under TCG's emulated SVM) within about
// a minute and a half of two nested guests carrying traffic, and with single-threaded TCG the
// guests do not boot within a minute. Before the panic the guests booted on KVM with vhost=on
// and the bridge ran datapath_type=system. By hand:
//   node -e "import('./dist/test/lab/kernel-lab.js').then(async (l) => console.log((await l.runInKernelLab('node scripts/run-tests.mjs dist/test/lab/production-vms.lab.js')).output))"
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { ovsDatapath } from './ovs.js';
import { backgroundUdp, findingsOf, targetOf } from './scenario.js';
import { assertHealthyNeighbour, assertLearned, assertOvsFlowDropOf, diagnoseNoInventory, sharedBridge, type Data } from './shared-bridge.js';
import { canBootVms, HOST_VIRT, type Vm } from './vm.js';

const missing = [HOST_VIRT.accel === 'kvm' ? null : 'KVM', HOST_VIRT.vhost ? null : 'vhost-net', ovsDatapath() === 'system' ? null : 'openvswitch.ko'].filter((x) => x !== null);
const cannot = await canBootVms();

/** The VM's QEMU runs as production's do: KVM, its tap on vhost-net. */
function assertProductionVm(vm: Vm): void {
  const argv = readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8').split('\0');
  assert.equal(argv[argv.indexOf('-accel') + 1], 'kvm', argv.join(' '));
  assert.ok(argv.some((a) => a.startsWith(`tap,id=net0,ifname=${vm.tap},`) && a.endsWith('vhost=on')), argv.join(' '));
}

describe('vm-loss on KVM VMs, vhost-net and the OVS kernel datapath (kernel lab)', () => {
  before(() => {
    assert.deepEqual(missing, [], `this kernel has no ${missing.join(', ')}: this file runs in the kernel lab (test/lab/kernel-lab.test.ts)`);
    assert.equal(cannot, null, `cannot boot lab VMs: ${cannot}`);
  });

  it('an OpenFlow rule dropping A\'s UDP → A ovs-flow-drop naming the rule, on the system datapath; B no-host-drops', async (t) => {
    const { lab, a, b } = await sharedBridge(t, 'ovs');
    assert.equal(lab.ovs!.datapath, 'system');
    for (const vm of [a, b]) assertProductionVm(vm);
    await lab.ovs!.addFlow(`priority=200,udp,nw_dst=${a.ip},tp_dst=9,actions=drop`);
    const lost = backgroundUdp(lab, a.ip, { port: 9, intervalMs: 5 });
    t.after(() => lost.stop());
    const ra = await diagnoseNoInventory(t, 'vm-loss', a);
    const fa = await assertOvsFlowDropOf(ra, a, 50);
    const ovs = fa.ovs!.data;
    assert.deepEqual(ovs.datapath, ['system']);
    // The kernel datapath's own programs ran, scoped to A: what OVS received for it.
    const k = ovs.kernel as Data;
    assert.deepEqual(k.failed, [], 'every kernel-datapath program attached');
    assert.ok(Object.values(k.received as Record<string, number>).reduce((n, v) => n + v, 0) >= (ovs.vmTotal as number), JSON.stringify(k.received));
    assertLearned(ra, a, b);
    const rb = await diagnoseNoInventory(t, 'vm-loss', b);
    await lost.stop();
    await assertHealthyNeighbour(rb, 'vm-loss');
  });

  it('a UDP flood into A → FULL_RING at A\'s tap → tun-ring-full, A\'s vCPU and vhost threads measured; B no-host-drops', async (t) => {
    const { lab, a, b } = await sharedBridge(t, 'ovs');
    for (const vm of [a, b]) assertProductionVm(vm);
    await lab.peer.pinNeighbor(a.ip, a.mac);
    // Back to back: more than a nested guest takes off its virtio queue.
    const flood = backgroundUdp(lab, a.ip, { port: 9, size: 64, intervalMs: 0 });
    t.after(() => flood.stop());
    const ra = await diagnoseNoInventory(t, 'vm-loss', a);
    await flood.stop();
    assert.equal(ra.conclusion?.category, 'tun-ring-full', ra.conclusion?.summary);
    const fa = (await findingsOf(ra.bundle)) as Record<string, { data: Data }>;
    const full = (fa.kernel!.data.byReason as Record<string, number>).FULL_RING ?? 0;
    assert.ok(full > 100, `FULL_RING ${full}`);
    const top = (fa.kernel!.data.top as Array<{ reason: string; location: string; device: string }>)[0]!;
    assert.deepEqual([top.reason, top.device], ['FULL_RING', a.tap]);
    assert.match(top.location, /^tun_net_xmit/);
    // The threads that drain the tap, found without debug-threads names for vhost: the kernel's
    // vhost worker of A's QEMU, and A's vCPU threads, both measured by cpu.runqlat.
    const path = targetOf(ra.bundle).path as { pid: number; vcpuTids: number[]; vhostTids: number[] };
    assert.ok(path.vcpuTids.length > 0 && path.vhostTids.length > 0, JSON.stringify(path));
    for (const tid of path.vhostTids) assert.equal(readFileSync(`/proc/${tid}/comm`, 'utf8').trim(), `vhost-${a.pid}`);
    const runq = fa.runq!.data;
    assert.deepEqual(runq.identified, { vcpu: 'tids', vhost: 'tids' });
    assert.ok(runq.classes.vhost.count > 0 && runq.classes.vcpu.count > 0, JSON.stringify(runq.classes));
    assert.match(ra.conclusion!.summary, new RegExp(`packets to ${a.name} dropped at its full tap ring`));
    const rb = await diagnoseNoInventory(t, 'vm-loss', b);
    await assertHealthyNeighbour(rb, 'vm-loss');
  });
});
