// Streams a BPF ring buffer map to JavaScript as batches of raw events.
//
// The addon watches the ring buffer's epoll fd on the libuv loop and, each time it is
// readable, consumes batches of up to `maxBatch` events, each copied into one Buffer (see
// native/ringbuf.h for why not a thread). Batches queue here until iterated; past `highWaterMark` queued batches the
// reader pauses, the kernel ring fills, and the BPF program counts what it could not
// reserve: read that count with lost() from the map the program keeps it in.
import { addon, type NativeRingReader } from './addon.js';
import { nativeCall, toBpfError } from './errors.js';
import { u32Key, type BpfMap } from './map.js';

export interface RingReaderOptions {
  /** Most events per batch (default 8192). */
  maxBatch?: number;
  /** Most bytes per batch (default 4 MiB). */
  maxBytes?: number;
  /** Queued batches at which reading pauses until the consumer catches up (default 64). */
  highWaterMark?: number;
  /** A map holding the producer's count of events it could not reserve, u64 at key 0 (per-CPU or not). */
  lostMap?: BpfMap;
}

/** Events delivered together: `data` holds them back to back. */
export class RingBatch {
  constructor(
    readonly data: Buffer,
    /** ends[i] is the offset just past event i. */
    readonly ends: Uint32Array,
  ) {}

  get count(): number {
    return this.ends.length;
  }

  /** Event i (a view into `data`). */
  at(i: number): Buffer {
    const start = i === 0 ? 0 : this.ends[i - 1]!;
    return this.data.subarray(start, this.ends[i]);
  }

  *[Symbol.iterator](): Generator<Buffer> {
    for (let i = 0; i < this.ends.length; i++) yield this.at(i);
  }
}

export class RingBufferReader implements AsyncIterable<RingBatch> {
  private readonly native: NativeRingReader;
  private readonly queue: RingBatch[] = [];
  private readonly waiting: Array<{ resolve: (b: RingBatch | null) => void; reject: (e: unknown) => void }> = [];
  private readonly highWaterMark: number;
  private readonly lostMap: BpfMap | undefined;
  private paused = false;
  private done = false;
  private failure: unknown;

  constructor(map: BpfMap, opts: RingReaderOptions = {}) {
    this.highWaterMark = Math.max(1, opts.highWaterMark ?? 64);
    this.lostMap = opts.lostMap;
    const lib = addon();
    this.native = nativeCall(
      () =>
        new lib.NativeRingReader(
          map.native,
          (data, ends) => this.push(new RingBatch(data, ends)),
          (err) => this.fail(toBpfError(err)),
          () => this.end(),
          { maxBatch: opts.maxBatch, maxBytes: opts.maxBytes },
        ),
    );
  }

  /** Events, batches and bytes delivered so far. */
  get stats(): NativeRingReader['stats'] {
    return this.native.stats;
  }

  /** Events the producer could not reserve (0 without a lostMap). */
  lost(): number {
    return this.lostMap ? Number(this.lostMap.sumU64(u32Key(0))) : 0;
  }

  /** The next batch, or null once stopped and drained. */
  next(): Promise<RingBatch | null> {
    const batch = this.queue.shift();
    if (batch) {
      this.maybeResume();
      return Promise.resolve(batch);
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.done) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /**
   * Stops reading: what is still in the ring becomes a last batch, then iteration ends.
   * Safe to call more than once, and after closeAll().
   */
  stop(): void {
    if (this.done) return;
    const last = nativeCall(() => this.native.stop());
    if (last) this.push(new RingBatch(last.data, last.ends));
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RingBatch> {
    for (;;) {
      const batch = await this.next();
      if (!batch) return;
      yield batch;
    }
  }

  private push(batch: RingBatch): void {
    const w = this.waiting.shift();
    if (w) {
      w.resolve(batch);
      return;
    }
    this.queue.push(batch);
    if (!this.paused && !this.done && this.queue.length >= this.highWaterMark) {
      this.native.pause();
      this.paused = true;
    }
  }

  private maybeResume(): void {
    if (this.paused && !this.done && this.queue.length <= this.highWaterMark / 2) {
      this.paused = false;
      if (this.native.stats.running) this.native.resume();
    }
  }

  /** No more batches: stopped here, by closeAll() or by closing the object. */
  private end(): void {
    this.done = true;
    for (const w of this.waiting.splice(0)) w.resolve(null);
  }

  private fail(err: unknown): void {
    this.failure = err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }
}
