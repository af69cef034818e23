// Sends UDP datagrams (IPv4 or IPv6) from whatever namespace it runs in: ns-endpoints.ts runs
// it with `ip netns exec <ns> node …`, since a Node process cannot send from another namespace.
//   node dist/test/helpers/ns-udp-send.js '{"to":"fd00::2","port":9,"count":20,"newSocketEach":true}'
// Prints how many it sent.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { UdpFromOptions } from './ns-endpoints.js';

const o = JSON.parse(process.argv[2] ?? '{}') as UdpFromOptions;
const family = isIPv6(o.to) ? 'udp6' : 'udp4';
const send = (s: Socket, i: number) => new Promise<void>((resolve, reject) => s.send(Buffer.alloc(32, i), o.port, o.to, (err) => (err ? reject(err) : resolve())));
const pause = () => new Promise((resolve) => setTimeout(resolve, o.intervalMs ?? 1));

let sent = 0;
let shared: Socket | undefined;
const bound = (i: number) =>
  new Promise<Socket>((resolve, reject) => {
    const s = createSocket(family);
    s.once('error', reject);
    s.bind(o.srcPortBase === undefined ? 0 : o.srcPortBase + i, () => resolve(s));
  });
for (let i = 0; i < o.count; i++) {
  const s = o.newSocketEach ? await bound(i) : (shared ??= createSocket(family));
  await send(s, i);
  sent++;
  if (o.newSocketEach) s.close();
  await pause();
}
shared?.close();
process.stdout.write(`${sent}\n`);
