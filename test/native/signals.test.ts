// Nothing of ours survives its process: a child attaches and is killed with SIGINT or
// SIGTERM at random moments (before, during and after attaching), then bpftool must show no
// program of the selftest object left. The guard must also keep the exit status.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { eventually, selftestProgramsOf } from './support.js';

const CHILD = join(packageRoot(), 'dist', 'test', 'native', 'attach-child.js');

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  attachedBeforeKill: boolean;
}

function runChild(mode: string, kill?: { signal: NodeJS.Signals; afterAttachMs?: number; afterSpawnMs?: number }): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let attachedBeforeKill = false;
    let killed = false;
    const doKill = () => {
      if (killed) return;
      killed = true;
      attachedBeforeKill = stdout.includes('attached\n');
      child.kill(kill!.signal);
    };
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (kill?.afterAttachMs !== undefined && stdout.includes('attached\n')) setTimeout(doKill, kill.afterAttachMs);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    if (kill?.afterSpawnMs !== undefined) setTimeout(doKill, kill.afterSpawnMs);
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      resolve({ code, signal, stdout, stderr, attachedBeforeKill });
    });
  });
}

async function assertNothingLeft(pid: number | undefined, what: string): Promise<void> {
  const left = () => selftestProgramsOf(pid ?? -1);
  assert.ok(await eventually(() => left().length === 0), `${what}: left ${JSON.stringify(left())}`);
}

test('SIGINT and SIGTERM at random moments leave no program behind (24 kills)', async (t) => {
  let afterAttach = 0;
  for (let i = 0; i < 24; i++) {
    const signal: NodeJS.Signals = i % 2 === 0 ? 'SIGINT' : 'SIGTERM';
    // Half the kills land at a random time from spawn (often before or while attaching),
    // half at a random time after the child said it attached.
    const kill = i % 4 < 2 ? { signal, afterSpawnMs: Math.random() * 400 } : { signal, afterAttachMs: Math.random() * 150 };
    const out = await runChild('run', kill);
    const what = `kill ${i} (${signal}, ${JSON.stringify(kill)})`;
    assert.equal(out.signal, signal, `${what}: the process must die of the signal (code ${out.code}, stderr ${out.stderr})`);
    if (out.attachedBeforeKill) afterAttach++;
    await assertNothingLeft(undefined, what);
  }
  t.diagnostic(`${afterAttach} of 24 kills hit a child with programs attached`);
  assert.ok(afterAttach >= 12, `only ${afterAttach} kills after attach`);
});

test('holding a graceful handler, the guard detaches links at once and closes the rest at exit', async () => {
  const out = await runChild('graceful', { signal: 'SIGTERM', afterAttachMs: 50 });
  assert.equal(out.code, 143);
  assert.match(out.stdout, /on-signal \{"readers":1,"links":0,"objects":1\}\n/);
  assert.match(out.stdout, /open \{"readers":0,"links":0,"objects":0\}\n$/);
  await assertNothingLeft(undefined, 'graceful');
});

test("a library's own SIGTERM listener (signal-exit) does not stop the guard closing everything", async () => {
  const out = await runChild('listener', { signal: 'SIGTERM', afterAttachMs: 50 });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /library-listener \{"readers":0,"links":0,"objects":0\}\n/);
  await assertNothingLeft(undefined, 'listener');
});

test('an uncaught exception keeps its exit code and closes everything', async () => {
  const out = await runChild('throw');
  assert.equal(out.code, 1);
  assert.match(out.stderr, /boom after attach/);
  assert.match(out.stdout, /open \{"readers":0,"links":0,"objects":0\}\n$/);
  await assertNothingLeft(undefined, 'throw');
});

test('process.exit keeps its code and closes everything', async () => {
  const out = await runChild('exit');
  assert.equal(out.code, 7);
  assert.match(out.stdout, /open \{"readers":0,"links":0,"objects":0\}\n$/);
  await assertNothingLeft(undefined, 'exit');
});
