// The stdout of a `readfiles` observation: one JSON entry per file and line, so the
// evidence file stays readable and diffable.
import type { FileReading, RawRecord } from './types.js';

export function formatFileReadings(readings: FileReading[]): string {
  return `[\n${readings.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`;
}

/** The files of a `readfiles` record; throws when the recording is not one. */
export function fileReadings(record: RawRecord): FileReading[] {
  if (record.op !== 'readfiles') throw new Error(`record ${record.name} is a ${record.op}, not a readfiles`);
  const parsed = JSON.parse(record.stdout) as unknown;
  if (!Array.isArray(parsed)) throw new Error(`record ${record.name}: readfiles output is not a list`);
  return parsed as FileReading[];
}
