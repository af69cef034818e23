// Handles come and go: what bpftool sees while attached and after closeAll(), garbage
// collection, and the one-line errors when the addon is missing or we are not root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { packageRoot } from '../../engine/package-info.js';
import { closeAll, liveHandles } from '../../engine/native/guard.js';
import { u32Key } from '../../engine/native/map.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { RingBufferReader } from '../../engine/native/ringbuf.js';
import { eventually, selftestProgramsOf } from './support.js';

after(() => closeAll());

function attachEverything(): BpfObject {
  const obj = BpfObject.open(bpfObjectPath('selftest'), { globals: { targ_tgid: process.pid } });
  obj.load();
  obj.program('st_tracepoint').attach();
  obj.program('st_tp_btf').attach();
  obj.program('st_raw_tp').attach();
  return obj;
}

test('bpftool lists our programs while attached, and none after closeAll()', async () => {
  assert.deepEqual(selftestProgramsOf(process.pid), [], 'programs of ours before the test');
  const obj = attachEverything();
  const reader = new RingBufferReader(obj.map('events'));
  const names = selftestProgramsOf(process.pid)
    .map((p) => p.name)
    .sort();
  // Loaded programs are held by this process whether attached or not.
  assert.deepEqual(names, ['st_raw_tp', 'st_tp_btf', 'st_tracepoint', 'st_uprobe', 'st_uretprobe']);
  assert.deepEqual(liveHandles(), { readers: 1, links: 3, objects: 1 });

  const closed = closeAll();
  assert.deepEqual(closed, { readers: 1, links: 3, objects: 1 });
  assert.deepEqual(liveHandles(), { readers: 0, links: 0, objects: 0 });
  assert.ok(await eventually(() => selftestProgramsOf(process.pid).length === 0), 'programs left after closeAll()');
  assert.equal(obj.closed, true);
  assert.equal(reader.stats.running, false);
  reader.stop(); // harmless after closeAll()
  assert.deepEqual(closeAll(), { readers: 0, links: 0, objects: 0 });
});

test('a consumer waiting for batches ends when closeAll() or its object closes the reader', async () => {
  for (const closeIt of [(o: BpfObject) => o.close(), () => void closeAll()]) {
    const obj = BpfObject.open(bpfObjectPath('selftest'));
    obj.load();
    const reader = new RingBufferReader(obj.map('events'));
    let batches = 0;
    const consumer = (async () => {
      for await (const b of reader) batches += b.count;
      return 'ended';
    })();
    await new Promise((r) => setImmediate(r));
    closeIt(obj);
    const result = await Promise.race([consumer, new Promise((r) => setTimeout(() => r('still waiting'), 2000))]);
    assert.equal(result, 'ended');
    assert.equal(batches, 0);
    obj.close();
  }
});

test('detach, close and stop are idempotent', () => {
  const obj = BpfObject.open(bpfObjectPath('selftest'));
  obj.load();
  const link = obj.program('st_raw_tp').attach();
  assert.equal(link.detached, false);
  assert.equal(link.detach(), true);
  assert.equal(link.detach(), false);
  assert.equal(link.detached, true);
  const reader = new RingBufferReader(obj.map('events'));
  obj.close(); // stops its reader first
  assert.equal(reader.stats.running, false);
  obj.close();
  assert.equal(obj.closed, true);
});

test('handles dropped by JavaScript are freed by garbage collection', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  (() => {
    const obj = attachEverything();
    void obj;
  })();
  assert.equal(liveHandles().links, 3);
  const freed = await eventually(() => {
    gc();
    return liveHandles().links === 0 && liveHandles().objects === 0;
  }, 5000);
  assert.ok(freed, `still open after gc: ${JSON.stringify(liveHandles())}`);
  assert.ok(await eventually(() => selftestProgramsOf(process.pid).length === 0), 'programs left after gc');
});

test('a link dropped by JavaScript stays attached while its object lives', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const obj = BpfObject.open(bpfObjectPath('selftest'), { globals: { targ_tgid: process.pid, targ_tid: process.pid, burst: 0 } });
  try {
    obj.load();
    void obj.program('st_tracepoint').attach(); // the BpfLink is dropped at once
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setImmediate(r)); // finalizers run from the loop
    }
    assert.equal(liveHandles().links, 1);
    for (let i = 0; i < 7; i++) void process.ppid;
    assert.equal(obj.map('counts').lookup(u32Key(1))?.readBigUInt64LE(0), 7n);
  } finally {
    obj.close();
  }
  assert.equal(liveHandles().links, 0, 'closing the object detached its link');
});

test('a clear one-line error when the addon is not built', () => {
  // A copy of the compiled engine/native modules in a package root that has no build/.
  const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-noaddon-'));
  try {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ebpfnet', type: 'module' }));
    cpSync(join(packageRoot(), 'dist', 'engine', 'native'), join(dir, 'dist', 'engine', 'native'), { recursive: true });
    cpSync(join(packageRoot(), 'dist', 'engine', 'package-info.js'), join(dir, 'dist', 'engine', 'package-info.js'));
    const script = `import('${join(dir, 'dist', 'engine', 'native', 'addon.js')}').then((m) => m.addon())`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /Error: native addon missing: run npm run build \(no .*build\/Release\/ebpfnet\.node\)\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a clear one-line error when not root', () => {
  const objectModule = join(packageRoot(), 'dist', 'engine', 'native', 'object.js');
  const script = `import('${objectModule}').then((m) => m.BpfObject.open(m.bpfObjectPath('selftest'))).catch((e) => { console.error(e.message); process.exit(3); })`;
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 3, r.stderr);
  assert.equal(r.stderr, 'not root: loading BPF programs needs root (run ebpfnet as root)\n');
});
