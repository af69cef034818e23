// Globals: encoding (pure) and the BTF datasec helper that finds each variable's offset.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { NativeGlobalInfo } from '../../engine/native/addon.js';
import { BpfError } from '../../engine/native/errors.js';
import { encodeGlobal } from '../../engine/native/globals.js';
import { closeAll } from '../../engine/native/guard.js';
import { u32Key } from '../../engine/native/map.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';

after(() => closeAll());

const g = (size: number, signed = false, kind: NativeGlobalInfo['kind'] = 'int'): NativeGlobalInfo => ({
  name: 'v',
  section: '.rodata',
  offset: 0,
  size,
  kind,
  signed,
});

test('encodeGlobal writes little-endian integers of the variable size', () => {
  assert.deepEqual([...encodeGlobal(g(4), 0x01020304)], [4, 3, 2, 1]);
  assert.deepEqual([...encodeGlobal(g(2, true), -2)], [0xfe, 0xff]);
  assert.deepEqual([...encodeGlobal(g(8), 2n ** 64n - 1n)], Array(8).fill(0xff));
  assert.deepEqual([...encodeGlobal(g(1, false, 'bool'), true)], [1]);
  assert.deepEqual([...encodeGlobal(g(3, false, 'array'), new Uint8Array([7, 8, 9]))], [7, 8, 9]);
});

test('encodeGlobal refuses values that do not fit', () => {
  assert.throws(() => encodeGlobal(g(1), 256), /u8\) cannot hold 256/);
  assert.throws(() => encodeGlobal(g(4), -1), /cannot hold -1/);
  assert.throws(() => encodeGlobal(g(4, true), 2 ** 31), /s32\) cannot hold/);
  assert.throws(() => encodeGlobal(g(4), 1.5), /integer/);
  assert.throws(() => encodeGlobal(g(16, false, 'struct'), 1), /Uint8Array/);
  assert.throws(() => encodeGlobal(g(4), new Uint8Array(3)), /4 bytes, got 3/);
});

test('globals() lists the const volatile filters with their .rodata offsets', () => {
  const obj = BpfObject.open(bpfObjectPath('selftest'));
  try {
    const globals = obj.globals();
    assert.deepEqual(
      globals.map((x) => x.name).sort(),
      ['burst', 'targ_tgid', 'targ_tid'],
    );
    for (const x of globals) {
      assert.equal(x.section, '.rodata');
      assert.equal(x.size, 4);
      assert.equal(x.kind, 'int');
      assert.equal(x.signed, false);
    }
    // Offsets are distinct and inside the section.
    const offsets = globals.map((x) => x.offset).sort((a, b) => a - b);
    assert.deepEqual(offsets, [0, 4, 8]);
  } finally {
    obj.close();
  }
});

test('setGlobal lands at the variable offset of the loaded .rodata map', () => {
  const obj = BpfObject.open(bpfObjectPath('selftest'), {
    globals: { targ_tgid: 0x11223344, targ_tid: 7, burst: 3 },
    autoload: { st_tp_btf: false, st_raw_tp: false, st_uprobe: false, st_uretprobe: false },
  });
  try {
    obj.load();
    const rodata = obj.maps().find((m) => m.internal && m.name.endsWith('.rodata'));
    assert.ok(rodata, 'no .rodata map');
    const image = obj.map(rodata.name).lookup(u32Key(0));
    assert.ok(image);
    for (const [name, want] of [['targ_tgid', 0x11223344], ['targ_tid', 7], ['burst', 3]] as const) {
      const { offset } = obj.globals().find((x) => x.name === name)!;
      assert.equal(image.readUInt32LE(offset), want, name);
    }
  } finally {
    obj.close();
  }
});

test('setGlobal errors: unknown name, wrong size, after load', () => {
  const obj = BpfObject.open(bpfObjectPath('selftest'));
  try {
    assert.throws(() => obj.setGlobal('no_such_var', 1), /no global variable named no_such_var/);
    assert.throws(() => obj.setGlobal('burst', new Uint8Array(2)), /4 bytes, got 2/);
    obj.load();
    assert.throws(
      () => obj.setGlobal('burst', 2),
      (e: unknown) => e instanceof BpfError && e.code === 'EBUSY' && /already loaded/.test(e.message),
    );
  } finally {
    obj.close();
  }
});
