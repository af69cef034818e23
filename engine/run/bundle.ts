// The run bundle: runs/<timestamp>-<runbook>-<target>/ with run.json, the machine
// snapshot, the runbook it ran (runbook.yaml) and raw/ evidence. Files are replaced atomically (write, then rename) so a
// crash or a kill at any moment leaves the last complete version on disk.
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { makeDirs, writeFileAtomic } from '../fs.js';
import type { RunRecord } from './record.js';

export const RUN_FILE = 'run.json';
export const SNAPSHOT_FILE = 'snapshot.json';
/** The runbook's text as the run read it (named in run.json's `runbook.copy`). */
export const RUNBOOK_FILE = 'runbook.yaml';

function stamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

/** Keeps a name safe as one path component. */
export function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_').slice(0, 64) || '_';
}

export class RunBundle {
  private constructor(readonly dir: string) {}

  /** Makes a new bundle folder under `root`. */
  static create(root: string, runbookId: string, targetName: string, now = new Date()): RunBundle {
    const base = join(resolve(root), `${stamp(now)}-${safeName(runbookId)}-${safeName(targetName)}`);
    let dir = base;
    for (let n = 2; existsSync(dir); n++) dir = `${base}-${n}`;
    try {
      makeDirs(join(dir, 'raw'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new Error(`cannot create a run bundle under ${resolve(root)} (${code}): choose a writable folder with --out`);
    }
    return new RunBundle(dir);
  }

  static open(dir: string): RunBundle {
    const abs = resolve(dir);
    if (!existsSync(join(abs, RUN_FILE))) throw new Error(`${dir} is not a run bundle: it has no ${RUN_FILE}`);
    return new RunBundle(abs);
  }

  get id(): string {
    return this.dir.split('/').pop()!;
  }

  readRecord(): RunRecord {
    const text = readFileSync(join(this.dir, RUN_FILE), 'utf8');
    try {
      return JSON.parse(text) as RunRecord;
    } catch (err) {
      throw new Error(`${join(this.dir, RUN_FILE)} is not valid JSON: ${(err as Error).message}`);
    }
  }

  writeRecord(record: RunRecord): void {
    writeFileAtomic(join(this.dir, RUN_FILE), `${JSON.stringify(record, null, 2)}\n`);
  }

  readSnapshot(): unknown | undefined {
    const path = join(this.dir, SNAPSHOT_FILE);
    return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined;
  }

  writeSnapshot(snapshot: unknown): void {
    writeFileAtomic(join(this.dir, SNAPSHOT_FILE), JSON.stringify(snapshot));
  }

  /** Keeps the text of the runbook the run reads; returns its name in the bundle. */
  writeRunbook(text: Uint8Array): string {
    writeFileAtomic(join(this.dir, RUNBOOK_FILE), text);
    return RUNBOOK_FILE;
  }

  /** A fresh folder for one probe's evidence: raw/<step>-<visit>/<alias>[~attempt]. */
  evidenceDir(step: string, visit: number, alias: string): string {
    const base = join(this.dir, 'raw', `${safeName(step)}-${visit}`, safeName(alias));
    let dir = base;
    for (let n = 2; existsSync(dir); n++) dir = `${base}~${n}`;
    makeDirs(dir);
    return dir;
  }

  relative(path: string): string {
    return relative(this.dir, path);
  }

  resolve(relativePath: string): string {
    return join(this.dir, relativePath);
  }
}
