// Compiles every condition and every `${...}` template of a runbook, and checks
// that what they read exists: declared inputs, findings some step produces,
// answers of ask steps. Mistakes point at the character inside the YAML string.
import { compileExpression, ExpressionError, SCOPE_NAMES, scopeRefs, templateSpans, type ScopeRef } from './expressions.js';
import { toPointer } from '../yaml/positions.js';
import { isAskStep, probeCalls, type RawRunbook } from './raw.js';
import { didYouMean, listSome } from '../yaml/suggest.js';
import type { CheckContext } from './check-context.js';

export interface TextField {
  pointer: string;
  text: string;
  /** A condition is one CEL expression; a template is text with `${cel}` parts. */
  kind: 'condition' | 'template';
}

/** Every condition and every string that may hold templates, with its pointer. */
export function textFields(raw: RawRunbook): TextField[] {
  const out: TextField[] = [];
  const template = (text: unknown, ...path: Array<string | number>) => {
    if (typeof text === 'string') out.push({ pointer: toPointer(path), text, kind: 'template' });
  };
  template(raw.title, 'title');
  template(raw.description, 'description');
  for (const [name, input] of Object.entries(raw.inputs ?? {})) template(input.description, 'inputs', name, 'description');
  raw.steps.forEach((step, i) => {
    template(step.title, 'steps', i, 'title');
    template(step.description, 'steps', i, 'description');
    if (isAskStep(step)) {
      template(step.ask.question, 'steps', i, 'ask', 'question');
      step.ask.choices.forEach((c, k) => template(c.label, 'steps', i, 'ask', 'choices', k, 'label'));
      return;
    }
    for (const { call, pointer } of probeCalls(step, i)) {
      for (const [name, value] of Object.entries(call.params ?? {})) {
        const at = `${pointer}/params${toPointer([name])}`;
        if (Array.isArray(value)) value.forEach((item, k) => typeof item === 'string' && out.push({ pointer: `${at}/${k}`, text: item, kind: 'template' }));
        else if (typeof value === 'string') out.push({ pointer: at, text: value, kind: 'template' });
      }
    }
    step.next.forEach((b, j) => {
      if (b.if !== undefined) out.push({ pointer: toPointer(['steps', i, 'next', j, 'if']), text: b.if, kind: 'condition' });
      template(b.why, 'steps', i, 'next', j, 'why');
    });
  });
  raw.conclusions.forEach((c, i) => {
    template(c.title, 'conclusions', i, 'title');
    template(c.summary, 'conclusions', i, 'summary');
    template(c.explanation, 'conclusions', i, 'explanation');
    (c.actions ?? []).forEach((a, k) => template(a, 'conclusions', i, 'actions', k));
    (c.caveats ?? []).forEach((k, j) => {
      out.push({ pointer: toPointer(['conclusions', i, 'caveats', j, 'if']), text: k.if, kind: 'condition' });
      template(k.says, 'conclusions', i, 'caveats', j, 'says');
    });
  });
  (raw.caveats ?? []).forEach((c, i) => {
    out.push({ pointer: toPointer(['caveats', i, 'if']), text: c.if, kind: 'condition' });
    template(c.says, 'caveats', i, 'says');
  });
  return out;
}

const SCOPE_HINT = `expressions can read ${SCOPE_NAMES.join(', ')}`;

function hintFor(err: ExpressionError, field: TextField): string {
  if (/Unknown variable/i.test(err.message)) return ` (${SCOPE_HINT})`;
  if (field.kind === 'condition' && field.text.includes('${')) return ' (a condition is CEL already: write it without "${...}")';
  return '';
}

function shorten(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length > 50 ? `${oneLine.slice(0, 47)}...` : oneLine;
}

function checkRef(ctx: CheckContext, field: TextField, index: number, ref: ScopeRef): void {
  const read = `reads ${ref.scope}.${ref.name}`;
  let message: string | undefined;
  if (ref.scope === 'inputs' && !ctx.inputNames.has(ref.name)) {
    const names = [...ctx.inputNames];
    const list = names.length ? ` (inputs: ${listSome(names)})` : ' (this runbook declares no inputs)';
    message = `${read}, but no input "${ref.name}" is declared${didYouMean(ref.name, names)}${list}`;
  } else if (ref.scope === 'findings' && !ctx.aliases.has(ref.name)) {
    const names = [...ctx.aliases].sort();
    message = `${read}, but no step produces a finding named "${ref.name}"${didYouMean(ref.name, names)} (findings: ${listSome(names)})`;
  } else if (ref.scope === 'answers' && !ctx.askStepIds.has(ref.name)) {
    const names = [...ctx.askStepIds];
    // `answers.long-sample` parses as a subtraction: ids with "-" need brackets.
    const dashed = names.find((id) => id.startsWith(`${ref.name}-`));
    const hint = dashed ? `; write answers["${dashed}"] for an id with "-"` : didYouMean(ref.name, names);
    const list = names.length ? ` (ask steps: ${listSome(names)})` : ' (this runbook has no ask step)';
    message = `${read}, but no ask step has id "${ref.name}"${hint}${list}`;
  }
  if (message) ctx.problems.push(ctx.map.atChar(field.pointer, index, message));
}

/** Compiles one expression found at `base` in the field; reports and returns false when it does not compile. */
function checkExpression(ctx: CheckContext, field: TextField, expr: string, base: number): void {
  try {
    compileExpression(expr);
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    const what = field.kind === 'condition' ? 'condition' : `template "\${${shorten(expr)}}"`;
    ctx.problems.push(ctx.map.atChar(field.pointer, base + err.offset, `${what} ${err.message}${hintFor(err, field)}`));
    return;
  }
  for (const ref of scopeRefs(expr)) checkRef(ctx, field, base + ref.offset, ref);
}

export function checkExpressions(ctx: CheckContext): void {
  for (const field of textFields(ctx.raw)) {
    if (field.kind === 'condition') {
      checkExpression(ctx, field, field.text, 0);
      continue;
    }
    let spans: ReturnType<typeof templateSpans>;
    try {
      spans = templateSpans(field.text);
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
      ctx.problems.push(ctx.map.atChar(field.pointer, err.offset, `template ${err.message}`));
      continue;
    }
    // Each `${...}` alone, so that every broken one in a string is reported.
    for (const span of spans) checkExpression(ctx, field, span.expr, span.start + 2);
  }
}
