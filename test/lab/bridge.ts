// What the lab's bridges have in common (a VM's tap and a peer's veth plug into either), and
// the Linux bridge. The Open vSwitch bridge is in ovs.ts.
//
//   const br = await createLinuxBridge(t, newLabName().dev('b'));
//   await br.addPort('ebl…t');
import { writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import type { TeardownHost } from '../helpers/netns.js';
import { run } from '../helpers/netns.js';

export interface Bridge {
  readonly kind: 'linux' | 'ovs';
  readonly name: string;
  /** Plugs an existing device in and brings it up. */
  addPort(dev: string): Promise<void>;
  /** Unplugs a device; no error when it is not plugged (or gone). */
  delPort(dev: string): Promise<void>;
  /** Removes the bridge (its ports stay, unplugged); safe to call twice. */
  teardown(): Promise<void>;
}

/**
 * A Linux bridge with STP off and no forwarding delay (ports forward at once), no IPv6 and no
 * address: it only switches between its ports, and the root namespace takes no part.
 */
export async function createLinuxBridge(t: TeardownHost | undefined, name: string): Promise<Bridge> {
  const teardown = async () => {
    await execa('ip', ['link', 'del', name], { reject: false, stdin: 'ignore' });
  };
  t?.after(teardown);
  try {
    await run(['ip', 'link', 'add', name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await disableIpv6(name);
    await run(['ip', 'link', 'set', name, 'up']);
  } catch (err) {
    await teardown();
    throw err;
  }
  return {
    kind: 'linux',
    name,
    async addPort(dev) {
      await disableIpv6(dev);
      await run(['ip', 'link', 'set', dev, 'master', name]);
      await run(['ip', 'link', 'set', dev, 'up']);
    },
    async delPort(dev) {
      await execa('ip', ['link', 'set', dev, 'nomaster'], { reject: false, stdin: 'ignore' });
    },
    teardown,
  };
}

/**
 * Turns IPv6 off on a root-namespace device, so that it sends no router or neighbour
 * solicitations and MLD reports: lab tests count packets exactly.
 */
export async function disableIpv6(dev: string): Promise<void> {
  await writeFile(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, '1').catch(() => undefined);
}
