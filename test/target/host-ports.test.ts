// VmPath's host ports on real bridges, without booting a VM: a veth plugged into a Linux
// bridge and into an OVS bridge on the userspace datapath stands for the VM's tap (the
// vm.frames lab), and discovery reads what it is plugged into as it would for a tap.
// `hostPorts` holds the host's own ports of the switch (the Linux bridge's device, the OVS
// bridge's internal ports that are kernel devices); `ports` holds the others only. The
// expected lists are asked of the tools the way a person would.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { describeVm } from '../../engine/cli/commands/vms/action.js';
import { vmPath } from '../../engine/target/index.js';
import { NetView } from '../../engine/target/netview.js';
import { tapFacts } from '../../engine/target/taps.js';
import type { VmFacts } from '../../engine/target/types.js';
import { canBuildTopologies, needs, run } from '../helpers/netns.js';
import { buildFramesLab, type FramesLab } from '../helpers/vm-frames-lab.js';
import { ovsDatapath } from '../lab/ovs.js';
import { newLabName } from '../lab/names.js';
import { canRunOvs, vsctl } from '../lab/ovs.js';

const cannot = await canBuildTopologies();
const noOvs = cannot ?? (await canRunOvs());

/** VM A's facts as discovery gathers them for its tap. */
async function factsOfA(lab: FramesLab): Promise<VmFacts> {
  const notes: string[] = [];
  const tap = await tapFacts(lab.a.port, { guestMac: lab.a.mac, model: null, vhost: null }, new NetView(), notes);
  assert.deepEqual(notes, []);
  return { name: 'vm-a', source: 'inventory', state: 'running', uuid: null, pid: null, vcpuThreads: [], vhostThreads: [], taps: [tap], ips: [], notes: [] };
}

/** `ip -d link` says what kind of device it is. */
async function linkKind(dev: string): Promise<string | undefined> {
  const [l] = JSON.parse((await run(['ip', '-j', '-d', 'link', 'show', 'dev', dev])).stdout) as Array<{ linkinfo?: { info_kind?: string } }>;
  return l?.linkinfo?.info_kind;
}

