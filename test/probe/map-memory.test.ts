// The memory bounds the READMEs state (engine/probe/map-memory.ts) against what the running
// kernel accounts for each map once loaded (fdinfo `memlock`): every map of every shipped
// object, at the sizes the object declares.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { possibleCpus } from '../../engine/native/features.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { packageRoot } from '../../engine/package-info.js';
import { mapMemory } from '../../engine/probe/map-memory.js';
import { probeFolderFiles, probeMaps } from '../../engine/probe/readme.js';
import { probeRegistry } from '../../probes/index.js';

/** The kernel's accounting of a map fd, as /proc/self/fdinfo reports it. */
function memlock(fd: number): number {
  const m = /^memlock:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(m, `fd ${fd} has no memlock line`);
  return Number(m[1]);
}

/**
 * What kernels before 6.4 report as `memlock`: not the memory a map uses but an estimate from its
 * sizes (bpf_map_memory_footprint: entries × their key and value rounded to 8, per CPU for the
 * per-CPU types, rounded to a page). The bound cannot be near that; it stays at or above it.
 */
function footprintEstimate(info: { type: string; maxEntries: number; keySize: number; valueSize: number }, cpus: number): number {
  const up8 = (n: number) => Math.ceil(n / 8) * 8;
  const value = info.type.includes('percpu') ? up8(info.valueSize) * cpus : info.valueSize;
  return Math.ceil((info.maxEntries * up8(info.keySize + value)) / 4096) * 4096;
}

/** Opens an object to create its maps only: its programs may need what this kernel lacks (a tracepoint), its maps do not. */
function mapsOnly(path: string, opts: Parameters<typeof BpfObject.open>[1] = {}): BpfObject {
  const o = BpfObject.open(path, opts);
  for (const p of o.programs()) p.autoload = false;
  return o;
}

/** Whether the running kernel's `memlock` is a map's memory (6.4's map_mem_usage) rather than the estimate from its sizes. */
const reportsUsage = ((): boolean => {
  const [major = 0, minor = 0] = release().split('.').map((x) => Number.parseInt(x, 10));
  return major > 6 || (major === 6 && minor >= 4);
})();

describe('map memory bounds', () => {
  it('every map of every shipped object stays within its stated bound, and the bound is near (two pages or a tenth)', (t) => {
    const dir = join(packageRoot(), 'build', 'bpf');
    const cpus = possibleCpus();
    let maps = 0;
    let estimated = 0;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.bpf.o'))) {
      const o = mapsOnly(join(dir, file));
      try {
        o.load();
        for (const info of o.maps()) {
          if (info.fd === null) continue;
          const bound = mapMemory(info);
          const bytes = bound.fixedBytes + bound.perCpuBytes * cpus;
          const kernel = memlock(info.fd);
          const what = `${file} ${info.name} (${info.type}, ${info.maxEntries} × ${info.keySize}+${info.valueSize} B)`;
          maps++;
          if (!reportsUsage) {
            // The estimate counts an array's keys and rounding the map does not use: no bound to compare, only the formula.
            assert.equal(kernel, footprintEstimate(info, cpus), `${what}: not the pre-6.4 estimate`);
            estimated++;
            continue;
          }
          assert.ok(kernel <= bytes, `${what}: kernel ${kernel} B > bound ${bytes} B`);
          assert.ok(bytes - kernel <= Math.max(8192, kernel / 10), `${what}: bound ${bytes} B, kernel ${kernel} B: the bound says too much`);
        }
      } finally {
        o.close();
      }
    }
    assert.ok(maps > 50, `only ${maps} maps checked`);
    // Where the kernel reports real usage (6.4+), every bound is near it; before, only its estimate is there to read.
    t.diagnostic(`${maps} maps; ${estimated} of them reported as the pre-6.4 estimate`);
  });

  it('a map a probe sizes per CPU at run time stays within the bound its README states', () => {
    const cpus = possibleCpus();
    const registry = probeRegistry();
    let checked = 0;
    for (const id of registry.ids()) {
      const def = registry.get(id)!;
      const sized = probeMaps(def, probeFolderFiles(join(packageRoot(), 'probes', id))).filter((m) => m.perCpu);
      for (const object of new Set(sized.map((m) => m.object))) {
        const mine = sized.filter((m) => m.object === object);
        const o = mapsOnly(bpfObjectPath(object), { maxEntries: Object.fromEntries(mine.map((m) => [m.info.name, m.entries * cpus])) });
        try {
          o.load();
          for (const m of mine) {
            const kernel = memlock(o.maps().find((i) => i.name === m.info.name)!.fd!);
            const bound = m.memory.fixedBytes + m.memory.perCpuBytes * cpus;
            assert.ok(kernel <= bound, `${id} ${m.info.name}: kernel ${kernel} B > bound ${bound} B`);
            checked++;
          }
        } finally {
          o.close();
        }
      }
    }
    assert.ok(checked >= 4, `only ${checked} per-CPU maps checked`);
  });
});
