// The shape of `ebpfnet serve --config` (engine/serve/README.md) as a JSON Schema, worded
// with the runbook schema's annotation keywords so mistakes read the same way.
import type { SchemaObject } from 'ajv';
import { DURATION_PATTERN, ID_PATTERN } from '../runbook/schema.js';
import { REPORT_FORMATS } from '../../reports/formats.js';

/** A label or annotation name, as Prometheus allows them. */
export const LABEL_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

const text: SchemaObject = { type: 'string', minLength: 1, expected: 'text' };
const absoluteFile: SchemaObject = { type: 'string', pattern: '^/', expected: 'the absolute path of a file' };
const duration: SchemaObject = { type: 'string', pattern: DURATION_PATTERN, expected: 'a duration like 30s, 10m or 1h' };
const HEADER_NAME_PATTERN = '^[A-Za-z0-9-]+$';
const labelMap = (expected: string, names = { pattern: LABEL_NAME_PATTERN, expected: 'a label name (letters, digits, "_")' }): SchemaObject => ({
  type: 'object',
  expected,
  propertyNames: names,
  additionalProperties: { type: 'string', expected: 'text' },
});

/** A runbook input's value: a literal, or taken from one label or annotation of the alert. */
const inputValue: SchemaObject = {
  expected: 'a value, or {label: NAME} / {annotation: NAME}',
  anyOf: [
    { type: ['string', 'number', 'boolean'] },
    { type: 'array', items: { type: 'string' } },
    {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      properties: {
        label: { type: 'string', pattern: LABEL_NAME_PATTERN, expected: 'a label name' },
        annotation: { type: 'string', pattern: LABEL_NAME_PATTERN, expected: 'an annotation name' },
      },
    },
  ],
};

const route: SchemaObject = {
  type: 'object',
  expected: 'a route (a mapping with name, match and/or match_re, runbook, inputs)',
  additionalProperties: false,
  required: ['name', 'runbook'],
  properties: {
    name: { type: 'string', pattern: ID_PATTERN, expected: 'a route name of lowercase words joined by "-" (like "vm-packet-loss")' },
    match: labelMap('label: value pairs an alert must carry exactly'),
    match_re: labelMap('label: regular expression pairs (anchored, as in Alertmanager)'),
    runbook: { ...text, expected: 'a runbook id (`ebpfnet runbooks list`) or a path to a runbook YAML' },
    inputs: { type: 'object', expected: 'runbook input: value pairs', additionalProperties: inputValue },
  },
};

export const serveConfigSchema: SchemaObject = {
  type: 'object',
  expected: 'a serve configuration (a mapping with auth and routes)',
  additionalProperties: false,
  required: ['routes'],
  properties: {
    listen: { type: 'string', minLength: 1, expected: 'HOST:PORT, like 127.0.0.1:9465' },
    data_dir: absoluteFile,
    public_url: { type: 'string', pattern: '^https?://', expected: 'the URL this server is reached at, like http://hv1.example:9465' },
    auth: {
      type: 'object',
      expected: 'a mapping with token, token_file or basic',
      additionalProperties: false,
      properties: {
        token: { type: 'string', minLength: 16, expected: 'a bearer token of at least 16 characters' },
        token_file: absoluteFile,
        basic: {
          type: 'object',
          expected: 'a mapping with username and password or password_file',
          additionalProperties: false,
          required: ['username'],
          properties: {
            username: text,
            password: { type: 'string', minLength: 12, expected: 'a password of at least 12 characters' },
            password_file: absoluteFile,
          },
        },
      },
    },
    grafana_hmac: {
      type: 'object',
      expected: 'a mapping with secret or secret_file, and optionally header, timestamp_header, max_age',
      additionalProperties: false,
      properties: {
        secret: { type: 'string', minLength: 16, expected: 'the shared secret of at least 16 characters' },
        secret_file: absoluteFile,
        header: { type: 'string', pattern: HEADER_NAME_PATTERN, expected: 'an HTTP header name' },
        timestamp_header: { type: 'string', pattern: HEADER_NAME_PATTERN, expected: 'an HTTP header name' },
        max_age: duration,
      },
    },
    limits: {
      type: 'object',
      expected: 'a mapping with max_body_bytes and queue',
      additionalProperties: false,
      properties: {
        max_body_bytes: { type: 'integer', minimum: 1024, maximum: 64 * 1024 * 1024, expected: 'a size in bytes (1024 to 67108864)' },
        queue: { type: 'integer', minimum: 1, maximum: 100_000, expected: 'how many runs may wait (1 to 100000)' },
      },
    },
    cooldown: duration,
    run_timeout: duration,
    retention: { ...duration, expected: 'how long ended runs and their bundles are kept, like 720h' },
    formats: {
      type: 'array',
      expected: `report formats written at the end of each run (${REPORT_FORMATS.join(', ')})`,
      items: { type: 'string', enum: [...REPORT_FORMATS], expected: `one of ${REPORT_FORMATS.join(', ')}` },
    },
    inventory: absoluteFile,
    notify: {
      type: 'object',
      expected: 'a mapping with url, and optionally headers, retries, timeout',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^https?://', expected: 'an http(s) URL' },
        headers: labelMap('header: value pairs sent with each notification', { pattern: HEADER_NAME_PATTERN, expected: 'an HTTP header name' }),
        retries: { type: 'integer', minimum: 0, maximum: 20, expected: 'how many times to retry (0 to 20)' },
        timeout: duration,
      },
    },
    routes: { type: 'array', minItems: 1, explainMinItems: 'routes: needs at least one route', expected: 'a list of routes', items: route },
  },
};