describe("VmPath: the host's own ports of the VM's switch apart from its other ports", () => {
  test("Linux bridge: hostPorts is the bridge's device, ports the other brif/ ports; `ebpfnet vms` shows it", async (t) => {
    needs(cannot);
    const lab = await buildFramesLab(t, 'linux');
    const brif = (JSON.parse((await run(['ip', '-j', 'link', 'show', 'master', lab.bridge.name])).stdout) as Array<{ ifname: string }>).map((l) => l.ifname);
    assert.equal(await linkKind(lab.bridge.name), 'bridge');
    const facts = await factsOfA(lab);
    const path = vmPath(facts);
    assert.deepEqual(path.hostPorts, [lab.bridge.name]);
    assert.deepEqual(path.ports, brif.filter((p) => p !== lab.a.port).sort());
    assert.ok(!path.ports.includes(lab.bridge.name));
    assert.deepEqual(facts.taps[0]!.attachment?.hostPorts, [lab.bridge.name]);
    assert.match(describeVm(facts), new RegExp(`\\n    on Linux bridge ${lab.bridge.name}\\n    uplinks: [^\\n]*\\n    host's ports: ${lab.bridge.name}\\n`));
    // Facts recorded before hostPorts existed: the bridge's device all the same.
    const { hostPorts: _h, ...old } = facts.taps[0]!.attachment!;
    assert.deepEqual(vmPath({ ...facts, taps: [{ ...facts.taps[0]!, attachment: old }] }).hostPorts, [lab.bridge.name]);
  });

  test("OVS: hostPorts are the bridge's internal ports (taps on the userspace datapath, openvswitch devices on the kernel's), ports the other kernel devices", async (t) => {
    needs(noOvs);
    const lab = await buildFramesLab(t, 'ovs');
    // A second internal port besides the bridge's own.
    const extra = newLabName().dev('b');
    await vsctl(['add-port', lab.bridge.name, extra, '--', 'set', 'interface', extra, 'type=internal']);
    t.after(() => execa('ovs-vsctl', ['--timeout=15', '--if-exists', 'del-port', lab.bridge.name, extra], { reject: false, stdin: 'ignore' }));
    const ifaces = String((await execa('ovs-vsctl', ['--timeout=10', 'list-ifaces', lab.bridge.name])).stdout).split('\n').filter(Boolean);
    const internal = String((await execa('ovs-vsctl', ['--timeout=10', '--bare', '--columns=name', 'find', 'Interface', 'type=internal'])).stdout).split(/\s+/).filter(Boolean);
    // On the userspace datapath an internal port is a tap that ovs-vswitchd holds (it appears once
    // the datapath has opened it); on the kernel datapath (the kernel lab's) an openvswitch device.
    for (let i = 0; i < 50 && (await run(['ip', 'link', 'show', 'dev', extra]).then(() => false, () => true)); i++) await new Promise((r) => setTimeout(r, 100));
    for (const dev of [lab.bridge.name, extra]) {
      assert.ok(internal.includes(dev), `${dev} not internal: ${internal.join(' ')}`);
      assert.equal(await linkKind(dev), ovsDatapath() === 'system' ? 'openvswitch' : 'tun');
    }
    const facts = await factsOfA(lab);
    const path = vmPath(facts);
    assert.deepEqual(path.hostPorts, [lab.bridge.name, extra].sort());
    assert.deepEqual(path.ports, ifaces.filter((p) => p !== lab.a.port && !internal.includes(p)).sort());
    assert.deepEqual(path.ports, [lab.b.port, lab.peer.port].sort());
    assert.match(describeVm(facts), new RegExp(`\\n    host's ports: ${[lab.bridge.name, extra].sort().join(', ')}\\n`));
  });

  test('OVS: a bridge patched to the VM\'s (br-int and br-ex) lends its ports, host ports and uplinks to the VM\'s path', async (t) => {
    needs(noOvs);
    const lab = await buildFramesLab(t, 'ovs');
    const [fam, wire] = [newLabName(), newLabName()];
    const [outer, toOuter, toInner, uplink, uplinkPeer] = [fam.dev('b'), fam.dev('v'), fam.dev('p'), wire.dev('v'), wire.dev('p')];
    t.after(async () => {
      await execa('ovs-vsctl', ['--timeout=15', '--if-exists', 'del-br', outer], { reject: false, stdin: 'ignore' });
      await execa('ovs-vsctl', ['--timeout=15', '--if-exists', 'del-port', lab.bridge.name, toOuter], { reject: false, stdin: 'ignore' });
      await execa('ip', ['link', 'del', uplink], { reject: false, stdin: 'ignore' });
    });
    await vsctl(['add-br', outer, '--', 'set', 'bridge', outer, `datapath_type=${ovsDatapath()}`]); // patch ports join bridges of one datapath
    await run(['ip', 'link', 'add', uplink, 'type', 'veth', 'peer', 'name', uplinkPeer]);
    await vsctl(['add-port', outer, uplink]);
    await vsctl([
      'add-port', lab.bridge.name, toOuter, '--', 'set', 'interface', toOuter, 'type=patch', `options:peer=${toInner}`,
      '--', 'add-port', outer, toInner, '--', 'set', 'interface', toInner, 'type=patch', `options:peer=${toOuter}`,
    ]);
    // The outer bridge's own port appears once the datapath has it.
    for (let i = 0; i < 50 && (await run(['ip', 'link', 'show', 'dev', outer]).then(() => false, () => true)); i++) await new Promise((r) => setTimeout(r, 100));
    const facts = await factsOfA(lab);
    const path = vmPath(facts);
    assert.ok(path.ports.includes(uplink), `${uplink} (on ${outer}) in ${path.ports.join(', ')}`);
    assert.ok(path.hostPorts.includes(outer), `${outer}'s own port in ${path.hostPorts.join(', ')}`);
    assert.ok(path.uplinks.includes(uplink), `${uplink} a way out: ${path.uplinks.join(', ')}`);
    const att = facts.taps[0]!.attachment!;
    assert.equal(att.kind, 'ovs');
    assert.ok(att.uplinks.some((u) => u.name === toOuter && u.kind === 'patch' && u.peer === toInner), JSON.stringify(att.uplinks));
    assert.ok(!att.uplinks.some((u) => u.name === toInner), 'the way back from the outer bridge is no way out');
  });
});
