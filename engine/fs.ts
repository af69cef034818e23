// Writing files safely where bundles, caches and reports go: folders made one level at a time,
// files replaced whole (write, then rename) so a crash leaves the last complete version.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * mkdir -p, one level at a time: Node's own recursive mkdir spins forever where the
 * kernel answers ENOENT for a folder whose parent exists (/proc, some FUSE mounts).
 */
export function makeDirs(path: string): void {
  const missing: string[] = [];
  for (let dir = resolve(path); !existsSync(dir); dir = dirname(dir)) {
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing) mkdirSync(dir);
}

export function writeFileAtomic(path: string, content: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}
