// The readers of what QEMU, libvirt, OVS and iproute2 print, on the forms they
// really print (the libvirt command line and XML below are from `virsh create` on
// Debian 12's libvirt 9.0 / QEMU 7.2).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDominfo } from '../../engine/target/libvirt.js';
import { parseDomainXml, unescapeXml } from '../../engine/target/libvirt-xml.js';
import { ovsPortOf, parseLinks, parseNeighbours, parseOvsTables } from '../../engine/target/netview.js';
import { isQemuBinary, parseOptionValue, qemuNics, qemuVmName } from '../../engine/target/qemu-cmdline.js';
import { decodeTunFlags, isDeviceName } from '../../engine/target/taps.js';

test('QEMU option values: key=value lists with ",," escapes, implied keys, flags, and JSON', () => {
  assert.deepEqual(parseOptionValue('tap,id=n0,ifname=t0,script=no,vhost=on', 'type'), { type: 'tap', id: 'n0', ifname: 't0', script: 'no', vhost: 'on' });
  assert.deepEqual(parseOptionValue('guest=a,,b,debug-threads=on', 'guest'), { guest: 'a,b', 'debug-threads': 'on' });
  assert.deepEqual(parseOptionValue('vm1', 'guest'), { guest: 'vm1' });
  assert.deepEqual(parseOptionValue('socket,server,nowait', 'backend'), { backend: 'socket', server: 'on', wait: 'off' });
  assert.deepEqual(parseOptionValue('{"type":"tap","fd":"29","vhost":true,"id":"hostnet0","queues":4}', 'type'), {
    type: 'tap', fd: '29', vhost: 'on', id: 'hostnet0', queues: '4',
  });
  assert.deepEqual(parseOptionValue('{broken', 'type'), {});
});

test('QEMU command lines: the VM name and each tap NIC', () => {
  assert.ok(isQemuBinary('/usr/bin/qemu-system-x86_64'));
  assert.ok(isQemuBinary('qemu-kvm'));
  assert.ok(!isQemuBinary('/usr/bin/qemu-img'));
  assert.equal(qemuVmName(['qemu-system-x86_64', '-name', 'guest=web-1,debug-threads=on']), 'web-1');
  assert.equal(qemuVmName(['qemu-system-x86_64', '--name', 'web-2']), 'web-2');
  assert.equal(qemuVmName(['qemu-system-x86_64', '-S']), null);

  // As libvirt writes it: descriptors, JSON.
  const libvirt = [
    '/usr/bin/qemu-system-x86_64', '-name', 'guest=ebv-try,debug-threads=on', '-S',
    '-netdev', '{"type":"tap","fds":"29:31","id":"hostnet0","vhost":true,"vhostfds":"33:34"}',
    '-device', '{"driver":"virtio-net-pci","netdev":"hostnet0","id":"net0","mac":"52:54:00:AA:BB:01","bus":"pci.0","addr":"0x2"}',
    '-device', '{"driver":"virtio-balloon-pci","id":"balloon0","bus":"pci.0","addr":"0x3"}',
  ];
  assert.deepEqual(qemuNics(libvirt), [{ netdev: 'hostnet0', ifname: null, fds: [29, 31], vhost: true, queues: null, mac: '52:54:00:aa:bb:01', model: 'virtio-net-pci' }]);

  // By hand: -netdev/-device, -nic, legacy -net, and a user-mode netdev that holds no tap.
  const byHand = [
    'qemu-system-x86_64',
    '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=on,queues=2',
    '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01',
    '-netdev', 'user,id=u0', '-device', 'e1000,netdev=u0',
    '-nic', 'tap,ifname=tap1,model=e1000,mac=52:54:00:00:00:02',
    '-net', 'nic,macaddr=52:54:00:00:00:03,model=rtl8139', '-net', 'tap,ifname=tap2',
  ];
  assert.deepEqual(qemuNics(byHand).map((n) => [n.ifname, n.mac, n.model, n.vhost, n.queues]), [
    ['tap0', '52:54:00:00:00:01', 'virtio-net-pci', true, 2],
    ['tap1', '52:54:00:00:00:02', 'e1000', null, null],
    ['tap2', '52:54:00:00:00:03', 'rtl8139', null, null],
  ]);
});

