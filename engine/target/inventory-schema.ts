// The shape of an inventory file (engine/target/README.md) as a JSON Schema, and
// ajv's findings turned into one plain message per mistake, placed at its line and
// column. Annotation keyword `expected` carries what belongs at a place.
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, KeywordCxt, SchemaObject } from 'ajv';
import { createRequire } from 'node:module';
import { loadValidator, type SchemaBuild, type Validator } from '../precompiled.js';
import { toPointer, type SourceMap } from '../yaml/positions.js';
import type { Problem } from '../yaml/problems.js';
import { describeValue } from '../yaml/schema-errors.js';
import { didYouMean } from '../yaml/suggest.js';

/** As runbook inputs of type `vm` accept them, so that every inventory VM can be diagnosed. */
export const VM_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';
const MAC_PATTERN = '^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$';
/** What the kernel accepts as a device name (IFNAMSIZ - 1 characters, no "/", ":" or spaces). */
const DEVICE_PATTERN = '^[^/\\s:]{1,15}$';

const tap: SchemaObject = {
  type: 'object',
  expected: 'a tap (a mapping with name, and optionally mac, model, vhost)',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', pattern: DEVICE_PATTERN, expected: 'a device name of at most 15 characters (like tap-web1)' },
    mac: { type: 'string', pattern: MAC_PATTERN, expected: 'the guest MAC, like "52:54:00:12:34:56"' },
    model: { type: 'string', minLength: 1, expected: 'the guest NIC model, like virtio-net-pci' },
    vhost: { type: 'boolean', expected: 'true or false' },
  },
};

const vm: SchemaObject = {
  type: 'object',
  expected: 'a VM (a mapping with pid or pidfile, taps and ips)',
  additionalProperties: false,
  properties: {
    description: { type: 'string', expected: 'text' },
    pid: { type: 'integer', minimum: 1, expected: 'a process id (a positive integer)' },
    pidfile: { type: 'string', pattern: '^/', expected: 'the absolute path of a file holding the pid' },
    taps: { type: 'array', expected: 'a list of taps', items: tap },
    ips: { type: 'array', expected: 'a list of IP addresses', items: { type: 'string', ipAddress: true, expected: 'an IPv4 or IPv6 address' } },
  },
};

export const inventorySchema: SchemaObject = {
  type: 'object',
  expected: 'an inventory (a mapping with "vms:")',
  additionalProperties: false,
  required: ['vms'],
  properties: {
    vms: {
      type: 'object',
      expected: 'a mapping of VM names to their pid, taps and ips',
      propertyNames: { pattern: VM_NAME_PATTERN },
      additionalProperties: vm,
    },
  },
};

/** How the inventory schema is compiled, at run time or ahead of time by the build. */
export const INVENTORY_SCHEMA_BUILD: SchemaBuild = {
  precompiled: fileURLToPath(new URL('./inventory-validator.cjs', import.meta.url)),
  compile(AjvClass, standalone) {
    const ajv = new AjvClass({ allErrors: true, verbose: true, strict: true, strictTypes: false, ...(standalone ? { code: { source: true } } : {}) });
    ajv.addKeyword({ keyword: 'expected', schemaType: 'string' });
    // One definition for both: at run time Ajv calls `isIP` itself; standalone code (a CommonJS
    // file) requires node:net for it.
    const { _ } = createRequire(import.meta.url)('ajv/dist/compile/codegen/index.js') as typeof import('ajv/dist/compile/codegen/index.js');
    ajv.addKeyword({
      keyword: 'ipAddress',
      schemaType: 'boolean',
      type: 'string',
      code: (cxt: KeywordCxt) => {
        const isIp = cxt.gen.scopeValue('func', { ref: isIP, code: _`require("node:net").isIP` });
        cxt.fail(_`${isIp}(${cxt.data}) === 0`);
      },
    });
    return { ajv, validate: ajv.compile(inventorySchema) as Validator };
  },
};

/** The precompiled validator when the build made one, else Ajv compiling the schema. */
export function buildValidator(opts: { precompiled?: boolean } = {}): Validator {
  return loadValidator(INVENTORY_SCHEMA_BUILD, opts);
}

let validator: ReturnType<typeof buildValidator> | undefined;

const TYPE_NOUNS: Record<string, string> = { object: 'a mapping', array: 'a list', string: 'text', integer: 'an integer', boolean: 'true or false' };

interface Placed {
  pointer: string;
  where: 'value' | 'key';
  message: string;
}

function translate(err: ErrorObject): Placed | undefined {
  const at = err.instancePath;
  const schema = err.parentSchema as (SchemaObject & { expected?: string; properties?: Record<string, unknown> }) | undefined;
  const expected = schema?.expected;
  const got = describeValue(err.data);
  switch (err.keyword) {
    case 'type':
      if (at === '' && (err.data === null || err.data === undefined)) {
        return { pointer: at, where: 'value', message: 'the file is empty: an inventory is a mapping with "vms:"' };
      }
      return { pointer: at, where: 'value', message: `expected ${expected ?? TYPE_NOUNS[String(err.params.type)] ?? String(err.params.type)}, got ${got}` };
    case 'pattern':
      if (err.propertyName !== undefined) {
        return {
          pointer: at + toPointer([err.propertyName]),
          where: 'key',
          message: `"${err.propertyName}" is not a VM name ebpfnet accepts (letters, digits, ".", "_", "-", starting with a letter or digit)`,
        };
      }
      return { pointer: at, where: 'value', message: `expected ${expected ?? `text matching ${String(err.params.pattern)}`}, got ${got}` };
    case 'minimum':
    case 'minLength':
    case 'ipAddress':
      return { pointer: at, where: 'value', message: `expected ${expected ?? 'another value'}, got ${got}` };
    case 'required':
      return { pointer: at, where: 'value', message: `missing required key "${String(err.params.missingProperty)}"` };
    case 'additionalProperties': {
      const key = String(err.params.additionalProperty);
      const known = Object.keys(schema?.properties ?? {});
      return { pointer: at + toPointer([key]), where: 'key', message: `unknown key "${key}" (expected one of: ${known.join(', ')})${didYouMean(key, known)}` };
    }
    case 'propertyNames':
      return undefined; // the pattern error of the name says it
    default:
      return { pointer: at, where: 'value', message: err.message ?? `does not match the ${err.keyword} rule` };
  }
}

/** Checks a parsed inventory against the schema; one problem per mistake. */
export function inventorySchemaProblems(value: unknown, map: SourceMap): Problem[] {
  validator ??= buildValidator();
  if (validator(value)) return [];
  const errors = validator.errors ?? [];
  // A value of the wrong type gets that one complaint, not also every rule it then breaks.
  const typed = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const err of errors) {
    if (typed.has(err.instancePath) && err.keyword !== 'type') continue;
    const placed = translate(err);
    if (!placed) continue;
    const problem = placed.where === 'key' ? map.atKey(placed.pointer, placed.message) : map.atValue(placed.pointer, placed.message);
    const key = `${problem.line}:${problem.column}:${problem.message}`;
    if (!seen.has(key)) problems.push(problem);
    seen.add(key);
  }
  return problems;
}
