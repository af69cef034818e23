// The headline job, end to end: a real VM (QEMU under TCG, or a libvirt domain) on a
// Linux bridge or Open vSwitch, one real fault injected, traffic flowing, and
// `ebpfnet diagnose vm-loss --vm NAME` run through the CLI. Each scenario asserts the
// conclusion and the facts that prove it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { execa } from 'execa';
import type { TeardownHost } from '../helpers/netns.js';
import { backgroundUdpFlows, diagnoseVm, diagnoseVmUnderUdp, fillConntrack, findingsOf, libvirtGuestLab, type BackgroundUdpOptions } from './scenario.js';
import { buildLabTopology, type LabTopology } from './topology.js';
import { canBootVms } from './vm.js';

const cannot = await canBootVms();
const diagnose = (t: TeardownHost, vm: string, ip: string) => diagnoseVm(t, 'vm-loss', vm, ip);
/** vm-loss on `vm` (the lab's own unless told) while UDP flows to it from the peer. */
const diagnoseUnderUdp = (t: TeardownHost, lab: LabTopology, udp: BackgroundUdpOptions, vm = { name: lab.vm.name, ip: lab.vm.ip }) =>
  diagnoseVmUnderUdp(t, lab, 'vm-loss', vm.name, vm.ip, udp);

