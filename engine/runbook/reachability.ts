// The runbook's steps as a graph (edges: `next` gotos, `on_error`, ask
// choices): every step and conclusion must be reachable from the first step,
// and every reachable step must have a way to some conclusion.
import { toPointer } from '../yaml/positions.js';
import { isAskStep, type RawStep } from './raw.js';
import { listSome } from '../yaml/suggest.js';
import type { CheckContext } from './check-context.js';

export function successors(step: RawStep): string[] {
  if (isAskStep(step)) return step.ask.choices.map((c) => c.goto);
  return [...step.next.map((b) => b.goto), ...(step.on_error !== undefined ? [step.on_error] : [])];
}

/** The nodes a path of one edge or more leads to from `start` (`start` itself only on a loop). */
export function reachedFrom(start: string, edges: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const queue = [start];
  while (queue.length) {
    for (const next of edges.get(queue.shift()!) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return seen;
}

/** Expects unique ids and existing targets (checked before). */
export function checkReachability(ctx: CheckContext): void {
  const { steps, conclusions } = ctx.raw;
  const first = steps[0];
  if (!first) return;
  const edges = new Map<string, string[]>(steps.map((s) => [s.id, [...new Set(successors(s))]]));
  const reached = new Set([first.id, ...reachedFrom(first.id, edges)]);
  const from = (id: string) => steps.filter((s) => edges.get(s.id)!.includes(id)).map((s) => s.id);

  const unreached = (kind: string, id: string, pointer: string) => {
    const sources = from(id).filter((s) => s !== id);
    const why = sources.length
      ? `only ${listSome(sources.map((s) => `"${s}"`))} ${sources.length === 1 ? 'leads' : 'lead'} to it, and ${sources.length === 1 ? 'that step is' : 'those steps are'} never reached either`
      : 'no goto, on_error or choice leads to it';
    ctx.problems.push(ctx.map.atValue(pointer, `${kind} "${id}" is never reached from the first step "${first.id}": ${why}`));
  };
  steps.forEach((s, i) => {
    if (!reached.has(s.id)) unreached('step', s.id, toPointer(['steps', i, 'id']));
  });
  conclusions.forEach((c, i) => {
    if (!reached.has(c.id)) unreached('conclusion', c.id, toPointer(['conclusions', i, 'id']));
  });

  // Steps from which some conclusion is reachable: grow from the conclusions backwards.
  const concludes = new Set<string>(conclusions.map((c) => c.id));
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of steps) {
      if (!concludes.has(s.id) && edges.get(s.id)!.some((t) => concludes.has(t))) {
        concludes.add(s.id);
        grew = true;
      }
    }
  }
  steps.forEach((s, i) => {
    if (!reached.has(s.id) || concludes.has(s.id)) return;
    const trapped = [...reachedFrom(s.id, edges)].filter((id) => id !== s.id);
    const among = trapped.length ? `every path from it only goes on to ${listSome(trapped.map((t) => `"${t}"`))}` : 'it only leads back to itself';
    ctx.problems.push(
      ctx.map.atValue(
        toPointer(['steps', i, 'id']),
        `step "${s.id}" has no way to a conclusion: ${among}; add a branch or an on_error that goes to a conclusion`,
      ),
    );
  });
}
