// When a process the test started (a CLI run) has attached its programs, as the kernel says:
// `bpftool link show` lists the links and `prog show` names their programs. A fixed sleep for
// the CLI to start and attach held on this machine and failed under the kernel lab's emulated
// CPU, where Node takes seconds to start.
import { spawnSync } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { loadedPrograms } from '../native/support.js';

function bpftoolJson<T>(args: string[]): T {
  const r = spawnSync('bpftool', ['-j', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bpftool ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout || '[]') as T;
}

/** Links the kernel holds whose program's name starts with `prefix` (names are cut to 15 characters). */
export function linksOf(prefix: string): number {
  const names = new Map(loadedPrograms().map((p) => [p.id, p.name]));
  return bpftoolJson<Array<{ prog_id: number }>>(['link', 'show']).filter((l) => names.get(l.prog_id)?.startsWith(prefix)).length;
}

/** Waits until `count` links of programs named `prefix…` are attached; throws after `timeoutMs`. */
export async function whenAttached(prefix: string, count: number, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const held = linksOf(prefix);
    if (held >= count) return;
    if (Date.now() > until) throw new Error(`${held} of ${count} programs named ${prefix}… attached after ${timeoutMs} ms`);
    await delay(100);
  }
}

/** Program ids attached to tracepoint `name` through perf events (bpftrace's way), as `bpftool perf show` lists them. */
export function perfAttached(name: string): number[] {
  return bpftoolJson<Array<{ prog_id: number; fd_type: string; tracepoint?: string }>>(['perf', 'show'])
    .filter((p) => p.fd_type === 'tracepoint' && p.tracepoint === name)
    .map((p) => p.prog_id);
}

/**
 * Waits until every tracepoint of `names` has `count` programs attached that `before` (ids
 * from perfAttached) did not have; returns the new ids by name. Loaded is not attached: bpftrace
 * loads all its programs first, and under an emulated CPU attaches them seconds later.
 */
export async function whenPerfAttached(names: string[], before: Map<string, number[]>, count: number, timeoutMs = 120_000): Promise<Map<string, number[]>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const fresh = new Map(names.map((n) => [n, perfAttached(n).filter((id) => !(before.get(n) ?? []).includes(id))]));
    if ([...fresh.values()].every((ids) => ids.length >= count)) return fresh;
    if (Date.now() > until) throw new Error(`programs attached after ${timeoutMs} ms: ${JSON.stringify(Object.fromEntries(fresh))}, ${count} each wanted`);
    await delay(100);
  }
}
