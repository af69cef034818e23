// The lab's parts. First the pure ones: names and their sweep rule, the guest's kernel command
// line and ready line, the parsers of OVS and guest counters and of captured frames. Then the
// lab as unkind as a real hypervisor, on real VMs (root, QEMU, the guest image): the host with
// IPv6 but no IPv4 address on the bridge, a jumbo uplink, two VMs with traffic of their own,
// one of them noisy with IPv6 and the guest agent; and a libvirt domain asked through its agent.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { createDomain, domainXml, ensureLibvirt } from '../helpers/libvirt.js';
import { deviceCounter } from '../helpers/netns.js';
import { NOISE_KINDS, noiseKind, readPcap, startCapture, type NoiseKind } from './capture.js';
import { isLeftover, newLabName } from './names.js';
import { parseDumpPorts } from './ovs.js';
import { backgroundTraffic } from './scenario.js';
import { buildLabTopology, type LabTopology } from './topology.js';
import { canBootVms, guestAgentCommand, guestKernelArgs, macFor, NOISE, parseGuestNetStats, waitForReady, type Vm } from './vm.js';

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

test('IPv6 or noise boots the guest with IPv6; the default stays IPv6-free', () => {
  const v6 = guestKernelArgs({ ip: '10.250.3.2/24', ipv6: 'fd00:250:3::2/64' }).split(' ');
  assert.ok(v6.includes('ebpfnet.ip6=fd00:250:3::2/64') && !v6.includes('ipv6.disable=1'), v6.join(' '));
  const noisy = guestKernelArgs({ ip: '10.250.3.2/24', noise: true }).split(' ');
  assert.ok(noisy.includes('ebpfnet.noise=1') && !noisy.includes('ipv6.disable=1'), noisy.join(' '));
  assert.ok(!noisy.some((w) => w.startsWith('ebpfnet.ip6=')));
  const plain = guestKernelArgs({ ip: '10.250.3.2/24' }).split(' ');
  assert.ok(plain.includes('ipv6.disable=1') && !plain.some((w) => /^ebpfnet\.(ip6|noise)=/.test(w)), plain.join(' '));
});

test("libvirt's domain: the guest agent channel and the guest's command line on request only", () => {
  const mac = '52:54:00:aa:bb:cc';
  const channel = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";
  const xml = domainXml('d', { interfaces: [{ bridge: 'br', mac }], guestAgent: true, guest: { ip: '10.0.0.2/24', ipv6: 'fd00::2/64', mac, noise: true } });
  assert.ok(xml.includes(channel), xml);
  assert.match(xml, /<cmdline>console=ttyS0 [^<]*ebpfnet\.ip6=fd00::2\/64 ebpfnet\.noise=1<\/cmdline>/);
  assert.ok(!domainXml('d', { interfaces: [{ bridge: 'br', mac }] }).includes('<channel'));
});

