// Sends numbered UDP datagrams and counts the echoes that come back: the lab's traffic
// source inside a peer namespace (topology.ts runs it with `ip netns exec <ns> node …`,
// since a Node process cannot send from another namespace itself).
//   node dist/test/lab/udp-send.js '{"to":"10.251.3.2","port":7,"count":100,"expectEcho":true}'
// Prints one JSON line: { "sent": 100, "echoed": 100, "elapsedMs": 230 }. SIGTERM ends the
// sending early; the echoes are still awaited and the line printed. An array of options sends
// all those streams from the one process (a Node process per stream costs a slow lab its CPU)
// and prints an array of results, in order.
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';

export interface UdpSendOptions {
  to: string;
  port: number;
  count: number;
  /** Payload bytes (default 64, at least 8: the sequence number and a tag). */
  size?: number;
  /** Pause between datagrams (default 2 ms); 0 sends back to back. */
  intervalMs?: number;
  /** Wait for echoes and count them (port 7 of the lab guest echoes). */
  expectEcho?: boolean;
  /** How long to wait for echoes after the last datagram (default 1000 ms). */
  echoWaitMs?: number;
}

export interface UdpSendResult {
  sent: number;
  echoed: number;
  elapsedMs: number;
}

/** Sends to `o.to` (IPv4 or IPv6); `stop` ends the sending before `o.count`. */
export async function sendUdp(o: UdpSendOptions, stop?: AbortSignal): Promise<UdpSendResult> {
  const size = Math.max(8, o.size ?? 64);
  const tag = process.pid;
  const socket = createSocket(isIPv6(o.to) ? 'udp6' : 'udp4');
  const seen = new Set<number>();
  socket.on('message', (msg) => {
    // Count each of our datagrams once, whatever else arrives.
    if (msg.length >= 8 && msg.readUInt32BE(4) === tag) seen.add(msg.readUInt32BE(0));
  });
  await new Promise<void>((resolve) => socket.bind(0, resolve));
  const started = Date.now();
  let sent = 0;
  try {
    for (let seq = 0; seq < o.count && !stop?.aborted; seq++) {
      const payload = Buffer.alloc(size, 0x61);
      payload.writeUInt32BE(seq, 0);
      payload.writeUInt32BE(tag, 4);
      await new Promise<void>((resolve, reject) => socket.send(payload, o.port, o.to, (err) => (err ? reject(err) : resolve())));
      sent++;
      if ((o.intervalMs ?? 2) > 0) await sleep(o.intervalMs ?? 2);
    }
    if (o.expectEcho) {
      const deadline = Date.now() + (o.echoWaitMs ?? 1000);
      while (seen.size < sent && Date.now() < deadline) await sleep(10);
    }
  } finally {
    socket.close();
  }
  return { sent, echoed: seen.size, elapsedMs: Date.now() - started };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Run as a script: one JSON argument in, one JSON line out.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  const args = JSON.parse(process.argv[2] ?? '{}') as UdpSendOptions | UdpSendOptions[];
  const result = Array.isArray(args) ? await Promise.all(args.map((o) => sendUdp(o, stop.signal))) : await sendUdp(args, stop.signal);
  process.stdout.write(JSON.stringify(result) + '\n');
}
