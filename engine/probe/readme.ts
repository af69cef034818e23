// A probe's README (probes/<id>/README.md), rendered from its definition so that the folder's
// documentation cannot drift from what the probe declares: what it measures, what normal
// looks like, its params, its declared data fields, what it needs, and the files it is made of.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dataFields } from './data-schema.js';
import { describeRequirement } from './requirement-text.js';
import type { ParamSpec, ProbeDefinition } from './types.js';

/** One file of the probe's folder and what it holds (its first comment line). */
export interface ProbeFile {
  name: string;
  role: string;
}

export const README_HEADER = '<!-- Written by `npm run readmes` from the probe\'s definition: edit probe.ts / data.ts, not this file. -->';

/** A table cell: one line, pipes escaped. */
function cell(text: string | number | boolean | undefined): string {
  return String(text ?? '').replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

function paramDefault(spec: ParamSpec): string {
  if (spec.required) return 'required';
  if (spec.default === undefined) return '';
  return `\`${Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default)}\``;
}

function paramType(spec: ParamSpec): string {
  const bounds = [spec.min !== undefined ? `≥ ${spec.min}` : '', spec.max !== undefined ? `≤ ${spec.max}` : ''].filter(Boolean).join(', ');
  const values = spec.enum ? `: ${spec.enum.map((v) => `\`${v}\``).join(', ')}` : '';
  return `${spec.type}${values}${bounds ? ` (${bounds})` : ''}`;
}

export function probeReadme(def: ProbeDefinition, files: ProbeFile[]): string {
  const out = [README_HEADER, '', `# ${def.id}: ${def.title}`, '', def.description.trim(), '', '## What normal looks like', '', def.normal.trim(), ''];
  out.push('## Parameters', '');
  const params = Object.entries(def.params);
  if (params.length === 0) out.push('None.', '');
  else {
    out.push('| name | type | default | what |', '|---|---|---|---|');
    for (const [name, spec] of params) out.push(`| \`${name}\` | ${cell(paramType(spec))} | ${cell(paramDefault(spec))} | ${cell(spec.description)} |`);
    out.push('');
  }
  out.push('## Data', '', `What runbooks read as \`findings.<alias>.<field>\` (\`[]\`: each item of a list, \`*\`: each value of a map).`, '');
  const fields = dataFields(def.data);
  if (fields.length === 0) out.push('Not declared.', '');
  else {
    out.push('| field | type | unit | what |', '|---|---|---|---|');
    for (const f of fields) out.push(`| \`${f.path}\`${f.optional ? ' (optional)' : ''} | ${cell(f.type)} | ${cell(f.unit)} | ${cell(f.description)} |`);
    out.push('');
  }
  out.push('## Runs', '');
  out.push(`- Driver: ${def.driver}; overhead: ${def.overhead}${def.budget ? `; budget: ${Math.round(def.budget.cpu * 100)}% of a CPU, ${def.budget.eventsPerSec.toLocaleString('en-US')} program runs/s` : ''}.`);
  out.push(`- Needs: ${def.requirements.map((r) => describeRequirement(r, true)).join(', ') || 'nothing'}.`);
  if (def.replaces?.length) out.push(`- Replaces the original toolbox's ${def.replaces.map((r) => `\`${r}\``).join(', ')}.`);
  out.push('', '## Files', '');
  for (const f of files) out.push(`- \`${f.name}\`${f.role ? `: ${f.role}` : ''}`);
  out.push('');
  return out.join('\n');
}

/** The role of a source file: the first sentence of its leading comment, without the probe id. */
export function fileRole(text: string): string {
  const comment: string[] = [];
  for (const line of text.split('\n')) {
    if (/SPDX-License|^#!/.test(line)) continue;
    const m = /^\s*(?:\/\/+|\/\*+|\*(?!\/)|#(?!include))\s?(.*)$/.exec(line);
    if (!m) break;
    comment.push(m[1]!.replace(/\*\/\s*$/, '').trim());
  }
  const text1 = comment.join(' ').replace(/\s+/g, ' ').trim().replace(/^[\w.-]+:\s*/, '');
  const end = text1.search(/\.(\s|$)/);
  return end < 0 ? text1 : text1.slice(0, end + 1);
}

/** The files of a probe's folder but its README, sorted, each with its role. */
export function probeFolderFiles(dir: string): ProbeFile[] {
  return readdirSync(dir)
    .filter((name) => name !== 'README.md' && statSync(join(dir, name)).isFile())
    .sort()
    .map((name) => ({ name, role: fileRole(readFileSync(join(dir, name), 'utf8')) }));
}
