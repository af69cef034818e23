// The checks of meaning that a schema cannot express, run on a runbook that
// already has the right shape: ids, references, branch order, defaults,
// probes and params, conditions and templates, and the step graph.
import type { ProbeCatalog } from '../probe/types.js';
import type { Problem } from '../yaml/problems.js';
import { parseDuration } from '../duration.js';
import { checkFieldPaths } from './field-paths.js';
import { literalMismatch } from './literals.js';
import { checkProbeCalls } from './params.js';
import { displayPath, toPointer, type SourceMap } from '../yaml/positions.js';
import { checkReachability } from './reachability.js';
import { isAskStep, type RawRunbook } from './raw.js';
import { checkExpressions } from './references.js';
import { describeValue } from '../yaml/schema-errors.js';
import { didYouMean, listSome } from '../yaml/suggest.js';
import { HEALTHY_CATEGORIES } from './model.js';
import { createContext, type CheckContext } from './check-context.js';

/** Steps and conclusions share one set of ids: a `goto` must name exactly one thing. */
function checkIds(ctx: CheckContext): void {
  const defined: Array<[string, string]> = [
    ...ctx.raw.steps.map((s, i): [string, string] => [s.id, toPointer(['steps', i, 'id'])]),
    ...ctx.raw.conclusions.map((c, i): [string, string] => [c.id, toPointer(['conclusions', i, 'id'])]),
  ];
  for (const [id, pointer] of defined) {
    const first = ctx.ids.get(id);
    if (first === undefined) {
      ctx.ids.set(id, pointer);
      continue;
    }
    const where = displayPath(first.slice(0, -'/id'.length));
    ctx.problems.push(
      ctx.map.atValue(pointer, `id "${id}" is already used by ${where} (line ${ctx.map.valuePos(first).line}); steps and conclusions share one set of ids`),
    );
  }
}

/** Every `goto`, `on_error` and choice names an existing step or conclusion. Returns how many do not. */
function checkTargets(ctx: CheckContext): number {
  const known = [...ctx.ids.keys()];
  let missing = 0;
  const check = (target: string, pointer: string) => {
    if (ctx.ids.has(target)) return;
    missing++;
    const hint = didYouMean(target, known);
    const list = hint ? '' : ` (steps: ${listSome([...ctx.stepIds])}; conclusions: ${listSome([...ctx.conclusionIds])})`;
    ctx.problems.push(ctx.map.atValue(pointer, `no step or conclusion has id "${target}"${hint}${list}`));
  };
  ctx.raw.steps.forEach((step, i) => {
    if (isAskStep(step)) {
      step.ask.choices.forEach((c, k) => check(c.goto, toPointer(['steps', i, 'ask', 'choices', k, 'goto'])));
    } else {
      step.next.forEach((b, j) => check(b.goto, toPointer(['steps', i, 'next', j, 'goto'])));
      if (step.on_error !== undefined) check(step.on_error, toPointer(['steps', i, 'on_error']));
    }
  });
  return missing;
}

/** `next` is tried in order and must end with the one branch without `if`. */
function checkBranches(ctx: CheckContext): void {
  ctx.raw.steps.forEach((step, i) => {
    if (isAskStep(step)) return;
    const last = step.next.length - 1;
    step.next.forEach((branch, j) => {
      if (j < last && branch.if === undefined) {
        const after = last - j;
        ctx.problems.push(
          ctx.map.atValue(
            toPointer(['steps', i, 'next', j]),
            `only the last branch may go without "if": this one is always taken, so the ${after === 1 ? 'branch' : `${after} branches`} after it never ${after === 1 ? 'is' : 'are'}`,
          ),
        );
      }
    });
    const final = step.next[last];
    if (final && final.if !== undefined) {
      ctx.problems.push(
        ctx.map.atKey(
          toPointer(['steps', i, 'next', last, 'if']),
          'the last branch must have no "if": it is the default, taken when no condition holds; add a last branch "- goto: <step or conclusion>"',
        ),
      );
    }
  });
}

function checkInputs(ctx: CheckContext): void {
  for (const [name, spec] of Object.entries(ctx.raw.inputs ?? {})) {
    if (!('default' in spec)) continue;
    const pointer = toPointer(['inputs', name, 'default']);
    const expected = literalMismatch(spec.type, spec.default);
    if (expected !== undefined) {
      ctx.problems.push(ctx.map.atValue(pointer, `expected ${expected} (the input's type is ${spec.type}), got ${describeValue(spec.default)}`));
    }
    if (spec.required === true) {
      ctx.problems.push(
        ctx.map.atKey(toPointer(['inputs', name, 'required']), 'an input with a default is never required; drop "required: true" or the default'),
      );
    }
  }
}