test("libvirt's domain XML: uuid and interfaces, with OVS virtualports and escaped text", () => {
  const xml = `<domain type='qemu' id='1'>
  <name>ebv-try</name>
  <uuid>602d4367-21e1-455f-825a-10bc019a9805</uuid>
  <devices>
    <interface type='bridge'>
      <mac address='52:54:00:AA:BB:01'/>
      <source bridge='ebvbr0'/>
      <target dev='vnet0'/>
      <model type='virtio'/>
      <driver name='vhost' queues='4'>
        <host csum='off'/>
      </driver>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </interface>
    <interface type="bridge">
      <mac address="52:54:00:aa:bb:02"/>
      <source bridge="br&apos;x&amp;y"/>
      <virtualport type='openvswitch'>
        <parameters interfaceid='17acefcb-1bde-4d92-a5a7-e44bfc218494'/>
      </virtualport>
      <target dev='vnet1'/>
      <model type='e1000'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:03'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <interfaces-not-an-interface/>
  </devices>
</domain>`;
  assert.deepEqual(parseDomainXml(xml), {
    uuid: '602d4367-21e1-455f-825a-10bc019a9805',
    interfaces: [
      { type: 'bridge', target: 'vnet0', mac: '52:54:00:aa:bb:01', model: 'virtio', sourceBridge: 'ebvbr0', sourceNetwork: null, virtualport: null, driver: 'vhost', queues: 4 },
      { type: 'bridge', target: 'vnet1', mac: '52:54:00:aa:bb:02', model: 'e1000', sourceBridge: "br'x&y", sourceNetwork: null, virtualport: 'openvswitch', driver: null, queues: null },
      { type: 'network', target: null, mac: '52:54:00:aa:bb:03', model: 'virtio', sourceBridge: null, sourceNetwork: 'default', virtualport: null, driver: null, queues: null },
    ],
  });
  assert.equal(unescapeXml('a&lt;b&#62;&#x41;&unknown;'), 'a<b>A&unknown;');
  assert.deepEqual(parseDominfo('Id:             1\nName:           ebv-try\nState:          shut off\nPersistent:     no\n'), {
    Id: '1', Name: 'ebv-try', State: 'shut off', Persistent: 'no',
  });
});

test("ovs-vsctl's JSON tables: bridges, ports, interfaces; port-to-br", () => {
  const text = [
    '{"data":[["br-int","netdev",["set",[["uuid","p1"],["uuid","p2"]]]],["br-k","",["uuid","p3"]]],"headings":["name","datapath_type","ports"]}',
    '{"data":[[["uuid","p1"],"br-int",["uuid","i1"]],[["uuid","p2"],"bond0",["set",[["uuid","i2"],["uuid","i3"]]]],[["uuid","p3"],"vnet0",["uuid","i4"]]],"headings":["_uuid","name","interfaces"]}',
    '{"data":[[["uuid","i1"],"br-int","internal",65534,["map",[]]],[["uuid","i2"],"eth1","",1,["map",[]]],[["uuid","i3"],"eth2","",2,["map",[]]],[["uuid","i4"],"vnet0","",-1,["map",[["peer","x"]]]]],"headings":["_uuid","name","type","ofport","options"]}',
  ].join('\n');
  const s = parseOvsTables(text);
  assert.deepEqual(s.bridges.get('br-int'), { name: 'br-int', datapathType: 'netdev', ports: ['bond0', 'br-int'] });
  assert.deepEqual(s.bridges.get('br-k'), { name: 'br-k', datapathType: 'system', ports: ['vnet0'] });
  assert.deepEqual(s.interfaces.get('vnet0'), { name: 'vnet0', type: '', ofport: null, options: { peer: 'x' } });
  assert.deepEqual(ovsPortOf(s, 'vnet0'), { bridge: 'br-k', port: 'vnet0' });
  assert.deepEqual(ovsPortOf(s, 'eth2'), { bridge: 'br-int', port: 'bond0' });
  assert.equal(ovsPortOf(s, 'nope'), null);
});

test('ip -j link and neigh; tun flags; device names', () => {
  const links = parseLinks(
    '[{"ifindex":7,"ifname":"vnet0","master":"br0","linkinfo":{"info_kind":"tun","info_data":{"type":"tap"},"info_slave_kind":"bridge"}},{"ifindex":2,"ifname":"eth0"},{"ifname":"bad"}]',
  );
  assert.deepEqual([...links.values()], [
    { ifname: 'vnet0', ifindex: 7, master: 'br0', kind: 'tun', tunType: 'tap' },
    { ifname: 'eth0', ifindex: 2, master: null, kind: null, tunType: null },
  ]);
  assert.deepEqual(parseNeighbours('[{"dst":"10.0.0.2","dev":"br0","lladdr":"52:54:00:AA:00:01","state":["REACHABLE"]},{"dst":"fd00::1","dev":"eth0","state":["FAILED"]}]'), [
    { dst: '10.0.0.2', dev: 'br0', lladdr: '52:54:00:aa:00:01', state: 'REACHABLE' },
  ]);
  assert.deepEqual(decodeTunFlags(0x5002), ['tap', 'no_pi', 'vnet_hdr']);
  assert.deepEqual(decodeTunFlags(0x4902), ['tap', 'multi_queue', 'persist', 'vnet_hdr']);
  assert.ok(isDeviceName('vnet0'));
  for (const bad of ['', '..', 'a/b', 'a b', 'x'.repeat(16), 'eth0:1']) assert.ok(!isDeviceName(bad), bad);
});

test('vhost-net workers are kernel threads before Linux 6.4, QEMU threads from 6.4 on', async () => {
  const { kernelRunsVhostAsKthreads } = await import('../../engine/target/threads.js');
  assert.equal(kernelRunsVhostAsKthreads('5.15.0-91-generic'), true);
  assert.equal(kernelRunsVhostAsKthreads('6.1.0-18-amd64'), true);
  assert.equal(kernelRunsVhostAsKthreads('6.3.13'), true);
  assert.equal(kernelRunsVhostAsKthreads('6.4.0'), false);
  assert.equal(kernelRunsVhostAsKthreads('6.18.44-fc-v1045'), false);
  assert.equal(kernelRunsVhostAsKthreads('7.0.1'), false);
  assert.equal(kernelRunsVhostAsKthreads('garbage'), true);
});
