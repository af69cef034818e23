// The runbook a run ran, kept in its bundle (runbook.yaml, named in run.json): `ebpfnet report`
// and `diagnose --resume` read it from there, so a runbook file edited or removed after the run
// changes neither. Bundles of older versions keep none; their readers fall back to the file.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { ProbeCatalog } from '../probe/types.js';
import { loadRunbookText } from '../runbook/load.js';
import type { Runbook } from '../runbook/model.js';
import type { RunBundle } from './bundle.js';
import type { RunRecord } from './record.js';

export function sha256Of(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

/** What run.json says of the runbook, with a copy of its text kept in `bundle`. */
export function keepRunbook(bundle: RunBundle, runbook: Runbook): RunRecord['runbook'] {
  const text = readFileSync(runbook.file);
  return { id: runbook.id, title: runbook.title, file: runbook.file, sha256: sha256Of(text), copy: bundle.writeRunbook(text) };
}

/**
 * The runbook the bundle's run ran, loaded from the copy it keeps; undefined when it keeps none.
 * A copy that this version cannot load (a probe since removed) is a RunbookError.
 */
export function keptRunbook(bundle: RunBundle, record: RunRecord, catalog: ProbeCatalog): Runbook | undefined {
  const copy = record.runbook?.copy;
  if (!copy) return undefined;
  const path = bundle.resolve(copy);
  if (!existsSync(path)) return undefined;
  return loadRunbookText(readFileSync(path, 'utf8'), path, catalog);
}
