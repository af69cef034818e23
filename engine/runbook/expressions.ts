// Runbook conditions and `${...}` templates, in CEL. Runbook text is parsed and
// evaluated by the CEL library, never by JavaScript's eval.
import { Environment } from '@marcbachmann/cel-js';

/** What conditions and templates can see. */
export interface Scope {
  inputs: Record<string, unknown>;
  findings: Record<string, unknown>;
  answers: Record<string, string>;
  target: Record<string, unknown>;
  host: Record<string, unknown>;
}

export const SCOPE_NAMES = ['inputs', 'findings', 'answers', 'target', 'host'] as const;

/** A parse or type error, with the character offset inside the expression. */
export class ExpressionError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

type Num = number | bigint;
const toDouble = (a: Num, b: Num): [number, number] => [Number(a), Number(b)];

function buildEnvironment(): Environment {
  const env = new Environment({ unlistedVariablesAreDyn: false });
  for (const name of SCOPE_NAMES) env.registerVariable(name, 'map');
  // Counters arrive as ints and ratios as doubles: let them mix as a reader expects.
  const mixed: Array<[string, (a: number, b: number) => number]> = [
    ['+', (a, b) => a + b],
    ['-', (a, b) => a - b],
    ['*', (a, b) => a * b],
    ['/', (a, b) => a / b],
  ];
  for (const [op, fn] of mixed) {
    env.registerOperator(`int ${op} double`, (a: Num, b: Num) => fn(...toDouble(a, b)));
    env.registerOperator(`double ${op} int`, (a: Num, b: Num) => fn(...toDouble(a, b)));
  }
  return env;
}

const environment = buildEnvironment();

interface CelAst {
  op: string;
  args: unknown;
  pos?: number;
}

function errorOffset(err: unknown): number {
  // The library prints a caret under the failing character; read its column.
  const text = err instanceof Error ? err.message : String(err);
  const lines = text.split('\n');
  const caretLine = lines.find((l) => /^\s*\^\s*$/.test(l));
  const sourceLine = lines.find((l) => /^>\s+\d+ \| /.test(l));
  if (!caretLine || !sourceLine) return 0;
  const prefix = sourceLine.indexOf('| ') + 2;
  return Math.max(0, caretLine.indexOf('^') - prefix);
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? text).trim();
}

export interface CompiledExpression {
  source: string;
  /** Finding aliases the expression reads (`findings.<alias>`). */
  findingRefs: string[];
  evaluate(scope: Scope): unknown;
}

export type ScopeName = (typeof SCOPE_NAMES)[number];

/** A read of a scope variable by a constant name (`inputs.duration`, `findings["iface"]`). */
export interface ScopeRef {
  scope: ScopeName;
  name: string;
  /** Offset of the name in the expression. */
  offset: number;
}

function collectScopeRefs(node: unknown, out: ScopeRef[]): void {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) collectScopeRefs(n, out);
    return;
  }
  const ast = node as CelAst;
  if ((ast.op === '.' || ast.op === '[]') && Array.isArray(ast.args)) {
    const [obj, key] = ast.args as [CelAst, unknown];
    if (obj && obj.op === 'id' && (SCOPE_NAMES as readonly unknown[]).includes(obj.args)) {
      const scope = obj.args as ScopeName;
      if (typeof key === 'string') out.push({ scope, name: key, offset: ast.pos ?? 0 });
      else if (key && typeof key === 'object' && (key as CelAst).op === 'value' && typeof (key as CelAst).args === 'string') {
        // Past the opening quote of `["name"]`.
        out.push({ scope, name: (key as CelAst).args as string, offset: ((key as CelAst).pos ?? 0) + 1 });
      }
    }
  }
  collectScopeRefs(ast.args, out);
}

/** Every `inputs.x`, `findings.x`, `answers.x`, ... an expression reads; throws ExpressionError. */
export function scopeRefs(source: string): ScopeRef[] {
  return refsOf(parse(source));
}

function parse(source: string): ReturnType<Environment['parse']> {
  try {
    return environment.parse(source);
  } catch (err) {
    throw new ExpressionError(`does not parse as CEL: ${firstLine(err)}`, errorOffset(err));
  }
}

function refsOf(parsed: ReturnType<Environment['parse']>): ScopeRef[] {
  const refs: ScopeRef[] = [];
  collectScopeRefs((parsed as unknown as { ast: unknown }).ast, refs);
  return refs;
}

