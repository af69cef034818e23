// The BTF decoder: layouts the addon reads from real objects, values written by a program and by
// hand (laid out byte by byte here, as test/native/fixtures/layouts.bpf.c documents them),
// per-CPU values, ring buffer records, and the 64-bit rule at its edges.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { BtfLayout } from '../../engine/native/addon.js';
import { compileLayout, sumPerCpu, type U64 } from '../../engine/native/btf-layout.js';
import { closeAll } from '../../engine/native/guard.js';
import { u32Key } from '../../engine/native/map.js';
import { BpfObject } from '../../engine/native/object.js';
import { RingBufferReader } from '../../engine/native/ringbuf.js';
import { fixtureObject, ownComm, withThreadTraced } from './support.js';

after(() => closeAll());

interface Inner {
  port: number;
  port_be: number;
  mac: Buffer;
}

interface All {
  count: U64;
  delta: U64;
  big: U64;
  safe_max: U64;
  small: number;
  negative: number;
  half: number;
  tiny: number;
  flag: boolean;
  comm: string;
  addr: Buffer;
  inner: Inner;
  pair: Inner[];
  pad0: number;
  words: number[];
  color: number;
  either: { word: number; bytes: Buffer };
  low: number;
  mid: number;
  high: number;
  sfield: number;
  ratio: number;
  anon_a: number;
  anon_b: number;
  addr_be: number;
  pad2: number;
}

function openLayouts(): BpfObject {
  const obj = BpfObject.open(fixtureObject('layouts'), { globals: { targ_tid: process.pid } });
  obj.load();
  obj.program('layouts_getppid').attach();
  return obj;
}

const int = (size: number, signed = false): BtfLayout => ({ kind: 'int', name: '', size, signed });

test('the addon describes a map key and value from the BTF the object was built with', () => {
  const obj = BpfObject.open(fixtureObject('layouts'));
  try {
    const { key, value } = obj.map('values').native.layout();
    assert.equal(key?.kind, 'struct');
    assert.equal(key?.name, 'layout_key');
    assert.equal(key?.size, 8);
    assert.equal(value?.size, 160);
    const at = Object.fromEntries(value!.members!.map((m) => [m.name, [m.bitOffset, m.bitSize]]));
    // The offsets the C source documents, the bitfields by bit.
    assert.deepEqual(at.comm, [44 * 8, 0]);
    assert.deepEqual(at.inner, [76 * 8, 0]);
    assert.deepEqual(at.pair, [86 * 8, 0]);
    assert.deepEqual(at.color, [120 * 8, 0]);
    assert.deepEqual(at.low, [128 * 8, 3]);
    assert.deepEqual(at.mid, [128 * 8 + 3, 9]);
    assert.deepEqual(at.high, [128 * 8 + 12, 20]);
    assert.deepEqual(at.sfield, [132 * 8, 5]);
    assert.deepEqual(at.addr_be, [152 * 8, 0]);
    const member = (name: string) => value!.members!.find((m) => m.name === name)!.type;
    assert.deepEqual(member('comm'), { kind: 'array', name: '', size: 16, length: 16, element: { kind: 'char', name: 'char', size: 1, signed: true } });
    assert.deepEqual(member('delta'), { kind: 'int', name: '__s64', size: 8, signed: true });
    assert.deepEqual(member('addr_be'), { kind: 'int', name: '__be32', size: 4, signed: false, bigEndian: true });
    assert.equal(member('flag').kind, 'bool');
    assert.equal(member('color').kind, 'enum');
    assert.equal(member('either').kind, 'union');
    assert.equal(member('ratio').kind, 'float');
    // A ring buffer has neither; a named struct is found, an unknown name is not.
    assert.deepEqual(obj.map('events').native.layout(), { key: null, value: null });
    assert.equal(obj.recordDecoder('layout_event') instanceof Function, true);
    assert.throws(() => obj.recordDecoder('no_such_struct'), /no type named no_such_struct/);
  } finally {
    obj.close();
  }
});