function checkAsks(ctx: CheckContext): void {
  ctx.raw.steps.forEach((step, i) => {
    if (!isAskStep(step)) return;
    const seen = new Set<string>();
    step.ask.choices.forEach((choice, k) => {
      if (seen.has(choice.id)) {
        ctx.problems.push(ctx.map.atValue(toPointer(['steps', i, 'ask', 'choices', k, 'id']), `choice id "${choice.id}" is used twice in this question`));
      }
      seen.add(choice.id);
    });
    if (!seen.has(step.ask.default)) {
      ctx.problems.push(
        ctx.map.atValue(
          toPointer(['steps', i, 'ask', 'default']),
          `"${step.ask.default}" is not one of the choices (${[...seen].join(', ')})${didYouMean(step.ask.default, seen)}`,
        ),
      );
    }
  });
}

function checkTimeouts(ctx: CheckContext): void {
  const check = (text: string | undefined, pointer: string) => {
    if (text === undefined) return;
    const ms = parseDuration(text);
    if (ms === undefined) ctx.problems.push(ctx.map.atValue(pointer, `expected a duration like 30s or 2m, got ${describeValue(text)}`));
    else if (ms <= 0) ctx.problems.push(ctx.map.atValue(pointer, `a timeout must be longer than 0, got ${describeValue(text)}`));
  };
  ctx.raw.steps.forEach((step, i) => {
    if (isAskStep(step)) check(step.ask.timeout, toPointer(['steps', i, 'ask', 'timeout']));
    else check(step.timeout, toPointer(['steps', i, 'timeout']));
  });
}

/** A conclusion's evidence names findings some step produces. */
function checkEvidence(ctx: CheckContext): void {
  ctx.raw.conclusions.forEach((c, i) => {
    (c.evidence ?? []).forEach((alias, k) => {
      if (ctx.aliases.has(alias)) return;
      ctx.problems.push(
        ctx.map.atValue(
          toPointer(['conclusions', i, 'evidence', k]),
          `no step produces a finding named "${alias}"${didYouMean(alias, ctx.aliases)} (findings: ${listSome([...ctx.aliases].sort())})`,
        ),
      );
    });
  });
}

/**
 * A probe that failed must never end in a healthy verdict (the one an alert is closed on): no
 * `on_error` leads to one, and a step that can conclude one has an `on_error`, since without
 * it a failed probe falls through the step's branches like any other finding.
 */
function checkHealthyVerdicts(ctx: CheckContext): void {
  const healthy = new Map(ctx.raw.conclusions.filter((c) => HEALTHY_CATEGORIES.has(c.category)).map((c) => [c.id, c.category]));
  ctx.raw.steps.forEach((step, i) => {
    if (isAskStep(step)) return;
    if (step.on_error !== undefined) {
      const category = healthy.get(step.on_error);
      if (category) {
        ctx.problems.push(
          ctx.map.atValue(toPointer(['steps', i, 'on_error']), `on_error leads to "${step.on_error}", a healthy verdict (category ${category}): a probe that failed proves nothing healthy; send it to an inconclusive conclusion`),
        );
      }
      return;
    }
    step.next.forEach((b, j) => {
      const category = healthy.get(b.goto);
      if (!category) return;
      ctx.problems.push(
        ctx.map.atValue(
          toPointer(['steps', i, 'next', j, 'goto']),
          `step "${step.id}" can end in "${b.goto}", a healthy verdict (category ${category}), but has no on_error: a probe that fails would fall through to it; add on_error`,
        ),
      );
    });
  });
}

/**
 * Every check of meaning, on a runbook that matches the schema. The graph
 * checks run only once every id is unique and every target exists, so that one
 * mistyped `goto` is reported once, not again as an unreachable step.
 */
export function checkRunbook(raw: RawRunbook, map: SourceMap, catalog: ProbeCatalog): Problem[] {
  const ctx = createContext(raw, map, catalog);
  checkIds(ctx);
  const duplicates = ctx.problems.length;
  const missingTargets = checkTargets(ctx);
  checkBranches(ctx);
  checkInputs(ctx);
  checkAsks(ctx);
  checkTimeouts(ctx);
  checkProbeCalls(ctx);
  checkExpressions(ctx);
  checkFieldPaths(ctx);
  checkEvidence(ctx);
  checkHealthyVerdicts(ctx);
  if (duplicates === 0 && missingTargets === 0) checkReachability(ctx);
  return ctx.problems;
}