/** Parses and type-checks one CEL expression; throws ExpressionError. */
export function compileExpression(source: string): CompiledExpression {
  if (source.trim() === '') throw new ExpressionError('empty expression', 0);
  const parsed = parse(source);
  const check = environment.check(source) as { valid: boolean; error?: unknown };
  if (!check.valid) {
    throw new ExpressionError(`is not a valid CEL expression: ${firstLine(check.error)}`, errorOffset(check.error));
  }
  const findingRefs = new Set(refsOf(parsed).flatMap((r) => (r.scope === 'findings' ? [r.name] : [])));
  return {
    source,
    findingRefs: [...findingRefs],
    evaluate(scope) {
      try {
        return fromCel(parsed(toCel(scope) as Record<string, unknown>));
      } catch (err) {
        throw new Error(`${source}: ${firstLine(err)}`);
      }
    },
  };
}

/** A condition: an expression whose value must be a boolean. */
export function evaluateCondition(expr: CompiledExpression, scope: Scope): boolean {
  const value = expr.evaluate(scope);
  if (typeof value !== 'boolean') throw new Error(`${expr.source}: gives ${typeof value}, not a boolean`);
  return value;
}

/** Where `${...}` spans sit in a string; throws ExpressionError when one is not closed. */
export function templateSpans(text: string): Array<{ start: number; end: number; expr: string }> {
  const spans: Array<{ start: number; end: number; expr: string }> = [];
  let i = 0;
  while ((i = text.indexOf('${', i)) !== -1) {
    let depth = 1;
    let quote: string | null = null;
    let j = i + 2;
    for (; j < text.length && depth > 0; j++) {
      const c = text[j];
      if (quote) {
        if (c === '\\') j++;
        else if (c === quote) quote = null;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '{') depth++;
      else if (c === '}') depth--;
    }
    if (depth > 0) throw new ExpressionError('"${" is not closed by "}"', i);
    spans.push({ start: i, end: j, expr: text.slice(i + 2, j - 1) });
    i = j;
  }
  return spans;
}

export interface CompiledTemplate {
  source: string;
  findingRefs: string[];
  /** Evaluates: a whole-string `${expr}` keeps its type, anything else becomes a string. */
  render(scope: Scope): unknown;
}

/** Compiles a string with `${cel}` parts; throws ExpressionError with the offset in `text`. */
export function compileTemplate(text: string): CompiledTemplate {
  const spans = templateSpans(text);
  const parts = spans.map((span) => {
    try {
      return { span, expr: compileExpression(span.expr) };
    } catch (err) {
      if (err instanceof ExpressionError) throw new ExpressionError(err.message, span.start + 2 + err.offset);
      throw err;
    }
  });
  const findingRefs = [...new Set(parts.flatMap((p) => p.expr.findingRefs))];
  const whole = parts.length === 1 && spans[0]!.start === 0 && spans[0]!.end === text.length;
  return {
    source: text,
    findingRefs,
    render(scope) {
      if (whole) return parts[0]!.expr.evaluate(scope);
      let out = '';
      let last = 0;
      for (const { span, expr } of parts) {
        out += text.slice(last, span.start) + displayValue(expr.evaluate(scope));
        last = span.end;
      }
      return out + text.slice(last);
    },
  };
}

/** Renders a template to text, showing an unevaluable part as `‹expr›` instead of failing. */
export function renderText(template: CompiledTemplate, scope: Scope): string {
  try {
    return displayValue(template.render(scope));
  } catch {
    let out = '';
    let last = 0;
    for (const span of templateSpans(template.source)) {
      let shown: string;
      try {
        shown = displayValue(compileExpression(span.expr).evaluate(scope));
      } catch {
        shown = `‹${span.expr}›`;
      }
      out += template.source.slice(last, span.start) + shown;
      last = span.end;
    }
    return out + template.source.slice(last);
  }
}

export function displayValue(value: unknown): string {
  if (Array.isArray(value)) return value.map(displayValue).join(', ');
  if (value && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** JSON-ish values → CEL values: integral numbers become ints. */
export function toCel(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : value;
  if (!value || typeof value !== 'object') return value;
  const known = converted.get(value);
  if (known !== undefined) return known;
  let out: unknown;
  if (Array.isArray(value)) out = value.map(toCel);
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) fields[k] = toCel(v);
    out = fields;
  } else return value;
  if (unchanging.has(value)) converted.set(value, out);
  return out;
}

/**
 * Marks `value` as never changed in place (a finding's view: findings are not changed once
 * recorded), so its CEL form is made once. Every condition of every step reads every finding:
 * converting them again each time was most of a graph walk's time (paths.test: 18 of 30 s).
 * Scopes themselves are not marked: the report's grows step by step.
 */
export function unchangingForCel<T extends object>(value: T): T {
  unchanging.add(value);
  return value;
}

const unchanging = new WeakSet<object>();
const converted = new WeakMap<object, unknown>();

/** CEL values → JSON-ish values: ints become numbers. */
export function fromCel(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(fromCel);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), fromCel(v)]));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromCel(v)]));
  }
  return value;
}
