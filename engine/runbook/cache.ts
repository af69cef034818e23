// Checked runbooks, kept: reading, checking and building a runbook takes ~150 ms of a cold
// process (YAML with positions, the schema, every CEL expression), most of what `diagnose`
// spends before its first probe. The model of a runbook that passed is stored under a key
// made of everything it depends on (the file's path and text, the code that checks and
// builds it, the probes' parameters), so an edit to any of them is a miss, never a stale hit.
// Only runbooks that passed are stored; anything wrong with the cache is a miss.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProbeCatalog } from '../probe/types.js';
import { loadRunbookFile, loadRunbookText } from './load.js';
import type { SourcePos } from '../yaml/positions.js';
import type { Runbook } from './model.js';

const FORMAT = 1;
/** Entries kept; the oldest go first. */
const MAX_ENTRIES = 64;

/**
 * The cache's folder: $EBPFNET_CACHE_DIR, else /var/cache/ebpfnet for root (beside the
 * minimal BTF, engine/native/btf-cache.ts), else the user's ($XDG_CACHE_HOME or ~/.cache).
 */
export function cacheDir(): string {
  if (process.env.EBPFNET_CACHE_DIR) return process.env.EBPFNET_CACHE_DIR;
  if (process.geteuid?.() === 0) return '/var/cache/ebpfnet';
  const home = process.env.HOME || homedir();
  return join(process.env.XDG_CACHE_HOME || (home ? join(home, '.cache') : tmpdir()), 'ebpfnet');
}

/** Loads `file` as loadRunbookText would, through the cache; EBPFNET_CACHE=off reads it afresh. */
export function loadRunbookCached(file: string, catalog: ProbeCatalog): Runbook {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return loadRunbookFile(file, catalog); // says why it cannot be read, as a located problem
  }
  if (process.env.EBPFNET_CACHE === 'off') return loadRunbookText(text, file, catalog);
  const path = join(cacheDir(), 'runbooks', `${keyOf(file, text, catalog)}.json`);
  const hit = readEntry(path);
  if (hit) return hit;
  const runbook = loadRunbookText(text, file, catalog); // throws on a problem: nothing stored
  writeEntry(path, runbook);
  return runbook;
}

function keyOf(file: string, text: string, catalog: ProbeCatalog): string {
  const h = createHash('sha256');
  h.update(`${FORMAT}\0${file}\0${text}\0`);
  h.update(codeStamp());
  // The checks read the probes' parameters and declared data: both are part of the key.
  for (const id of catalog.ids().sort()) h.update(`\0${id}\0${JSON.stringify(catalog.get(id)?.params ?? null)}\0${JSON.stringify(catalog.get(id)?.data ?? null)}`);
  return h.digest('hex').slice(0, 32);
}

let stamp: string | undefined;

/**
 * The code a runbook's model depends on, by the size and time of each compiled module of
 * the engine and the probes (~250 files: a few ms); a rebuild or an edit changes it.
 */
function codeStamp(): string {
  if (stamp !== undefined) return stamp;
  const here = dirname(fileURLToPath(import.meta.url)); // <root>/engine/runbook (or dist/engine/runbook)
  const parts: string[] = [];
  for (const dir of [join(here, '..'), join(here, '..', '..', 'probes')]) walk(dir, parts);
  stamp = createHash('sha256').update(parts.join('\n')).digest('hex');
  return stamp;
}

function walk(dir: string, out: string[]): void {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) walk(path, out);
    else if (/\.(js|ts|cjs|json|yaml)$/.test(name) && !name.endsWith('.map')) out.push(`${path}\0${st.size}\0${st.mtimeMs}`);
  }
}

interface Entry {
  format: number;
  runbook: Omit<Runbook, 'positions'> & { positions: Array<[string, SourcePos]> };
}

function readEntry(path: string): Runbook | null {
  try {
    const entry = JSON.parse(readFileSync(path, 'utf8')) as Entry;
    if (entry.format !== FORMAT) return null;
    touch(path);
    return { ...entry.runbook, positions: new Map(entry.runbook.positions) };
  } catch {
    return null; // absent, unreadable or torn: read the runbook afresh
  }
}

/** Marks an entry used, so that it is pruned last; not ours to touch is no matter. */
function touch(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    /* read-only */
  }
}

function writeEntry(path: string, runbook: Runbook): void {
  const entry: Entry = { format: FORMAT, runbook: { ...runbook, positions: [...runbook.positions] } };
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    renameSync(tmp, path); // whole or not at all, also with runs side by side
    prune(dirname(path));
  } catch {
    // A home not ours, a read-only or full disk: the run goes on uncached.
    try {
      rmSync(tmp, { force: true });
    } catch {
      /* not even ours to remove */
    }
  }
}

function prune(dir: string): void {
  const entries = readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => ({ path: join(dir, n), at: statSync(join(dir, n), { throwIfNoEntry: false })?.mtimeMs ?? 0 }));
  if (entries.length <= MAX_ENTRIES) return;
  entries.sort((a, b) => a.at - b.at);
  for (const e of entries.slice(0, entries.length - MAX_ENTRIES)) rmSync(e.path, { force: true });
}