test('values a program wrote decode to the fields it set', () => {
  const obj = openLayouts();
  try {
    for (let i = 0; i < 3; i++) void process.ppid;
    const entries = obj.map('values').readAllDecoded<{ id: number; kind: number; pad: Buffer }, All>();
    assert.equal(entries.length, 1);
    const { key, value: v } = entries[0]!;
    assert.equal(key.id, 1);
    assert.equal(key.kind, 7);
    assert.equal(v.count, 3);
    assert.equal(v.delta, -(2 ** 40) - 5);
    assert.equal(v.big, 0xfedcba9876543210n);
    assert.equal(v.safe_max, Number.MAX_SAFE_INTEGER);
    assert.equal(v.small, process.pid);
    assert.equal(v.negative, -7);
    assert.equal(v.half, 0xbeef);
    assert.equal(v.tiny, -3);
    assert.equal(v.flag, true);
    assert.equal(v.comm, ownComm());
    assert.deepEqual([...v.addr], Array.from({ length: 16 }, (_, i) => i));
    assert.equal(v.inner.port, 8080);
    assert.equal(v.inner.port_be, 443);
    assert.deepEqual([...v.inner.mac], [2, 0, 0, 0, 0, 1]);
    assert.deepEqual(v.pair.map((p) => p.port), [0, 2]);
    assert.deepEqual(v.words, [1, 2, 3]);
    assert.equal(v.color, 2);
    assert.equal(v.either.word, 0x01020304);
    assert.deepEqual([...v.either.bytes], [4, 3, 2, 1]);
    assert.deepEqual([v.low, v.mid, v.high, v.sfield], [5, 300, 0xabcde, -9]);
    assert.deepEqual([v.anon_a, v.anon_b], [11, 12]);
    assert.equal(v.addr_be, 0x0a000001);
  } finally {
    obj.close();
  }
});

test('a struct laid out by hand byte by byte decodes to the same fields', () => {
  const obj = openLayouts();
  try {
    const key = Buffer.alloc(8);
    key.writeUInt32LE(42, 0);
    key.writeUInt8(9, 4);
    const b = Buffer.alloc(160);
    b.writeBigUInt64LE(2n ** 53n, 0); // count: past 2^53, a bigint
    b.writeBigInt64LE(-(2n ** 53n) + 1n, 8); // delta: the most negative safe integer
    b.writeBigUInt64LE(0n, 16);
    b.writeBigUInt64LE(2n ** 53n - 1n, 24);
    b.writeUInt32LE(0xffffffff, 32);
    b.writeInt32LE(-2147483648, 36);
    b.writeUInt16LE(65535, 40);
    b.writeInt8(-128, 42);
    b.writeUInt8(0, 43);
    b.write('sixteen-chars-ok', 44, 'latin1'); // no NUL: the whole array
    b.write('10.1', 60, 'latin1');
    b.writeUInt16LE(1, 76);
    b.writeUInt16BE(0x1234, 78);
    b.writeUInt16LE(3, 86 + 10);
    b.writeUInt32LE(7, 108 + 8);
    b.writeUInt32LE(1, 120);
    b.writeUInt32LE(0xdeadbeef, 124);
    b.writeUInt32LE(7 | (511 << 3) | (1 << 12), 128); // low 7, mid 511, high 1
    b.writeUInt32LE(0b10000, 132); // sfield: 5 bits, sign bit set: -16
    b.writeDoubleLE(0.25, 136);
    b.writeUInt32LE(21, 144);
    b.writeUInt32LE(22, 148);
    b.writeUInt8(192, 152);
    b.writeUInt8(168, 153);
    b.writeUInt8(0, 154);
    b.writeUInt8(1, 155);
    const values = obj.map('values');
    values.update(key, b);
    const entry = values.readAllDecoded<{ id: number; kind: number }, All>().find((e) => e.key.id === 42);
    assert.ok(entry);
    const v = entry.value;
    assert.equal(entry.key.kind, 9);
    assert.equal(v.count, 2n ** 53n);
    assert.equal(v.delta, Number.MIN_SAFE_INTEGER);
    assert.equal(v.big, 0);
    assert.equal(v.safe_max, Number.MAX_SAFE_INTEGER);
    assert.equal(v.small, 0xffffffff);
    assert.equal(v.negative, -2147483648);
    assert.equal(v.half, 65535);
    assert.equal(v.tiny, -128);
    assert.equal(v.flag, false);
    assert.equal(v.comm, 'sixteen-chars-ok');
    assert.equal(v.addr.subarray(0, 4).toString('latin1'), '10.1');
    assert.deepEqual(v.inner, { port: 1, port_be: 0x1234, mac: Buffer.alloc(6) });
    assert.deepEqual(v.pair[1], { port: 3, port_be: 0, mac: Buffer.alloc(6) });
    assert.deepEqual(v.words, [0, 0, 7]);
    assert.equal(v.color, 1);
    assert.equal(v.either.word, 0xdeadbeef);
    assert.deepEqual([v.low, v.mid, v.high, v.sfield], [7, 511, 1, -16]);
    assert.equal(v.ratio, 0.25);
    assert.deepEqual([v.anon_a, v.anon_b], [21, 22]);
    assert.equal(v.addr_be, 0xc0a80001); // 192.168.0.1
  } finally {
    obj.close();
  }
});

