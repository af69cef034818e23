// Traffic for the tests of the probes on net_dev_start_xmit (other.offload, other.vlan-udp):
// bulk TCP and UDP with UDP_SEGMENT sent from a veth pair's namespace end, a VLAN tagger on its
// egress (this kernel has no 8021q), the flavours of a program loaded one by one, and a gate
// that starts traffic once every concurrent probe run is attached.
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { loadFirstWorking, type TracepointMethod } from '../../engine/native/attach-plan.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { bpfObjectPath, type BpfObject } from '../../engine/native/object.js';
import { xmitOpen, xmitPlan } from '../../probes/lib/xmit.js';
import { run, type TeardownHost, type VethPair } from './netns.js';

/** A TCP server on the host's end that counts what it receives. */
export async function tcpSink(t: TeardownHost, pair: VethPair): Promise<{ port: number; received: () => number }> {
  let received = 0;
  const server = createServer((s) => s.on('data', (d: Buffer) => (received += d.length)));
  server.listen(0, pair.hostIp);
  await once(server, 'listening');
  t.after(() => server.close());
  return { port: (server.address() as AddressInfo).port, received: () => received };
}

/** Sends `bytes` over one TCP connection from the namespace's end to `port` on the host's end (one write, then close). */
export async function tcpFromNs(pair: VethPair, port: number, bytes: number): Promise<void> {
  const script = `const s = require('node:net').connect(${port}, ${JSON.stringify(pair.hostIp)}, () => s.end(Buffer.alloc(${bytes}, 0x61)));
s.on('close', () => process.exit(0));`;
  await pair.inNs([process.execPath, '-e', script]);
}

/** Sends `n` UDP datagrams of `size` bytes with UDP_SEGMENT `segment` (the stack's UDP GSO) from the namespace's end to the host's end. */
export async function udpGsoFromNs(pair: VethPair, n: number, segment: number, size: number, port: number): Promise<void> {
  const script = `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_UDP, 103, ${segment})  # UDP_SEGMENT
for _ in range(${n}):
    s.sendto(b'a' * ${size}, (${JSON.stringify(pair.hostIp)}, ${port}))`;
  await pair.inNs(['python3', '-c', script]);
}

/**
 * Sends `rounds` rounds of one UDP datagram per entry of `kinds` (payload bytes, destination port)
 * from one socket on the namespace's end to the host's end, in that order each round: packets of
 * other keys in between, so a program's per-CPU ways (bpf/include/pending.h) keep changing key.
 */
export async function udpInterleaved(pair: VethPair, rounds: number, kinds: Array<{ payload: number; port: number }>, cpu = 0): Promise<void> {
  const script = `const s = require('node:dgram').createSocket('udp4');
const kinds = ${JSON.stringify(kinds)};
s.bind({ address: ${JSON.stringify(pair.peerIp)} }, async () => {
  for (let r = 0; r < ${rounds}; r++)
    for (const k of kinds) await new Promise((ok, fail) => s.send(Buffer.alloc(k.payload, 0x61), k.port, ${JSON.stringify(pair.hostIp)}, (err) => (err ? fail(err) : ok())));
  s.close();
});`;
  await pair.inNs(['taskset', '-c', String(cpu), process.execPath, '-e', script]);
}

/**
 * Tags UDP leaving `dev` (the pair's namespace end) to port 20000 + N with VLAN N
 * (test/native/fixtures/vlan-tag.bpf.c on tc egress, a hardware-accelerated tag).
 */
export async function vlanTagger(pair: VethPair): Promise<void> {
  await run(['tc', '-n', pair.ns, 'qdisc', 'add', 'dev', pair.peerDev, 'clsact']);
  await run(['tc', '-n', pair.ns, 'filter', 'add', 'dev', pair.peerDev, 'egress', 'bpf', 'direct-action', 'obj', bpfObjectPath('fixtures/vlan-tag'), 'sec', 'tc']);
}

/** The UDP port that vlanTagger tags with `vlan`. */
export const vlanPort = (vlan: number) => 20000 + vlan;

/** A traffic function for `n` concurrent probe runs: the last to arrive sends `traffic`, and every run waits for it. */
export function gate(n: number, traffic: () => Promise<void>): () => Promise<void> {
  let arrived = 0;
  let release!: (err?: unknown) => void;
  const sent = new Promise<void>((resolve, reject) => (release = (err) => (err ? reject(err) : resolve())));
  return async () => {
    if (++arrived === n) await traffic().then(() => release(), release);
    await sent;
  };
}

/**
 * Loads and attaches one flavour of an XMIT_PROGRAMS object with `globals`, runs `traffic`, reads
 * the maps with `read`. `ways`: entries of the `pending` ways (default: every CPU's).
 */
export async function countWithFlavour<D>(object: string, prefix: string, method: TracepointMethod, globals: Record<string, GlobalValue>, traffic: () => Promise<void>, read: (o: BpfObject) => D, ways?: number): Promise<D> {
  const plan = xmitPlan(prefix).filter((s) => s.method === method);
  const open = xmitOpen(globals);
  if (ways !== undefined) open.maxEntries = { pending: ways };
  const loaded = await loadFirstWorking(bpfObjectPath(object), plan, { what: `${object} (${method})`, open });
  try {
    await traffic();
    return read(loaded.obj);
  } finally {
    loaded.obj.close();
  }
}
