// The hypervisor-like lab the VM runbooks are judged on: two noisy dual-stack VMs sharing one
// bridge, each with traffic of its own, the host with no address on the bridge and no
// neighbour entry for a VM, and no inventory. A fault hits VM A; B is the healthy neighbour.
//
//   const { lab, a, b } = await sharedBridge(t, 'ovs');
//   const r = await diagnoseNoInventory(t, 'vm-loss', a);
//   await assertHealthyNeighbour(await diagnoseNoInventory(t, 'vm-loss', b), 'vm-loss');
import assert from 'node:assert/strict';
import type { TeardownHost } from '../helpers/netns.js';
import { backgroundTrafficOf, diagnoseVm, findingsOf, targetOf, type RunResult } from './scenario.js';
import { buildLabTopology, type LabTopology, type LabTopologyOptions } from './topology.js';
import type { Vm } from './vm.js';

/** A finding's data as run.json keeps it. */
export type Data = Record<string, any>;

/** Between the datagrams each VM is sent (and echoes), IPv4 and IPv6: 100 and 20 a second by default. */
export interface SharedBridgeTraffic {
  ipv4Ms: number;
  ipv6Ms: number;
}

/** Two noisy dual-stack VMs on one bridge, each echoing traffic of its own (IPv4 and IPv6) until the test ends. */
export async function sharedBridge(t: TeardownHost, bridge: 'linux' | 'ovs', extra: Partial<LabTopologyOptions> & { traffic?: SharedBridgeTraffic } = {}): Promise<{ lab: LabTopology; a: Vm; b: Vm }> {
  const { traffic: rates = { ipv4Ms: 10, ipv6Ms: 50 }, ...options } = extra;
  const lab = await buildLabTopology(t, { bridge, vms: 2, ipv6: true, hostIpv6: true, ...options, vmOptions: (i, addrs) => ({ noise: true, ...options.vmOptions?.(i, addrs) }) });
  const [a, b] = lab.vms as [Vm, Vm];
  const traffic = backgroundTrafficOf(lab, [a, b].flatMap((vm) => [{ vm, intervalMs: rates.ipv4Ms }, { vm, intervalMs: rates.ipv6Ms, ipv6: true }]));
  t.after(() => traffic.stop().catch(() => undefined));
  return { lab, a, b };
}

/** A run with no inventory: the VM as a hypervisor knows it. */
export const diagnoseNoInventory = (t: TeardownHost, runbook: 'vm-loss' | 'vm-latency', vm: Vm | string, extra: string[] = []) =>
  diagnoseVm(t, runbook, typeof vm === 'string' ? vm : vm.name, null, extra);

/** The healthy neighbour: nothing of its own lost, the noise it and its neighbour made set apart. */
export async function assertHealthyNeighbour(r: RunResult, runbook: 'vm-loss' | 'vm-latency'): Promise<Record<string, { data: Data }>> {
  const expected = runbook === 'vm-loss' ? 'no-host-drops' : 'host-fast';
  assert.equal(r.conclusion?.id, expected, `the healthy neighbour: ${r.conclusion?.summary}`);
  const f = (await findingsOf(r.bundle)) as Record<string, { data: Data }>;
  assert.ok((f.frames!.data.packets as number) > 100, `the neighbour had traffic of its own: ${f.frames!.data.packets} frames`);
  if (runbook === 'vm-loss') {
    assert.equal(f.frames!.data.lost.total, 0, 'the switch lost none of the neighbour\'s frames');
    assert.ok((f.kernel!.data.total as number) < 10, `the neighbour's kernel drops: ${JSON.stringify(f.kernel!.data.byReason)}`);
  }
  return f;
}

/** The addresses the run learned from the VM's own frames: its IPv4 and IPv6 ones, no other's. */
export function assertLearned(r: RunResult, vm: Vm, other: Vm): void {
  const ips = targetOf(r.bundle).ips;
  const learned = ips.filter((a) => a.source === 'frames').map((a) => a.address);
  assert.ok(learned.includes(vm.ip), `${vm.ip} learned from ${vm.name}'s frames: ${JSON.stringify(ips)}`);
  assert.ok(learned.includes(vm.ipv6!), `${vm.ipv6} learned: ${JSON.stringify(ips)}`);
  for (const a of [other.ip, other.ipv6]) assert.ok(!ips.some((x) => x.address === a), `the neighbour's ${a} is not ${vm.name}'s`);
}

/** A's run concluded ovs-flow-drop with high confidence, naming A's address, with at least `min` of A's frames lost in the switch and as many OVS drops naming A. */
export async function assertOvsFlowDropOf(ra: RunResult, a: Vm, min: number): Promise<Record<string, { data: Data }>> {
  assert.equal(ra.conclusion?.id, 'ovs-flow-drop', ra.conclusion?.summary);
  assert.equal(ra.conclusion!.confidence, 'high', 'the flow names the VM');
  assert.match(ra.conclusion!.summary, new RegExp(`ipv4\\(.*dst=${a.ip.replace(/\./g, '\\.')}`));
  const fa = (await findingsOf(ra.bundle)) as Record<string, { data: Data }>;
  assert.ok(fa.frames!.data.lost.toVm > min, `A's frames lost in the switch: ${JSON.stringify(fa.frames!.data.lost)}`);
  assert.ok((fa.ovs!.data.vmTotal as number) > min, `OVS drops naming A: ${fa.ovs!.data.vmTotal}`);
  return fa;
}