test('readPcap reads frames in either byte order; noiseKind tells the noise guest\'s frames from others', () => {
  const vm = { mac: '52:54:00:aa:bb:cc', noiseArpTarget: '10.0.0.253' };
  const src = Buffer.from([0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]);
  const arp = (target: number[]) =>
    Buffer.concat([Buffer.alloc(6, 0xff), src, Buffer.from([0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]), src, Buffer.from([10, 0, 0, 2]), Buffer.alloc(6), Buffer.from(target)]);
  const pcap = (le: boolean, frames: Buffer[]) => {
    const head = Buffer.alloc(24);
    const w = (b: Buffer, v: number, at: number) => (le ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
    w(head, 0xa1b2c3d4, 0);
    return Buffer.concat([head, ...frames.flatMap((f, i) => {
      const rec = Buffer.alloc(16);
      w(rec, 1000 + i, 0);
      w(rec, 500_000, 4);
      w(rec, f.length, 8);
      w(rec, f.length, 12);
      return [rec, f];
    })]);
  };
  for (const le of [true, false]) {
    const frames = readPcap(pcap(le, [arp([10, 0, 0, 253]), arp([10, 0, 0, 7])]));
    assert.deepEqual(frames.map((f) => f.tsMs), [1_000_500, 1_001_500]);
    assert.deepEqual(frames.map((f) => noiseKind(f.data, vm)), ['arp', null]);
  }
  // The same frame from another MAC is someone else's.
  assert.equal(noiseKind(arp([10, 0, 0, 253]), { ...vm, mac: '52:54:00:00:00:01' }), null);
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
    // A line still being written is not the ready line yet.
    await writeFile(log, 'EBPFNET-READY ip=10.0.0.2/24 mac=52:54:00:00:0');
    await assert.rejects(waitForReady(log, { timeoutMs: 200 }), /not ready after 200 ms/);
    await writeFile(log, 'EBPFNET-FAILED no NIC\n');
    await assert.rejects(waitForReady(log, { timeoutMs: 1000 }), /guest failed: EBPFNET-FAILED no NIC/);
    await writeFile(log, 'booting\n');
    await assert.rejects(waitForReady(log, { timeoutMs: 1000, alive: () => false }), /QEMU exited/);
    await assert.rejects(waitForReady(log, { timeoutMs: 100 }), /not ready after 100 ms/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const cannot = await canBootVms();

for (const kind of ['linux', 'ovs'] as const) {
  describe(`a hypervisor-like host on ${kind === 'ovs' ? 'an Open vSwitch netdev bridge' : 'a Linux bridge'}`, () => {
    // VM 0 is a real guest's worth of trouble (IPv6, noise, the guest agent); VM 1 is quiet.
    let lab: LabTopology;
    let noisy: Vm;
    let quiet: Vm;
    before(async () => {
      assert.equal(cannot, null, `cannot boot lab VMs: ${cannot}`);
      lab = await buildLabTopology(undefined, {
        bridge: kind,
        vms: 2,
        hostIpv6: true,
        uplinkMtu: 9000,
        vmOptions: (i, addrs) => (i === 0 ? { ipv6: addrs.ipv6, noise: true, guestAgent: true } : {}),
      });
      [noisy, quiet] = lab.vms as [Vm, Vm];
    });
    after(() => lab?.teardown());

    test('the guest agent answers guest-network-get-interfaces with exactly the addresses the guest has', async () => {
      assert.ok(noisy.agentSocket, 'the VM has an agent socket');
      const agent = (await guestAgentCommand(noisy.agentSocket, 'guest-network-get-interfaces')) as AgentInterface[];
      const guest = parseIpAddr(await noisy.sh('ip addr'));
      assert.deepEqual(agentView(agent), guest);
      // And those are the ones the lab gave it, with the link-local address from its MAC.
      const eth = guest[noisy.guestDev]!;
      assert.equal(eth.mac, noisy.mac);
      assert.deepEqual(eth.addrs, [`ipv4 ${noisy.cidr}`, `ipv6 ${noisy.cidr6}`, `ipv6 ${linkLocal(noisy.mac)}/64`].sort());
    });

    test('the peer pings the VM over IPv6, and the guest counts every echo request', async () => {
      assert.ok(noisy.ipv6 && lab.peer.ip6, 'the VM and the peer have IPv6');
      const before = await icmp6InEchos(noisy);
      const r = await lab.peer.ping(noisy.ipv6, { count: 10, interval: 0.05, wait: 2 });
      assert.deepEqual([r.transmitted, r.received], [10, 10], r.stdout);
      assert.equal((await icmp6InEchos(noisy)) - before, 10, 'guest Icmp6InEchos');
    });

    test(`an idle noisy VM sends each kind of noise every ${NOISE.periodMs} ms; the quiet one sends nothing`, async (t) => {
      const windowMs = 4000;
      const cap = await startCapture(noisy.tap, 'in');
      let frames;
      const start = { noisy: await deviceCounter(noisy.tap, 'rx_packets'), quiet: await deviceCounter(quiet.tap, 'rx_packets'), at: Date.now() };
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      const end = { noisy: await deviceCounter(noisy.tap, 'rx_packets'), quiet: await deviceCounter(quiet.tap, 'rx_packets'), at: Date.now() };
      try {
        await new Promise((resolve) => setTimeout(resolve, 200));
      } finally {
        frames = (await cap.stop()).filter((f) => f.tsMs > start.at && f.tsMs <= end.at);
      }
      // The tap's own counter against what tcpdump saw (a burst may straddle a counter read).
      const rx = end.noisy - start.noisy;
      assert.ok(Math.abs(frames.length - rx) <= NOISE_KINDS.length, `tcpdump saw ${frames.length} frames, the tap counted ${rx}`);
      const counts = Object.fromEntries(NOISE_KINDS.map((k) => [k, 0])) as Record<NoiseKind, number>;
      for (const f of frames) {
        const k = noiseKind(f.data, noisy);
        if (k) counts[k]++;
      }
      const expected = (end.at - start.at) / NOISE.periodMs;
      t.diagnostic(`in ${end.at - start.at} ms: tap rx ${rx}, tcpdump ${frames.length}, by kind ${JSON.stringify(counts)}`);
      for (const k of NOISE_KINDS) {
        assert.ok(Math.abs(counts[k] - expected) <= 2, `${k}: ${counts[k]} frames in ${end.at - start.at} ms, expected ${expected.toFixed(1)}: ${JSON.stringify(counts)}`);
      }
      assert.equal(end.quiet - start.quiet, 0, 'the quiet VM sent no frame');
    });

    test('a jumbo uplink carries 8000-byte pings between the peer and the bridge; the VM works at 1500', async () => {
      const { peer, bridge } = lab;
      assert.equal(await peerMtu(lab), 9000, "the peer's veth");
      assert.equal(Number(await readFile(`/sys/class/net/${peer.hostDev}/mtu`, 'utf8')), 9000, 'the veth end on the bridge');
      assert.equal(Number(await readFile(`/sys/class/net/${bridge.name}/mtu`, 'utf8')), 9000, 'the bridge');
      for (const vm of lab.vms) assert.equal(Number(await readFile(`/sys/class/net/${vm.tap}/mtu`, 'utf8')), 1500, `tap ${vm.tap}`);
      // (Not derived from the bridge's MAC: a bridge changes its MAC as ports join.)
      const bridgeLl = /inet6 (fe80:[0-9a-f:]+)\//.exec((await execa('ip', ['-6', '-o', 'addr', 'show', 'dev', bridge.name])).stdout)?.[1];
      assert.ok(bridgeLl, `the bridge ${bridge.name} has a link-local address`);
      const jumbo = await pingDf(lab, bridgeLl, 8000);
      assert.deepEqual([jumbo.transmitted, jumbo.received], [5, 5], `8000-byte ping6 to the bridge ${bridgeLl}`);
      // 1472 bytes of ICMP payload: a 1500-byte IPv4 packet, which must not be fragmented.
      const full = await pingDf(lab, quiet.ip, 1472);
      assert.deepEqual([full.transmitted, full.received], [5, 5], `1500-byte pings to ${quiet.ip}`);
      // Jumbo frames do not fit the 1500-byte tap: the bridge drops them, as on a real host.
      const tooBig = await pingDf(lab, quiet.ip, 8000);
      assert.deepEqual([tooBig.transmitted, tooBig.received], [5, 0], `8000-byte pings to ${quiet.ip}`);
    });

    test('two VMs on one bridge each with traffic of its own: each guest counts exactly its own datagrams', async (t) => {
      const before = await Promise.all(lab.vms.map((vm) => udpIn(vm)));
      const traffic = lab.vms.map((vm, i) => backgroundTraffic(lab, vm, { intervalMs: i === 0 ? 20 : 30, ipv6: i === 0 }));
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const results = await Promise.all(traffic.map((tr) => tr.stop()));
      t.diagnostic(`sent/echoed: ${results.map((r) => `${r.sent}/${r.echoed}`).join(', ')}; boot ms: ${lab.vms.map((vm) => vm.bootMs).join(', ')}`);
      for (const [i, vm] of lab.vms.entries()) {
        const r = results[i]!;
        assert.ok(r.sent >= 40, `${vm.name}: ${r.sent} sent`);
        assert.equal(r.echoed, r.sent, `${vm.name}: every datagram echoed`);
        assert.equal((await udpIn(vm)) - before[i]!, r.sent, `${vm.name}: guest Udp InDatagrams`);
      }
    });

    test('the host has no IPv4 address on the bridge, taps or uplink, and no neighbour entry for a VM', async () => {
      const { bridge, peer } = lab;
      for (const dev of [bridge.name, peer.hostDev, ...lab.vms.map((vm) => vm.tap)]) {
        assert.equal((await execa('ip', ['-4', '-o', 'addr', 'show', 'dev', dev])).stdout.trim(), '', `no IPv4 address on ${dev}`);
        const v6 = (await execa('ip', ['-6', '-o', 'addr', 'show', 'dev', dev])).stdout.trim().split('\n').filter(Boolean);
        assert.ok(v6.every((l) => / inet6 fe80:/.test(l)), `link-local IPv6 only on ${dev}: ${v6.join('; ')}`);
      }
      assert.equal(
        (await execa('ip', ['-6', '-o', 'addr', 'show', 'dev', bridge.name])).stdout.includes('inet6 fe80:'),
        true,
        'the bridge keeps its link-local address',
      );
      const neigh = (await execa('ip', ['neigh', 'show'])).stdout;
      for (const vm of lab.vms) {
        for (const needle of [vm.mac, vm.ip, vm.ipv6, linkLocal(vm.mac)].filter((n): n is string => !!n)) {
          assert.ok(!neigh.split('\n').some((l) => l.split(' ').includes(needle)), `a neighbour entry names ${needle}: ${neigh}`);
        }
      }
    });
  });
}

describe('a libvirt domain with the guest agent channel', () => {
  test('virsh domifaddr --source agent lists exactly the addresses the guest was given', async (t) => {
    assert.equal(cannot, null, `cannot boot lab VMs: ${cannot}`);
    await ensureLibvirt();
    const lab = await buildLabTopology(t, { bridge: 'linux', vms: 0, hostIpv6: true });
    const base = lab.subnet.split('.').slice(0, 3).join('.');
    const mac = macFor(`libvirt-agent-${process.pid}`);
    const ip = `${base}.60/24`;
    const ipv6 = `${lab.subnet6.split('/')[0]}60/64`;
    const dom = await createDomain(t, { interfaces: [{ bridge: lab.bridge.name, mac }], guest: { ip, ipv6, mac, gateway: lab.peer.ip }, guestAgent: true });
    // The agent answers once the guest has booted (direct kernel boot under TCG: seconds).
    const deadline = Date.now() + 90_000;
    let listed: Record<string, string[]> = {};
    for (;;) {
      const r = await execa('virsh', ['-c', 'qemu:///system', 'domifaddr', '--domain', dom.name, '--source', 'agent', '--full'], { reject: false, env: { LC_ALL: 'C' } });
      listed = parseDomifaddr(String(r.stdout));
      if (r.exitCode === 0 && listed.eth0?.some((a) => a.startsWith('ipv6 fd'))) break;
      assert.ok(Date.now() < deadline, `the guest agent of ${dom.name} never listed the addresses: ${String(r.stderr).trim()} ${String(r.stdout)}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    assert.deepEqual(listed, {
      lo: ['ipv4 127.0.0.1/8', 'ipv6 ::1/128'],
      eth0: [`ipv4 ${ip}`, `ipv6 ${ipv6}`, `ipv6 ${linkLocal(mac)}/64`].sort(),
    });
  });
});

interface AgentInterface {
  name: string;
  'hardware-address'?: string;
  'ip-addresses'?: Array<{ 'ip-address-type': 'ipv4' | 'ipv6'; 'ip-address': string; prefix: number }>;
}
type AddrView = Record<string, { mac: string; addrs: string[] }>;

function agentView(ifaces: AgentInterface[]): AddrView {
  return Object.fromEntries(
    ifaces.map((i) => [i.name, { mac: i['hardware-address'] ?? '', addrs: (i['ip-addresses'] ?? []).map((a) => `${a['ip-address-type']} ${a['ip-address']}/${a.prefix}`).sort() }]),
  );
}

/** busybox `ip addr`: "2: eth0: <...>", "    link/ether <mac> ...", "    inet[6] <addr>/<len> ...". */
function parseIpAddr(text: string): AddrView {
  const out: AddrView = {};
  let cur: { mac: string; addrs: string[] } | undefined;
  for (const line of text.split('\n')) {
    const head = /^\d+: ([^:@\s]+)[:@]/.exec(line);
    if (head) out[head[1]!] = cur = { mac: '', addrs: [] };
    const link = /^\s+link\/\S+ ([0-9a-f:]{17})/.exec(line);
    if (link && cur) cur.mac = link[1]!;
    const addr = /^\s+inet(6?) (\S+)/.exec(line);
    if (addr && cur) cur.addrs.push(`ipv${addr[1] ? 6 : 4} ${addr[2]}`);
  }
  for (const v of Object.values(out)) v.addrs.sort();
  return out;
}

/** `virsh domifaddr --full`: " Name  MAC address  Protocol  Address" rows, by interface. */
function parseDomifaddr(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of text.split('\n').slice(2)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length === 4) (out[cols[0]!] ??= []).push(`${cols[2]} ${cols[3]}`);
  }
  for (const v of Object.values(out)) v.sort();
  return out;
}

/** The EUI-64 link-local address the kernel derives from a MAC (addr_gen_mode eui64). */
function linkLocal(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  const eui = [b[0]! ^ 2, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  const groups = [0, 2, 4, 6].map((i) => ((eui[i]! << 8) | eui[i + 1]!).toString(16));
  return `fe80::${groups.join(':')}`;
}


async function peerMtu(lab: LabTopology): Promise<number> {
  return Number((await lab.peer.exec(['cat', `/sys/class/net/${lab.peer.dev}/mtu`])).stdout.trim());
}

/** Five pings of `size` payload bytes that may not be fragmented, from the peer. */
async function pingDf(lab: LabTopology, target: string, size: number): Promise<{ transmitted: number; received: number }> {
  const r = await execa('ip', ['netns', 'exec', lab.peer.ns, 'ping', '-n', '-q', '-c', '5', '-i', '0.1', '-W', '2', '-M', 'do', '-s', String(size), '-I', lab.peer.dev, target], {
    reject: false,
    env: { LC_ALL: 'C' },
  });
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(String(r.stdout));
  if (!m) throw new Error(`ping ${target}: no summary: ${String(r.stderr)}`);
  return { transmitted: Number(m[1]), received: Number(m[2]) };
}

/** UDP datagrams the guest took in, over IPv4 (/proc/net/snmp) and IPv6 (/proc/net/snmp6). */
async function udpIn(vm: Vm): Promise<number> {
  const s = await vm.netStats();
  const v6 = vm.ipv6 ? Number(/^Udp6InDatagrams\s+(\d+)/m.exec(await vm.sh('cat /proc/net/snmp6'))?.[1]) : 0;
  return (s.snmp.Udp?.InDatagrams ?? Number.NaN) + v6;
}

async function icmp6InEchos(vm: Vm): Promise<number> {
  const m = /^Icmp6InEchos\s+(\d+)/m.exec(await vm.sh('cat /proc/net/snmp6'));
  if (!m) throw new Error(`${vm.name}: no Icmp6InEchos in /proc/net/snmp6`);
  return Number(m[1]);
}
