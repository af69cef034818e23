// A LAN entirely inside network namespaces: one namespace holds a Linux bridge `br0` (with an
// address of its own, like a host's bridge), and each host is a namespace whose `eth0` is a
// veth plugged into the bridge, with the MAC and IP the test chooses (several hosts may share
// an IP). Nothing touches the root namespace, so any subnet works. Namespaces are named
// `ebpfnet-test-<pid>-<n>` like topology.ts's, so its cleanupLeftovers removes crashed runs'.
import { runCommand } from '../../engine/exec.js';
import { cleanupLeftovers, run, TOPOLOGY_NAMES, type CommandResult, type TeardownHost } from './netns.js';

export interface LanHostSpec {
  ip: string;
  mac: string;
}

export interface LanHost extends LanHostSpec {
  ns: string;
  /** Runs a command inside the host's namespace; rejects on failure. */
  inNs(argv: string[]): Promise<CommandResult>;
}

export interface BridgeLan {
  /** The bridge's namespace. */
  ns: string;
  bridge: 'br0';
  bridgeIp: string;
  bridgeMac: string;
  hosts: LanHost[];
  /** Runs a command inside the bridge's namespace; rejects on failure. */
  inNs(argv: string[]): Promise<CommandResult>;
}

/** Apart from createVethPair's counter (which starts at 0) in the same process. */
let created = 1000;

const inNamespace = (ns: string) => (argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv]);

async function addNamespace(t: TeardownHost): Promise<string> {
  const ns = `${TOPOLOGY_NAMES.test.netns}${process.pid}-${created++}`;
  t.after(() => runCommand('ip', ['netns', 'del', ns]));
  await run(['ip', 'netns', 'add', ns]);
  // No IPv6: no router or neighbour solicitations, only the ARP the test sends.
  await run(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

/** Builds the LAN (`prefix`.1 is the bridge's address) and registers its teardown with `t.after`. */
export async function createBridgeLan(t: TeardownHost, prefix: string, hosts: LanHostSpec[]): Promise<BridgeLan> {
  await cleanupLeftovers();
  const bridgeIp = `${prefix}.1`;
  const bridgeMac = '02:00:00:00:01:01';
  const ns = await addNamespace(t);
  await run(['ip', '-n', ns, 'link', 'add', 'br0', 'address', bridgeMac, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  await run(['ip', '-n', ns, 'link', 'set', 'br0', 'up']);
  await run(['ip', '-n', ns, 'addr', 'add', `${bridgeIp}/24`, 'dev', 'br0']);
  const built: LanHost[] = [];
  for (const [i, h] of hosts.entries()) {
    const hostNs = await addNamespace(t);
    const port = `p${i + 1}`;
    await run(['ip', '-n', ns, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', hostNs]);
    await run(['ip', '-n', ns, 'link', 'set', port, 'master', 'br0', 'up']);
    await run(['ip', '-n', hostNs, 'link', 'set', 'eth0', 'address', h.mac, 'up']);
    await run(['ip', '-n', hostNs, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
    built.push({ ...h, ns: hostNs, inNs: inNamespace(hostNs) });
  }
  await waitForwarding(ns, hosts.length);
  return { ns, bridge: 'br0', bridgeIp, bridgeMac, hosts: built, inNs: inNamespace(ns) };
}

/** Until every port forwards (bridge port state 3). */
async function waitForwarding(ns: string, ports: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const states = await Promise.all(
      Array.from({ length: ports }, (_, p) => runCommand('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/p${p + 1}/brport/state`]).then((r) => r.stdout.trim())),
    );
    if (states.every((s) => s === '3')) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`the ports of br0 in ${ns} do not forward after 2s`);
}
