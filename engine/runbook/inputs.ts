// Typed runbook inputs: values from the CLI, an alert or a YAML default, checked
// against the input's type before anything runs.
import { isIP } from 'node:net';
import { parseDuration } from '../duration.js';
import type { InputSpec, InputType, InputValue, Runbook } from './model.js';

export class InputError extends Error {}

const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;


const EXPECTED: Record<InputType, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  duration: 'a duration like 500ms, 5s or 2m',
  ip: 'an IPv4 or IPv6 address',
  vm: 'a VM name (letters, digits, ".", "_", "-")',
  'string[]': 'a list of strings',
};

/**
 * Converts a value to an input type, or returns an explanation of what was expected.
 * Strings are accepted for every type, as they come from a command line.
 */
export function coerceInput(type: InputType, value: unknown): { value: InputValue } | { expected: string } {
  const fail = { expected: EXPECTED[type] };
  switch (type) {
    case 'string':
      return typeof value === 'string' ? { value } : fail;
    case 'integer': {
      const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
      return typeof n === 'number' && Number.isSafeInteger(n) ? { value: n } : fail;
    }
    case 'number': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      return typeof n === 'number' && Number.isFinite(n) ? { value: n } : fail;
    }
    case 'boolean':
      if (typeof value === 'boolean') return { value };
      if (value === 'true' || value === 'false') return { value: value === 'true' };
      return fail;
    case 'duration':
      // Kept as written ("5s"): it reads well in templates, and probes take it as is.
      return parseDuration(value) !== undefined && typeof value === 'string' ? { value: value.trim() } : fail;
    case 'ip':
      return typeof value === 'string' && isIP(value) !== 0 ? { value } : fail;
    case 'vm':
      return typeof value === 'string' && VM_NAME.test(value) ? { value } : fail;
    case 'string[]': {
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return { value: value as string[] };
      if (typeof value === 'string') return { value: value.split(',').map((v) => v.trim()).filter(Boolean) };
      return fail;
    }
  }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Checks given values against the runbook's inputs, applying defaults. Throws InputError. */
export function resolveInputs(runbook: Runbook, given: Record<string, unknown>): Record<string, InputValue> {
  const problems: string[] = [];
  const out: Record<string, InputValue> = {};
  for (const name of Object.keys(given)) {
    if (!(name in runbook.inputs)) {
      const known = Object.keys(runbook.inputs);
      problems.push(`unknown input "${name}" (runbook ${runbook.id} takes ${known.length ? known.join(', ') : 'no inputs'})`);
    }
  }
  for (const [name, spec] of Object.entries(runbook.inputs) as Array<[string, InputSpec]>) {
    const raw = name in given ? given[name] : spec.default;
    if (raw === undefined) {
      problems.push(`input "${name}" is required: ${spec.description} (--input ${name}=...)`);
      continue;
    }
    const result = coerceInput(spec.type, raw);
    if ('expected' in result) problems.push(`input "${name}": expected ${result.expected}, got ${describe(raw)}`);
    else out[name] = result.value;
  }
  if (problems.length) throw new InputError(problems.join('; '));
  return out;
}
