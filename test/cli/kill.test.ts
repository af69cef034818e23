// `ebpfnet probe run drops.kernel`, the real CLI in its own process, killed with SIGINT or
// SIGTERM at random moments (while Node starts, while the BPF object loads, while it is
// attached) and once with SIGKILL: it must exit with its documented code, and no BPF program
// of ours may stay in the kernel (`bpftool prog show -j`).
//
// The moments come from a seeded PRNG; the seed is printed, EBPFNET_KILL_SEED=<n> replays
// the same moments, EBPFNET_KILL_DEBUG=1 prints every kill. Where the CLI was when the
// signal was sent is read from its file descriptors (/proc/<pid>/fd): no BPF fd yet
// (starting), BPF objects but no link (loading), a bpf_link (attached). Our programs are the
// ones named in build/bpf/drops.kernel.bpf.o. bpftool 7.1 has no `pids` field (it is used when
// present), so the programs the CLI held are known by the ids in its fdinfo, and a program of
// ours loaded during the test that no live process holds is a leak too.
//
// Exit codes (README): 130 for SIGINT, 143 for SIGTERM once the CLI handles signals (it then
// prints an `interrupted` finding and keeps the bundle). A signal that arrives before the
// CLI installed its handlers (Node still starting, nothing loaded, no bundle) kills the
// process the default way: it dies of the signal, which a shell reports as the same
// 130 / 143. Anything else is a failure.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { CLI } from '../helpers/cli.js';

const OBJECT = join(packageRoot(), 'build', 'bpf', 'drops.kernel.bpf.o');
/** The kernel keeps BPF_OBJ_NAME_LEN - 1 characters of a program's name. */
const KERNEL_NAME_LEN = 15;
const SEED = Number(process.env.EBPFNET_KILL_SEED ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
const KILLS = 20;

/** mulberry32: small, seedable, good enough to spread kill moments. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Names of the BPF programs in an object file: global functions in executable sections of its ELF symbol table. */
function bpfProgramNames(path: string): string[] {
  const b = readFileSync(path);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) throw new Error(`${path}: not a 64-bit little-endian ELF file`);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const sections = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return { type: b.readUInt32LE(o + 4), flags: b.readBigUInt64LE(o + 8), offset: Number(b.readBigUInt64LE(o + 24)), size: Number(b.readBigUInt64LE(o + 32)), link: b.readUInt32LE(o + 40), entsize: Number(b.readBigUInt64LE(o + 56)) };
  });
  const SHT_SYMTAB = 2;
  const SHF_EXECINSTR = 4n;
  const STT_FUNC = 2;
  const STB_GLOBAL = 1;
  const names: string[] = [];
  for (const symtab of sections.filter((s) => s.type === SHT_SYMTAB)) {
    const strtab = sections[symtab.link]!;
    for (let o = symtab.offset; o + symtab.entsize <= symtab.offset + symtab.size; o += symtab.entsize) {
      const info = b[o + 4]!;
      const shndx = b.readUInt16LE(o + 6);
      if ((info & 0xf) !== STT_FUNC || info >> 4 !== STB_GLOBAL) continue;
      if (shndx === 0 || shndx >= sections.length || (sections[shndx]!.flags & SHF_EXECINSTR) === 0n) continue;
      const start = strtab.offset + b.readUInt32LE(o);
      names.push(b.toString('latin1', start, b.indexOf(0, start)));
    }
  }
  return names.sort();
}

interface Program {
  id: number;
  name: string;
  pids: number[];
}

