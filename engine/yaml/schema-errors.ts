// Ajv's findings for a YAML file turned into one plain-English problem per mistake, placed at
// its line and column. A schema carries its wording in annotation keywords: `expected` (what
// belongs there, as in "expected a duration like 30s or 2m, got ..."), `explain` (a whole
// message replacing ajv's), `explainMinItems`, and `otherKeys` (keys of the other kinds of
// the same thing, for "did you mean").
import type { Ajv, ErrorObject, SchemaObject } from 'ajv';
import { toPointer, type SourceMap } from './positions.js';
import type { Problem } from './problems.js';
import { closest, didYouMean } from './suggest.js';

/** The wording keywords `placeSchemaErrors` reads; Ajv's strict mode must know them. */
export function addAnnotationKeywords(ajv: Ajv): void {
  for (const keyword of ['expected', 'explain', 'explainMinItems']) ajv.addKeyword({ keyword, schemaType: 'string' });
  ajv.addKeyword({ keyword: 'otherKeys', schemaType: 'array' });
}

const TYPE_NOUNS: Record<string, string> = {
  object: 'a mapping (key: value lines)',
  array: 'a list',
  string: 'text',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
  null: 'nothing',
};

/** How a value is shown after "got". */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

type Annotated = SchemaObject & {
  expected?: string;
  explain?: string;
  explainMinItems?: string;
  otherKeys?: string[];
  properties?: Record<string, unknown>;
};

function expectedOf(err: ErrorObject): string | undefined {
  return (err.parentSchema as Annotated | undefined)?.expected;
}

function typeNoun(type: unknown): string {
  const types = Array.isArray(type) ? type : [type];
  return types.map((t) => TYPE_NOUNS[String(t)] ?? String(t)).join(' or ');
}

function unknownKeyCandidates(err: ErrorObject): { known: string[]; other: string[] } {
  const schema = err.parentSchema as Annotated | undefined;
  return { known: Object.keys(schema?.properties ?? {}), other: schema?.otherKeys ?? [] };
}

interface Placed {
  pointer: string;
  where: 'value' | 'key';
  message: string;
}

/** One plain-English message for one ajv error; undefined for ajv's bookkeeping errors. */
function translate(err: ErrorObject, emptyFile: string): Placed | undefined {
  const at = err.instancePath;
  const schema = err.parentSchema as Annotated | undefined;
  const data = err.data;
  switch (err.keyword) {
    case 'if':
    case 'propertyNames':
      return undefined; // the errors of the failing branch / name say what is wrong
    case 'type':
      if (at === '' && (data === null || data === undefined)) {
        return { pointer: at, where: 'value', message: `the file is empty: ${emptyFile}` };
      }
      return { pointer: at, where: 'value', message: `expected ${expectedOf(err) ?? typeNoun(err.params.type)}, got ${describeValue(data)}` };
    case 'pattern': {
      const expected = expectedOf(err) ?? `text matching ${String(err.params.pattern)}`;
      if (err.propertyName !== undefined) {
        return {
          pointer: at + toPointer([err.propertyName]),
          where: 'key',
          message: `expected ${expected}, got "${err.propertyName}"`,
        };
      }
      return { pointer: at, where: 'value', message: `expected ${expected}, got ${describeValue(data)}` };
    }
    case 'enum': {
      const allowed = (err.params.allowedValues as unknown[]).map(String);
      const hint = typeof data === 'string' ? didYouMean(data, allowed) : '';
      return { pointer: at, where: 'value', message: `expected one of ${allowed.join(', ')}, got ${describeValue(data)}${hint}` };
    }
    case 'required':
      return {
        pointer: at,
        where: 'value',
        message: schema?.explain ?? `missing required key "${String(err.params.missingProperty)}"`,
      };
    case 'additionalProperties': {
      const key = String(err.params.additionalProperty);
      const { known, other } = unknownKeyCandidates(err);
      const hint = didYouMean(key, [...known, ...other]);
      return {
        pointer: at + toPointer([key]),
        where: 'key',
        message: `unknown key "${key}" (expected one of: ${known.join(', ')})${hint}`,
      };
    }
    case 'not':
      return { pointer: at, where: 'key', message: schema?.explain ?? 'is not allowed here' };
    case 'minItems': {
      const limit = Number(err.params.limit);
      const got = Array.isArray(data) ? (data.length === 0 ? 'an empty list' : `${data.length}`) : describeValue(data);
      return {
        pointer: at,
        where: 'value',
        message: schema?.explainMinItems
          ? `${schema.explainMinItems}, got ${got}`
          : `expected ${expectedOf(err) ?? 'a list'} with at least ${limit} ${limit === 1 ? 'entry' : 'entries'}, got ${got}`,
      };
    }
    case 'minLength':
      // Never echoes the value: a short one may be a secret.
      return Number(err.params.limit) > 1
        ? { pointer: at, where: 'value', message: `too short: expected ${expectedOf(err) ?? `at least ${String(err.params.limit)} characters`}` }
        : { pointer: at, where: 'value', message: `must not be empty: expected ${expectedOf(err) ?? 'text'}` };
    default:
      return { pointer: at, where: 'value', message: err.message ?? `does not match the ${err.keyword} rule of the schema` };
  }
}

