// The memory bounds the READMEs state (engine/probe/map-memory.ts) against what the running
// kernel accounts for each map once loaded (fdinfo `memlock`): every map of every shipped
// object, at the sizes the object declares.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
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

describe('map memory bounds', () => {
  it('every map of every shipped object stays within its stated bound, and the bound is near (two pages or a tenth)', () => {
    const dir = join(packageRoot(), 'build', 'bpf');
    const cpus = possibleCpus();
    let maps = 0;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.bpf.o'))) {
      const o = BpfObject.open(join(dir, file));
      try {
        o.load();
        for (const info of o.maps()) {
          if (info.fd === null) continue;
          const bound = mapMemory(info);
          const bytes = bound.fixedBytes + bound.perCpuBytes * cpus;
          const kernel = memlock(info.fd);
          assert.ok(kernel <= bytes, `${file} ${info.name} (${info.type}, ${info.maxEntries} × ${info.keySize}+${info.valueSize} B): kernel ${kernel} B > bound ${bytes} B`);
          assert.ok(bytes - kernel <= Math.max(8192, kernel / 10), `${file} ${info.name} (${info.type}): bound ${bytes} B, kernel ${kernel} B: the bound says too much`);
          maps++;
        }
      } finally {
        o.close();
      }
    }
    assert.ok(maps > 50, `only ${maps} maps checked`);
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
        const o = BpfObject.open(bpfObjectPath(object), { maxEntries: Object.fromEntries(mine.map((m) => [m.info.name, m.entries * cpus])) });
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
