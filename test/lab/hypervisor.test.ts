// The VM runbooks on a lab as unkind as a real hypervisor: two VMs share one bridge, each with
// traffic of its own; the host has no address on the bridge and no neighbour entry for a VM;
// the guests emit IPv6 multicast, ND, MLD and ARP noise (and the host's bridge, IPv6 on as on a
// real host, takes copies of it); no inventory names any address. One fault is injected on VM A.
// Each scenario runs `ebpfnet diagnose` through the CLI for A and for its healthy neighbour B,
// and asserts both verdicts and the facts that prove them.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { execa } from 'execa';
import { createDomain, ensureLibvirt } from '../helpers/libvirt.js';
import type { TeardownHost } from '../helpers/netns.js';
import { backgroundTraffic, backgroundUdp, contendCpu0, findingsOf, targetOf } from './scenario.js';
import { assertHealthyNeighbour, assertLearned, assertOvsFlowDropOf, diagnoseNoInventory, sharedBridge, type Data } from './shared-bridge.js';
import { buildLabTopology } from './topology.js';
import { canBootVms, macFor } from './vm.js';

const cannot = await canBootVms();

const diagnose = diagnoseNoInventory;

describe('vm-loss and vm-latency on a shared bridge, no inventory', () => {
  before(() => assert.equal(cannot, null, `cannot boot lab VMs: ${cannot}`));

  it('Open vSwitch: an OpenFlow rule dropping A\'s UDP → A ovs-flow-drop naming the rule; B no-host-drops', async (t) => {
    const { lab, a, b } = await sharedBridge(t, 'ovs');
    await lab.ovs!.addFlow(`priority=200,udp,nw_dst=${a.ip},tp_dst=9,actions=drop`);
    const lost = backgroundUdp(lab, a.ip, { port: 9, intervalMs: 2 });
    t.after(() => lost.stop());
    const ra = await diagnose(t, 'vm-loss', a);
    const fa = await assertOvsFlowDropOf(ra, a, 100);
    assert.ok((fa.kernel!.data.total as number) < 10, 'the kernel never saw those drops: OVS drops in userspace');
    assertLearned(ra, a, b);
    const rb = await diagnose(t, 'vm-loss', b);
    await lost.stop();
    await assertHealthyNeighbour(rb, 'vm-loss');
  });

  it('Open vSwitch: a rule naming no VM drops the UDP only A receives → A ovs-flow-drop; B no-host-drops', async (t) => {
    const { lab, a, b } = await sharedBridge(t, 'ovs');
    await lab.ovs!.addFlow('priority=200,udp,tp_dst=9,actions=drop');
    const lost = backgroundUdp(lab, a.ip, { port: 9, intervalMs: 2 });
    t.after(() => lost.stop());
    const ra = await diagnose(t, 'vm-loss', a);
    assert.equal(ra.conclusion?.id, 'ovs-flow-drop', ra.conclusion?.summary);
    assert.match(ra.conclusion!.summary, /udp\(dst=9\)/);
    const fa = (await findingsOf(ra.bundle)) as Record<string, { data: Data }>;
    assert.equal(fa.ovs!.data.vmTotal, 0, 'the rule names nothing of A');
    assert.ok((fa.ovs!.data.anyTotal as number) > 100);
    const rb = await diagnose(t, 'vm-loss', b);
    await lost.stop();
    await assertHealthyNeighbour(rb, 'vm-loss');
  });

  it('Linux bridge: an nftables bridge rule dropping A\'s UDP → A netfilter-rule (learned address); B no-host-drops, the noise set apart', async (t) => {
    const { lab, a, b } = await sharedBridge(t, 'linux');
    const table = `ebpfnet_hv_${process.pid}`;
    t.after(() => execa('nft', ['delete', 'table', 'bridge', table], { reject: false }));
    await execa('nft', ['-f', '-'], { input: `table bridge ${table} { chain vmfwd { type filter hook forward priority 0; ip daddr ${a.ip} udp dport 9 counter drop; }; }` });
    const lost = backgroundUdp(lab, a.ip, { port: 9, intervalMs: 2 });
    t.after(() => lost.stop());
    const ra = await diagnose(t, 'vm-loss', a);
    assert.equal(ra.conclusion?.id, 'netfilter-rule', ra.conclusion?.summary);
    assert.equal(ra.conclusion!.confidence, 'high', `the rule names A's address, learned from its frames: ${JSON.stringify(ra.conclusion)}`);
    assert.match(ra.conclusion!.summary, new RegExp(`ip daddr ${a.ip.replace(/\./g, '\\.')} udp dport 9 .*in bridge ${table} vmfwd dropped \\d+ packets`));
    assertLearned(ra, a, b);
    const rb = await diagnose(t, 'vm-loss', b);
    await lost.stop();
    const fb = await assertHealthyNeighbour(rb, 'vm-loss');
    assert.ok((fb.kernel!.data.hostCopies.total as number) > 0, 'the guests\' multicast noise reached the host and was set apart');
  });

  it('Linux bridge: A paused, QEMU without debug-threads → A guest-not-draining, vCPUs found through QMP; B no-host-drops', async (t) => {
    const { lab, a, b } = await sharedBridge(t, 'linux', { vmOptions: () => ({ debugThreads: false }) });
    await lab.peer.pinNeighbor(a.ip, a.mac);
    await a.pause();
    const lost = backgroundUdp(lab, a.ip, { port: 9, intervalMs: 1 });
    t.after(() => lost.stop());
    const ra = await diagnose(t, 'vm-loss', a);
    assert.equal(ra.conclusion?.id, 'guest-not-draining', ra.conclusion?.summary);
    const target = targetOf(ra.bundle);
    assert.ok(target.vcpuThreads.length > 0 && target.vcpuThreads.every((v) => v.source === 'qmp'), JSON.stringify(target.vcpuThreads));
    const fa = (await findingsOf(ra.bundle)) as Record<string, { data: Data }>;
    assert.equal(fa.runq!.data.identified.vcpu, 'tids');
    assert.ok((fa.kernel!.data.byReason.FULL_RING ?? 0) > 100, JSON.stringify(fa.kernel!.data.byReason));
    const rb = await diagnose(t, 'vm-loss', b);
    await lost.stop();
    const fb = await assertHealthyNeighbour(rb, 'vm-loss');
    // B's broadcasts and multicasts flooded to A's full ring die there: A's fault, set apart for B.
    assert.ok((fb.kernel!.data.atOtherTaps.total as number) > 0, JSON.stringify(fb.kernel!.data.atOtherTaps));
    assert.deepEqual(Object.keys(fb.kernel!.data.atOtherTaps.byDevice), [a.tap]);
  });

  it('Linux bridge: a shaper with a tiny queue on A\'s tap → A qdisc-drop; B no-host-drops', async (t) => {
    const { lab, a, b } = await sharedBridge(t, 'linux');
    await execa('tc', ['qdisc', 'add', 'dev', a.tap, 'root', 'tbf', 'rate', '200kbit', 'burst', '1600', 'limit', '3000']);
    const lost = backgroundUdp(lab, a.ip, { port: 9, size: 1000, intervalMs: 2 });
    t.after(() => lost.stop());
    const ra = await diagnose(t, 'vm-loss', a);
    assert.equal(ra.conclusion?.id, 'qdisc-drop', ra.conclusion?.summary);
    assert.match(ra.conclusion!.summary, new RegExp(`tbf qdisc [0-9a-f]+: on ${a.tap} dropped \\d+ packets`));
    const rb = await diagnose(t, 'vm-loss', b);
    await lost.stop();
    const fb = await assertHealthyNeighbour(rb, 'vm-loss');
    // B's broadcasts and multicasts flooded to A meet A's shaper: A's path, set apart for B.
    assert.ok(!(a.tap in fb.kernel!.data.byDevice), JSON.stringify(fb.kernel!.data.byDevice));
    for (const dev of Object.keys(fb.kernel!.data.atOtherTaps.byDevice)) assert.equal(dev, a.tap);
  });

  it('a jumbo uplink, A\'s tap smaller than its packets → A mtu-mismatch naming its tap; B (1500 taps, jumbo uplink) no-host-drops', async (t) => {
    const { lab, a, b } = await sharedBridge(t, 'linux', { uplinkMtu: 9000 });
    await execa('ip', ['link', 'set', 'dev', a.tap, 'mtu', '1000']);
    const lost = backgroundUdp(lab, a.ip, { port: 9, size: 1200 });
    const fits = backgroundUdp(lab, b.ip, { port: 9, size: 1400 });
    t.after(() => lost.stop());
    t.after(() => fits.stop());
    const ra = await diagnose(t, 'vm-loss', a);
    assert.equal(ra.conclusion?.id, 'mtu-mismatch', ra.conclusion?.summary);
    assert.match(ra.conclusion!.summary, new RegExp(`^${a.tap} has MTU 1000, smaller than the 1228-byte packets to ${a.name}`));
    const rb = await diagnose(t, 'vm-loss', b);
    await Promise.all([lost.stop(), fits.stop()]);
    await assertHealthyNeighbour(rb, 'vm-loss');
  });

  it('vm-latency: a shaper holding A\'s packets → A qdisc-delay; B, vCPUs found through QMP, host-fast', async (t) => {
    const { lab, a, b } = await sharedBridge(t, 'linux', { vmOptions: () => ({ debugThreads: false }) });
    await execa('tc', ['qdisc', 'add', 'dev', a.tap, 'root', 'tbf', 'rate', '400kbit', 'burst', '1600', 'latency', '400ms']);
    const heavy = backgroundUdp(lab, a.ip, { port: 7, size: 1000, intervalMs: 10 });
    t.after(() => heavy.stop());
    // Emulated (TCG) guests on a busy 2-core host take milliseconds to read their tap: the
    // threshold sits above that for both VMs, far below what the shaper adds.
    const slowGuests = ['--input', 'threshold_us=8000'];
    const ra = await diagnose(t, 'vm-latency', a, slowGuests);
    assert.equal(ra.conclusion?.id, 'qdisc-delay', ra.conclusion?.summary);
    assert.ok(((await findingsOf(ra.bundle)).lat!.data.worst as { p99: number }).p99 >= 50_000, 'the shaper holds A\'s packets for tens of ms');
    const rb = await diagnose(t, 'vm-latency', b, slowGuests);
    const fb = await assertHealthyNeighbour(rb, 'vm-latency');
    assert.equal(fb.runq!.data.identified.vcpu, 'tids', 'B\'s vCPU threads were measured, identified through QMP');
  });

  it('vm-latency: A starved of CPU (pinned at nice 19 behind busy loops), QEMU without debug-threads → A vcpu-wait when its monitor still named its vCPUs, else tun-ring-wait (low confidence) with QEMU\'s waits in evidence; B, on the other CPU, host-fast', async (t) => {
    const { lab, a, b } = await sharedBridge(t, 'linux', { vmOptions: () => ({ debugThreads: false }) });
    await execa('taskset', ['-a', '-p', '-c', '1', String(b.pid)]);
    await contendCpu0(t, a.pid, 4);
    const toA = backgroundUdp(lab, a.ip, { port: 7, intervalMs: 5 });
    t.after(() => toA.stop());
    const slowGuests = ['--input', 'threshold_us=8000'];
    const ra = await diagnose(t, 'vm-latency', a, slowGuests);
    const target = targetOf(ra.bundle);
    const fa = (await findingsOf(ra.bundle)) as Record<string, { data: Data }>;
    // A QEMU that gets no CPU often answers QMP too late: its vCPUs then stay unknown (no names,
    // no KVM guest time under TCG), and the verdict says it cannot tell, not "guest slow". When
    // its monitor still answers in time, the starved vCPUs are named and measured.
    if (target.vcpuThreads.length === 0) {
      assert.equal(ra.conclusion?.id, 'tun-ring-wait', ra.conclusion?.summary);
      assert.equal(ra.conclusion!.confidence, 'low');
      const qmp = target.asked?.find((x) => x.source === 'vcpus:qmp');
      assert.match(qmp?.note ?? '', /within \d+ ms .*or QEMU itself gets no CPU/, JSON.stringify(target.asked));
      assert.equal(fa.runq!.data.identified.vcpu, 'none');
      // The starvation is in the evidence all the same: QEMU's threads wait for CPU 0.
      assert.ok((fa.runq!.data.classes.other.p99Us as number) >= 2000, JSON.stringify(fa.runq!.data.classes.other));
    } else {
      assert.deepEqual([...new Set(target.vcpuThreads.map((v) => v.source))], ['qmp'], JSON.stringify(target.vcpuThreads));
      assert.equal(ra.conclusion?.id, 'vcpu-wait', ra.conclusion?.summary);
      assert.equal(ra.conclusion!.confidence, 'high');
      assert.equal(fa.runq!.data.identified.vcpu, 'tids');
      const vcpu = fa.runq!.data.classes.vcpu as { p99Us: number; waitShare: number };
      assert.ok(vcpu.p99Us >= 5000 && vcpu.waitShare >= 0.2, JSON.stringify(vcpu));
    }
    const rb = await diagnose(t, 'vm-latency', b, slowGuests);
    await toA.stop();
    const fb = await assertHealthyNeighbour(rb, 'vm-latency');
    assert.equal(fb.runq!.data.identified.vcpu, 'tids', "B's QEMU answers QMP: its vCPUs are known");
  });

  it('a libvirt VM with a guest agent and no inventory, on a bridge with a QEMU neighbour: its nft drop → netfilter-rule, addresses from libvirt\'s agent; the neighbour no-host-drops', async (t) => {
    await ensureLibvirt();
    const lab = await buildLabTopology(t, { bridge: 'linux', vms: 1, ipv6: true, hostIpv6: true, vmOptions: () => ({ noise: true }) });
    const neighbour = lab.vm;
    const base = lab.subnet.split('.').slice(0, 3).join('.');
    const ip = `${base}.50`;
    const ipv6 = `${lab.subnet6.split('::')[0]}::50`;
    const mac = macFor(`libvirt-hv-${process.pid}`);
    const dom = await createDomain(t, { interfaces: [{ bridge: lab.bridge.name, mac }], guest: { ip: `${ip}/24`, gateway: lab.peer.ip, mac, ipv6: `${ipv6}/64`, noise: true }, guestAgent: true });
    const deadline = Date.now() + 60_000;
    while ((await lab.peer.ping(ip, { count: 1, wait: 1 })).received === 0) assert.ok(Date.now() < deadline, `the libvirt guest ${dom.name} never answered ping`);
    const table = `ebpfnet_hvl_${process.pid}`;
    t.after(() => execa('nft', ['delete', 'table', 'bridge', table], { reject: false }));
    await execa('nft', ['-f', '-'], { input: `table bridge ${table} { chain vmfwd { type filter hook forward priority 0; ip daddr ${ip} udp dport 9 counter drop; }; }` });
    const lost = backgroundUdp(lab, ip, { port: 9, intervalMs: 2 });
    const own = backgroundTraffic(lab, neighbour, { intervalMs: 10 });
    t.after(() => lost.stop());
    t.after(() => own.stop().catch(() => undefined));
    // The agent starts with the guest: ask until libvirt hears it.
    let r = await diagnose(t, 'vm-loss', dom.name);
    for (let i = 0; i < 5 && !targetOf(r.bundle).ips.some((x) => x.source === 'libvirt-agent'); i++) r = await diagnose(t, 'vm-loss', dom.name);
    assert.equal(r.conclusion?.id, 'netfilter-rule', r.conclusion?.summary);
    const ips = targetOf(r.bundle).ips;
    const fromAgent = ips.filter((x) => x.source === 'libvirt-agent').map((x) => x.address);
    assert.deepEqual(fromAgent.filter((x) => !x.startsWith('fe80:')).sort(), [ip, ipv6].sort(), JSON.stringify(ips));
    assert.equal(fromAgent.filter((x) => x.startsWith('fe80:')).length, 1, 'and its link-local address');
    const rn = await diagnose(t, 'vm-loss', neighbour);
    await lost.stop();
    await assertHealthyNeighbour(rn, 'vm-loss');
  });
});
