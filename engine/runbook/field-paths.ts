// The fields runbook conditions and templates read from findings (`findings.<alias>.<path>`),
// resolved against the declared data of the probe behind each alias (DESIGN.md, Data model).
// Chains of field reads come from the CEL parser's AST, walked with the schema of each value
// (object fields, map values, list items, union branches, comprehension variables): a read of
// a field no probe declares is a mistake at load, at its file:line:col, with the closest names.
import { parse, type ASTNode } from '@marcbachmann/cel-js';
import type { TSchema } from '#typebox';
import { acceptsAnyField, asNode, branches, elementOf, fieldNames, fieldOf, mapValues, typeText, type SchemaNode } from '../probe/data-schema.js';
import { templateSpans } from './expressions.js';
import { fromPointer } from '../yaml/positions.js';
import { isAskStep, probeCalls, type RawRunbook } from './raw.js';
import { reachedFrom, successors } from './reachability.js';
import { textFields } from './references.js';
import { didYouMean, editDistance } from '../yaml/suggest.js';
import type { CheckContext } from './check-context.js';

/** What every finding shows conditions besides its data (findingView, engine/runbook/run-model.ts). */
const FINDING_FIELDS: Record<string, SchemaNode> = {
  status: { type: 'string', description: 'How the probe ended: ok, skipped, error, timeout or interrupted.' },
  summary: { type: 'string', description: "The finding's one-line summary." },
  severity: { type: 'string', description: 'info, warning or critical.' },
  reason: { type: 'string', description: 'Why the probe was skipped or failed; empty when it ran.' },
};

/** A finding as conditions see it: its declared data and the fields every finding has. */
export function findingSchema(data: TSchema): SchemaNode {
  const node = asNode(data);
  return { ...node, properties: { ...node.properties, ...FINDING_FIELDS } };
}

/** Where `findings.<alias>` comes from, at the place an expression is read. */
export type AliasSource =
  /** The probes that may have produced it there, each with its finding's schema. */
  | { kind: 'declared'; probes: string[]; schemas: SchemaNode[] }
  /** Nothing to check it against: no probe declares its data, or no step produces it (said elsewhere). */
  | { kind: 'unchecked' }
  /** Only these steps produce it, and none of them runs before the place it is read. */
  | { kind: 'not-yet'; steps: string[]; place: Place };

/** Where a text is read: in a step (`self`: before its own probes run), a conclusion, or the runbook's own texts. */
interface Place {
  name: string;
  self?: string;
}

export interface FieldRead {
  alias: string;
  /** Inside the finding: `worst.p99`, `layers[].count`. */
  path: string;
  nodes: SchemaNode[];
  /** The expression that reads it, when it stands alone (no comprehension variable in it). */
  source?: string;
}

export interface FieldProblem {
  /** Offset in the expression of the name at fault. */
  offset: number;
  message: string;
}

type Value =
  | { kind: 'unknown' }
  | { kind: 'findings' }
  | { kind: 'field'; alias: string; probes: string[]; path: string; nodes: SchemaNode[]; closed: boolean };

const UNKNOWN: Value = { kind: 'unknown' };
const MAP_KEY: SchemaNode = { type: 'string', description: 'A key of the map.' };
/** Macros whose first argument names each element of their receiver. */
const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'filter', 'map']);

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);
const shown = (alias: string, path: string) => `findings.${alias}${path ? `.${path}` : ''}`;

/** The names of `names` closest to `name`, closest first. */
function closestNames(name: string, names: string[], count = 5): string[] {
  const wanted = name.toLowerCase();
  return names
    .map((n) => ({ n, d: editDistance(wanted, n.toLowerCase()) }))
    .sort((a, b) => a.d - b.d || a.n.localeCompare(b.n))
    .slice(0, count)
    .map((x) => x.n);
}

/** Walks one expression's AST, giving each value the schemas it may have. */
class Walker {
  readonly reads = new Map<string, FieldRead>();
  readonly problems: FieldProblem[] = [];

  constructor(
    private readonly source: string,
    private readonly aliasSource: (alias: string) => AliasSource,
  ) {}

  /**
   * The value of `node`; a field it reads is recorded unless the caller reads further into it
   * (a comprehension variable alone reads nothing its list did not).
   */
  value(node: ASTNode, vars: ReadonlyMap<string, Value>, readFurther = false): Value {
    const v = this.evaluate(node, vars);
    if (!readFurther && node.op !== 'id' && v.kind === 'field' && v.path !== '') this.record(v, node);
    return v;
  }

