// Map access through the addon on the selftest object's maps.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { BpfError } from '../../engine/native/errors.js';
import { closeAll } from '../../engine/native/guard.js';
import { BPF_EXIST, BPF_NOEXIST, u32Key } from '../../engine/native/map.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { withThreadTraced } from './support.js';
import { RUNNING_KERNEL } from '../helpers/running-kernel.js';

after(() => closeAll());

const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

test('hash map: update, lookup, keys, batch read, delete', () => {
  const obj = BpfObject.open(bpfObjectPath('selftest'));
  try {
    obj.load();
    const counts = obj.map('counts');
    assert.equal(counts.info.type, 'hash');
    assert.equal(counts.lookup(u32Key(9)), null);
    for (const k of [3, 9, 12]) counts.update(u32Key(k), u64(k * 100));
    assert.equal(counts.lookup(u32Key(9))!.readBigUInt64LE(0), 900n);
    assert.throws(() => counts.update(u32Key(9), u64(1), BPF_NOEXIST), (e: unknown) => e instanceof BpfError && e.code === 'EEXIST');
    assert.throws(() => counts.update(u32Key(4), u64(1), BPF_EXIST), (e: unknown) => e instanceof BpfError && e.code === 'ENOENT');
    assert.deepEqual([...counts.keys()].map((k) => k.readUInt32LE(0)).sort((a, b) => a - b), [3, 9, 12]);

    const { entries, batched } = counts.readAll();
    assert.equal(batched, true);
    assert.deepEqual(
      entries.map(([k, v]) => [k.readUInt32LE(0), Number(v.readBigUInt64LE(0))]).sort((a, b) => a[0]! - b[0]!),
      [
        [3, 300],
        [9, 900],
        [12, 1200],
      ],
    );
    assert.equal(counts.delete(u32Key(9)), true);
    assert.equal(counts.delete(u32Key(9)), false);
    assert.equal(counts.readAll().entries.length, 2);
    assert.throws(() => counts.lookup(new Uint8Array(3)), BpfError);
  } finally {
    obj.close();
  }
});

test('per-CPU array: one value per possible CPU, summed', () => {
  const obj = BpfObject.open(bpfObjectPath('selftest'));
  try {
    obj.load();
    const lost = obj.map('lost');
    const info = lost.info;
    assert.equal(info.perCpu, true);
    const cpus = info.lookupSize / 8;
    assert.ok(cpus >= 1 && Number.isInteger(cpus));
    const value = Buffer.alloc(info.lookupSize);
    for (let c = 0; c < cpus; c++) value.writeBigUInt64LE(BigInt(c + 1), c * 8);
    lost.update(u32Key(0), value);
    assert.equal(lost.perCpu(lost.lookup(u32Key(0))!).length, cpus);
    assert.equal(lost.sumU64(u32Key(0)), BigInt((cpus * (cpus + 1)) / 2));
  } finally {
    obj.close();
  }
});

test('maps without batch lookup are read by iteration; ring buffers refuse reads', () => {
  withThreadTraced((obj) => {
    void process.ppid;
    const stacks = obj.map('stacks').readAll();
    assert.equal(stacks.batched, false);
    // (6.1 gives a syscall tracepoint no kernel stack: nothing to read there)
    if (RUNNING_KERNEL.syscallTracepointKstack) assert.ok(stacks.entries.length >= 1);
    else assert.equal(stacks.entries.length, 0);
    assert.ok(stacks.entries.every(([k, v]) => k.length === 4 && v.length === 32 * 8));
    assert.throws(() => obj.map('events').readAll(), BpfError);
  });
});

test('maps need a loaded, open object', () => {
  const obj = BpfObject.open(bpfObjectPath('selftest'));
  const counts = obj.map('counts');
  assert.throws(() => obj.map('no_such_map'), (e: unknown) => e instanceof BpfError && e.code === 'ENOENT');
  assert.throws(() => counts.lookup(u32Key(1)), (e: unknown) => e instanceof BpfError && /load the object first/.test(e.message));
  obj.load();
  assert.equal(counts.lookup(u32Key(1)), null);
  obj.close();
  assert.throws(() => counts.lookup(u32Key(1)), (e: unknown) => e instanceof BpfError && e.code === 'ECLOSED');
});
