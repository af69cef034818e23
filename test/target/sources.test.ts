// The readers behind the new sources, on what the tools print (libvirt 9.0, QEMU 7.2 on
// Debian 12, captured from this lab's domains and VMs unless said otherwise), the address
// rules and VmPath's address fields; then QMP on real QEMU processes: -qmp-pretty's
// multi-line JSON, a -mon control monitor, and (where /dev/kvm is) KVM guest time.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { canonicalAddress, isHostOnly, isLinkLocal6, mergeAddresses, normalMac } from '../../engine/target/addresses.js';
import { parseGuestInterfaces } from '../../engine/target/guest-agent.js';
import { vmPath, withLearnedAddresses } from '../../engine/target/index.js';
import { parseDomifaddr } from '../../engine/target/libvirt.js';
import { parseDomainXml, parseStatusVcpus } from '../../engine/target/libvirt-xml.js';
import { guestTime, statField, statStateAndName } from '../../engine/target/proc.js';
import { qemuGuestAgentSocket, qemuQmpSockets } from '../../engine/target/qemu-cmdline.js';
import { parseQueryCpusFast, qmpVcpus } from '../../engine/target/qmp.js';
import { vcpusByGuestTime } from '../../engine/target/threads.js';
import type { VmFacts } from '../../engine/target/types.js';
import { resolveVm } from '../../engine/target/index.js';
import { cleanupLeftovers, devName, startQemu } from './support.js';
import { HOST_VIRT } from '../lab/vm.js';