  private evaluate(node: ASTNode, vars: ReadonlyMap<string, Value>): Value {
    switch (node.op) {
      case 'id':
        return vars.get(node.args) ?? (node.args === 'findings' ? { kind: 'findings' } : UNKNOWN);
      case '.':
      case '.?':
        return this.member(this.value(node.args[0], vars, true), node.args[1], node.pos);
      case '[]':
      case '[?]': {
        const [obj, key] = node.args;
        const of = this.value(obj, vars, true);
        if (key.op === 'value' && typeof key.args === 'string') return this.member(of, key.args, key.pos + 1);
        this.value(key, vars);
        return this.element(of);
      }
      case 'rcall': {
        const [name, receiver, args] = node.args;
        const variable = args[0];
        if (COMPREHENSIONS.has(name) && variable?.op === 'id' && args.length >= 2) {
          const list = this.value(receiver, vars);
          const inner = new Map(vars).set(variable.args, this.itemOf(list));
          for (const arg of args.slice(1)) this.value(arg, inner);
          return name === 'filter' ? list : UNKNOWN;
        }
        this.value(receiver, vars);
        for (const arg of args) this.value(arg, vars);
        return UNKNOWN;
      }
      case 'in': {
        const [key, of] = node.args;
        const container = this.value(of, vars, key.op === 'value' && typeof key.args === 'string');
        // `"worst" in findings.detail`: the name must be a field the finding can have.
        if (key.op === 'value' && typeof key.args === 'string') {
          const field = this.member(container, key.args, key.pos + 1);
          // A test of presence: the read has no value of its own to show.
          if (field.kind === 'field') this.record({ ...field, closed: false }, node);
        } else this.value(key, vars);
        return UNKNOWN;
      }
      default:
        for (const child of children(node)) this.value(child, vars);
        return UNKNOWN;
    }
  }

  private member(of: Value, name: string, offset: number): Value {
    if (of.kind === 'unknown') return UNKNOWN;
    if (of.kind === 'findings') return this.alias(name, offset);
    const nodes = of.nodes.flatMap((n) => fieldOf(n, name));
    if (nodes.length > 0) return { ...of, path: join(of.path, name), nodes };
    if (!of.nodes.some(acceptsAnyField)) this.problems.push({ offset, message: this.missing(of, name) });
    return UNKNOWN;
  }

  private missing(of: Extract<Value, { kind: 'field' }>, name: string): string {
    const read = `reads ${shown(of.alias, join(of.path, name))}`;
    const names = [...new Set(of.nodes.flatMap(fieldNames))];
    if (names.length === 0) {
      const type = [...new Set(of.nodes.map(typeText))].join(' | ');
      return `${read}, but ${shown(of.alias, of.path)} is ${type}: it has no fields`;
    }
    const where = of.path ? ` under ${of.path}` : '';
    return `${read}, but ${of.probes.join(' or ')} declares no field "${name}"${where}${didYouMean(name, names)} (closest fields there: ${closestNames(name, names).join(', ')})`;
  }

  private alias(alias: string, offset: number): Value {
    const source = this.aliasSource(alias);
    if (source.kind === 'declared') return { kind: 'field', alias, probes: source.probes, path: '', nodes: source.schemas, closed: true };
    if (source.kind === 'not-yet') {
      const { steps, place } = source;
      const from = steps.map((s) => `"${s}"`).join(', ');
      const why =
        steps.length === 1 && steps[0] === place.self
          ? `step "${place.self}" produces it itself, and its title, description and params are read before its probes run`
          : steps.length === 1
            ? `only step ${from} produces it, and it never runs before ${place.name}`
            : `only steps ${from} produce it, and they never run before ${place.name}`;
      this.problems.push({ offset, message: `reads findings.${alias}, but ${why}` });
    }
    return UNKNOWN;
  }

  private element(of: Value): Value {
    if (of.kind !== 'field') return UNKNOWN;
    const nodes = of.nodes.flatMap(elementOf);
    return nodes.length > 0 ? { ...of, path: `${of.path}[]`, nodes } : UNKNOWN;
  }

  /** What a comprehension's variable names: a list's items, or a map's keys. */
  private itemOf(list: Value): Value {
    if (list.kind !== 'field') return UNKNOWN;
    const nodes = list.nodes.flatMap(branches).flatMap((b) => (b.items ? [b.items] : mapValues(b) ? [MAP_KEY] : []));
    return nodes.length > 0 ? { ...list, path: `${list.path}[]`, nodes, closed: false } : UNKNOWN;
  }

  private record(v: Extract<Value, { kind: 'field' }>, node: ASTNode): void {
    const key = `${v.alias}\0${v.path}`;
    const source = v.closed ? this.source.slice(node.start, node.end) : undefined;
    const known = this.reads.get(key);
    if (!known || (known.source === undefined && source !== undefined)) {
      this.reads.set(key, { alias: v.alias, path: v.path, nodes: v.nodes, ...(source !== undefined ? { source } : {}) });
    }
  }
}

