import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { probeRegistry } from '../../probes/index.js';
import type { ProbeCatalog } from '../../engine/probe/types.js';
import { loadRunbookCached } from '../../engine/runbook/cache.js';
import { loadRunbookFile, RunbookError } from '../../engine/runbook/load.js';
import { packageRoot } from '../../engine/package-info.js';

describe('the cache of checked runbooks', () => {
  let dir: string;
  let cache: string;
  let file: string;
  const catalog = probeRegistry();
  const entries = () => readdirSync(join(cache, 'runbooks')).filter((n) => n.endsWith('.json'));
  const entryPaths = () => entries().map((n) => join(cache, 'runbooks', n));
  const saved = { dir: process.env.EBPFNET_CACHE_DIR, off: process.env.EBPFNET_CACHE };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ebpfnet-rbcache-'));
    cache = join(dir, 'cache');
    file = join(dir, 'vm-latency.yaml');
    copyFileSync(join(packageRoot(), 'runbooks', 'vm-latency.yaml'), file);
    process.env.EBPFNET_CACHE_DIR = cache;
    delete process.env.EBPFNET_CACHE;
  });
  after(() => {
    for (const [k, v] of [['EBPFNET_CACHE_DIR', saved.dir], ['EBPFNET_CACHE', saved.off]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('a runbook that passed is stored once and served from the cache as the same model', () => {
    const fresh = loadRunbookFile(file, catalog);
    const first = loadRunbookCached(file, catalog);
    assert.equal(entries().length, 1);
    const second = loadRunbookCached(file, catalog);
    assert.equal(entries().length, 1);
    for (const rb of [first, second]) {
      assert.deepEqual(JSON.parse(JSON.stringify({ ...rb, positions: [...rb.positions] })), JSON.parse(JSON.stringify({ ...fresh, positions: [...fresh.positions] })));
      assert.ok(rb.positions instanceof Map && rb.positions.size === fresh.positions.size);
    }
    // Served from the entry, not checked again: what the entry says is what comes back.
    const [path] = entryPaths();
    const entry = JSON.parse(readFileSync(path!, 'utf8')) as { runbook: { title: string } };
    entry.runbook.title = 'from the cache';
    writeFileSync(path!, JSON.stringify(entry));
    assert.equal(loadRunbookCached(file, catalog).title, 'from the cache');
  });

  test('an edit of the file, another catalog or a torn entry is a miss, never a stale hit', () => {
    const before = new Set(entries());
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^title: .*$/m, 'title: Edited'));
    assert.equal(loadRunbookCached(file, catalog).title, 'Edited');
    assert.equal(entries().length, before.size + 1);

    const drops = catalog.get('drops.kernel')!;
    const other: ProbeCatalog = {
      ids: () => catalog.ids(),
      get: (id) => (id === drops.id ? { ...drops, params: { ...drops.params, added: { type: 'string', description: 'a new parameter' } } } : catalog.get(id)),
    };
    assert.equal(loadRunbookCached(file, other).title, 'Edited');
    assert.equal(entries().length, before.size + 2, 'a catalog whose parameters differ keys its own entry');

    for (const path of entryPaths()) writeFileSync(path, '{"format":1,"runbook":');
    assert.equal(loadRunbookCached(file, catalog).title, 'Edited', 'a torn entry is read afresh');
    const whole = entryPaths().filter((path) => {
      try {
        return (JSON.parse(readFileSync(path, 'utf8')) as { format?: number }).format === 1;
      } catch {
        return false;
      }
    });
    assert.equal(whole.length, 1, 'the entry read afresh is written whole again');
  });

  test('a broken runbook is not stored and reports the same problems; EBPFNET_CACHE=off stores nothing', () => {
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, readFileSync(file, 'utf8').replace('goto: host-fast', 'goto: nowhere'));
    const count = entries().length;
    const problems = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        assert.ok(err instanceof RunbookError, String(err));
        return err.problems;
      }
      assert.fail('no problem reported');
    };
    assert.deepEqual(problems(() => loadRunbookCached(broken, catalog)), problems(() => loadRunbookFile(broken, catalog)));
    assert.equal(entries().length, count);

    // A cache folder that cannot be made (here, under a file): the runbook loads all the same.
    process.env.EBPFNET_CACHE_DIR = join(file, 'not-a-folder');
    try {
      assert.equal(loadRunbookCached(file, catalog).title, 'Edited');
    } finally {
      process.env.EBPFNET_CACHE_DIR = cache;
    }

    process.env.EBPFNET_CACHE = 'off';
    try {
      writeFileSync(file, readFileSync(file, 'utf8').replace('title: Edited', 'title: Uncached'));
      assert.equal(loadRunbookCached(file, catalog).title, 'Uncached');
      assert.equal(entries().length, count);
    } finally {
      delete process.env.EBPFNET_CACHE;
    }
  });
});
