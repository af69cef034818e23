// The runtime end to end on the selftest object: filters set before load, every attach kind
// that works on this kernel, exact counts in the hash map and the ring buffer in batches.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { closeAll } from '../../engine/native/guard.js';
import { u32Key } from '../../engine/native/map.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { RingBufferReader, type RingBatch } from '../../engine/native/ringbuf.js';
import { decodeEvent, libcPath, ownComm, SOURCE } from './support.js';
import { RUNNING_KERNEL } from '../helpers/running-kernel.js';

after(() => closeAll());

function count(obj: BpfObject, source: number): number {
  const v = obj.map('counts').lookup(u32Key(source));
  return v ? Number(v.readBigUInt64LE(0)) : 0;
}

/** Collects batches until `total` events arrived (or the time runs out). */
async function collect(reader: RingBufferReader, total: number, timeoutMs = 5000): Promise<RingBatch[]> {
  const batches: RingBatch[] = [];
  let n = 0;
  const timer = setTimeout(() => reader.stop(), timeoutMs);
  try {
    while (n < total) {
      const b = await reader.next();
      if (!b) break;
      batches.push(b);
      n += b.count;
    }
  } finally {
    clearTimeout(timer);
  }
  return batches;
}

function openSelftest(globals: Record<string, number>, extra: Parameters<typeof BpfObject.open>[1] = {}): BpfObject {
  return BpfObject.open(bpfObjectPath('selftest'), { ...extra, globals });
}

test('tracepoint: N getppid() calls of this thread → count N and N ring events in batches, 0 lost', async (t) => {
  const N = 50;
  const obj = openSelftest({ targ_tgid: process.pid, targ_tid: process.pid });
  try {
    obj.load();
    const link = obj.program('st_tracepoint').attach();
    assert.equal(link.kind, 'auto');
    assert.equal(link.target, 'tracepoint/syscalls/sys_enter_getppid');
    t.diagnostic(`load ${obj.loadMs!.toFixed(1)} ms, attach ${link.attachMs.toFixed(2)} ms`);
    const reader = new RingBufferReader(obj.map('events'), { lostMap: obj.map('lost'), maxBatch: 16 });
    for (let i = 0; i < N; i++) void process.ppid;
    const batches = await collect(reader, N);
    reader.stop();

    assert.equal(count(obj, SOURCE.tracepoint), N);
    const events = batches.flatMap((b) => [...b].map(decodeEvent));
    assert.equal(events.length, N);
    assert.ok(batches.length >= Math.ceil(N / 16), `${batches.length} batches`);
    assert.ok(batches.every((b) => b.count <= 16));
    assert.equal(reader.lost(), 0);
    assert.deepEqual(reader.stats.events, N);
    const comm = ownComm();
    for (const e of events) {
      assert.equal(e.tgid, process.pid);
      assert.equal(e.tid, process.pid);
      assert.equal(e.source, SOURCE.tracepoint);
      assert.equal(e.seq, 0);
      assert.equal(e.comm, comm);
    }
    // Timestamps are monotonic in production order.
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.tsNs >= events[i - 1]!.tsNs);

    // The stack map holds the kernel stack each event points to, where the kernel gives a
    // syscall tracepoint one (6.1 does not: bpf_get_stackid fails there).
    if (RUNNING_KERNEL.syscallTracepointKstack) {
      const ips = obj.map('stacks').readStack(events[0]!.kstackId);
      assert.ok(ips.length > 0, 'no kernel stack');
      assert.ok(ips.every((ip) => ip >= 0xffff800000000000n), 'kernel stacks hold kernel addresses');
    } else assert.ok(events.every((e) => e.kstackId < 0), `stack ids ${events.map((e) => e.kstackId).join(' ')}`);
    assert.deepEqual(obj.map('stacks').readStack(-14), []);
  } finally {
    obj.close();
  }
});

