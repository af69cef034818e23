// The shape of a runbook file (runbooks/README.md) as a JSON Schema, and the
// translation of ajv's findings into one plain-English problem per mistake.
//
// Two annotation keywords carry the wording: `expected` (what belongs there, as
// in "expected a duration like 30s or 2m, got ...") and `explain` (a whole
// message replacing ajv's). Steps use if/then/else rather than oneOf, so a
// wrong step yields the errors of the kind it was meant to be, not of both.
import { fileURLToPath } from 'node:url';
import type { Ajv, ErrorObject, SchemaObject } from 'ajv';
import { loadValidator, type SchemaBuild, type Validator } from '../precompiled.js';
import type { Problem } from './errors.js';
import { toPointer, type SourceMap } from './positions.js';
import { closest, didYouMean } from './suggest.js';

export const ID_PATTERN = '^[a-z][a-z0-9]*(-[a-z0-9]+)*$';
export const ALIAS_PATTERN = '^[a-z_][a-z0-9_]*$';
/** What a YAML duration looks like; `parseDuration` (inputs.ts) turns it into ms. */
export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';
export const INPUT_TYPES = ['string', 'integer', 'number', 'boolean', 'duration', 'ip', 'vm', 'string[]'] as const;
export const CONFIDENCES = ['low', 'medium', 'high'] as const;

const id = (example: string): SchemaObject => ({
  type: 'string',
  pattern: ID_PATTERN,
  expected: `an id of lowercase words joined by "-" (like "${example}")`,
});
const text: SchemaObject = { type: 'string', minLength: 1, expected: 'text' };
const markdown: SchemaObject = { type: 'string', expected: 'markdown text' };
const duration: SchemaObject = { type: 'string', pattern: DURATION_PATTERN, expected: 'a duration like 30s or 2m' };
const alias: SchemaObject = {
  type: 'string',
  pattern: ALIAS_PATTERN,
  expected: 'a finding name of lowercase letters, digits and "_" (like "iface")',
};
const target: SchemaObject = id('qdisc-drops');

const paramValue: SchemaObject = {
  type: ['string', 'number', 'boolean', 'array'],
  expected: 'a value (text, a number, true/false, or a list of them)',
  items: { type: ['string', 'number', 'boolean'], expected: 'text, a number or true/false' },
};
const params: SchemaObject = {
  type: 'object',
  expected: 'a mapping of param names to values',
  additionalProperties: paramValue,
};

const probeCall: SchemaObject = {
  type: 'object',
  expected: 'a probe (a mapping with "probe:", and optionally "as:" and "params:")',
  additionalProperties: false,
  required: ['probe'],
  properties: {
    probe: { type: 'string', minLength: 1, expected: 'a probe id like net.iface' },
    as: alias,
    params,
  },
};

const branch: SchemaObject = {
  type: 'object',
  expected: 'a branch (a mapping with "goto:", and "if:" except on the last one)',
  additionalProperties: false,
  required: ['goto'],
  properties: {
    if: { type: 'string', minLength: 1, expected: 'a CEL condition' },
    goto: target,
    why: text,
  },
};

const notWithProbes = (key: string, explain: string): SchemaObject => ({
  if: { required: ['probes'] },
  then: { properties: { [key]: { not: {}, explain } } },
});

const probeStep: SchemaObject = {
  additionalProperties: false,
  // Keys of the other step kind: a typo close to one of them means the step was meant as an ask.
  otherKeys: ['ask'],
  required: ['id', 'title', 'next'],
  properties: {
    id: id('sample'),
    title: text,
    description: markdown,
    timeout: duration,
    on_error: target,
    probe: probeCall.properties.probe,
    as: alias,
    params,
    probes: { type: 'array', minItems: 1, expected: 'a list of probes', items: probeCall },
    next: { type: 'array', minItems: 1, expected: 'a list of branches', items: branch },
  },
  allOf: [
    notWithProbes('probe', '"probe:" and "probes:" cannot both be used; list every probe (with its "as:" and "params:") under "probes:"'),
    notWithProbes('as', '"as:" on the step goes with "probe:"; with "probes:", give each entry its own "as:"'),
    notWithProbes('params', '"params:" on the step goes with "probe:"; with "probes:", give each entry its own "params:"'),
    {
      if: { not: { required: ['probes'] } },
      then: { required: ['probe'], explain: 'a step needs "probe:" (one probe), "probes:" (a list of probes) or "ask:" (a question)' },
    },
  ],
};

