// The minimal-BTF cache (engine/native/btf-cache.ts) when sessions of one object start together:
// one bpftool run serves them all (two used to write the same temporary file, and one failed).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ensureMinimalBtf } from '../../engine/native/btf-cache.js';
import { bpfObjectPath } from '../../engine/native/object.js';

describe('minimal BTF cache', () => {
  it('three concurrent requests for one object on an empty cache all get the one file', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ebpfnet-btf-'));
    const before = process.env.EBPFNET_CACHE_DIR;
    process.env.EBPFNET_CACHE_DIR = dir;
    t.after(async () => {
      if (before === undefined) delete process.env.EBPFNET_CACHE_DIR;
      else process.env.EBPFNET_CACHE_DIR = before;
      await rm(dir, { recursive: true, force: true });
    });
    const object = bpfObjectPath('other.tc');
    const paths = await Promise.all([ensureMinimalBtf(object), ensureMinimalBtf(object), ensureMinimalBtf(object)]);
    assert.equal(new Set(paths).size, 1);
    assert.ok(paths[0]!.startsWith(dir));
  });
});
