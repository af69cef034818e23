// Faults the host-drops runbook must tell apart, injected for real on a veth pair
// (host side in the root namespace, like a VM's tap), and traffic to reveal them.
import { createVethPair, run, type TeardownHost, type VethPair } from '../helpers/netns.js';

export type HostFault = 'none' | 'qdisc' | 'mtu';

export interface FaultLab {
  pair: VethPair;
  fault: HostFault;
  /** Sends pings through the pair for `seconds`, shaped so the fault drops some. */
  traffic(seconds: number): Promise<void>;
  teardown(): Promise<void>;
}

/**
 * qdisc: a tbf qdisc shaping the host side to 8 kbit/s with a one-packet queue, so a
 *   ping burst overflows it (tc counts the drops; the interface does not).
 * mtu: the peer's MTU is 1000 while the host side's is 1500; pings of 1200 bytes are
 *   dropped by veth when it hands them to the peer.
 * none: a healthy pair.
 */
export async function buildFaultLab(t: TeardownHost | undefined, fault: HostFault): Promise<FaultLab> {
  const pair = await createVethPair(t, fault === 'mtu' ? { peerMtu: 1000 } : {});
  if (fault === 'qdisc') {
    await run(['tc', 'qdisc', 'add', 'dev', pair.hostDev, 'root', 'handle', '1:', 'tbf', 'rate', '8kbit', 'burst', '1600', 'limit', '1600']);
  }
  const size = fault === 'mtu' ? 1200 : 600;
  return {
    pair,
    fault,
    async traffic(seconds: number) {
      await pair.ping({ count: Math.max(1, Math.round(seconds * 50)), interval: 0.02, size, deadline: seconds + 1, wait: 1 });
    },
    teardown: () => pair.teardown(),
  };
}
