// One small client for the two JSON protocols QEMU speaks on a unix socket: QMP (the
// monitor) and QGA (the guest agent, relayed by QEMU from a virtio-serial port). Both send
// JSON objects on a byte stream with no framing (QMP's -qmp-pretty spreads one over many
// lines), so a streaming JSON parser cuts them, not newlines. Every exchange has one
// deadline: a chardev server serves one client at a time and leaves the others waiting in
// its backlog, and an agent that is not running never answers; neither may hang discovery.
import { connect, type Socket } from 'node:net';
import { JSONParser } from '@streamparser/json';

export type QemuMessage = Record<string, unknown>;

/** Why an exchange ended without an answer: the socket could not be opened, or no answer came in time. */
export class QemuSocketError extends Error {
  constructor(
    message: string,
    readonly reason: 'unreachable' | 'timeout' | 'closed' | 'protocol',
  ) {
    super(message);
    this.name = 'QemuSocketError';
  }
}

/** QGA's guest-sync-delimited answer is preceded by this byte, which no UTF-8 text holds. */
const SENTINEL = 0xff;

export class QemuJsonConnection {
  private parser = this.newParser();
  private readonly queue: QemuMessage[] = [];
  private waiter: { resolve: (m: QemuMessage) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private skippingToSentinel = false;
  private nextId = 1;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('close', () => this.fail(new QemuSocketError('the socket closed before an answer', 'closed')));
    socket.on('error', (err) => this.fail(new QemuSocketError(err.message, 'closed')));
  }

  /** The next JSON object on the stream. */
  next(): Promise<QemuMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  send(message: QemuMessage): void {
    this.socket.write(JSON.stringify(message));
  }

  /**
   * Runs `command` and returns its `return` value; QMP events and answers to other ids
   * (an earlier client's, left in the agent's queue) are skipped. An `error` answer rejects.
   */
  async execute(command: string, args?: QemuMessage): Promise<unknown> {
    const id = `ebpfnet-${this.nextId++}`;
    this.send({ execute: command, ...(args ? { arguments: args } : {}), id });
    for (;;) {
      const m = await this.next();
      if (m.id !== undefined && m.id !== id) continue;
      if ('return' in m) return m.return;
      if ('error' in m) {
        const e = m.error as { class?: unknown; desc?: unknown } | undefined;
        throw new QemuSocketError(`${command}: ${String(e?.desc ?? JSON.stringify(m.error))}`, 'protocol');
      }
      // an event ({"event": ...}) or the QMP greeting: not an answer
    }
  }

  /**
   * QGA's handshake (qga/qapi-schema.json, guest-sync-delimited): a 0xFF byte makes the
   * agent drop what a previous client left half-sent; its answer comes after a 0xFF byte,
   * and whatever precedes that byte is stale. Then the answer carrying our number.
   */
  async syncGuestAgent(): Promise<void> {
    const token = Math.floor(Math.random() * 0x7fffffff);
    this.queue.length = 0;
    this.skippingToSentinel = true;
    this.socket.write(Buffer.from([SENTINEL]));
    this.send({ execute: 'guest-sync-delimited', arguments: { id: token } });
    for (;;) {
      const m = await this.next();
      if (m.return === token) return;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.waiter?.reject(err);
    this.waiter = null;
  }

  private newParser(): JSONParser {
    const parser = new JSONParser({ paths: ['$'], separator: '', keepStack: false });
    parser.onValue = ({ value }) => {
      if (value && typeof value === 'object' && !Array.isArray(value)) this.deliver(value as QemuMessage);
    };
    parser.onError = (err) => this.fail(new QemuSocketError(`not JSON: ${err.message}`, 'protocol'));
    return parser;
  }

  private deliver(m: QemuMessage): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(m);
    } else this.queue.push(m);
  }

  private feed(chunk: Buffer): void {
    if (this.skippingToSentinel) {
      const at = chunk.indexOf(SENTINEL);
      if (at < 0) return;
      this.skippingToSentinel = false;
      this.parser = this.newParser(); // a fresh parser: the stale bytes may have left it mid-value
      chunk = chunk.subarray(at + 1);
    }
    if (chunk.length && !this.failure) this.parser.write(chunk);
  }
}

/**
 * Connects to the unix socket `path` and runs `talk` on it, all within `timeoutMs`; the
 * socket is closed afterwards whatever happened. Rejects with a QemuSocketError saying
 * what went wrong ('timeout' when nothing, or not enough, came back in time).
 */
export async function withQemuSocket<T>(path: string, timeoutMs: number, talk: (c: QemuJsonConnection) => Promise<T>): Promise<T> {
  const socket = connect(path);
  const conn = new QemuJsonConnection(socket);
  let timer: NodeJS.Timeout | undefined;
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (err: NodeJS.ErrnoException) => reject(new QemuSocketError(`cannot connect to ${path}: ${err.code ?? err.message}`, 'unreachable')));
  });
  connected.catch(() => undefined); // an error after the deadline has nobody to tell
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new QemuSocketError(`no answer on ${path} within ${timeoutMs} ms`, 'timeout');
      conn.fail(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    return await Promise.race([connected.then(() => talk(conn)), deadline]);
  } finally {
    clearTimeout(timer);
    conn.close();
  }
}