const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-sources-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('readers', () => {
  test('virsh domifaddr tables: --full rows, "-" continuations, a blank or unpadded MAC, IPv4 and IPv6, an empty table', () => {
    // This virsh's answer for a domain with no lease (--source lease, no libvirt network).
    const empty = ' Name       MAC address          Protocol     Address\n-------------------------------------------------------------------------------\n\n';
    assert.deepEqual(parseDomifaddr(empty), []);
    // Rows as virsh prints them (tools/virsh-domain-monitor.c: " %-10s %-17s    %s", the address "%-12s %s/%d"),
    // written here: no lab on this host gets a lease or an agent answer out of this libvirt.
    const full = [
      ' Name       MAC address          Protocol     Address',
      '-------------------------------------------------------------------------------',
      ' vnet3      52:54:00:12:34:56    ipv4         192.168.122.45/24',
      ' vnet3      52:54:00:12:34:56    ipv6         fd00:122::45/64',
      ' vnet3      52:54:00:12:34:56    ipv6         fe80::5054:ff:fe12:3456/64',
      ' tunl0                           ipv4         10.9.9.9/32',
      '',
    ].join('\n');
    assert.deepEqual(parseDomifaddr(full), [
      { name: 'vnet3', mac: '52:54:00:12:34:56', family: 'ipv4', address: '192.168.122.45', prefix: 24 },
      { name: 'vnet3', mac: '52:54:00:12:34:56', family: 'ipv6', address: 'fd00:122::45', prefix: 64 },
      { name: 'vnet3', mac: '52:54:00:12:34:56', family: 'ipv6', address: 'fe80::5054:ff:fe12:3456', prefix: 64 },
      { name: 'tunl0', mac: null, family: 'ipv4', address: '10.9.9.9', prefix: 32 },
    ]);
    // Without --full, in another language, with the agent's unpadded MACs (a user's report on
    // cockpit-project/cockpit-machines#729, addresses shortened).
    const localized = [
      ' Nome       Indirizzo MAC        Protocollo     Indirizzo',
      '-------------------------------------------------------------------------------',
      ' lo0        0:0:0:0:0:0          ipv4         127.0.0.1/8',
      ' -          -                    ipv6         ::1/128',
      ' en1        aa:bb:cc:dd:ee:01    ipv6         fe80::c46:3112:83c9:c406/64',
      ' -          -                    ipv4         192.168.2.2/24',
    ].join('\n');
    assert.deepEqual(parseDomifaddr(localized).map((r) => [r.name, r.mac, r.address, r.prefix]), [
      ['lo0', '00:00:00:00:00:00', '127.0.0.1', 8],
      ['lo0', '00:00:00:00:00:00', '::1', 128],
      ['en1', 'aa:bb:cc:dd:ee:01', 'fe80::c46:3112:83c9:c406', 64],
      ['en1', 'aa:bb:cc:dd:ee:01', '192.168.2.2', 24],
    ]);
  });

  test("libvirt's status file: the vCPU threads of <domstatus>, not the domain's own <vcpus> settings", () => {
    const status = `<!--
WARNING: THIS IS AN AUTO-GENERATED FILE.
-->

<domstatus state='running' reason='booted' pid='19941'>
  <monitor path='/var/lib/libvirt/qemu/domain-2-ebpfnet-t-19917-0/monitor.sock' type='unix'/>
  <namespaces>
    <mount/>
  </namespaces>
  <vcpus>
    <vcpu id='0' pid='19947'/>
    <vcpu id='1' pid='19948'/>
  </vcpus>
  <qemuCaps>
    <flag name='sdl'/>
  </qemuCaps>
  <domain type='qemu' id='2'>
    <name>ebpfnet-t-19917-0</name>
    <vcpu placement='static'>2</vcpu>
    <vcpus>
      <vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>
      <vcpu id='1' enabled='yes' hotpluggable='no' order='2'/>
    </vcpus>
    <devices>
      <channel type='unix'>
        <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-35-ebpfnet-t-31594-1/org.qemu.guest_agent.0'/>
        <target type='virtio' name='org.qemu.guest_agent.0' state='disconnected'/>
        <alias name='channel0'/>
      </channel>
    </devices>
  </domain>
</domstatus>
`;
    assert.deepEqual(parseStatusVcpus(status), { pid: 19941, vcpus: [{ index: 0, tid: 19947 }, { index: 1, tid: 19948 }] });
    assert.deepEqual(parseDomainXml(status).guestAgent, { state: 'disconnected' });
    assert.deepEqual(parseStatusVcpus('<domain><vcpus><vcpu id="0"/></vcpus></domain>'), { pid: null, vcpus: [] });
  });

  test('QEMU command lines: QMP monitors and the guest agent port, in both syntaxes', () => {
    // The lab's VM (key=value), with a guest agent port added as in lab-vms.test.ts.
    const lab = [
      'qemu-system-x86_64', '-name', 'vm1',
      '-chardev', 'socket,id=control,path=/run/x/control.sock,server=on,wait=off',
      '-qmp', 'unix:/run/x/qmp.sock,server=on,wait=off',
      '-device', 'virtio-serial-pci,id=vs0',
      '-chardev', 'socket,id=qga0,path=/tmp/q,,ga.sock,server=on,wait=off',
      '-device', 'virtserialport,bus=vs0.0,chardev=qga0,name=org.qemu.guest_agent.0',
    ];
    assert.deepEqual(qemuQmpSockets(lab), [{ id: '', path: '/run/x/qmp.sock', server: true }]);
    assert.deepEqual(qemuGuestAgentSocket(lab), { id: 'qga0', path: '/tmp/q,ga.sock', server: true });
    // Old flags, -qmp-pretty, a control -mon, a human -mon, and a QMP QEMU connects out of (server off).
    const more = [
      'qemu-system-x86_64',
      '-qmp', 'unix:/a.sock,server,nowait',
      '-qmp-pretty', 'unix:/b.sock,server=on,wait=off',
      '-qmp', 'unix:/c.sock',
      '-qmp', 'tcp:127.0.0.1:4444,server=on',
      '-chardev', 'socket,id=m1,path=/d.sock,server=on,wait=off', '-mon', 'chardev=m1,mode=control,pretty=on',
      '-chardev', 'socket,id=m2,path=/e.sock,server=on,wait=off', '-mon', 'chardev=m2',
    ];
    assert.deepEqual(qemuQmpSockets(more), [
      { id: '', path: '/a.sock', server: true },
      { id: '', path: '/b.sock', server: true },
      { id: '', path: '/c.sock', server: false },
      { id: 'm1', path: '/d.sock', server: true },
    ]);
    // libvirt's (captured from a domain with an agent channel): descriptors, JSON devices.
    const libvirt = [
      '/usr/bin/qemu-system-x86_64',
      '-chardev', 'socket,id=charmonitor,fd=28,server=on,wait=off', '-mon', 'chardev=charmonitor,id=monitor,mode=control',
      '-device', '{"driver":"virtio-serial-pci","id":"virtio-serial0","bus":"pci.0","addr":"0x3"}',
      '-chardev', 'socket,id=charchannel0,fd=26,server=on,wait=off',
      '-device', '{"driver":"virtserialport","bus":"virtio-serial0.0","nr":1,"chardev":"charchannel0","id":"channel0","name":"org.qemu.guest_agent.0"}',
    ];
    assert.deepEqual(qemuQmpSockets(libvirt), [{ id: 'charmonitor', path: null, server: true }]);
    assert.deepEqual(qemuGuestAgentSocket(libvirt), { id: 'charchannel0', path: null, server: true });
    assert.equal(qemuGuestAgentSocket(['qemu-system-x86_64', '-device', 'virtserialport,chardev=c,name=com.example.other']), null);
    assert.deepEqual(qemuGuestAgentSocket(['qemu-system-x86_64', '-chardev', 'pty,id=c', '-device', 'virtserialport,chardev=c,name=org.qemu.guest_agent.0']), {
      id: 'c', path: null, server: false,
    });
  });

  test('QMP and QGA answers', () => {
    // libvirt's monitor, asked with `virsh qemu-monitor-command`, for a one-vCPU TCG domain.
    const answer = JSON.parse('{"return":[{"thread-id":31713,"props":{"core-id":0,"thread-id":0,"socket-id":0},"qom-path":"/machine/unattached/device[0]","cpu-index":0,"target":"x86_64"}],"id":"libvirt-413"}') as { return: unknown };
    assert.deepEqual(parseQueryCpusFast(answer.return), [{ index: 0, tid: 31713 }]);
    assert.throws(() => parseQueryCpusFast({}), /did not answer a list/);
    assert.deepEqual(parseGuestInterfaces([{ name: 'eth0', 'hardware-address': '52:54:00:AB:00:01', 'ip-addresses': [{ 'ip-address-type': 'ipv6', 'ip-address': 'fd00::1', prefix: 64 }, { 'ip-address-type': 'other' }] }, { name: 'sit0' }]), [
      { name: 'eth0', mac: '52:54:00:ab:00:01', addresses: [{ address: 'fd00::1', prefix: 64, family: 'ipv6' }] },
      { name: 'sit0', mac: null, addresses: [] },
    ]);
  });

  test('/proc/<pid>/stat fields after a comm with spaces and parentheses', () => {
    // 52 fields (Linux 5.x+); comm "(CPU 0/KVM) x)"; guest_time (43) is 977.
    const fields = Array.from({ length: 52 }, (_, i) => String(i + 1));
    fields[8] = '4194560'; // flags (9)
    fields[42] = '977'; // guest_time (43)
    const stat = `1234 ((CPU 0/KVM) x) ${fields.slice(2).join(' ')}`;
    assert.equal(statField(stat, 9), 4194560);
    assert.equal(statField(stat, 43), 977);
    assert.equal(statField(stat, 3), 3);
    assert.deepEqual(statStateAndName(`1234 ((CPU 0/KVM) x) R ${fields.slice(3).join(' ')}`), { state: 'R', comm: '(CPU 0/KVM) x' });
  });

  test('addresses: one spelling, link-local, loopback and multicast, merged in source order', () => {
    assert.equal(canonicalAddress('FD00:0:0::0:5'), 'fd00::5');
    assert.equal(canonicalAddress('fe80::1%eth0'), 'fe80::1');
    assert.equal(canonicalAddress('10.0.0.1'), '10.0.0.1');
    assert.equal(normalMac('0:A:0:0:0:1'), '00:0a:00:00:00:01');
    assert.ok(isLinkLocal6('fe80::1') && isLinkLocal6('FEBF::1') && !isLinkLocal6('fec0::1') && !isLinkLocal6('10.0.0.1'));
    for (const a of ['127.0.0.1', '::1', '::', 'ff02::1', '224.0.0.251', '0.0.0.0']) assert.ok(isHostOnly(a), a);
    for (const a of ['10.0.0.1', 'fd00::1', 'fe80::1', '2001:db8::1']) assert.ok(!isHostOnly(a), a);
    assert.deepEqual(
      mergeAddresses(
        [{ address: '10.0.0.2', source: 'libvirt-arp' }, { address: 'fd00::2', source: 'guest-agent' }],
        [{ address: '10.0.0.2', source: 'neighbour', dev: 'br0', state: 'STALE' }, { address: 'FD00::2', source: 'libvirt-lease' }],
      ),
      [{ address: '10.0.0.2', source: 'neighbour', dev: 'br0', state: 'STALE' }, { address: 'fd00::2', source: 'guest-agent' }],
    );
  });

  test('VmPath: IPv4 first then IPv6, link-local apart; withLearnedAddresses adds frames without duplicates, leaves a host target alone', () => {
    const facts: VmFacts = {
      name: 'vm', source: 'qemu', state: 'running', uuid: null, pid: 7,
      vcpuThreads: [{ tid: 9, index: 0, name: 'CPU 0/KVM', source: 'name' }, { tid: 9, index: 1, name: 'CPU 0/KVM', source: 'qmp' }],
      vhostThreads: [],
      taps: [],
      ips: [
        { address: 'fe80::5054:ff:fe00:1', source: 'guest-agent' },
        { address: 'fd00::2', source: 'guest-agent' },
        { address: '10.0.0.2', source: 'inventory' },
        { address: '2001:db8::2', source: 'libvirt-lease' },
      ],
      notes: [],
    };
    const path = vmPath(facts);
    assert.deepEqual([path.ip, path.ip6, path.ips, path.linkLocal, path.vcpuTids], ['10.0.0.2', 'fd00::2', ['10.0.0.2', 'fd00::2', '2001:db8::2'], ['fe80::5054:ff:fe00:1'], [9]]);
    assert.deepEqual([path.macs, path.ports, path.hostPorts, path.ofports], [[], [], [], []]);
    const host = { kind: 'host' as const, name: 'h' };
    assert.equal(withLearnedAddresses(host, [{ address: '10.0.0.9' }]), host);
  });
});