test('per-CPU values decode per CPU and sum, with max fields kept as the largest', () => {
  const obj = openLayouts();
  try {
    const percpu = obj.map('percpu');
    const { lookupSize } = percpu.info;
    const cpus = lookupSize / 40;
    assert.ok(Number.isInteger(cpus) && cpus >= 1);
    const raw = Buffer.alloc(lookupSize);
    for (let c = 0; c < cpus; c++) {
      raw.writeBigUInt64LE(BigInt(c + 1), c * 40);
      raw.writeBigUInt64LE(BigInt(100 * c), c * 40 + 8);
      raw.writeUInt32LE(c, c * 40 + 16 + 4);
      raw.write(`c${c}`, c * 40 + 32, 'latin1');
    }
    percpu.update(u32Key(1), raw);
    type Counts = { packets: number; max_ns: number; slots: number[]; tag: string };
    const values = percpu.lookupPerCpu<Counts>(u32Key(1))!;
    assert.equal(values.length, cpus);
    assert.deepEqual(values.map((v) => v.tag), Array.from({ length: cpus }, (_, c) => `c${c}`));
    const sum = sumPerCpu(values, { max: ['max_ns'] });
    assert.equal(sum.packets, (cpus * (cpus + 1)) / 2);
    assert.equal(sum.max_ns, 100 * (cpus - 1));
    assert.deepEqual(sum.slots, [0, (cpus * (cpus - 1)) / 2, 0, 0]);
    assert.equal(sum.tag, 'c0');

    // What the program counted, read as a whole map: its CPUs add up to the calls.
    for (let i = 0; i < 4; i++) void process.ppid;
    const all = percpu.readAllPerCpu<number, Counts>();
    assert.deepEqual(all.map((e) => e.key), [0, 1]);
    const slot0 = sumPerCpu(all[0]!.values, { max: ['max_ns'] });
    assert.equal(slot0.packets, 4);
    assert.equal(slot0.max_ns, process.pid);
    assert.deepEqual(slot0.slots, [0, 0, 4, 0]);
    assert.throws(() => percpu.readAllDecoded(), /per-CPU: read it with readAllPerCpu/);
    assert.throws(() => obj.map('values').readAllPerCpu(), /not per-CPU/);
  } finally {
    obj.close();
  }
});

