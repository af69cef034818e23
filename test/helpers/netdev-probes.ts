// Helpers of the queueing probes' tests (other.qdisc-dequeue, other.dev-queue, other.tc):
// a veth pair without neighbour or IPv6 noise, UDP sent from inside its namespace, tc run
// there. The replay check is test/helpers/replay.ts.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params, ProbeDefinition } from '../../engine/probe/types.js';
import type { TempBundle } from './bundle.js';
import { createVethPair, run, type TeardownHost, type VethPair, type VethPairOptions } from './netns.js';

export function request(probe: string, params: Record<string, unknown>) {
  return { step: 'sample', alias: 'q', probe, params: params as Params };
}

/** A veth pair whose ends know each other's MAC for good: no ARP in a measurement window. */
export async function quietPair(t: TeardownHost, opts: VethPairOptions = {}): Promise<VethPair> {
  const pair = await createVethPair(t, { noIpv6: true, ...opts });
  const mac = async (argv: string[]) => (JSON.parse((await run(argv)).stdout) as Array<{ address: string }>)[0]!.address;
  const hostMac = await mac(['ip', '-j', 'link', 'show', 'dev', pair.hostDev]);
  const peerMac = await mac(['ip', '-n', pair.ns, '-j', 'link', 'show', 'dev', pair.peerDev]);
  await run(['ip', 'neigh', 'replace', pair.peerIp, 'lladdr', peerMac, 'dev', pair.hostDev, 'nud', 'permanent']);
  await run(['ip', '-n', pair.ns, 'neigh', 'replace', pair.hostIp, 'lladdr', hostMac, 'dev', pair.peerDev, 'nud', 'permanent']);
  return pair;
}

/**
 * Sends `n` UDP datagrams of `payload` bytes from the namespace's end to the host's end (port
 * `opts.port`, 9 by default), at once; from a sender pinned to CPU `opts.cpu` (taskset) when given.
 */
export async function udpFromNs(pair: VethPair, n: number, payload: number, opts: { cpu?: number; port?: number } = {}): Promise<void> {
  const script = `const s = require('node:dgram').createSocket('udp4');
s.bind({ address: ${JSON.stringify(pair.peerIp)} }, () => {
  let left = ${n};
  const buf = Buffer.alloc(${payload}, 0x61);
  for (let i = 0; i < ${n}; i++) s.send(buf, ${opts.port ?? 9}, ${JSON.stringify(pair.hostIp)}, (err) => { if (err) throw err; if (--left === 0) s.close(); });
});`;
  const pin = opts.cpu === undefined ? [] : ['taskset', '-c', String(opts.cpu)];
  await pair.inNs([...pin, process.execPath, '-e', script]);
}

/** A UDP socket on the host's end (port 9), closed when `t` ends, so that no ICMP port-unreachable goes back; counts what arrives. */
export async function udpSink(t: TeardownHost, pair: VethPair): Promise<{ received: () => number }> {
  const sock = createSocket('udp4');
  let received = 0;
  sock.on('message', () => received++);
  await new Promise<void>((resolve) => sock.bind({ address: pair.hostIp, port: 9 }, resolve));
  t.after(() => sock.close());
  return { received: () => received };
}

/** Ethernet frame bytes of a UDP/IPv4 datagram with `payload` bytes. */
export function udpFrameBytes(payload: number): number {
  return payload + 8 + 20 + 14;
}

/** tc's JSON statistics of the qdiscs of a device inside the pair's namespace. */
export async function nsQdiscStats(pair: VethPair, dev: string): Promise<Array<{ kind: string; handle: string; packets: number; bytes: number; drops: number }>> {
  return JSON.parse((await run(['tc', '-n', pair.ns, '-s', '-j', 'qdisc', 'show', 'dev', dev])).stdout) as Array<{ kind: string; handle: string; packets: number; bytes: number; drops: number }>;
}

