// Discovery of real lab VMs (QEMU under TCG booting the lab guest) two to a bridge, as on a
// hypervisor: the host has no address on the bridge. vCPU threads are identified by QMP
// when QEMU does not name them and checked against what QEMU itself answers to
// query-cpus-fast; each VM's path lists the bridge's other ports and, apart, the host's own
// port of it; a guest agent port that nothing answers costs at most its bound; resolveVm's
// time is measured.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { execa } from 'execa';
import { discoverVms, resolveVm, vmTarget, withLearnedAddresses, type VmFacts, type VmPath } from '../../engine/target/index.js';
import { GUEST_AGENT_TIMEOUT_MS } from '../../engine/target/learn-addresses.js';
import { qemuGuestAgentSocket, qemuQmpSockets } from '../../engine/target/qemu-cmdline.js';
import { QMP_TIMEOUT_MS } from '../../engine/target/threads.js';
import { runCli } from '../helpers/cli.js';
import { backgroundTraffic } from '../lab/scenario.js';
import { buildLabTopology, type LabTopology } from '../lab/topology.js';
import { bootVm, HOST_VIRT, type Vm } from '../lab/vm.js';

const noInventory = { env: {} };
const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-labvms-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * resolveVm three times: the facts of the last, and the fastest time. Other work shares
 * this host's two cores (load averages above 10 are common), so one run's wall time says
 * more about the neighbours than about discovery; the best of three says what it costs.
 */
async function timedResolve(name: string): Promise<{ vm: VmFacts; ms: number; all: number[] }> {
  const all: number[] = [];
  let vm: VmFacts | undefined;
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    vm = await resolveVm(name, noInventory);
    all.push(Math.round(performance.now() - start));
  }
  return { vm: vm!, ms: Math.min(...all), all };
}

const load = () => loadavg()[0]!.toFixed(1);

/** What QEMU itself says of its vCPUs, asked on its QMP socket by the lab's own client. */
async function qemuVcpus(vm: Vm): Promise<Array<[number, number]>> {
  const cpus = (await vm.qmp('query-cpus-fast')) as Array<{ 'cpu-index': number; 'thread-id': number }>;
  return cpus.map((c) => [c['cpu-index'], c['thread-id']]);
}

/**
 * The kernel devices on a bridge, asked the way a person would, not the way discovery does;
 * the host's own port apart (the Linux bridge's device; the OVS bridge's internal port, a
 * kernel device too as OVS's netdev datapath makes it, which list-ifaces leaves out).
 */
async function bridgePorts(lab: LabTopology): Promise<{ ports: string[]; hostPorts: string[] }> {
  if (lab.bridge.kind === 'ovs') {
    const ifaces = String((await execa('ovs-vsctl', ['--timeout=10', 'list-ifaces', lab.bridge.name])).stdout).split('\n').filter(Boolean);
    const kernel = new Set(readdirSync('/sys/class/net'));
    assert.equal(String((await execa('ovs-vsctl', ['--timeout=10', 'get', 'interface', lab.bridge.name, 'type'])).stdout).trim(), 'internal');
    return { ports: ifaces.filter((d) => kernel.has(d)).sort(), hostPorts: [lab.bridge.name].filter((d) => kernel.has(d)) };
  }
  const links = JSON.parse(String((await execa('ip', ['-j', 'link', 'show', 'master', lab.bridge.name])).stdout)) as Array<{ ifname: string }>;
  return { ports: links.map((l) => l.ifname).sort(), hostPorts: [lab.bridge.name] };
}

function assertPath(path: VmPath, vm: Vm, lab: LabTopology, { ports, hostPorts }: { ports: string[]; hostPorts: string[] }) {
  const other = lab.vms.find((v) => v !== vm)!;
  assert.deepEqual(path.taps, [vm.tap]);
  assert.deepEqual(path.macs, [vm.mac]);
  assert.equal(path.bridge, lab.bridge.name);
  assert.equal(path.bridgeKind, lab.bridge.kind === 'ovs' ? 'ovs' : 'linux-bridge');
  assert.ok(path.ports.includes(other.tap), `${other.tap} (the other VM's tap) not in ${path.ports.join(' ')}`);
  assert.ok(path.ports.includes(lab.peer.hostDev), `${lab.peer.hostDev} (the peer's veth) not in ${path.ports.join(' ')}`);
  assert.deepEqual(path.ports, ports.filter((p) => p !== vm.tap));
  assert.deepEqual(path.hostPorts, hostPorts);
  assert.ok(!path.ports.includes(lab.bridge.name), `the bridge's own port ${lab.bridge.name} is not one of the others`);
  // No address on the bridge, no neighbour entry, no agent: nothing learned, and nothing claimed.
  assert.deepEqual(path.ips.filter((a) => a !== vm.ip), []);
  assert.equal(path.vcpuTids.length, 1);
}

