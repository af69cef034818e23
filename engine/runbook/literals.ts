// Whether a value written in the YAML (an input's default, a param's literal)
// fits its declared type. Stricter than the command line's coercion in
// inputs.ts: in YAML a number is written as a number and a list as a list.
import type { ParamType } from '../probe/types.js';
import { coerceInput } from './inputs.js';
import type { InputType } from './model.js';

type LiteralType = InputType | ParamType;

const NATIVE: Record<LiteralType, (value: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  integer: (v) => typeof v === 'number',
  number: (v) => typeof v === 'number',
  boolean: (v) => typeof v === 'boolean',
  duration: (v) => typeof v === 'string',
  ip: (v) => typeof v === 'string',
  vm: (v) => typeof v === 'string',
  'string[]': (v) => Array.isArray(v),
};

/** What a value of this type looks like ("a duration like 500ms, 5s or 2m"), as inputs.ts words it. */
export function expectedText(type: LiteralType): string {
  // null fits no type, so coercing it yields the wording of what was expected.
  const result = coerceInput(type, null);
  return 'expected' in result ? result.expected : type;
}

/** undefined when `value` fits `type`; otherwise what was expected instead. */
export function literalMismatch(type: LiteralType, value: unknown): string | undefined {
  if (!NATIVE[type](value)) return expectedText(type);
  const result = coerceInput(type, value);
  return 'expected' in result ? result.expected : undefined;
}
