// A probe's declared data (DESIGN.md, Data model): the JSON Schema of its findings' `data`,
// written once with TypeBox in probes/<id>/data.ts. Here: its fields as rows (`probes show`,
// the report), the walk from a field to the fields under it (`runbooks validate`), and the
// check of a parser's output against it.
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { TSchema } from '#typebox';
import type { FindingData, ProbeDefinition } from './types.js';

/** The JSON Schema keywords the walkers read (TypeBox emits plain JSON Schema). */
export interface SchemaNode {
  type?: string | string[];
  description?: string;
  /** What a number counts or measures: `ns`, `packets`, `share`... (the agreed `unit` keyword). */
  unit?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  patternProperties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  const?: unknown;
  enum?: unknown[];
}

export const asNode = (schema: TSchema): SchemaNode => schema as unknown as SchemaNode;

/** The branches a value of `node` may take: anyOf unfolded, nested unions flattened. */
export function branches(node: SchemaNode): SchemaNode[] {
  return node.anyOf ? node.anyOf.flatMap(branches) : [node];
}

const isNull = (node: SchemaNode) => node.type === 'null';

/** The schema of a map's values (`Type.Record`), or undefined for an object of named fields. */
export function mapValues(node: SchemaNode): SchemaNode | undefined {
  const pattern = node.patternProperties ? Object.values(node.patternProperties)[0] : undefined;
  if (pattern) return pattern;
  return typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined;
}

/** A map's values and a list's items say what they are by the description of their container. */
const described = (inner: SchemaNode, outer: SchemaNode): SchemaNode =>
  inner.description !== undefined || outer.description === undefined ? inner : { ...inner, description: outer.description };

/** A field name reached from `node`: the schemas it may have, or an empty list when no branch declares it. */
export function fieldOf(node: SchemaNode, name: string): SchemaNode[] {
  return branches(node).flatMap((b) => {
    const named = b.properties?.[name];
    if (named) return [named];
    const values = mapValues(b);
    return values ? [described(values, b.description !== undefined ? b : node)] : [];
  });
}

/** What indexing `node` gives: an array's items or a map's values. */
export function elementOf(node: SchemaNode): SchemaNode[] {
  return branches(node).flatMap((b) => {
    const inner = b.items ?? mapValues(b);
    return inner ? [described(inner, b.description !== undefined ? b : node)] : [];
  });
}

/** The field names `node` declares (over every branch), for "did you mean". */
export function fieldNames(node: SchemaNode): string[] {
  return [...new Set(branches(node).flatMap((b) => Object.keys(b.properties ?? {})))];
}

/** Whether any branch of `node` is open to keys it does not name: a map, an object that names none, a schema without types. */
export function acceptsAnyField(node: SchemaNode): boolean {
  return branches(node).some(
    (b) =>
      mapValues(b) !== undefined ||
      (b.type === 'object' && Object.keys(b.properties ?? {}).length === 0 && b.additionalProperties !== false) ||
      (b.type === undefined && b.properties === undefined && b.const === undefined && b.enum === undefined),
  );
}

/** `integer`, `"tun" | "netfilter"`, `map of integer`, `object[] | null`. */
export function typeText(node: SchemaNode): string {
  if (node.anyOf) return [...new Set(node.anyOf.map(typeText))].join(' | ');
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (node.type === 'array') return node.items ? `${typeText(node.items).includes(' ') ? `(${typeText(node.items)})` : typeText(node.items)}[]` : 'array';
  const values = mapValues(node);
  if (values) return `map of ${typeText(values)}`;
  if (Array.isArray(node.type)) return node.type.join(' | ');
  return node.type ?? 'any';
}

/** The description of `node`, else the first one among its non-null branches. */
export function describe(node: SchemaNode): { description?: string; unit?: string } {
  const valued = branches(node).filter((b) => !isNull(b));
  const description = node.description ?? valued.find((b) => b.description !== undefined)?.description;
  const unit = node.unit ?? valued.find((b) => b.unit !== undefined)?.unit;
  return { ...(description !== undefined ? { description } : {}), ...(unit !== undefined ? { unit } : {}) };
}