/**
 * Keeps one error per real mistake: a wrong type hides every other complaint
 * about the same value (and the then/else duplicate of itself), keys clashing
 * with the same choice are one complaint, and a missing key is not reported
 * when an unknown key next to it is a typo of it.
 */
function prune(errors: ErrorObject[]): ErrorObject[] {
  const typed = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  const kept: ErrorObject[] = [];
  const seenType = new Set<string>();
  const conflicted = new Set<string>();
  for (const e of errors) {
    if (typed.has(e.instancePath)) {
      if (e.keyword !== 'type' || seenType.has(e.instancePath)) continue;
      seenType.add(e.instancePath);
    }
    if (e.keyword === 'not') {
      // Keys that clash with one choice ("probes:") are one mistake: say it once, at the first.
      const owner = e.instancePath.slice(0, e.instancePath.lastIndexOf('/'));
      if (conflicted.has(owner)) continue;
      conflicted.add(owner);
    }
    kept.push(e);
  }
  const typoOf = new Map<string, Set<string>>();
  const otherKind = new Set<string>();
  for (const e of kept) {
    if (e.keyword !== 'additionalProperties') continue;
    const { known, other } = unknownKeyCandidates(e);
    const meant = closest(String(e.params.additionalProperty), [...known, ...other]);
    if (meant === undefined) continue;
    if (other.includes(meant)) otherKind.add(e.instancePath);
    const set = typoOf.get(e.instancePath) ?? new Set<string>();
    set.add(meant);
    typoOf.set(e.instancePath, set);
  }
  // The step's "needs probe, probes or ask" is missing "probe"; a typo of "probes" answers it too.
  const answers = (missing: string, meant: Set<string>): boolean => meant.has(missing) || (missing === 'probe' && meant.has('probes'));
  return kept.filter(
    (e) =>
      e.keyword !== 'required' ||
      (!otherKind.has(e.instancePath) && !answers(String(e.params.missingProperty), typoOf.get(e.instancePath) ?? new Set())),
  );
}

/**
 * Ajv's errors for a YAML file as one located, plain-English problem per mistake. Any schema
 * written with this file's annotation keywords (`expected`, `explain`, `explainMinItems`,
 * `otherKeys`) gets runbook-quality messages; `emptyFile` says what the file should hold.
 */
export function placeSchemaErrors(errors: ErrorObject[], map: SourceMap, emptyFile: string): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const err of prune(errors)) {
    const placed = translate(err, emptyFile);
    if (!placed) continue;
    const problem = placed.where === 'key' ? map.atKey(placed.pointer, placed.message) : map.atValue(placed.pointer, placed.message);
    const key = `${problem.line}:${problem.column}:${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}
