// libvirt domains' vCPU threads from libvirt's own status file, checked against what QEMU
// answers through libvirt's monitor (`virsh qemu-monitor-command`, which taints the domain:
// fine for a test domain, never done by discovery) and against the threads' names; and
// what libvirt's three address sources say of a domain without a guest agent, and of one
// whose agent channel nobody answers in the guest.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { execa } from 'execa';
import { resolveVm } from '../../engine/target/index.js';
import { libvirtDomain, libvirtStatusVcpus } from '../../engine/target/libvirt.js';
import { readCmdline } from '../../engine/target/proc.js';
import { qemuGuestAgentSocket, qemuQmpSockets } from '../../engine/target/qemu-cmdline.js';
import type { TeardownHost } from '../helpers/netns.js';
import { createDomain, domainXml, ensureLibvirt } from '../helpers/libvirt.js';
import { cleanupLeftovers, guestMac, linuxBridge, threadComm } from './support.js';

const noInventory = { env: {} };
const virsh = (args: string[]) => execa('virsh', ['-c', 'qemu:///system', ...args], { stdin: 'ignore', env: { LC_ALL: 'C' }, timeout: 60_000 });

/** QEMU's own answer to query-cpus-fast, through libvirt's monitor connection. */
async function monitorVcpus(name: string): Promise<Array<[number, number]>> {
  const r = await virsh(['qemu-monitor-command', '--domain', name, '{"execute":"query-cpus-fast"}']);
  const cpus = (JSON.parse(String(r.stdout)) as { return: Array<{ 'cpu-index': number; 'thread-id': number }> }).return;
  return cpus.map((c) => [c['cpu-index'], c['thread-id']]);
}

let made = 0;

/** A transient domain with a guest agent channel (libvirt adds the virtio-serial controller). */
async function createDomainWithAgent(t: TeardownHost, bridge: string): Promise<{ name: string; pid: number }> {
  // Numbered apart from the helper's own domains; the same ebpfnet-t-<pid>-<n> pattern, so a crashed run's are swept.
  const name = `ebpfnet-t-${process.pid}-${900 + made++}`;
  t.after(async () => {
    await execa('virsh', ['-c', 'qemu:///system', 'destroy', '--domain', name], { reject: false, stdin: 'ignore' });
  });
  const xml = domainXml(name, { interfaces: [{ bridge, mac: guestMac() }] }).replace(
    '</devices>',
    "  <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\n  </devices>",
  );
  const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-domain-'));
  try {
    writeFileSync(join(dir, 'domain.xml'), xml);
    await virsh(['create', join(dir, 'domain.xml')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { name, pid: Number(readFileSync(`/run/libvirt/qemu/${name}.pid`, 'utf8').trim()) };
}

describe('libvirt domains: vCPUs by identity, addresses from libvirt', () => {
  before(async () => {
    await ensureLibvirt();
    await cleanupLeftovers();
  });

  test("vCPU threads from libvirt's status file equal QEMU's query-cpus-fast and the threads' names; address sources without an agent", async (t) => {
    const br = await linuxBridge(t);
    const dom = await createDomain(t, { interfaces: [{ bridge: br, mac: guestMac() }] });
    const status = await libvirtStatusVcpus(dom.name, dom.pid);
    assert.ok('vcpus' in status, JSON.stringify(status));
    // libvirt starts QEMU with debug-threads=on: the names are a second, independent witness.
    for (const v of status.vcpus) assert.equal(threadComm(dom.pid, v.tid), `CPU ${v.index}/TCG`);
    assert.deepEqual(await libvirtStatusVcpus(dom.name, dom.pid + 1), { error: `/run/libvirt/qemu/${dom.name}.xml is about pid ${dom.pid}, not ${dom.pid + 1}` });

    // Read from the status file (root, the default connection) or through virsh (a URI given): the same domain.
    const fromStatus = await libvirtDomain(dom.name);
    const fromVirsh = await libvirtDomain(dom.name, { uri: 'qemu:///system' });
    assert.deepEqual({ ...fromStatus, persistent: null }, { ...fromVirsh, persistent: null });
    assert.deepEqual([fromStatus?.state, fromStatus?.pid, fromStatus?.xml.interfaces.map((i) => i.target)], ['running', dom.pid, dom.taps]);
    // Transient (virsh create): no config file, and virsh says so too.
    assert.deepEqual([fromStatus?.persistent, fromVirsh?.persistent], [false, false]);

    const start = performance.now();
    const vm = await resolveVm(dom.name, noInventory);
    t.diagnostic(`resolveVm of a libvirt domain: ${Math.round(performance.now() - start)} ms; asked ${JSON.stringify(vm.asked)}`);
    assert.deepEqual(vm.vcpuThreads.map((v) => [v.index, v.tid, v.source]), status.vcpus.map((v) => [v.index, v.tid, 'libvirt']));
    assert.deepEqual(vm.notes, []);
    const asked = new Map((vm.asked ?? []).map((a) => [a.source, a]));
    assert.match(asked.get('libvirt-agent')?.note ?? '', /^guest agent not configured \(no org\.qemu\.guest_agent\.0 channel in the domain\)$/);
    // lease: no libvirt network, so dnsmasq holds no lease for it; virsh answered an empty table.
    assert.deepEqual([asked.get('libvirt-lease')?.found, asked.get('libvirt-lease')?.note], [0, 'none']);
    // arp: none here (the host has no address on the bridge), or virsh's own failure, said, not thrown.
    assert.equal(asked.get('libvirt-arp')?.found, 0);
    assert.ok(asked.get('libvirt-arp')?.note, JSON.stringify(asked.get('libvirt-arp')));
    assert.ok(!asked.has('guest-agent'), "libvirt holds the agent's socket: only libvirt is asked");
    assert.deepEqual(vm.ips, []);

    // libvirt hands QEMU its monitor as a descriptor: no socket path for ebpfnet to open, and no need.
    const argv = (await readCmdline(dom.pid))!;
    assert.deepEqual(qemuQmpSockets(argv), [{ id: 'charmonitor', path: null, server: true }]);
    // Last: the monitor command taints the domain.
    assert.deepEqual(await monitorVcpus(dom.name), status.vcpus.map((v) => [v.index, v.tid]));
  });

  test('a domain with a guest agent channel that no agent answers: libvirt says so, on a read-write connection', async (t) => {
    const br = await linuxBridge(t);
    const dom = await createDomainWithAgent(t, br);
    const domain = await libvirtDomain(dom.name);
    assert.deepEqual(domain?.xml.guestAgent, { state: 'disconnected' });
    const argv = (await readCmdline(dom.pid))!;
    const agentChardev = qemuGuestAgentSocket(argv);
    assert.equal(agentChardev?.path, null, `libvirt passes the agent's socket as a descriptor: ${JSON.stringify(agentChardev)}`);

    const vm = await resolveVm(dom.name, noInventory);
    const agent = vm.asked?.find((a) => a.source === 'libvirt-agent');
    t.diagnostic(`libvirt-agent: ${JSON.stringify(agent)}`);
    assert.equal(agent?.found, 0);
    // Not the read-only refusal: the agent source is asked on a read-write connection.
    assert.doesNotMatch(agent?.note ?? '', /read only access/);
    assert.match(agent?.note ?? '', /guest agent is not (connected|responding)/i);
    const readonly = await execa('virsh', ['-c', 'qemu:///system', '--readonly', 'domifaddr', '--domain', dom.name, '--source', 'agent'], { reject: false, stdin: 'ignore', env: { LC_ALL: 'C' } });
    assert.match(String(readonly.stderr), /read only access prevents virDomainInterfaceAddresses/);
  });
});
