// Runs the built CLI as a user would: a child process, argument arrays, no shell.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { packageRoot } from '../../engine/package-info.js';

export const CLI = join(packageRoot(), 'dist', 'engine', 'cli', 'main.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The CLI's environment: this process's without FORCE_COLOR, which Node's test runner sets for
 * its files when its own output is a terminal (the kernel lab's serial console), plus `env`.
 */
function cliEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { FORCE_COLOR: _, ...rest } = process.env;
  return { ...rest, ...env };
}

export function runCli(args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: cliEnv(env),
    timeout: 120_000,
    killSignal: 'SIGKILL',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `probes list` names probe `id` and `probes show <id>` succeeds; returns what show printed. */
export function assertProbeListedAndShown(id: string): string {
  const list = runCli(['probes', 'list']);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^${id.replace(/[.]/g, '\\.')}\\b`, 'm'));
  const show = runCli(['probes', 'show', id]);
  assert.equal(show.status, 0, show.stderr);
  return show.stdout;
}

/** Starts the CLI without waiting; the caller signals it and awaits `done`. */
export function startCli(args: string[]): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv() });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
  return { child, done };
}

/**
 * Waits until a run started by the CLI has written its bundle's run.json under `out` (a folder
 * not in `known`, named with `runbook`): from then its signal handlers are in place, however
 * long the process took to start on a loaded host. Returns the bundle's path.
 */
export async function waitForRunBundle(out: string, runbook: string, known: Set<string>, timeoutMs = 30_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const fresh = readdirSync(out).find((d) => !known.has(d) && d.includes(`-${runbook}-`) && existsSync(join(out, d, 'run.json')));
    if (fresh) return join(out, fresh);
    await delay(50);
  }
  throw new Error(`no ${runbook} run started under ${out} within ${timeoutMs} ms`);
}