const askStep: SchemaObject = {
  additionalProperties: false,
  required: ['id', 'title', 'ask'],
  properties: {
    id: id('intermittent'),
    title: text,
    description: markdown,
    ask: {
      type: 'object',
      expected: 'a question (a mapping with question, choices and default)',
      additionalProperties: false,
      required: ['question', 'choices', 'default'],
      properties: {
        question: text,
        choices: {
          type: 'array',
          minItems: 1,
          expected: 'a list of choices',
          items: {
            type: 'object',
            expected: 'a choice (a mapping with id, label and goto)',
            additionalProperties: false,
            required: ['id', 'label', 'goto'],
            properties: { id: id('longer'), label: text, goto: target },
          },
        },
        default: id('stop'),
        timeout: duration,
      },
    },
  },
};

const step: SchemaObject = {
  type: 'object',
  expected: 'a step (a mapping with id, title, and probe, probes or ask)',
  if: { required: ['ask'] },
  then: askStep,
  else: probeStep,
};

const inputSpec: SchemaObject = {
  type: 'object',
  expected: 'an input (a mapping with type, and optionally default, description, required)',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { enum: [...INPUT_TYPES] },
    default: {},
    description: markdown,
    required: { type: 'boolean', expected: 'true or false' },
  },
};

const caveat: SchemaObject = {
  type: 'object',
  expected: 'a caveat (a mapping with "if:", a CEL condition, and "says:", why the verdict is less certain when it holds)',
  additionalProperties: false,
  required: ['if', 'says'],
  properties: {
    if: { type: 'string', minLength: 1, expected: 'a CEL condition' },
    says: text,
  },
};

const conclusion: SchemaObject = {
  type: 'object',
  expected: 'a conclusion (a mapping with id, title, category, confidence, summary, explanation)',
  additionalProperties: false,
  required: ['id', 'title', 'category', 'confidence', 'summary', 'explanation'],
  properties: {
    id: id('qdisc-drops'),
    title: text,
    category: { type: 'string', pattern: ID_PATTERN, expected: 'a cause family in lowercase, like qdisc, device or netfilter' },
    confidence: { enum: [...CONFIDENCES] },
    summary: text,
    explanation: markdown,
    actions: { type: 'array', expected: 'a list of actions (markdown)', items: text },
    evidence: { type: 'array', expected: 'a list of finding names', items: alias },
    caveats: { type: 'array', expected: 'a list of caveats', items: caveat },
  },
};


export const runbookSchema: SchemaObject = {
  type: 'object',
  expected: 'a runbook (a mapping with id, title, description, steps and conclusions)',
  additionalProperties: false,
  required: ['id', 'title', 'description', 'steps', 'conclusions'],
  properties: {
    id: id('host-drops'),
    title: text,
    description: markdown,
    inputs: {
      type: 'object',
      expected: 'a mapping of input names to their type, default and description',
      propertyNames: { pattern: ALIAS_PATTERN, expected: 'an input name of lowercase letters, digits and "_" (like src_ip)' },
      additionalProperties: inputSpec,
    },
    steps: { type: 'array', minItems: 1, explainMinItems: 'a runbook needs at least one step', expected: 'a list of steps', items: step },
    conclusions: {
      type: 'array',
      minItems: 1,
      explainMinItems: 'a runbook needs at least one conclusion',
      expected: 'a list of conclusions',
      items: conclusion,
    },
    caveats: { type: 'array', expected: 'a list of caveats', items: caveat },
  },
};

/** How the runbook schema is compiled, at run time or ahead of time by the build. */
export const RUNBOOK_SCHEMA_BUILD: SchemaBuild = {
  precompiled: fileURLToPath(new URL('./runbook-validator.cjs', import.meta.url)),
  compile(AjvClass, standalone) {
    const ajv = new AjvClass({ allErrors: true, verbose: true, strict: true, strictRequired: false, strictTypes: false, allowUnionTypes: true, ...(standalone ? { code: { source: true } } : {}) });
    addAnnotationKeywords(ajv);
    return { ajv, validate: ajv.compile(runbookSchema) as Validator };
  },
};

/** The wording keywords `placeSchemaErrors` reads; Ajv's strict mode must know them. */
export function addAnnotationKeywords(ajv: Ajv): void {
  for (const keyword of ['expected', 'explain', 'explainMinItems']) ajv.addKeyword({ keyword, schemaType: 'string' });
  ajv.addKeyword({ keyword: 'otherKeys', schemaType: 'array' });
}

/** The precompiled validator when the build made one, else Ajv compiling the schema. */
export function buildValidator(opts: { precompiled?: boolean } = {}): Validator {
  return loadValidator(RUNBOOK_SCHEMA_BUILD, opts);
}

let validator: ReturnType<typeof buildValidator> | undefined;

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

/** Checks a parsed runbook against the schema; one problem per mistake. */
export function schemaProblems(value: unknown, map: SourceMap): Problem[] {
  validator ??= buildValidator();
  if (validator(value)) return [];
  return placeSchemaErrors(validator.errors ?? [], map, 'a runbook is a mapping with id, title, description, steps and conclusions');
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
