// A probe's params as given (runbook templates, CLI strings) turned into typed values:
// defaults applied, values coerced and checked against each ParamSpec.
import { isIP } from 'node:net';
import { formatMs, parseDuration } from '../duration.js';
import type { ParamSpec, ParamValue, Params, ProbeDefinition } from './types.js';

/** A param that is unknown, missing or of the wrong type; its message is one line naming probe and param. */
export class ParamError extends Error {
  override readonly name = 'ParamError';
  constructor(
    readonly probe: string,
    readonly param: string | undefined,
    detail: string,
  ) {
    super(param === undefined ? `probe ${probe}: ${detail}` : `probe ${probe}: param "${param}": ${detail}`);
  }
}

type Coerced = { ok: true; value: ParamValue } | { ok: false; expected: string };

const TRUE_WORDS = new Set(['true', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', '0']);

/** Applies defaults, coerces and validates `given` against the probe's param specs. */
export function resolveParams(def: Pick<ProbeDefinition, 'id' | 'params'>, given: Record<string, unknown>): Params {
  const known = Object.keys(def.params);
  for (const name of Object.keys(given)) {
    if (!Object.hasOwn(def.params, name)) {
      const list = known.length > 0 ? `known params: ${known.join(', ')}` : 'it takes no params';
      throw new ParamError(def.id, undefined, `unknown param "${name}" (${list})`);
    }
  }
  const out: Params = {};
  for (const [name, spec] of Object.entries(def.params)) {
    // An optional address templated from a fact nobody knows (`${target.path.ip}` of a VM
    // without a known IP) renders as '': that means no filter, not a bad address.
    const raw = spec.type === 'ip' && !spec.required && given[name] === '' ? undefined : given[name];
    if (raw === undefined || raw === null) {
      if (spec.default !== undefined) out[name] = checkValue(def.id, name, spec, spec.default, 'default');
      else if (spec.required) throw new ParamError(def.id, name, `missing: expected ${describeType(spec)}`);
      continue;
    }
    out[name] = checkValue(def.id, name, spec, raw, 'value');
  }
  return out;
}

function checkValue(probe: string, name: string, spec: ParamSpec, raw: unknown, what: 'value' | 'default'): ParamValue {
  const coerced = coerce(spec, raw);
  const prefix = what === 'default' ? 'default ' : '';
  if (!coerced.ok) throw new ParamError(probe, name, `${prefix}expected ${coerced.expected}, got ${show(raw)}`);
  const value = coerced.value;
  if (spec.enum && spec.enum.length > 0) {
    const bad = (Array.isArray(value) ? value : [value]).find((v) => !spec.enum!.includes(String(v)));
    if (bad !== undefined) throw new ParamError(probe, name, `${prefix}expected one of ${spec.enum.join(', ')}, got ${show(bad)}`);
  }
  if (typeof value === 'number') {
    const unit = spec.type === 'duration' ? (n: number) => formatMs(n) : (n: number) => String(n);
    if (spec.min !== undefined && value < spec.min) throw new ParamError(probe, name, `${prefix}must be at least ${unit(spec.min)}, got ${show(raw)}`);
    if (spec.max !== undefined && value > spec.max) throw new ParamError(probe, name, `${prefix}must be at most ${unit(spec.max)}, got ${show(raw)}`);
  }
  return value;
}

function coerce(spec: ParamSpec, raw: unknown): Coerced {
  const fail = (): Coerced => ({ ok: false, expected: describeType(spec) });
  switch (spec.type) {
    case 'string':
      if (typeof raw === 'string') return { ok: true, value: raw };
      if ((typeof raw === 'number' && Number.isFinite(raw)) || typeof raw === 'boolean') return { ok: true, value: String(raw) };
      return fail();
    case 'integer': {
      const n = typeof raw === 'string' && /^\s*[+-]?\d+\s*$/.test(raw) ? Number(raw) : raw;
      return typeof n === 'number' && Number.isSafeInteger(n) ? { ok: true, value: n } : fail();
    }
    case 'number': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      return typeof n === 'number' && Number.isFinite(n) ? { ok: true, value: n } : fail();
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      const word = typeof raw === 'string' || typeof raw === 'number' ? String(raw).trim().toLowerCase() : undefined;
      if (word !== undefined && TRUE_WORDS.has(word)) return { ok: true, value: true };
      if (word !== undefined && FALSE_WORDS.has(word)) return { ok: true, value: false };
      return fail();
    }
    case 'duration': {
      const n = parseDuration(raw);
      return n === undefined ? fail() : { ok: true, value: n };
    }
    case 'ip': {
      const s = typeof raw === 'string' ? raw.trim() : undefined;
      return s !== undefined && isIP(s) !== 0 ? { ok: true, value: s } : fail();
    }
    case 'string[]': {
      if (typeof raw === 'string') return { ok: true, value: splitList(raw) };
      if (Array.isArray(raw) && raw.every((v) => typeof v === 'string')) {
        return { ok: true, value: (raw as string[]).map((v) => v.trim()).filter((v) => v !== '') };
      }
      return fail();
    }
  }
}


function splitList(s: string): string[] {
  return s
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

function describeType(spec: ParamSpec): string {
  switch (spec.type) {
    case 'string':
      return spec.enum && spec.enum.length > 0 ? `one of ${spec.enum.join(', ')}` : 'a string';
    case 'integer':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true or false';
    case 'duration':
      return 'a duration like 5s';
    case 'ip':
      return 'an IPv4 or IPv6 address';
    case 'string[]':
      return 'a list of strings (comma-separated)';
  }
}

function show(raw: unknown): string {
  if (typeof raw === 'string') return JSON.stringify(raw);
  if (raw === undefined) return 'nothing';
  try {
    const s = JSON.stringify(raw);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(raw);
  }
}
