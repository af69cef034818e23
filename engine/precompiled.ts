// JSON Schema validators compiled ahead of time: `npm run build` (scripts/build-validators.mjs)
// writes Ajv's standalone code for each schema next to the module that defines it. Compiling a
// schema costs ~40-110 ms and importing Ajv ~60 ms more, on every command that reads a runbook
// or an inventory; a checkout built by tsc alone still works, compiling at run time.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject } from 'ajv';

export type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

export interface SchemaBuild {
  /** Where the build writes the standalone code (a .cjs file, loaded synchronously). */
  precompiled: string;
  /** Compiles the schema with this Ajv class (run time, or the build with `code.source` on). */
  compile(AjvClass: typeof Ajv, standalone: boolean): { ajv: Ajv; validate: Validator };
}

export function loadValidator(build: SchemaBuild, opts: { precompiled?: boolean } = {}): Validator {
  const require = createRequire(import.meta.url);
  if (opts.precompiled !== false && existsSync(build.precompiled)) {
    return (require(build.precompiled) as { default: Validator }).default;
  }
  const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
  return build.compile(AjvClass, false).validate;
}
