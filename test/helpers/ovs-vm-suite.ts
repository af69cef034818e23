// OVS probe tests' surroundings: one lab for a whole suite (a VM on an OVS netdev bridge, built
// once: a VM takes seconds to boot; its guest's MAC pinned at the peer so no ARP crosses a
// window), and a host where ovs-vswitchd is not running.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { canRunOvs } from '../lab/ovs.js';
import { buildLabTopology, type LabTopology } from '../lab/topology.js';
import { canBootVms } from '../lab/vm.js';

/** Null when this host can run OVS and boot lab VMs as root, else why not. */
export async function cannotRunOvsVm(): Promise<string | null> {
  return process.geteuid?.() !== 0 ? 'needs root' : ((await canRunOvs()) ?? (await canBootVms()));
}

/**
 * Registers the suite's before (asserts `cannot` is null, builds the lab, pins the guest's MAC,
 * then hands the lab to `ready`) and after (tears the lab down).
 */
export function ovsVmLabForSuite(cannot: string | null, ready: (lab: LabTopology) => Promise<void> | void): void {
  let lab: LabTopology | undefined;
  before(async () => {
    assert.equal(cannot, null, `cannot run: ${cannot}`);
    // The userspace datapath wherever the kernel has openvswitch.ko too (the kernel lab): these
    // suites read what only it keeps (PMD statistics, drop_action_* counters); their kernel
    // datapath twins are ovs-scope and other-ovs-ct-invalid.
    lab = await buildLabTopology(undefined, { bridge: 'ovs', ovsDatapath: 'netdev' });
    await lab.peer.pinNeighbor(lab.vm.ip, lab.vm.mac);
    await ready(lab);
  });
  after(() => lab?.teardown());
}

/** Runs `fn` with OVS_RUNDIR an empty folder (given to it): to the probes, ovs-vswitchd is not running. */
export async function withoutOvsVswitchd<T>(fn: (rundir: string) => Promise<T>): Promise<T> {
  const empty = await mkdtemp(join(tmpdir(), 'ebpfnet-ovs-rundir-'));
  const saved = process.env.OVS_RUNDIR;
  process.env.OVS_RUNDIR = empty;
  try {
    return await fn(empty);
  } finally {
    if (saved === undefined) delete process.env.OVS_RUNDIR;
    else process.env.OVS_RUNDIR = saved;
    await rm(empty, { recursive: true, force: true });
  }
}