export interface FieldRow {
  /** `worst.p99`; `[]` steps into a list's items, `.*` into a map's values. */
  path: string;
  type: string;
  optional: boolean;
  unit?: string;
  description?: string;
}

/** Every field of a data schema, depth first, in declaration order. */
export function dataFields(schema: TSchema): FieldRow[] {
  const rows: FieldRow[] = [];
  const walk = (node: SchemaNode, prefix: string) => {
    for (const b of branches(node)) {
      for (const [name, field] of Object.entries(b.properties ?? {})) {
        const path = prefix ? `${prefix}.${name}` : name;
        if (rows.some((r) => r.path === path)) continue; // a name two branches share is listed once
        rows.push({ path, type: typeText(field), optional: !(b.required ?? []).includes(name), ...describe(field) });
        walk(field, path);
      }
      if (b.items) walk(b.items, `${prefix}[]`);
      const values = mapValues(b);
      if (values) walk(values, `${prefix}.*`);
    }
  };
  walk(asNode(schema), '');
  return rows;
}

let ajv: Ajv | undefined;
const validators = new WeakMap<TSchema, ValidateFunction>();

/** Compiled on a probe's first finding: commands that only read runbooks never load Ajv. */
function validatorOf(schema: TSchema): ValidateFunction {
  let validate = validators.get(schema);
  if (!validate) {
    if (!ajv) {
      const { Ajv: AjvClass } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
      ajv = new AjvClass({ allErrors: true, verbose: true, keywords: ['unit'] });
    }
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  return validate;
}

/** `/devices/0/drops` → `devices[0].drops`. */
function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.reduce((out, p) => (/^\d+$/.test(p) ? `${out}[${p}]` : out ? `${out}.${p}` : p), '') || '(data)';
}

function valueText(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  const shown = JSON.stringify(value) ?? String(value);
  return `${typeof value} ${shown.length > 40 ? `${shown.slice(0, 37)}...` : shown}`;
}

function errorText(e: ErrorObject): string {
  if (e.keyword === 'additionalProperties') return `${fieldPath(e.instancePath, String(e.params.additionalProperty))}: not declared`;
  if (e.keyword === 'required') return `${fieldPath(e.instancePath, String(e.params.missingProperty))}: missing`;
  return `${fieldPath(e.instancePath)}: expected ${typeText(e.parentSchema as SchemaNode)}, got ${valueText(e.data)}`;
}

/**
 * Where `data` departs from `schema`, one short line each (`devices[0].drops: expected integer,
 * got string "3"`). A failed union is reported by the branch the value went into, when it got
 * past that branch's type; else as the union it did not match.
 */
export function dataMismatches(schema: TSchema, data: unknown): string[] {
  const validate = validatorOf(schema);
  if (validate(data)) return [];
  const errors = validate.errors ?? [];
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  const insideBranch = (e: ErrorObject, u: ErrorObject) => e !== u && e.schemaPath.startsWith(`${u.schemaPath}/`);
  const kept = errors.filter((e) => {
    const union = unions.filter((u) => insideBranch(e, u)).at(-1);
    if (e.keyword === 'anyOf') return !errors.some((d) => insideBranch(d, e) && d.instancePath.length > e.instancePath.length);
    return !union || e.instancePath.length > union.instancePath.length;
  });
  return [...new Set(kept.map(errorText))];
}

/** The one-line message of a finding whose data departs from its probe's declaration. */
export function mismatchMessage(probe: string, mismatches: string[]): string {
  const shown = mismatches.slice(0, 5).join('; ');
  const more = mismatches.length > 5 ? `; and ${mismatches.length - 5} more` : '';
  return `${probe}: data does not match its declaration (probes/${probe}/data.ts): ${shown}${more}`;
}

/** Test runs set EBPFNET_STRICT_DATA=1 (scripts/run-tests.mjs): a mismatch then fails the probe. */
export function strictData(): boolean {
  return process.env.EBPFNET_STRICT_DATA === '1';
}

/** The mismatch of a parser's output, as a one-line message, or undefined when it matches. */
export function checkDeclaredData(def: Pick<ProbeDefinition, 'id' | 'data'>, data: FindingData): string | undefined {
  const mismatches = dataMismatches(def.data, data);
  return mismatches.length ? mismatchMessage(def.id, mismatches) : undefined;
}
