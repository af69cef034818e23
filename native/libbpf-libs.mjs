#!/usr/bin/env node
// Prints the link flags binding.gyp uses for libbpf: the static libbpf.a when it is installed
// and position-independent (it is linked into a shared object), else the shared -lbpf.
// Debian 12's libbpf.a is built without -fPIC, so there it is -lbpf (package libbpf1).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const pc = spawnSync('pkg-config', ['--variable=libdir', 'libbpf'], { encoding: 'utf8' });
const dirs = [pc.status === 0 ? pc.stdout.trim() : '', '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];
const archive = dirs.filter(Boolean).map((d) => `${d}/libbpf.a`).find((p) => existsSync(p));

function linksIntoSharedObject(path) {
  const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-libbpf-'));
  try {
    const r = spawnSync('cc', ['-shared', '-o', join(dir, 'probe.so'), '-Wl,--whole-archive', path, '-Wl,--no-whole-archive', '-lelf', '-lz'], {
      encoding: 'utf8',
    });
    return r.status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const useStatic = archive !== undefined && linksIntoSharedObject(archive);
if (archive && !useStatic) console.error(`libbpf-libs: ${archive} is not position-independent: linking the shared libbpf (-lbpf)`);
console.log([useStatic ? archive : '-lbpf', '-lelf', '-lz'].join(' '));
