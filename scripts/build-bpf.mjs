#!/usr/bin/env node
// Compiles the CO-RE BPF programs where they live — each probe's probes/<id>/*.bpf.c and the
// selftest's engine/selftest/*.bpf.c → build/bpf/<name>.bpf.o (names follow probe ids:
// probes/cpu.runqlat/cpu.runqlat.bpf.c → cpu.runqlat.bpf.o), and the test fixtures
// test/native/fixtures/*.bpf.c → build/bpf/fixtures/*.bpf.o — with the shared headers of
// bpf/include/ (a source's own folder comes first for its own headers), against a vmlinux.h that
// bpftool generates from the running kernel's BTF (or from $VMLINUX_BTF). An object is
// rebuilt only when its source, a header it includes (clang's -MD list) or the flags changed.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'build', 'bpf');
const btfPath = process.env.VMLINUX_BTF || '/sys/kernel/btf/vmlinux';

// clang's BPF target needs the architecture of the kernel it reads (pt_regs layout) and the
// multiarch include folder for <asm/...>.
const ARCH = {
  x64: { define: '__TARGET_ARCH_x86', include: '/usr/include/x86_64-linux-gnu' },
  arm64: { define: '__TARGET_ARCH_arm64', include: '/usr/include/aarch64-linux-gnu' },
};
const arch = ARCH[process.arch];
if (!arch) fail(`unsupported architecture ${process.arch} (known: ${Object.keys(ARCH).join(', ')})`);

const INCLUDE = join(root, 'bpf', 'include');
const probeDirs = readdirSync(join(root, 'probes'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => join(root, 'probes', d.name))
  .sort();
const SETS = [
  ...probeDirs.map((src) => ({ src, out })),
  { src: join(root, 'engine', 'selftest'), out },
  { src: join(root, 'test', 'native', 'fixtures'), out: join(out, 'fixtures') },
];

function fail(message) {
  console.error(`build-bpf: ${message}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts });
  if (r.error) {
    const hint = r.error.code === 'ENOENT' ? ' (install clang, llvm, libbpf-dev and bpftool: scripts/setup.sh)' : '';
    fail(`cannot run ${cmd}: ${r.error.message}${hint}`);
  }
  return r;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** vmlinux.h is regenerated when missing or when the BTF it came from changed. */
function vmlinuxHeader() {
  const header = join(out, 'vmlinux.h');
  const stampPath = join(out, 'vmlinux.h.source');
  if (!existsSync(btfPath)) fail(`${btfPath} missing: this kernel has no BTF; set VMLINUX_BTF to a BTF file`);
  const st = statSync(btfPath);
  const stamp = `${btfPath} ${st.size} ${release()}\n`;
  if (existsSync(header) && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === stamp) return header;
  const r = run('bpftool', ['btf', 'dump', 'file', btfPath, 'format', 'c']);
  if (r.status !== 0) fail(`bpftool btf dump failed: ${r.stderr.trim()}`);
  writeFileSync(`${header}.tmp`, r.stdout);
  renameSync(`${header}.tmp`, header);
  writeFileSync(stampPath, stamp);
  console.log(`build-bpf: generated ${relative(root, header)} from ${btfPath}`);
  return header;
}

/** Files a previous compile read, from its clang -MD output; null when unknown. */
function dependencies(depFile) {
  if (!existsSync(depFile)) return null;
  const text = readFileSync(depFile, 'utf8').replace(/\\\n/g, ' ');
  const colon = text.indexOf(': ');
  if (colon < 0) return null;
  return text
    .slice(colon + 2)
    .split(/\s+/)
    .filter(Boolean);
}

function compile(source, dir, flags) {
  const name = basename(source, '.c');
  const object = join(dir, `${name}.o`);
  const depFile = join(dir, `${name}.d`);
  const flagFile = join(dir, `${name}.flags`);
  const flagText = flags.join(' ');
  const deps = dependencies(depFile);
  const built = mtime(object);
  const stale =
    built < 0 ||
    !deps ||
    !existsSync(flagFile) ||
    readFileSync(flagFile, 'utf8') !== flagText ||
    deps.some((d) => mtime(d) < 0 || mtime(d) > built);
  if (!stale) return false;
  const started = Date.now();
  const r = run('clang', [...flags, '-MD', '-MF', depFile, '-c', source, '-o', `${object}.tmp`]);
  if (r.status !== 0) fail(`clang failed on ${relative(root, source)}:\n${r.stderr}`);
  if (r.stderr.trim()) process.stderr.write(r.stderr);
  renameSync(`${object}.tmp`, object);
  writeFileSync(flagFile, flagText);
  console.log(`build-bpf: ${relative(root, source)} → ${relative(root, object)} (${Date.now() - started} ms)`);
  return true;
}

mkdirSync(out, { recursive: true });
vmlinuxHeader();
let built = 0;
let total = 0;
for (const set of SETS) {
  if (!existsSync(set.src)) continue;
  mkdirSync(set.out, { recursive: true });
  const flags = ['-target', 'bpf', '-g', '-O2', '-Wall', `-D${arch.define}`, '-I', out, '-I', arch.include, '-I', INCLUDE];
  for (const file of readdirSync(set.src).filter((f) => f.endsWith('.bpf.c')).sort()) {
    total++;
    if (compile(join(set.src, file), set.out, flags)) built++;
  }
}
console.log(`build-bpf: ${built} of ${total} BPF objects rebuilt`);
