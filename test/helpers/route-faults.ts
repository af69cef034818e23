// Routing faults in veth-pair namespaces, built the same for net.path's tests and for the
// findings the recorder keeps.
import { execa } from 'execa';
import { run, type VethPair } from './netns.js';

/** `10.a.b` of the pair's subnet, for addresses of the test's own. */
export const baseOf = (pair: VethPair) => pair.subnet.split('.').slice(0, 3).join('.');

/** A second veth pair living wholly inside the namespace: somewhere else for routes to go. */
export async function sideLink(pair: VethPair, mtu = 1500): Promise<void> {
  await pair.inNs(['ip', 'link', 'add', 'side0', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'side1']);
  await pair.inNs(['ip', 'link', 'set', 'side0', 'up']);
  await pair.inNs(['ip', 'link', 'set', 'side1', 'mtu', String(mtu), 'up']);
  await pair.inNs(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'side0']);
}

/**
 * Strict rp_filter on the namespace's end, and an address `far` (returned) that the namespace
 * routes out of side0 but the host sends from through the pair: the namespace refuses those.
 */
export async function asymmetricSource(pair: VethPair): Promise<string> {
  await sideLink(pair);
  const far = `${baseOf(pair)}.150`;
  await pair.inNs(['ip', 'route', 'add', `${far}/32`, 'dev', 'side0']);
  await pair.inNs(['sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=0', `net.ipv4.conf.${pair.peerDev}.rp_filter=1`]);
  await run(['ip', 'addr', 'add', `${far}/32`, 'dev', pair.hostDev]);
  return far;
}

/**
 * host --veth--> namespace (forwarding) --side0 (MTU 1000)--> ...: returns the address whose
 * DF packets larger than 1000 bytes the namespace cannot forward (it counts each in FragFails).
 */
export async function fragmentingRouter(pair: VethPair): Promise<string> {
  await sideLink(pair, 1000);
  const dst = `${baseOf(pair)}.200`;
  await pair.inNs(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  await pair.inNs(['ip', 'route', 'add', `${dst}/32`, 'dev', 'side0']);
  // More specific than the connected /24: goes to the namespace (removed with the device).
  // `mtu lock`: the host ignores the namespace's "fragmentation needed", so every ping goes out.
  await run(['ip', 'route', 'add', `${dst}/32`, 'via', pair.peerIp, 'dev', pair.hostDev, 'mtu', 'lock', '1500']);
  return dst;
}

/** Pings `dst` from the host through `dev` (argv beyond the basics in `extra`); how many went out. */
export async function pingCount(dst: string, dev: string, extra: string[] = []): Promise<number> {
  const r = await execa('ping', ['-n', '-q', '-c', '3', '-i', '0.05', '-W', '1', '-I', dev, ...extra, dst], { reject: false, env: { LC_ALL: 'C' } });
  return Number(/(\d+) packets transmitted/.exec(String(r.stdout))?.[1] ?? 0);
}