test('ring buffer records decode by their struct name, as their bytes say', async () => {
  const obj = openLayouts();
  try {
    const reader = new RingBufferReader(obj.map('events'));
    const timer = setTimeout(() => reader.stop(), 5000); // no record: next() ends with null
    void process.ppid;
    const batch = await reader.next();
    clearTimeout(timer);
    reader.stop();
    assert.ok(batch && batch.count >= 1);
    const raw = batch.at(0);
    const e = obj.recordDecoder<{ ts_ns: U64; tid: number; neg: number; comm: string; ptr: U64; port: number; bytes: Buffer }>('layout_event')(raw);
    assert.equal(BigInt(e.ts_ns), raw.readBigUInt64LE(0));
    assert.ok(BigInt(e.ts_ns) <= process.hrtime.bigint());
    assert.equal(e.tid, process.pid);
    assert.equal(e.neg, -1);
    assert.equal(e.comm, ownComm());
    assert.equal(e.ptr, 0xffff888012345678n);
    assert.equal(e.port, 8443);
    assert.deepEqual([...e.bytes], [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5]);
    assert.throws(() => obj.recordDecoder('layout_event')(raw.subarray(0, 40)), /layout_event: 40 bytes, its layout needs 48/);
  } finally {
    obj.close();
  }
});

test('the selftest counts decode as numbers; a map declared by size has no layout', () => {
  withThreadTraced((obj) => {
    for (let i = 0; i < 5; i++) void process.ppid;
    const counts = obj.map('counts');
    const decoded = counts.readAllDecoded<number, number>();
    assert.deepEqual(decoded, [{ key: 1, value: Number(counts.lookup(u32Key(1))!.readBigUInt64LE(0)) }]);
    assert.equal(decoded[0]!.value, 5);
    assert.equal(sumPerCpu(obj.map('lost').lookupPerCpu<number>(u32Key(0))!), 0);
    assert.throws(() => obj.map('stacks').readAllDecoded(), /stacks has no BTF type for its key \(declared by size/);
  });
});

test('64-bit integers are numbers exactly while safe', () => {
  const u64 = compileLayout<U64>(int(8));
  const s64 = compileLayout<U64>(int(8, true));
  const be64 = compileLayout<U64>({ ...int(8), bigEndian: true });
  const le = (v: bigint, signed = false) => {
    const b = Buffer.alloc(8);
    if (signed) b.writeBigInt64LE(v);
    else b.writeBigUInt64LE(v);
    return b;
  };
  assert.equal(u64(le(2n ** 53n - 1n)), Number.MAX_SAFE_INTEGER);
  assert.equal(u64(le(2n ** 53n)), 2n ** 53n);
  assert.equal(u64(le(2n ** 64n - 1n)), 2n ** 64n - 1n);
  assert.equal(u64(le(2n ** 32n + 7n)), 2 ** 32 + 7);
  assert.equal(s64(le(-(2n ** 53n) + 1n, true)), Number.MIN_SAFE_INTEGER);
  assert.equal(s64(le(-(2n ** 53n), true)), -(2n ** 53n));
  assert.equal(s64(le(-1n, true)), -1);
  assert.equal(s64(le(2n ** 53n, true)), 2n ** 53n);
  const be = Buffer.alloc(8);
  be.writeBigUInt64BE(2n ** 40n + 3n);
  assert.equal(be64(be), 2 ** 40 + 3);
  be.writeBigUInt64BE(2n ** 63n);
  assert.equal(be64(be), 2n ** 63n);
  // A signed enum of a newer compiler (kflag), read at an offset.
  const e = compileLayout({ kind: 'enum', name: 'e', size: 4, signed: true });
  const buf = Buffer.alloc(8);
  buf.writeInt32LE(-2, 4);
  assert.equal(e(buf, 4), -2);
  // Sums pass to bigint past 2^53 and come back only when the value is safe again.
  assert.equal(sumPerCpu([Number.MAX_SAFE_INTEGER, 1]), 2n ** 53n);
  assert.equal(sumPerCpu([2n ** 53n, -2]), Number.MAX_SAFE_INTEGER - 1);
  assert.throws(() => sumPerCpu([]), /no values/);
});
