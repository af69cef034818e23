// The runbook catalog: finds runbooks by id (the shipped ones and $EBPFNET_RUNBOOKS folders)
// or by path, and opens them through the cache of checked runbooks.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { ProbeCatalog } from '../probe/types.js';
import { loadRunbookCached } from './cache.js';
import { UnknownRunbookError } from './errors.js';
import { findRunbooks, shippedRunbooksDir } from './load.js';
import type { Runbook } from './model.js';

/** Folders searched for `<id>.yaml`, first match wins. */
export function runbookDirs(): string[] {
  const extra = (process.env.EBPFNET_RUNBOOKS ?? '').split(':').filter(Boolean);
  return [...extra.map((d) => resolve(d)), shippedRunbooksDir()];
}

/** Every runbook file of those folders; a name in an earlier folder hides the same name later. */
export function runbookFiles(): string[] {
  const seen = new Map<string, string>();
  for (const dir of runbookDirs()) {
    if (!existsSync(dir)) continue;
    for (const file of findRunbooks(dir)) if (!seen.has(basename(file))) seen.set(basename(file), file);
  }
  return [...seen.values()];
}

const looksLikePath = (arg: string) => arg.includes('/') || /\.ya?ml$/.test(arg);

/** Loads a runbook given as an id or a file path (through the cache of checked runbooks); RunbookError propagates. */
export function openRunbook(arg: string, catalog: ProbeCatalog): Runbook {
  if (looksLikePath(arg)) {
    if (!existsSync(arg)) throw new UnknownRunbookError(`no runbook file ${arg}`);
    return loadRunbookCached(resolve(arg), catalog);
  }
  for (const dir of runbookDirs()) {
    for (const ext of ['.yaml', '.yml']) {
      const file = join(dir, `${arg}${ext}`);
      if (existsSync(file)) return loadRunbookCached(file, catalog);
    }
  }
  const known = runbookFiles().map((f) => f.split('/').pop()!.replace(/\.ya?ml$/, ''));
  throw new UnknownRunbookError(`unknown runbook "${arg}" (known: ${known.join(', ') || 'none'}; see \`ebpfnet runbooks list\`)`);
}
