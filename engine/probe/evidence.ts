// A probe run's raw evidence on disk, and back: one file per observation plus an index.
//
//   <rawDir>/01-devices.out     stdout of record 1 (always written, even when empty)
//   <rawDir>/02-tc-start.err    stderr of record 2 (only when there was some)
//   <rawDir>/records.json       the records without their output, the params and the outcome
//
// The index is written last, so a folder without one was never completely written.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import type { FindingStatus, Params, RawRecord } from './types.js';

export const RECORDS_FILE = 'records.json';
const FORMAT = 'ebpfnet-probe-evidence';
const VERSION = 1;

/** How the probe run ended, so a replay can reproduce a skipped or failed run. */
export interface EvidenceOutcome {
  status: FindingStatus;
  reason?: string;
}

/** A record as indexed in records.json: its output lives in `file` (and `stderrFile`). */
export interface StoredRecord extends Omit<RawRecord, 'stdout' | 'stderr' | 'file'> {
  /** Bundle-relative path of the stdout file. */
  file: string;
  /** Bundle-relative path of the stderr file, when stderr was not empty. */
  stderrFile?: string;
  stdoutBytes: number;
  stderrBytes: number;
}

export interface EvidenceIndex {
  format: typeof FORMAT;
  version: typeof VERSION;
  probe: string;
  params: Params;
  outcome: EvidenceOutcome;
  records: StoredRecord[];
}

/** One probe run's evidence, as written and as read back. */
export interface Evidence {
  probe: string;
  params: Params;
  outcome: EvidenceOutcome;
  records: RawRecord[];
}

/**
 * Writes `evidence` into `rawDir` (created if needed), which must lie inside `bundleRoot`.
 * Returns the bundle-relative paths written, records.json last.
 */
export async function writeEvidence(rawDir: string, bundleRoot: string, evidence: Evidence): Promise<string[]> {
  const toBundle = bundleRelative(rawDir, bundleRoot);
  await mkdir(rawDir, { recursive: true });
  const records = [...evidence.records].sort((a, b) => a.seq - b.seq);
  const width = Math.max(2, String(records.at(-1)?.seq ?? 0).length);
  const written: string[] = [];
  const stored: StoredRecord[] = [];
  const writes: Array<Promise<void>> = [];
  for (const rec of records) {
    const stem = `${String(rec.seq).padStart(width, '0')}-${safeFileName(rec.name)}`;
    const { stdout, stderr, file: _file, ...rest } = rec;
    const entry: StoredRecord = {
      ...rest,
      file: toBundle(`${stem}.out`),
      stdoutBytes: Buffer.byteLength(stdout),
      stderrBytes: Buffer.byteLength(stderr),
    };
    writes.push(writeFile(join(rawDir, `${stem}.out`), stdout));
    written.push(entry.file);
    if (stderr !== '') {
      entry.stderrFile = toBundle(`${stem}.err`);
      writes.push(writeFile(join(rawDir, `${stem}.err`), stderr));
      written.push(entry.stderrFile);
    }
    stored.push(entry);
  }
  await Promise.all(writes);
  const index: EvidenceIndex = {
    format: FORMAT,
    version: VERSION,
    probe: evidence.probe,
    params: evidence.params,
    outcome: { status: evidence.outcome.status, ...(evidence.outcome.reason !== undefined ? { reason: evidence.outcome.reason } : {}) },
    records: stored,
  };
  const indexPath = join(rawDir, RECORDS_FILE);
  await writeFile(`${indexPath}.tmp`, `${JSON.stringify(index, null, 2)}\n`);
  await rename(`${indexPath}.tmp`, indexPath);
  written.push(toBundle(RECORDS_FILE));
  return written;
}

/** Reads the evidence written by `writeEvidence` from `rawDir`, output files included. */
export async function readEvidence(rawDir: string): Promise<Evidence> {
  const indexPath = join(rawDir, RECORDS_FILE);
  let index: EvidenceIndex;
  try {
    index = JSON.parse(await readFile(indexPath, 'utf8')) as EvidenceIndex;
  } catch (err) {
    throw new Error(`no readable probe evidence in ${rawDir}: ${(err as Error).message}`);
  }
  if (index?.format !== FORMAT || index.version !== VERSION || !Array.isArray(index.records) || !index.outcome) {
    throw new Error(`${indexPath} is not probe evidence of format ${FORMAT} version ${VERSION}`);
  }
  const records = await Promise.all(
    index.records.map(async (stored): Promise<RawRecord> => {
      const { file, stderrFile, stdoutBytes: _o, stderrBytes: _e, ...rest } = stored;
      // Files sit beside records.json; their bundle-relative names say where the bundle had them.
      const stdout = await readOutput(rawDir, file);
      const stderr = stderrFile !== undefined ? await readOutput(rawDir, stderrFile) : '';
      return { ...rest, stdout, stderr, file };
    }),
  );
  records.sort((a, b) => a.seq - b.seq);
  return { probe: index.probe, params: index.params ?? {}, outcome: index.outcome, records };
}

async function readOutput(rawDir: string, bundlePath: string): Promise<string> {
  const path = join(rawDir, basename(bundlePath));
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`probe evidence in ${rawDir} is incomplete: ${(err as Error).message}`);
  }
}

/** Maps a file name inside rawDir to its bundle-relative path (always with `/`). */
function bundleRelative(rawDir: string, bundleRoot: string): (fileName: string) => string {
  if (!isAbsolute(rawDir) || !isAbsolute(bundleRoot)) {
    throw new TypeError(`evidence folders must be absolute: rawDir ${rawDir}, bundleRoot ${bundleRoot}`);
  }
  const rel = relative(bundleRoot, rawDir);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) throw new TypeError(`evidence folder ${rawDir} is not inside the bundle ${bundleRoot}`);
  const prefix = rel === '' ? '' : `${rel.split(sep).join('/')}/`;
  return (fileName) => `${prefix}${fileName}`;
}

/** A probe's record name as a file name: letters, digits, `.`, `_` and `-` only. */
export function safeFileName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_');
  return (cleaned || 'record').slice(0, 100);
}
