// A probe's README (probes/<id>/README.md), rendered from its definition so that the folder's
// documentation cannot drift from what the probe declares: what it measures, what normal
// looks like, its params, its declared data fields, what it needs, and the files it is made of.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bpfObjectPath, declaredMaps } from '../native/object.js';
import { BPFTRACE_MAP_KEYS } from './bpftrace.js';
import { dataFields } from './data-schema.js';
import type { NativeMapInfo } from '../native/addon.js';
import { formatBound, formatBytes, mapMemory, perCpuArrayMemory, type MapMemory } from './map-memory.js';
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
  out.push('', ...memorySection(def, files));
  out.push('## Files', '');
  for (const f of files) out.push(`- \`${f.name}\`${f.role ? `: ${f.role}` : ''}`);
  out.push('');
  return out.join('\n');
}

/** How much a driver's user space may hold, where the probe does not say. */
const USER_MEMORY: Record<string, string> = {
  native: 'one copy of each map when it reads it (at most the entries above); nothing else grows with traffic.',
  bpftrace: `bpftrace's own maps, at most ${BPFTRACE_MAP_KEYS.toLocaleString('en-US')} keys each (\`BPFTRACE_MAP_KEYS_MAX\`, which ebpfnet sets), and their printout.`,
  command: 'the output of the commands it runs, read whole; nothing in the kernel.',
};

/** A map a probe loads, its size as the probe gives it, and its memory bound. */
export interface ProbeMap {
  object: string;
  info: NativeMapInfo;
  /** Entries as loaded: the object's, or the probe's run-time size (per CPU when `perCpu`). */
  entries: number;
  perCpu: boolean;
  memory: MapMemory;
}

/** Every map of the objects a probe loads: its folder's `*.bpf.c` and `memory.objects`. */
export function probeMaps(def: ProbeDefinition, files: ProbeFile[]): ProbeMap[] {
  const objects = [...files.filter((f) => f.name.endsWith('.bpf.c')).map((f) => f.name.slice(0, -'.bpf.c'.length)), ...(def.memory?.objects ?? [])];
  return objects.flatMap((object) =>
    declaredMaps(bpfObjectPath(object)).map((info) => {
      const resized = def.memory?.resized?.[info.name];
      const perCpu = typeof resized === 'object';
      const memory = perCpu ? perCpuArrayMemory(info, resized.perCpu) : mapMemory({ ...info, maxEntries: resized ?? info.maxEntries });
      return { object, info, entries: memory.entries, perCpu, memory };
    }),
  );
}

/** The Memory section: every map the probe loads, bounded by its size. */
function memorySection(def: ProbeDefinition, files: ProbeFile[]): string[] {
  const maps = probeMaps(def, files);
  const out = ['## Memory', ''];
  if (maps.length > 0) {
    out.push(
      'Kernel memory of its maps, at most (the kernel\'s own accounting, `memlock` in the map\'s fdinfo; test/probe/map-memory.test.ts checks each bound against it):',
      '',
      '| object | map | kind | entries | key + value | at most |',
      '|---|---|---|---|---|---|',
    );
    for (const { object, info, entries, perCpu, memory } of maps) {
      const ring = info.type === 'ringbuf';
      const size = ring ? formatBytes(entries) : `${info.keySize} + ${info.valueSize} B`;
      const count = ring ? '' : `${entries.toLocaleString('en-US')}${perCpu ? ' per CPU' : ''}`;
      out.push(`| ${object} | \`${info.name}\` | ${info.type}${info.perCpu ? ' (per CPU)' : ''} | ${count} | ${size} | ${formatBound(memory.fixedBytes, memory.perCpuBytes)} |`);
    }
    const fixed = maps.reduce((n, m) => n + m.memory.fixedBytes, 0);
    const perCpu = maps.reduce((n, m) => n + m.memory.perCpuBytes, 0);
    out.push('', `In all, with every object loaded: at most ${formatBound(fixed, perCpu)}.`, '');
  }
  out.push(`User space: ${def.memory?.user ?? USER_MEMORY[maps.length > 0 ? 'native' : def.driver] ?? USER_MEMORY.command}`, '');
  return out;
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
