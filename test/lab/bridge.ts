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
  /**
   * The host keeps IPv6 on the bridge and its ports (link-local addresses only), as a real
   * hypervisor does; otherwise IPv6 is off on all of them so that tests count packets exactly.
   */
  readonly hostIpv6?: boolean;
  /** Plugs an existing device in and brings it up. */
  addPort(dev: string): Promise<void>;
  /** Unplugs a device; no error when it is not plugged (or gone). */
  delPort(dev: string): Promise<void>;
  /** Removes the bridge (its ports stay, unplugged); safe to call twice. */
  teardown(): Promise<void>;
}

export interface BridgeOptions {
  /** Keep IPv6 on the bridge and its ports (Bridge.hostIpv6); default off. */
  hostIpv6?: boolean;
  /**
   * The bridge's own MTU, e.g. 9000 for a jumbo uplink: set explicitly, so that it stays
   * while 1500-byte taps join (a Linux bridge otherwise takes its smallest port's MTU).
   */
  mtu?: number;
}

/**
 * A Linux bridge with STP off and no forwarding delay (ports forward at once) and no address:
 * it only switches between its ports. Without `hostIpv6` the root namespace takes no part; with
 * it the host has a link-local IPv6 address there and nothing else, like a hypervisor.
 */
export async function createLinuxBridge(t: TeardownHost | undefined, name: string, opts: BridgeOptions = {}): Promise<Bridge> {
  const teardown = async () => {
    await execa('ip', ['link', 'del', name], { reject: false, stdin: 'ignore' });
  };
  t?.after(teardown);
  try {
    await run(['ip', 'link', 'add', name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    if (!opts.hostIpv6) await disableIpv6(name);
    if (opts.mtu) await run(['ip', 'link', 'set', name, 'mtu', String(opts.mtu)]);
    await run(['ip', 'link', 'set', name, 'up']);
  } catch (err) {
    await teardown();
    throw err;
  }
  return {
    kind: 'linux',
    name,
    hostIpv6: !!opts.hostIpv6,
    async addPort(dev) {
      if (!opts.hostIpv6) await disableIpv6(dev);
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
