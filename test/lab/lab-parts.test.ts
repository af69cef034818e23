// The lab's pure parts: names and their sweep rule, the guest's kernel command line and
// ready line, and the parsers of OVS and guest counters. No root, no VM.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isLeftover, newLabName } from './names.js';
import { parseDumpPorts } from './ovs.js';
import { guestKernelArgs, macFor, parseGuestNetStats, waitForReady } from './vm.js';

test('lab device names fit IFNAMSIZ and carry this process, so the sweep spares them', () => {
  const a = newLabName();
  const b = newLabName();
  assert.notEqual(a.name, b.name);
  assert.match(a.name, new RegExp(`^ebpfnet-lab-${process.pid}-\\d+$`));
  for (const kind of ['t', 'b', 'v', 'p'] as const) {
    assert.ok(a.dev(kind).length <= 15, a.dev(kind));
    assert.equal(isLeftover(a.dev(kind)), false);
  }
  assert.equal(isLeftover(a.name), false);
});

test('names of a process that no longer runs are leftovers; foreign names never are', () => {
  // pid 1 always runs; no pid reaches 4194305 (the kernel caps pid_max at 2^22).
  assert.equal(isLeftover('ebpfnet-lab-4194305-0'), true);
  assert.equal(isLeftover(`ebl${(4194305).toString(36)}x0t`), true);
  assert.equal(isLeftover('ebpfnet-lab-1-0'), false);
  assert.equal(isLeftover('eth0'), false);
  assert.equal(isLeftover('ebt95zx0h'), false, "netns.ts's test devices are its own sweep's business");
  assert.equal(isLeftover('ebpfnet-test-4194305-0'), false);
});

test('the guest kernel command line carries the address, gateway and MAC /init reads', () => {
  const line = guestKernelArgs({ ip: '10.250.3.2/24', gateway: '10.250.3.1', mac: '52:54:00:aa:bb:cc' });
  const words = line.split(' ');
  for (const w of ['console=ttyS0', 'ebpfnet.ip=10.250.3.2/24', 'ebpfnet.gw=10.250.3.1', 'ebpfnet.mac=52:54:00:aa:bb:cc', 'ipv6.disable=1']) {
    assert.ok(words.includes(w), `${w} in ${line}`);
  }
  assert.ok(!guestKernelArgs({ ip: '10.0.0.2/24' }).includes('ebpfnet.gw='));
});

test('macFor gives a stable unicast MAC in QEMU range, different per name', () => {
  assert.match(macFor('vm-a'), /^52:54:00(:[0-9a-f]{2}){3}$/);
  assert.equal(macFor('vm-a'), macFor('vm-a'));
  assert.notEqual(macFor('vm-a'), macFor('vm-b'));
});

test('parseDumpPorts reads one port of ovs-ofctl dump-ports, "?" as 0', () => {
  const text = [
    'OFPST_PORT reply (xid=0x4): 1 ports',
    '  port  2: rx pkts=4, bytes=336, drop=?, errs=0, frame=0, over=0, crc=0',
    '           tx pkts=61, bytes=5322, drop=3, errs=0, coll=0',
  ].join('\n');
  assert.deepEqual(parseDumpPorts(text), { rxPackets: 4, rxBytes: 336, rxDropped: 0, txPackets: 61, txBytes: 5322, txDropped: 3 });
  assert.throws(() => parseDumpPorts('ovs-ofctl: eblx: unknown port'), /no rx counters/);
});

test('parseGuestNetStats splits NIC counters from /proc/net/snmp tables', () => {
  const out = [
    'rx_packets 12',
    'tx_packets 7',
    '--',
    'Ip: Forwarding DefaultTTL InReceives',
    'Ip: 2 64 12',
    'Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors',
    'Udp: 50 1 0 0 0 0 0',
  ].join('\n');
  const s = parseGuestNetStats(out);
  assert.deepEqual(s.iface, { rx_packets: 12, tx_packets: 7 });
  assert.deepEqual(s.snmp.Ip, { Forwarding: 2, DefaultTTL: 64, InReceives: 12 });
  assert.equal(s.snmp.Udp?.InDatagrams, 50);
  assert.equal(s.snmp.Udp?.NoPorts, 1);
});

test('waitForReady returns the ready line, rejects on the failure line, a dead QEMU or a timeout', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ebpfnet-lab-'));
  try {
    const log = join(dir, 'console.log');
    await writeFile(log, '[    1.0] noise\r\nEBPFNET-READY ip=10.0.0.2/24 mac=52:54:00:00:00:01 dev=eth0\r\n');
    assert.equal(await waitForReady(log, { timeoutMs: 1000 }), 'EBPFNET-READY ip=10.0.0.2/24 mac=52:54:00:00:00:01 dev=eth0');
    await writeFile(log, 'EBPFNET-FAILED no NIC\n');
    await assert.rejects(waitForReady(log, { timeoutMs: 1000 }), /guest failed: EBPFNET-FAILED no NIC/);
    await writeFile(log, 'booting\n');
    await assert.rejects(waitForReady(log, { timeoutMs: 1000, alive: () => false }), /QEMU exited/);
    await assert.rejects(waitForReady(log, { timeoutMs: 100 }), /not ready after 100 ms/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