describe('lab VMs two to a bridge', () => {
  test('Linux bridge, QEMU without debug-threads: vCPUs from QMP equal query-cpus-fast; ports; learned addresses; a busy monitor', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux', vms: 2, vm: { debugThreads: false } });
    const ports = await bridgePorts(lab);
    for (const vm of lab.vms) {
      assert.ok(!vm.qemuArgv.some((a) => a.includes('debug-threads')), vm.qemuArgv.join(' '));
      const { vm: facts, ms, all } = await timedResolve(vm.name);
      t.diagnostic(`resolveVm ${vm.name} (vCPUs by QMP, no agent port): best ${ms} ms of ${all.join(', ')} (load ${load()}); asked ${JSON.stringify(facts.asked)}`);
      assert.deepEqual(
        facts.vcpuThreads.map((v) => [v.index, v.tid]),
        await qemuVcpus(vm),
      );
      assert.deepEqual(facts.vcpuThreads.map((v) => v.source), ['qmp']);
      // The thread QEMU names is a thread of the VM's process (named by QEMU's default, not "CPU 0/TCG").
      assert.ok(facts.vcpuThreads.every((v) => v.name !== '' && !v.name.startsWith('CPU ')), JSON.stringify(facts.vcpuThreads));
      assert.deepEqual(facts.notes, []);
      const path = vmTarget(facts).path as VmPath;
      assertPath(path, vm, lab, ports);
      assert.deepEqual(path.ofports, []);
      assert.ok(ms < 1000, `resolveVm took ${ms} ms`);

      // Addresses seen in the VM's own frames join the target: once, with their source.
      const target = withLearnedAddresses(vmTarget(facts), [
        { address: vm.ip, mac: vm.mac, via: 'arp' },
        { address: vm.ip, mac: vm.mac, via: 'ipv4' },
        { address: 'FD00:EB::0:5', mac: vm.mac, via: 'nd' },
        { address: 'fe80::5054:ff:fe00:1', mac: vm.mac, via: 'nd' },
      ]);
      const learned = target.path as VmPath;
      assert.deepEqual([learned.ip, learned.ip6, learned.ips, learned.linkLocal], [vm.ip, 'fd00:eb::5', [vm.ip, 'fd00:eb::5'], ['fe80::5054:ff:fe00:1']]);
      assert.deepEqual(
        (target.ips as VmFacts['ips']).filter((a) => a.source === 'frames').map((a) => [a.address, a.mac, a.via]),
        [[vm.ip, vm.mac, 'arp'], ['fd00:eb::5', vm.mac, 'nd'], ['fe80::5054:ff:fe00:1', vm.mac, 'nd']],
      );
      assert.deepEqual([learned.ports, learned.hostPorts], [path.ports, path.hostPorts]);

      // `ebpfnet vms NAME` says how each vCPU thread was found.
      const shown = runCli(['vms', vm.name]);
      assert.equal(shown.status, 0, shown.stderr);
      const [vcpu] = facts.vcpuThreads;
      assert.ok(shown.stdout.includes(`  vCPU threads: ${vcpu!.tid} (vCPU 0, from QMP query-cpus-fast, named ${vcpu!.name})\n`), shown.stdout);
      assert.equal(withLearnedAddresses(target, [{ address: vm.ip }]), target, 'nothing new: the same target');
    }

    // Another client holds the monitor (QEMU serves one at a time): no wait beyond the bound, a note, no vCPU claimed.
    const vm = lab.vms[0]!;
    const holder = connect(vm.qmpSocket);
    t.after(() => holder.destroy());
    await new Promise((resolve) => holder.once('data', resolve)); // the greeting: this client is being served
    const first = (await resolveVm(vm.name, noInventory)).asked?.find((a) => a.source === 'vcpus:qmp');
    assert.ok(first && first.ms >= QMP_TIMEOUT_MS - 5 && /no answer on .* within/.test(first.note ?? ''), `the first try waits its bound: ${JSON.stringify(first)}`);
    const { vm: busy, ms, all } = await timedResolve(vm.name);
    t.diagnostic(`resolveVm with the QMP monitor held by another client: best ${ms} ms of ${all.join(', ')} (load ${load()})`);
    // The first try waits in the monitor's backlog until the bound; once the backlog is full
    // (QEMU listens with a backlog of one), later tries are refused at once.
    const qmpAsked = busy.asked?.find((a) => a.source === 'vcpus:qmp');
    assert.ok(qmpAsked && qmpAsked.ms < QMP_TIMEOUT_MS + 300, JSON.stringify(qmpAsked));
    // Under KVM (the kernel lab) the thread that ran guest code names the vCPU without QMP; under TCG none does.
    const byGuestTime = HOST_VIRT.accel === 'kvm' ? busy.vcpuThreads.map((v) => [v.index, v.tid, v.source]) : [];
    if (HOST_VIRT.accel === 'tcg') {
      assert.deepEqual(busy.vcpuThreads, []);
      assert.equal((vmTarget(busy).path as VmPath).vcpuTids.length, 0);
      assert.match(busy.notes.join('\n'), new RegExp(`vCPU threads of pid ${vm.pid} are not named .*; QMP (no answer on .*qmp\\.sock within ${QMP_TIMEOUT_MS} ms|monitor .*qmp\\.sock is busy) \\(QEMU serves one monitor client at a time`));
      assert.ok(ms < 1000, `${ms} ms`);
    }
    holder.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const vcpusByQmp = await qemuVcpus(vm);
    assert.deepEqual((await resolveVm(vm.name, noInventory)).vcpuThreads.map((v) => [v.index, v.tid]), vcpusByQmp);
    if (HOST_VIRT.accel === 'kvm') assert.deepEqual(byGuestTime, vcpusByQmp.map(([i, tid]) => [i, tid, 'kvm']));

    const start = performance.now();
    const found = await discoverVms(noInventory);
    t.diagnostic(`discoverVms (${found.vms.length} VMs on this host): ${Math.round(performance.now() - start)} ms (load ${load()})`);
    for (const vm of lab.vms) assert.deepEqual(found.vms.find((v) => v.name === vm.name)?.vcpuThreads.map((v) => v.source), ['qmp']);
  });

  test('Open vSwitch (netdev), QEMU with debug-threads: vCPUs by name equal query-cpus-fast; ports and ofports', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'ovs', vms: 2 });
    const ports = await bridgePorts(lab);
    for (const vm of lab.vms) {
      const { vm: facts, ms, all } = await timedResolve(vm.name);
      t.diagnostic(`resolveVm ${vm.name} (vCPUs by name, OVS): best ${ms} ms of ${all.join(', ')} (load ${load()})`);
      assert.deepEqual(facts.vcpuThreads.map((v) => [v.index, v.tid, v.name, v.source]), (await qemuVcpus(vm)).map(([i, tid]) => [i, tid, `CPU ${i}/${HOST_VIRT.accel.toUpperCase()}`, 'name']));
      // Found by name: the monitor is not asked.
      assert.ok(!facts.asked?.some((a) => a.source === 'vcpus:qmp'), JSON.stringify(facts.asked));
      const path = vmTarget(facts).path as VmPath;
      assertPath(path, vm, lab, ports);
      const ofport = Number(String((await execa('ovs-vsctl', ['--timeout=10', 'get', 'interface', vm.tap, 'ofport'])).stdout).trim());
      assert.deepEqual(path.ofports, [ofport]);
      assert.ok(ms < 1000, `resolveVm took ${ms} ms`);
    }
  });

  test('a guest agent port that nothing answers (qemu-ga stopped in the guest) costs at most its bound, and says so', async (t) => {
    const agentSock = join(dir, 'qga.sock');
    const vm = await bootVm(t, {
      ip: '10.250.254.2/24',
      debugThreads: false,
      qemuArgs: [
        '-device', 'virtio-serial-pci,id=vs0',
        '-chardev', `socket,id=qga0,path=${agentSock},server=on,wait=off`,
        '-device', 'virtserialport,bus=vs0.0,chardev=qga0,name=org.qemu.guest_agent.0',
      ],
    });
    // The lab guest starts qemu-ga on that port; a guest whose agent is not running is the case here.
    await vm.sh('killall qemu-ga && while pidof qemu-ga >/dev/null; do usleep 10000; done');
    assert.deepEqual(qemuGuestAgentSocket([...vm.qemuArgv]), { id: 'qga0', path: agentSock, server: true });
    assert.deepEqual(qemuQmpSockets([...vm.qemuArgv]), [{ id: '', path: vm.qmpSocket, server: true }]);
    const { vm: facts, ms, all } = await timedResolve(vm.name);
    t.diagnostic(`resolveVm with an agent socket nobody answers: best ${ms} ms of ${all.join(', ')} (load ${load()}); asked ${JSON.stringify(facts.asked)}`);
    const agent = facts.asked?.find((a) => a.source === 'guest-agent');
    assert.equal(agent?.found, 0);
    assert.match(agent?.note ?? '', new RegExp(`guest agent no answer on .*qga\\.sock within ${GUEST_AGENT_TIMEOUT_MS} ms \\(is qemu-ga running in the guest\\?\\)`));
    assert.ok(agent!.ms >= GUEST_AGENT_TIMEOUT_MS - 5 && agent!.ms < GUEST_AGENT_TIMEOUT_MS + 300, `${agent!.ms} ms`);
    // The agent's wait ran beside the rest (QMP among it): the whole stays under a second.
    assert.ok(ms < 1000, `resolveVm took ${ms} ms`);
    assert.deepEqual(facts.vcpuThreads.map((v) => [v.index, v.tid]), await qemuVcpus(vm));
    assert.deepEqual(facts.ips, []);
  });

  test('`ebpfnet vms --listen` learns the addresses VMs use from their own frames; --listen 0 does not listen', async (t) => {
    const lab = await buildLabTopology(t, { bridge: 'linux', vms: 2, ipv6: true });
    const [a, b] = lab.vms as [Vm, Vm];
    for (const vm of [a, b]) {
      const traffic = backgroundTraffic(lab, vm, { intervalMs: 20, ipv6: vm === b });
      t.after(() => traffic.stop().catch(() => undefined));
    }
    const one = runCli(['vms', a.name, '--json', '--listen', '2s']);
    assert.equal(one.status, 0, one.stderr);
    const facts = JSON.parse(one.stdout) as VmFacts;
    assert.deepEqual(facts.ips.filter((x) => x.source === 'frames' && !x.address.startsWith('fe80:')).map((x) => [x.address, x.mac]), [[a.ip, a.mac]]);
    assert.ok(facts.asked?.some((x) => x.source === 'frames' && x.found > 0), JSON.stringify(facts.asked));
    // The whole list in one window: each VM's addresses by its own MAC, none of its neighbour's.
    const list = JSON.parse(runCli(['vms', '--json', '--listen', '2s']).stdout) as { vms: VmFacts[] };
    const learned = (vm: Vm) => list.vms.find((x) => x.name === vm.name)!.ips.filter((x) => x.source === 'frames').map((x) => x.address);
    assert.ok(learned(a).includes(a.ip) && !learned(a).includes(b.ip), JSON.stringify(learned(a)));
    assert.ok(learned(b).includes(b.ipv6!) && !learned(b).includes(a.ip), JSON.stringify(learned(b)));
    // The table shows them with where they came from, link-local ones left out.
    const table = runCli(['vms', '--listen', '2s']).stdout.split('\n');
    const rowOf = (vm: Vm) => table.find((l) => l.startsWith(`${vm.name} `)) ?? '';
    assert.match(rowOf(a), new RegExp(` ${a.ip.replace(/\./g, '\\.')} \\(frames\\)`), table.join('\n'));
    assert.ok(!rowOf(a).includes(b.ip) && !rowOf(a).includes('fe80:'), rowOf(a));
    assert.ok(rowOf(b).includes(`${b.ipv6} (frames)`), rowOf(b));
    const quiet = JSON.parse(runCli(['vms', a.name, '--json', '--listen', '0']).stdout) as VmFacts;
    assert.deepEqual(quiet.ips.filter((x) => x.source === 'frames'), []);
    assert.equal(runCli(['vms', a.name, '--listen', 'soon']).status, 2);
  });
});
