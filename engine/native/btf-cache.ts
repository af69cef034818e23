// Minimal BTF for one BPF object on the running kernel (`bpftool gen min_core_btf`), cached.
// CO-RE relocation against it takes a few ms, where parsing the whole vmlinux BTF takes ~50.
// The cache is keyed by kernel release and boot id (the kernel's BTF cannot change without a
// reboot) and by the object's size and mtime; another boot's entries are removed.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { makeDirs } from '../fs.js';

const VMLINUX = '/sys/kernel/btf/vmlinux';

export function btfCacheRoot(): string {
  return join(process.env.EBPFNET_CACHE_DIR ?? '/var/cache/ebpfnet', 'btf');
}

function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().slice(0, 8);
}

/** Where the minimal BTF of `objectPath` lives for this kernel and boot. */
export function minimalBtfPath(objectPath: string): string {
  const st = statSync(objectPath);
  const key = `${basename(objectPath, '.bpf.o')}-${st.size}-${Math.floor(st.mtimeMs)}.btf`;
  return join(btfCacheRoot(), `${release()}-${bootId()}`, key);
}

/** The cached minimal BTF when it is there (no process started): the fast path. */
export function cachedMinimalBtf(objectPath: string): string | null {
  try {
    const path = minimalBtfPath(objectPath);
    statSync(path);
    return path;
  } catch {
    return null;
  }
}

/**
 * Makes (or finds) the minimal BTF of `objectPath`. Throws a one-line error when bpftool or
 * the kernel BTF is missing; callers then load against the full vmlinux BTF.
 */
export async function ensureMinimalBtf(objectPath: string): Promise<string> {
  const cached = cachedMinimalBtf(objectPath);
  if (cached) return cached;
  const path = minimalBtfPath(objectPath);
  // Two sessions of one object starting together (a probe run twice at once) share one
  // bpftool run: two would write the same temporary file and one rename would fail.
  let making = inflight.get(path);
  if (!making) {
    making = makeMinimalBtf(objectPath, path).finally(() => inflight.delete(path));
    inflight.set(path, making);
  }
  return making;
}

/** Minimal BTFs being made, by cache path. */
const inflight = new Map<string, Promise<string>>();

async function makeMinimalBtf(objectPath: string, path: string): Promise<string> {
  const dir = join(path, '..');
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    makeDirs(dir);
    await promisify(execFile)('bpftool', ['gen', 'min_core_btf', VMLINUX, tmp, objectPath], { timeout: 30_000 });
    renameSync(tmp, path);
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      /* the folder itself is unusable */
    }
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new Error(`cannot make minimal BTF for ${basename(objectPath)}: ${why}`);
  }
  // Entries of earlier boots or kernels are stale: drop them.
  for (const entry of readdirSync(btfCacheRoot())) {
    if (join(btfCacheRoot(), entry) !== dir) rmSync(join(btfCacheRoot(), entry), { recursive: true, force: true });
  }
  return path;
}