describe('vm-loss on real faults', () => {
  before(() => assert.equal(cannot, null, `cannot boot lab VMs: ${cannot}`));

  it('an OpenFlow rule dropping UDP on Open vSwitch → ovs-flow-drop, naming the megaflow', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'ovs' });
    await lab.ovs!.addFlow('priority=200,udp,tp_dst=9,actions=drop');
    const r = await diagnoseUnderUdp(t, lab, { port: 9 });
    assert.equal(r.conclusion?.id, 'ovs-flow-drop', r.conclusion?.summary);
    assert.equal(r.conclusion!.category, 'ovs-flow-drop');
    assert.equal(r.conclusion!.confidence, 'high');
    // The proof, by reference: each finding with its evidence folder in the bundle.
    const ovsEvidence = r.conclusion!.evidence.find((e) => e.alias === 'ovs');
    assert.equal(ovsEvidence?.probe, 'ovs.drops');
    assert.ok(ovsEvidence?.dir && existsSync(join(r.bundle, ovsEvidence.dir)), JSON.stringify(ovsEvidence));
    const f = await findingsOf(r.bundle);
    assert.equal(f.kernel!.data.total, 0, 'the kernel saw no drop: OVS drops in userspace');
    assert.match(r.conclusion!.summary, /udp/);
    assert.ok((f.ovs!.data.total as number) > 100, `OVS drops ${String(f.ovs!.data.total)}`);
  });

  it('an nftables bridge rule → netfilter-rule, naming the rule and its count', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    const table = `ebpfnet_lab_${process.pid}`;
    t.after(() => execa('nft', ['delete', 'table', 'bridge', table], { reject: false }));
    await execa('nft', ['add', 'table', 'bridge', table]);
    await execa('nft', ['add', 'chain', 'bridge', table, 'vmfwd', '{ type filter hook forward priority 0; }']);
    await execa('nft', ['add', 'rule', 'bridge', table, 'vmfwd', 'ip', 'daddr', lab.vm.ip, 'udp', 'dport', '9', 'counter', 'drop']);
    const r = await diagnoseUnderUdp(t, lab, { port: 9 });
    assert.equal(r.conclusion?.id, 'netfilter-rule', r.conclusion?.summary);
    assert.match(r.conclusion!.summary, new RegExp(`udp dport 9 .*in bridge ${table} vmfwd dropped \\d+ packets`));
    const f = await findingsOf(r.bundle);
    assert.ok(((f.kernel!.data.byReason as Record<string, number>).NETFILTER_DROP ?? 0) > 100);
  });

  it('a full conntrack table on bridged traffic → conntrack-full, with the table\'s fill', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    const ct = fillConntrack(`ebpfnet_lab_ct_${process.pid}`, 16);
    t.after(() => ct.undo());
    const traffic = backgroundUdpFlows(lab, lab.vm.ip, 9, 200);
    t.after(() => traffic.stop());
    const r = await diagnose(t, lab.vm.name, lab.vm.ip);
    await traffic.stop();
    ct.undo();
    assert.equal(r.conclusion?.id, 'conntrack-full', r.conclusion?.summary);
    assert.equal(r.conclusion?.category, 'conntrack-drop');
    const f = await findingsOf(r.bundle);
    assert.equal(f.ct!.data.max, 16);
    const drops = f.ct!.data.drops as number;
    const netfilterDrops = (f.kernel!.data.byReason as Record<string, number>).NETFILTER_DROP ?? 0;
    // 200 new flows/s for 2 s, 16 admitted: the rest are dropped at the conntrack hook.
    assert.ok(drops > 100, `conntrack counted ${drops} drops`);
    assert.ok(netfilterDrops > 100, `the kernel counted ${netfilterDrops} NETFILTER_DROP`);
    assert.match(r.conclusion!.summary, /The conntrack table \(\d+ of 16 entries\) refused \d+ new connections/);
  });

  it('strict rp_filter on the bridge, the VM\'s address routed elsewhere → rp-filter', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    const br = lab.bridge.name;
    const hostIp = `${lab.subnet.split('.').slice(0, 3).join('.')}.254`;
    const dummy = `${br.slice(0, 10)}rp`;
    const rpPath = `/proc/sys/net/ipv4/conf/${br}/rp_filter`;
    t.after(async () => {
      await execa('ip', ['route', 'del', `${lab.vm.ip}/32`], { reject: false });
      await execa('ip', ['link', 'del', dummy], { reject: false });
    });
    // The host has an address on the bridge, but routes the VM's address out of another device:
    // packets from the VM fail the strict reverse-path check where they enter the host.
    await execa('ip', ['addr', 'add', `${hostIp}/24`, 'dev', br]);
    // A veth pair going nowhere stands in for the other uplink (this kernel has no dummy devices).
    await execa('ip', ['link', 'add', dummy, 'type', 'veth', 'peer', 'name', `${dummy}p`]);
    await execa('ip', ['link', 'set', dummy, 'up']);
    await execa('ip', ['link', 'set', `${dummy}p`, 'up']);
    await execa('ip', ['route', 'add', `${lab.vm.ip}/32`, 'dev', dummy]);
    writeFileSync(rpPath, '1');
    const brMac = readFileSync(`/sys/class/net/${br}/address`, 'utf8').trim();
    await lab.vm.sh(`arp -s ${hostIp} ${brMac}`); // the host would not answer its ARP either
    await lab.vm.sh(`(ping -c 400 -i 0.02 ${hostIp} >/dev/null 2>&1 &)`);
    const r = await diagnose(t, lab.vm.name, lab.vm.ip);
    assert.equal(r.conclusion?.id, 'rp-filter', r.conclusion?.summary);
    assert.equal(r.conclusion?.category, 'routing-drop');
    const f = await findingsOf(r.bundle);
    const rpDrops = (f.kernel!.data.byReason as Record<string, number>).IP_RPFILTER ?? 0;
    assert.ok(rpDrops > 20, `the kernel counted ${rpDrops} IP_RPFILTER drops`);
  });

  it('a shaper with a tiny queue on the tap → qdisc-drop on that tap', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    await execa('tc', ['qdisc', 'add', 'dev', lab.vm.tap, 'root', 'tbf', 'rate', '200kbit', 'burst', '1600', 'limit', '3000']);
    const r = await diagnoseUnderUdp(t, lab, { port: 9, size: 1000, intervalMs: 2 });
    assert.equal(r.conclusion?.id, 'qdisc-drop', r.conclusion?.summary);
    assert.match(r.conclusion!.summary, new RegExp(`tbf qdisc [0-9a-f]+: on ${lab.vm.tap} dropped \\d+ packets`));
  });

  it('a VM that stops reading its tap → FULL_RING at the tap, vCPU not starved → guest-not-draining', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    await lab.peer.pinNeighbor(lab.vm.ip, lab.vm.mac);
    await lab.vm.pause();
    const r = await diagnoseUnderUdp(t, lab, { port: 9, intervalMs: 1 });
    assert.equal(r.conclusion?.id, 'guest-not-draining', r.conclusion?.summary);
    const f = await findingsOf(r.bundle);
    assert.ok(((f.kernel!.data.byReason as Record<string, number>).FULL_RING ?? 0) > 100);
    assert.equal(f.runq!.status, 'ok');
  });

  it('a UDP flood into a running TCG VM → FULL_RING at its tap → tun-ring-full', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    await lab.peer.pinNeighbor(lab.vm.ip, lab.vm.mac);
    // Back to back: far more than an emulated guest takes off its virtio queue.
    const r = await diagnoseUnderUdp(t, lab, { port: 9, size: 64, intervalMs: 0 });
    // Whether the guest cannot keep up or its vCPU waits for one of the two CPUs the flood
    // shares, the cause is the same: the tap's ring toward the VM overflows.
    assert.equal(r.conclusion?.category, 'tun-ring-full', r.conclusion?.summary);
    assert.ok(['guest-not-draining', 'vcpu-starved'].includes(r.conclusion!.id), r.conclusion!.id);
    const f = await findingsOf(r.bundle);
    const full = (f.kernel!.data.byReason as Record<string, number>).FULL_RING ?? 0;
    assert.ok(full > 100, `FULL_RING ${full}`);
    const top = (f.kernel!.data.top as Array<{ reason: string; location: string; device: string }>)[0]!;
    assert.equal(top.reason, 'FULL_RING');
    assert.match(top.location, /^tun_net_xmit/);
    assert.equal(top.device, lab.vm.tap);
  });

  it('a tap whose MTU is smaller than the path → mtu-mismatch', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    await execa('ip', ['link', 'set', 'dev', lab.vm.tap, 'mtu', '1000']);
    const r = await diagnoseUnderUdp(t, lab, { port: 9, size: 1200 });
    assert.equal(r.conclusion?.id, 'mtu-mismatch', r.conclusion?.summary);
    assert.match(r.conclusion!.summary, new RegExp(`${lab.vm.tap} has MTU 1000|has MTU 1500 but ${lab.vm.tap} has 1000`));
  });

  it('a healthy VM echoing traffic → no-host-drops', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux' });
    const r = await diagnoseUnderUdp(t, lab, { port: 7, intervalMs: 5 });
    assert.equal(r.conclusion?.id, 'no-host-drops', r.conclusion?.summary);
    const f = await findingsOf(r.bundle);
    assert.equal(f.kernel!.data.total, 0);
  });

  it('a libvirt domain that was suspended → found through libvirt → vm-paused', async (t) => {
    // Direct kernel boot under TCG: a few seconds.
    const { lab, dom, ip } = await libvirtGuestLab(t, 30_000);
    await execa('virsh', ['-c', 'qemu:///system', 'suspend', dom.name]);
    const r = await diagnoseUnderUdp(t, lab, { port: 9, intervalMs: 1 }, { name: dom.name, ip });
    assert.equal(r.conclusion?.id, 'vm-paused', r.conclusion?.summary);
    const target = (JSON.parse(readFileSync(join(r.bundle, 'run.json'), 'utf8')) as { target: { source: string; state: string; taps: Array<{ name: string }> } }).target;
    assert.equal(target.source, 'libvirt');
    assert.equal(target.state, 'paused');
    assert.equal(target.taps[0]!.name, dom.taps[0]);
  });
});
