// The declared fields of a probe's data as `probes show` prints them: a table of path, type,
// unit and description, under the name runbooks read them by.
import type { TSchema } from '#typebox';
import { dataFields } from '../../../probe/data-schema.js';

export function fieldsTable(data: TSchema): string[] {
  const rows = dataFields(data).map((f) => [f.path, f.optional ? `${f.type} (optional)` : f.type, f.unit ?? '', f.description ?? '']);
  const header = ['FIELD', 'TYPE', 'UNIT', 'DESCRIPTION'];
  const widths = header.slice(0, 3).map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ')}`.trimEnd();
  return ['Data (conditions read findings.<alias>.<field>; [] is each item of a list, .* each value of a map):', line(header), ...rows.map(line)];
}