function loadedPrograms(): Program[] {
  const r = spawnSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bpftool prog show -j failed: ${r.stderr}`);
  const list = JSON.parse(r.stdout || '[]') as Array<{ id: number; name?: string; pids?: Array<{ pid: number }> }>;
  return list.map((p) => ({ id: p.id, name: p.name ?? '', pids: (p.pids ?? []).map((x) => x.pid) }));
}

/** The BPF objects a process holds: whether any, whether a link, and the program ids (from fdinfo). */
interface FdView {
  any: boolean;
  link: boolean;
  progIds: number[];
}

function bpfFdsOf(pid: number): FdView {
  const view: FdView = { any: false, link: false, progIds: [] };
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return view; // gone, or not ours to read
  }
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (!/^anon_inode:(bpf-prog|bpf_link|bpf-map|btf)$/.test(target)) continue;
    view.any = true;
    if (target === 'anon_inode:bpf_link') view.link = true;
    if (target === 'anon_inode:bpf-prog' || target === 'anon_inode:bpf_link') {
      try {
        const m = /^prog_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (m) view.progIds.push(Number(m[1]));
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return view;
}

/** Program ids some live process holds through a program or link fd (what bpftool's `pids` would say). */
function heldProgramIds(): Set<number> {
  const held = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    for (const id of bpfFdsOf(Number(entry)).progIds) held.add(id);
  }
  return held;
}

async function eventually(check: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

type Phase = 'starting' | 'loading' | 'attached';
interface Moment {
  /** Counted from the spawn, from the first BPF fd (load started), or from the first link. */
  from: 'spawn' | 'load' | 'attach';
  ms: number;
}
interface Run {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Where the CLI was when the signal was sent (undefined: it ended before). */
  phase?: Phase;
  /** Program ids the CLI was seen holding. */
  seen: Set<number>;
  loadAtMs?: number;
  attachAtMs?: number;
  killAtMs?: number;
  exitAtMs: number;
  hung: boolean;
}

/** Runs the CLI and sends `signal` at `moment`; `onAttached` runs (synchronously) when the link appears. */
function runAndKill(out: string, signal: NodeJS.Signals, moment: Moment, onAttached?: (seen: Set<number>) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const since = () => Math.round(performance.now() - started);
    const child = spawn(process.execPath, [CLI, 'probe', 'run', 'drops.kernel', '-d', '5', '--out', out, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid!;
    const run: Run = { pid, code: null, signal: null, stdout: '', stderr: '', seen: new Set(), exitAtMs: 0, hung: false };
    const timers: NodeJS.Timeout[] = [];
    const kill = () => {
      if (run.killAtMs !== undefined || run.exitAtMs > 0) return;
      const v = bpfFdsOf(pid);
      for (const id of v.progIds) run.seen.add(id);
      run.phase = v.link ? 'attached' : v.any ? 'loading' : 'starting';
      run.killAtMs = since();
      child.kill(signal);
    };
    /** Kills `ms` after now; under a millisecond, right now (the load may last only a few). */
    const at = (ms: number) => (ms < 1 ? kill() : timers.push(setTimeout(kill, ms)));
    const poll = setInterval(() => {
      const v = bpfFdsOf(pid);
      for (const id of v.progIds) run.seen.add(id);
      if (v.any && run.loadAtMs === undefined) {
        run.loadAtMs = since();
        if (moment.from === 'load') at(moment.ms);
      }
      if (v.link && run.attachAtMs === undefined) {
        run.attachAtMs = since();
        onAttached?.(run.seen);
        if (moment.from === 'attach') at(moment.ms);
      }
    }, 1);
    if (moment.from === 'spawn') timers.push(setTimeout(kill, moment.ms));
    const watchdog = setTimeout(() => {
      run.hung = true;
      child.kill('SIGKILL');
    }, 15_000);
    child.stdout.on('data', (d: Buffer) => (run.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (run.stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, sig) => {
      clearInterval(poll);
      clearTimeout(watchdog);
      for (const t of timers) clearTimeout(t);
      run.code = code;
      run.signal = sig;
      run.exitAtMs = since();
      resolve(run);
    });
  });
}

describe('ebpfnet probe run killed at random moments leaves no BPF program behind', () => {
  let ours: string[] = [];
  let baseline = 0;
  let out = '';

  before(() => {
    assert.equal(process.geteuid?.(), 0, 'needs root');
    assert.ok(existsSync(CLI), `${CLI} missing: compile first`);
    const names = bpfProgramNames(OBJECT);
    assert.ok(names.includes('drops_tp_btf'), `programs of ${OBJECT}: ${names.join(', ')}`);
    ours = [...new Set(names.flatMap((n) => [n, n.slice(0, KERNEL_NAME_LEN)]))];
    // Programs loaded before this test are not its business (another test process may hold some).
    baseline = Math.max(0, ...loadedPrograms().map((p) => p.id));
    out = mkdtempSync(join(tmpdir(), 'ebpfnet-kill-'));
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  /** Programs of ours the dead CLI held, or loaded since the test began and held by no live process. */
  const leftovers = (run: Run): Program[] => {
    const mine = loadedPrograms().filter((p) => ours.includes(p.name));
    const unowned = mine.filter((p) => !run.seen.has(p.id) && p.id > baseline && p.pids.length === 0);
    const heldNow = unowned.length === 0 ? new Set<number>() : heldProgramIds(); // scans /proc only when there is a program to account for
    return mine.filter((p) => run.seen.has(p.id) || p.pids.includes(run.pid) || (unowned.includes(p) && !heldNow.has(p.id)));
  };
  const assertNoLeftovers = async (run: Run, what: string) => {
    assert.ok(await eventually(() => leftovers(run).length === 0), `${what}: programs left in the kernel: ${JSON.stringify(leftovers(run))}`);
  };

  it(`SIGINT and SIGTERM, ${KILLS} kills while starting, loading and attached`, async (t) => {
    t.diagnostic(`seed ${SEED} (EBPFNET_KILL_SEED=${SEED} replays it); programs of ours: ${ours.join(', ')}`);
    const rand = prng(SEED);
    const phases: Record<Phase | 'ended', number> = { starting: 0, loading: 0, attached: 0, ended: 0 };
    let diedOfSignal = 0;
    // How long the CLI takes to start loading, and to load and attach, as seen so far here
    // (median): the kill moments are spread over these, whatever this host's speed.
    const loadAt: number[] = [];
    const loading: number[] = [];
    const median = (xs: number[], dflt: number) => (xs.length === 0 ? dflt : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
    for (let i = 0; i < KILLS; i++) {
      const signal: NodeJS.Signals = i % 2 === 0 ? 'SIGINT' : 'SIGTERM';
      // Two kills (one per signal) for each kind of moment in turn (8 attach, 6 load, 6 spawn):
      // up to 300 ms after the attach, from the first BPF fd until the link (the load), and from
      // the spawn until the load starts (Node starting, the CLI parsing, checking requirements).
      const from = (['attach', 'load', 'spawn'] as const)[Math.floor(i / 2) % 3]!;
      const r = rand();
      // From the spawn, skewed late: signals just before the load meet the CLI's handlers.
      const ms = Math.round((from === 'spawn' ? Math.sqrt(r) * median(loadAt, 800) : from === 'load' ? r * 0.5 * median(loading, 10) : r * 300) * 10) / 10;
      const run = await runAndKill(out, signal, { from, ms });
      const what = `seed ${SEED}, kill ${i}: ${signal} ${ms} ms after ${from} (phase ${run.phase ?? 'ended'}, load at ${run.loadAtMs} ms, attach at ${run.attachAtMs}, kill at ${run.killAtMs}, exit at ${run.exitAtMs}; stderr ${JSON.stringify(run.stderr.slice(0, 500))})`;
      phases[run.phase ?? 'ended']++;
      if (process.env.EBPFNET_KILL_DEBUG) t.diagnostic(what);
      if (run.loadAtMs !== undefined) loadAt.push(run.loadAtMs);
      if (run.loadAtMs !== undefined && run.attachAtMs !== undefined) loading.push(run.attachAtMs - run.loadAtMs);
      assert.equal(run.hung, false, `${what}: did not exit within 15 s of the signal`);
      assert.ok(run.phase, `${what}: the CLI ended before the signal was sent`);
      if (run.code === null) {
        // Killed before the CLI listened for signals: only possible before anything was loaded.
        diedOfSignal++;
        assert.equal(run.signal, signal, what);
        assert.equal(run.phase, 'starting', `${what}: died of the signal with BPF objects open, so its handlers were not in place`);
        assert.equal(run.seen.size, 0, what);
        assert.equal(run.stdout, '', what);
      } else {
        assert.equal(run.code, signal === 'SIGINT' ? 130 : 143, what);
        const finding = JSON.parse(run.stdout) as { status: string; reason?: string; bundle: string };
        assert.equal(finding.status, 'interrupted', `${what}: ${finding.reason}`);
        assert.match(finding.reason ?? '', new RegExp(signal), what);
        assert.ok(existsSync(join(finding.bundle, 'finding.json')), `${what}: no finding.json in ${finding.bundle}`);
      }
      if (run.phase === 'attached') assert.ok(run.seen.size > 0, `${what}: attached but no program id seen`);
      await assertNoLeftovers(run, what);
    }
    t.diagnostic(`phases when the signal was sent: ${JSON.stringify(phases)}; ${diedOfSignal} died of the signal before the CLI handled it; load starts ~${median(loadAt, NaN)} ms after spawn and takes ~${median(loading, NaN)} ms to attach`);
    assert.ok(phases.attached >= 8, `only ${phases.attached} kills while attached (seed ${SEED})`);
    assert.ok(phases.loading >= 1, `no kill while loading (seed ${SEED}): ${JSON.stringify(phases)}`);
    assert.ok(phases.starting >= 1, `no kill while starting (seed ${SEED}): ${JSON.stringify(phases)}`);
  });

  it('SIGKILL while attached: the kernel closes the fds and the program goes with them', async () => {
    let visible: Program[] = [];
    // Proves the check can see a program: while attached, bpftool lists the ids from the CLI's fdinfo.
    const run = await runAndKill(out, 'SIGKILL', { from: 'attach', ms: 100 }, (seen) => {
      visible = loadedPrograms().filter((p) => seen.has(p.id));
    });
    const what = `SIGKILL (phase ${run.phase}, attach at ${run.attachAtMs} ms, kill at ${run.killAtMs}; stderr ${JSON.stringify(run.stderr.slice(0, 500))})`;
    assert.equal(run.phase, 'attached', what);
    assert.equal(run.signal, 'SIGKILL', what);
    assert.ok(visible.length > 0 && visible.every((p) => ours.includes(p.name)), `${what}: bpftool did not show the attached program: ${JSON.stringify(visible)}`);
    await assertNoLeftovers(run, what);
  });
});
