// The shape of a runbook file (runbooks/README.md) as a JSON Schema, worded with the
// annotation keywords of engine/yaml/schema-errors.ts so that ajv's findings read as one
// plain-English problem per mistake. Steps use if/then/else rather than oneOf, so a wrong
// step yields the errors of the kind it was meant to be, not of both.
import { fileURLToPath } from 'node:url';
import type { SchemaObject } from 'ajv';
import { loadValidator, type SchemaBuild, type Validator } from '../precompiled.js';
import type { SourceMap } from '../yaml/positions.js';
import type { Problem } from '../yaml/problems.js';
import { addAnnotationKeywords, placeSchemaErrors } from '../yaml/schema-errors.js';

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

/** The precompiled validator when the build made one, else Ajv compiling the schema. */
export function buildValidator(opts: { precompiled?: boolean } = {}): Validator {
  return loadValidator(RUNBOOK_SCHEMA_BUILD, opts);
}

let validator: ReturnType<typeof buildValidator> | undefined;

/** Checks a parsed runbook against the schema; one problem per mistake. */
export function schemaProblems(value: unknown, map: SourceMap): Problem[] {
  validator ??= buildValidator();
  if (validator(value)) return [];
  return placeSchemaErrors(validator.errors ?? [], map, 'a runbook is a mapping with id, title, description, steps and conclusions');
}