test('tp_btf and raw_tp count the same calls; the filter ignores other processes', async () => {
  const N = 40;
  const obj = openSelftest({ targ_tgid: process.pid, targ_tid: process.pid, burst: 0 });
  try {
    obj.load();
    const links = [
      obj.program('st_tracepoint').attachTracepoint('syscalls', 'sys_enter_getppid'),
      obj.program('st_tp_btf').attachTrace(),
      obj.program('st_raw_tp').attachRawTracepoint('sys_enter'),
    ];
    assert.deepEqual(
      links.map((l) => [l.kind, l.target]),
      [
        ['tracepoint', 'syscalls:sys_enter_getppid'],
        ['trace', 'tp_btf/sys_enter'],
        ['raw_tracepoint', 'sys_enter'],
      ],
    );
    // Another process making the same calls is filtered out.
    const other = spawn(process.execPath, ['-e', 'for (let i = 0; i < 100; i++) process.ppid']);
    const [code] = (await once(other, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.equal(count(obj, SOURCE.tracepoint), 0);

    for (let i = 0; i < N; i++) void process.ppid;
    assert.equal(count(obj, SOURCE.tracepoint), N);
    assert.equal(count(obj, SOURCE.tpBtf), N);
    assert.equal(count(obj, SOURCE.rawTp), N);
    for (const l of links) assert.equal(l.detach(), true);
    for (let i = 0; i < 5; i++) void process.ppid;
    assert.equal(count(obj, SOURCE.tracepoint), N, 'a detached program counts nothing');
  } finally {
    obj.close();
  }
});

test('the pid filter selects another process when told to', async () => {
  const M = 30;
  // The child waits for a line on stdin, then calls getppid() M times.
  const child = spawn(
    process.execPath,
    ['-e', `process.stdin.once('data', () => { for (let i = 0; i < ${M}; i++) process.ppid; process.exit(0); })`],
    { stdio: ['pipe', 'ignore', 'inherit'] },
  );
  const obj = openSelftest({ targ_tgid: child.pid!, burst: 0 });
  try {
    obj.load();
    obj.program('st_tracepoint').attach();
    for (let i = 0; i < 20; i++) void process.ppid; // ours: filtered out
    child.stdin!.write('go\n');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.equal(count(obj, SOURCE.tracepoint), M);
  } finally {
    obj.close();
    child.kill();
  }
});

test('uprobe and uretprobe on libc getuid(), limited to this process', () => {
  const K = 25;
  const obj = openSelftest({ targ_tgid: process.pid, targ_tid: process.pid, burst: 0 });
  try {
    obj.load();
    const binary = libcPath();
    const up = obj.program('st_uprobe').attachUprobe({ binary, func: 'getuid', pid: process.pid });
    const ret = obj.program('st_uretprobe').attachUretprobe({ binary, func: 'getuid', pid: process.pid });
    assert.equal(up.kind, 'uprobe');
    assert.equal(up.target, `${binary}:getuid`);
    for (let i = 0; i < K; i++) process.getuid!();
    assert.equal(count(obj, SOURCE.uprobe), K);
    assert.equal(count(obj, SOURCE.uretprobe), K);
  } finally {
    obj.close();
  }
});

test('a slow consumer pauses the reader; a full ring counts what it lost', async () => {
  const obj = openSelftest({ targ_tgid: process.pid, targ_tid: process.pid, burst: 200 }, { maxEntries: { events: 4096 } });
  try {
    obj.load();
    obj.program('st_tracepoint').attach();
    const reader = new RingBufferReader(obj.map('events'), { lostMap: obj.map('lost'), maxBatch: 16, highWaterMark: 2 });
    void process.ppid; // 200 events into a one-page ring: 4096 / (48 + 8) = 73 fit
    // The reader reads them when the event loop gets to it: soon here, seconds later on a busy one-CPU lab.
    for (const deadline = Date.now() + 10_000; !reader.stats.paused && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    assert.equal(reader.stats.paused, true, 'two queued batches pause reading');
    let delivered = 0;
    while (delivered + reader.lost() < 200) {
      const b = await reader.next();
      assert.ok(b);
      delivered += b.count;
    }
    assert.equal(reader.stats.paused, false, 'draining the queue resumes reading');
    reader.stop();
    assert.equal(delivered, 73);
    assert.equal(reader.lost(), 200 - 73);
  } finally {
    obj.close();
  }
});

test('ring buffer throughput: a million events delivered in batches with zero loss', async (t) => {
  const BURST = 2048;
  const CALLS = 512; // 1,048,576 events
  const obj = openSelftest(
    { targ_tgid: process.pid, targ_tid: process.pid, burst: BURST },
    { maxEntries: { events: 32 << 20 } },
  );
  try {
    const t0 = performance.now();
    obj.load();
    const t1 = performance.now();
    obj.program('st_tracepoint').attach();
    const t2 = performance.now();
    const reader = new RingBufferReader(obj.map('events'), { lostMap: obj.map('lost') });
    let delivered = 0;
    let batches = 0;
    const consumer = (async () => {
      for await (const b of reader) {
        delivered += b.count;
        batches++;
        if (delivered >= BURST * CALLS) break;
      }
    })();
    const started = performance.now();
    // Produce in slices so that consumption overlaps production.
    for (let done = 0; done < CALLS; done += 8) {
      for (let i = 0; i < 8; i++) void process.ppid;
      await new Promise((r) => setImmediate(r));
    }
    await Promise.race([consumer, new Promise((r) => setTimeout(r, 20_000))]);
    const seconds = (performance.now() - started) / 1000;
    reader.stop();
    assert.equal(reader.lost(), 0);
    assert.equal(delivered, BURST * CALLS);
    assert.ok(batches > 1);
    t.diagnostic(
      `load ${(t1 - t0).toFixed(1)} ms, attach ${(t2 - t1).toFixed(2)} ms; ` +
        `${delivered} events in ${batches} batches, ${Math.round(delivered / seconds).toLocaleString('en')} events/s`,
    );
  } finally {
    obj.close();
  }
});
