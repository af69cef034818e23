// The flood both overhead benchmarks use: a veth pair into a namespace whose nftables input
// rule drops UDP to one port, and a sender in its own process pushing 64-byte datagrams at
// it as fast as it can. Every datagram crosses the host's xmit, qdisc and receive hooks.
import { spawnSync } from 'node:child_process';
import { createVethPair, run } from '../helpers/netns.js';

export const FLOOD_PORT = 9999;
/** The sender's own port, fixed so a probe that follows one flow (other.udp-path) can name it. */
export const FLOOD_SRC_PORT = 9998;

/**
 * Datagrams per second a sender in its own process reached for `seconds`, from `srcPort` (0: any
 * free port, when another benchmark may hold the fixed one); 0 when the sender failed.
 */
export function flood(target: string, seconds: number, srcPort = FLOOD_SRC_PORT): number {
  const script = `
    const s = require('node:dgram').createSocket('udp4'); s.bind(${srcPort}); const buf = Buffer.alloc(64);
    const end = Date.now() + ${seconds * 1000}; let n = 0;
    function burst() { for (let i = 0; i < 256; i++) { s.send(buf, ${FLOOD_PORT}, '${target}'); n++; }
      if (Date.now() < end) setImmediate(burst); else s.close(() => console.log(n)); }
    burst();`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  return Number(r.stdout.trim()) / seconds;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export type FloodPair = Awaited<ReturnType<typeof createVethPair>>;

/** The pair with its drop rule, and the peer's MAC pinned so no ARP interrupts a flood. */
export async function floodPair(): Promise<FloodPair> {
  const pair = await createVethPair(undefined);
  await pair.inNs(['nft', 'add', 'table', 'inet', 'bench']);
  await pair.inNs(['nft', 'add', 'chain', 'inet', 'bench', 'in', '{ type filter hook input priority 0; }']);
  await pair.inNs(['nft', 'add', 'rule', 'inet', 'bench', 'in', 'udp', 'dport', String(FLOOD_PORT), 'drop']);
  const mac = (await pair.inNs(['cat', `/sys/class/net/${pair.peerDev}/address`])).stdout.trim();
  await run(['ip', 'neigh', 'replace', pair.peerIp, 'lladdr', mac, 'dev', pair.hostDev]);
  return pair;
}
