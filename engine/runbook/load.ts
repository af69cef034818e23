// Loads runbook files: YAML → schema → meaning → the Runbook model. Each phase
// runs only when the one before found nothing, so one mistake is reported once
// (a broken indentation does not also come back as a dozen schema complaints);
// within a phase every problem is reported. Bad input never throws anything but
// a RunbookError.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { packageRoot } from '../package-info.js';
import type { ProbeCatalog } from '../probe/types.js';
import { buildRunbook } from './build.js';
import type { Problem } from '../yaml/problems.js';
import { readYaml } from '../yaml/positions.js';
import { RunbookError } from './errors.js';
import type { Runbook } from './model.js';
import type { RawRunbook } from './raw.js';
import { schemaProblems } from './schema.js';
import { checkRunbook } from './validate.js';

export { formatProblem, sortProblems, type Problem } from '../yaml/problems.js';
export { RunbookError } from './errors.js';

const RUNBOOK_FILE = /\.ya?ml$/;

function reason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? text).trim();
}

/** Loads a runbook from text; `file` names it in problems (and, resolved, in `Runbook.file`). */
export function loadRunbookText(text: string, file: string, catalog: ProbeCatalog): Runbook {
  try {
    const read = readYaml(text, file);
    if (read.problems.length) throw new RunbookError(read.problems);
    const shape = schemaProblems(read.value, read.map);
    if (shape.length) throw new RunbookError(shape);
    const raw = read.value as RawRunbook;
    const meaning = checkRunbook(raw, read.map, catalog);
    if (meaning.length) throw new RunbookError(meaning);
    return buildRunbook(raw, resolve(file), read.map);
  } catch (err) {
    if (err instanceof RunbookError) throw err;
    // A bug of ours must still read as a located problem, never as a stack trace.
    throw new RunbookError([{ file, line: 1, column: 1, message: `internal error while checking this runbook: ${reason(err)}` }]);
  }
}

/** Loads one runbook file; an unreadable file is a problem at 1:1. */
export function loadRunbookFile(path: string, catalog: ProbeCatalog): Runbook {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RunbookError([{ file: path, line: 1, column: 1, message: `cannot read file: ${reason(err)}` }]);
  }
  return loadRunbookText(text, path, catalog);
}

/** The runbook files (`*.yaml`, `*.yml`) directly in `dir`, sorted, as full paths. */
export function findRunbooks(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new RunbookError([{ file: dir, line: 1, column: 1, message: `cannot read folder: ${reason(err)}` }]);
  }
  return names
    .filter((name) => RUNBOOK_FILE.test(name))
    .sort()
    .map((name) => join(dir, name));
}

/** The folder of the runbooks this package ships. */
export function shippedRunbooksDir(): string {
  return join(packageRoot(), 'runbooks');
}

/**
 * Loads every runbook of a folder, reporting the problems of all files at once.
 * A runbook is found by id as `<id>.yaml`, so its id must match its file name,
 * and ids are unique across the folder.
 */
export function loadRunbookDir(dir: string, catalog: ProbeCatalog): Runbook[] {
  const problems: Problem[] = [];
  const runbooks: Runbook[] = [];
  const byId = new Map<string, string>();
  for (const file of findRunbooks(dir)) {
    let runbook: Runbook;
    try {
      runbook = loadRunbookFile(file, catalog);
    } catch (err) {
      if (!(err instanceof RunbookError)) throw err;
      problems.push(...err.problems);
      continue;
    }
    const idPos = runbook.positions.get('/id') ?? { line: 1, column: 1 };
    const stem = basename(file).replace(RUNBOOK_FILE, '');
    if (runbook.id !== stem) {
      problems.push({ file, ...idPos, message: `id: "${runbook.id}" does not match the file name ${basename(file)}: a runbook is found by id as <id>.yaml` });
    }
    const other = byId.get(runbook.id);
    if (other !== undefined) {
      problems.push({ file, ...idPos, message: `id: "${runbook.id}" is already the id of ${other}` });
    }
    byId.set(runbook.id, file);
    runbooks.push(runbook);
  }
  if (problems.length) throw new RunbookError(problems);
  return runbooks;
}

/** Loads every shipped runbook (`runbooks/*.yaml` of the package). */
export function loadShippedRunbooks(catalog: ProbeCatalog): Runbook[] {
  return loadRunbookDir(shippedRunbooksDir(), catalog);
}
