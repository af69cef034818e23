// The runner's hooks for a guided run: before each step, what it checks and what it costs,
// then a decision; after it, the findings next to what normal looks like and the branch taken.
import type { OverheadBudget } from '../probe/budget.js';
import type { Finding, ProbeCatalog } from '../probe/types.js';
import type { TimelineEntry } from '../run/record.js';
import { QUIT_BY_OPERATOR, type DiagnoseOptions, type ProgressEvent, type StepConfirmation, type StepDecision } from '../run/runner.js';
import type { AskInvocation } from '../runbook/compile.js';
import { findingView } from '../runbook/run-model.js';
import { conditionFields } from '../runbook/condition-fields.js';
import { compileTemplate, renderText, type Scope } from '../runbook/expressions.js';
import type { Step } from '../runbook/model.js';
import type { Answerer } from './answers.js';
import type { RenderMarkdown } from './markdown.js';
import { branchReport, findingReport, probePlan, stepDescription, stepHeading, stepTitle } from './screen.js';

export interface GuideSessionOptions {
  catalog: ProbeCatalog;
  answerer: Answerer;
  markdown: RenderMarkdown;
  write: (text: string) => void;
  budget?: Partial<OverheadBudget>;
  /** Stops the run (as interrupted) when the person quits at a question. */
  quit: (reason: string) => void;
}

export type GuideHooks = Required<Pick<DiagnoseOptions, 'confirmStep' | 'ask' | 'progress'>>;

export function guideSession(opts: GuideSessionOptions): GuideHooks {
  const { catalog, answerer, markdown, write } = opts;
  let stepsShown = 0;
  const introduced = new Set<string>();
  const withFindings = new Set<string>();
  // What conditions see: the scope a step or question was shown with, and the findings since.
  let scope: Scope | undefined;
  const findings: Record<string, Finding> = {};

  /** The step's heading and description, once per visit. */
  const introduce = (stepId: string, visit: number, render: () => { title: string; description?: string }) => {
    const key = `${stepId}#${visit}`;
    if (introduced.has(key)) return;
    introduced.add(key);
    const { title, description } = render();
    write(stepHeading(++stepsShown, stepId, title));
    if (description) write(description);
  };
  const fromRunbook = (step: Step, scope: Scope) => () => ({ title: stepTitle(step, scope), description: stepDescription(step, scope, markdown) });

  const confirmStep = async (request: StepConfirmation, signal: AbortSignal): Promise<StepDecision> => {
    scope = request.scope;
    introduce(request.step.id, request.visit, fromRunbook(request.step, request.scope));
    write(probePlan(request.invocations, catalog, opts.budget));
    const decision = await answerer.confirmStep(signal);
    const count = request.invocations.length;
    if (decision === 'run') write(`  Running ${count} probe${count === 1 ? '' : 's'}…`);
    else if (decision === 'skip') write('  Skipped: its probes are recorded as "skipped by the operator".');
    else write('  Quitting: the bundle is kept, marked interrupted.');
    return decision;
  };

  const ask = async (invocation: AskInvocation, signal: AbortSignal): Promise<string> => {
    // The ask actor starts inside the transition that ended the previous step: let that
    // step's branch be printed first.
    await new Promise((nextTurn) => setImmediate(nextTurn));
    const { step, visit } = invocation;
    scope = invocation.scope;
    introduce(step.id, visit, fromRunbook(step, invocation.scope));
    const labels = new Map(step.choices.map((c) => [c.id, renderText(compileTemplate(c.label), invocation.scope)]));
    const answer = await answerer.answerAsk(step, labels, signal);
    if (answer !== 'quit') return answer.choice;
    write('  Quitting: the bundle is kept, marked interrupted.');
    opts.quit(QUIT_BY_OPERATOR);
    // The run stops this question's actor, which aborts `signal`: no answer is ever taken.
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error(QUIT_BY_OPERATOR)), { once: true }));
  };

  const progress = (event: ProgressEvent) => {
    switch (event.type) {
      case 'finding': {
        const f = event.finding;
        findings[f.alias] = f;
        const key = `${f.step}#${f.visit ?? 1}`;
        if (!withFindings.has(key)) {
          withFindings.add(key);
          write('  Findings:');
        }
        write(findingReport(f, f.status === 'ok' ? catalog.get(f.probe) : undefined, markdown));
        break;
      }
      case 'step-end': {
        const entry = event.entry;
        // A replayed answer or a resumed step reaches here without having asked.
        introduce(entry.step, entry.visit, () => ({ title: entry.title }));
        write(branchReport(entry, readByBranch(entry)));
        break;
      }
      case 'interrupted':
        write(`\nInterrupted: ${event.reason}.`);
        break;
      case 'step':
      case 'conclusion':
        break;
    }
  };

  /** The fields the branch's condition read, with the values this run saw. */
  const readByBranch = (entry: TimelineEntry) => {
    const condition = entry.branch?.condition;
    if (condition === undefined) return [];
    const views = Object.fromEntries(Object.entries(findings).map(([alias, f]) => [alias, findingView(f)]));
    const seen = scope && { ...scope, findings: { ...scope.findings, ...views } };
    return conditionFields(condition, findings, catalog, seen);
  };

  return { confirmStep, ask, progress };
}