/** The AST nodes directly below `node`, whatever its operator keeps them in. */
function children(node: ASTNode): ASTNode[] {
  const out: ASTNode[] = [];
  const collect = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(collect);
    else if (x && typeof x === 'object' && 'op' in x) out.push(x as ASTNode);
  };
  collect(node.args);
  return out;
}

/**
 * The fields of findings one CEL expression reads, and the reads of fields its aliases'
 * probes do not declare. Throws when the expression does not parse (reported elsewhere).
 */
export function readFields(expression: string, aliasSource: (alias: string) => AliasSource): { reads: FieldRead[]; problems: FieldProblem[] } {
  const walker = new Walker(expression, aliasSource);
  walker.value(parse(expression).ast, new Map());
  return { reads: [...walker.reads.values()], problems: walker.problems };
}

/** Steps that can run before `id` (the steps from which it can be reached; itself only on a loop). */
function stepsBefore(raw: RawRunbook, id: string): Set<string> {
  const into = new Map<string, string[]>();
  for (const step of raw.steps) for (const next of successors(step)) into.set(next, [...(into.get(next) ?? []), step.id]);
  return reachedFrom(id, into);
}

/** Which steps may have run when the text at `pointer` is read, and how to name that place. */
function placeOf(raw: RawRunbook, pointer: string): { steps: Set<string>; place: Place } {
  const [kind, index, part] = fromPointer(pointer);
  if (kind === 'steps') {
    const step = raw.steps[Number(index)]!;
    const before = stepsBefore(raw, step.id);
    // A step's branches are read once its own probes have run; its title, params and
    // description before they do.
    if (part === 'next') before.add(step.id);
    return { steps: before, place: { name: `step "${step.id}"`, ...(part !== 'next' ? { self: step.id } : {}) } };
  }
  if (kind === 'conclusions') {
    const conclusion = raw.conclusions[Number(index)]!;
    return { steps: stepsBefore(raw, conclusion.id), place: { name: `conclusion "${conclusion.id}"` } };
  }
  return { steps: new Set(raw.steps.map((s) => s.id)), place: { name: 'the end of the run' } };
}

/** The probes each alias may come from, by step. */
function producers(raw: RawRunbook): Map<string, Array<{ step: string; probe: string }>> {
  const out = new Map<string, Array<{ step: string; probe: string }>>();
  raw.steps.forEach((step, i) => {
    if (isAskStep(step)) return;
    for (const { alias, call } of probeCalls(step, i)) out.set(alias, [...(out.get(alias) ?? []), { step: step.id, probe: call.probe }]);
  });
  return out;
}

/**
 * Every field path a condition or template reads under `findings.<alias>` exists in the
 * declared data of the probes that may have produced the alias by then, and the alias comes
 * from a step that runs before (or, in a step's branches, from that step).
 */
export function checkFieldPaths(ctx: CheckContext): void {
  const byAlias = producers(ctx.raw);
  const schemas = new Map<string, SchemaNode | null>();
  const schemaOf = (probe: string) => {
    if (!schemas.has(probe)) {
      const data = ctx.catalog.get(probe)?.data;
      schemas.set(probe, data ? findingSchema(data) : null);
    }
    return schemas.get(probe)!;
  };
  for (const field of textFields(ctx.raw)) {
    const { steps, place } = placeOf(ctx.raw, field.pointer);
    const aliasSource = (alias: string): AliasSource => {
      const all = byAlias.get(alias) ?? [];
      if (all.length === 0) return { kind: 'unchecked' };
      const before = all.filter((p) => steps.has(p.step));
      if (before.length === 0) return { kind: 'not-yet', steps: [...new Set(all.map((p) => p.step))], place };
      const probes = [...new Set(before.map((p) => p.probe))];
      const found = probes.map(schemaOf);
      return found.every((s): s is SchemaNode => s !== null) ? { kind: 'declared', probes, schemas: found } : { kind: 'unchecked' };
    };
    const check = (expression: string, base: number) => {
      let problems: FieldProblem[];
      try {
        ({ problems } = readFields(expression, aliasSource));
      } catch {
        return; // does not parse: checkExpressions says so
      }
      for (const p of problems) ctx.problems.push(ctx.map.atChar(field.pointer, base + p.offset, p.message));
    };
    if (field.kind === 'condition') {
      check(field.text, 0);
      continue;
    }
    let spans: ReturnType<typeof templateSpans>;
    try {
      spans = templateSpans(field.text);
    } catch {
      continue; // an unclosed `${`: checkExpressions says so
    }
    for (const span of spans) check(span.expr, span.start + 2);
  }
}