async function ownQmp(path: string, command: string): Promise<unknown> {
  // The test's own QMP client, independent of discovery's: one object a line, as plain QMP sends them.
  const s = connect(path);
  let buf = '';
  const lines: Array<Record<string, unknown>> = [];
  let wake: (() => void) | null = null;
  s.on('data', (d: Buffer) => {
    buf += String(d);
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    wake?.();
  });
  const next = async () => {
    while (!lines.length) await new Promise<void>((r) => (wake = r));
    return lines.shift()!;
  };
  try {
    await next();
    s.write('{"execute":"qmp_capabilities"}\n');
    while (!('return' in (await next())));
    s.write(JSON.stringify({ execute: command }) + '\n');
    for (;;) {
      const m = await next();
      if ('return' in m) return m.return;
    }
  } finally {
    s.destroy();
  }
}

async function waitForFile(path: string): Promise<void> {
  for (let i = 0; i < 200 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 25));
}

describe('QMP on real QEMU processes', () => {
  test('-qmp-pretty (one answer over many lines) and a -mon control monitor: discovery reads both', async (t) => {
    await cleanupLeftovers();
    const pretty = join(dir, 'pretty.sock');
    const plain = join(dir, 'plain.sock');
    const q = await startQemu(t, {
      debugThreads: false,
      qemuArgs: ['-qmp-pretty', `unix:${pretty},server=on,wait=off`, '-chardev', `socket,id=m1,path=${plain},server=on,wait=off`, '-mon', 'chardev=m1,mode=control'],
    });
    await waitForFile(plain);
    const cpus = (await ownQmp(plain, 'query-cpus-fast')) as Array<{ 'cpu-index': number; 'thread-id': number }>;
    const want = cpus.map((c) => ({ index: c['cpu-index'], tid: c['thread-id'] }));
    assert.equal(want.length, 1);
    assert.deepEqual(await qmpVcpus(pretty, 2000), want);
    assert.deepEqual(await qmpVcpus(plain, 2000), want);
    const vm = await resolveVm(q.name, { env: {} });
    assert.deepEqual(vm.vcpuThreads.map((v) => ({ index: v.index, tid: v.tid, source: v.source })), want.map((w) => ({ ...w, source: 'qmp' })));
    assert.deepEqual(vm.notes, []);
  });

  test('vhost-net workers are named by the kernel, whatever debug-threads says; without vhost-net, none is claimed', async (t) => {
    const tap = devName('t');
    t.after(() => execa('ip', ['link', 'del', tap], { reject: false, stdin: 'ignore' }));
    if (!existsSync('/dev/vhost-net')) {
      // This kernel has no vhost-net (the kernel lab has): a VM on a plain tap has no worker, and discovery says none.
      const q = await startQemu(t, { debugThreads: false, qemuArgs: ['-netdev', `tap,id=n1,ifname=${tap},script=no,downscript=no,vhost=off`, '-device', 'virtio-net-pci,netdev=n1'] });
      const vm = await resolveVm(q.name, { env: {} });
      assert.deepEqual(vm.vhostThreads, []);
      const names = await Promise.all((await readdir(`/proc/${q.pid}/task`)).map((tid) => readFile(`/proc/${q.pid}/task/${tid}/comm`, 'utf8').catch(() => '')));
      assert.ok(!names.some((n) => n.startsWith('vhost-')), `no vhost worker among ${names.join(', ')}`);
      return;
    }
    const q = await startQemu(t, {
      debugThreads: false,
      qemuArgs: ['-netdev', `tap,id=n1,ifname=${tap},script=no,downscript=no,vhost=on`, '-device', 'virtio-net-pci,netdev=n1'],
    });
    const vm = await resolveVm(q.name, { env: {} });
    assert.ok(vm.vhostThreads.length >= 1, JSON.stringify(vm));
    const tids = new Set((await readdir(`/proc/${q.pid}/task`)).map(Number));
    for (const w of vm.vhostThreads) {
      // vhost-<the QEMU thread that took ownership>: a thread of this QEMU, named so by the kernel.
      assert.ok(tids.has(Number(/^vhost-(\d+)$/.exec(w.name)?.[1])), JSON.stringify(w));
      assert.equal(w.kernelThread, !tids.has(w.tid));
    }
  });

  test('KVM guest time: the threads that ran guest code are the vCPUs QEMU names; under TCG no thread runs guest code and none is claimed', async (t) => {
    const plain = join(dir, 'kvm.sock');
    // KVM as lab VMs get it: /dev/kvm and hardware virtualization (a PVM host's /dev/kvm runs no firmware).
    const kvm = HOST_VIRT.accel === 'kvm';
    // Running, with no kernel or disk: the firmware runs (guest code under KVM) and then waits.
    const q = await startQemu(t, { accel: kvm ? 'kvm' : 'tcg', running: true, debugThreads: false, qemuArgs: ['-smp', '2', '-qmp', `unix:${plain},server=on,wait=off`] });
    await waitForFile(plain);
    const cpus = (await ownQmp(plain, 'query-cpus-fast')) as Array<{ 'cpu-index': number; 'thread-id': number }>;
    if (!kvm) {
      // This machine has no KVM (the kernel lab has): QEMU emulates, holds no vCPU descriptor, and no thread has guest time.
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(await vcpusByGuestTime(q.pid), { threads: [], kvmVcpus: 0 });
      for (const c of cpus) assert.equal(await guestTime(q.pid, c['thread-id']), 0, `vCPU thread ${c['thread-id']} under TCG`);
      return;
    }
    // The firmware runs on vCPU 0; the other waits for a start-up IPI no OS sends (the kernel
    // lab's nested KVM never ran it): claimed are threads that ran guest code, vCPU 0's among them.
    const deadline = Date.now() + 20_000;
    let found = await vcpusByGuestTime(q.pid);
    while (found.threads.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      found = await vcpusByGuestTime(q.pid);
    }
    assert.equal(found.kvmVcpus, cpus.length);
    const tids = found.threads.map((v) => v.tid);
    assert.ok(tids.includes(cpus.find((c) => c['cpu-index'] === 0)!['thread-id']), `vCPU 0's thread among ${tids.join(', ')}`);
    assert.ok(tids.every((tid) => cpus.some((c) => c['thread-id'] === tid)), `${tids.join(', ')}: QEMU's vCPU threads only`);
    for (const v of found.threads) assert.ok(((await guestTime(q.pid, v.tid)) ?? 0) > 0);
  });

});
