// A throwaway bundle folder for probe tests, removed when the test ends.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunProbeOptions } from '../../engine/probe/runtime.js';
import type { TeardownHost } from './netns.js';

export interface TempBundle {
  root: string;
  /** Options for a probe run into raw/<name>. */
  opts(name: string, extra?: Partial<RunProbeOptions>): RunProbeOptions;
  dir(name: string): string;
}

export async function tempBundle(t: TeardownHost, prefix = 'ebpfnet-test-'): Promise<TempBundle> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dir = (name: string) => join(root, 'raw', name);
  return {
    root,
    dir,
    opts: (name, extra = {}) => ({ rawDir: dir(name), bundleRoot: root, signal: new AbortController().signal, ...extra }),
  };
}
