// What the guided mode prints: plain text blocks for a step's plan, its findings next to
// what normal looks like, and the branch taken. Pure functions of the run's data.
import type { TimelineEntry } from '../run/record.js';
import type { Target } from '../target/types.js';
import { formatMs } from '../duration.js';
import { effectiveBudget, type OverheadBudget } from '../probe/overhead.js';
import type { Finding, ProbeCatalog, ProbeDefinition } from '../probe/types.js';
import type { ProbeInvocation } from '../runbook/compile.js';
import { conditionFieldText, type ConditionField } from '../runbook/condition-fields.js';
import { compileTemplate, renderText, type Scope } from '../runbook/expressions.js';
import type { Runbook, Step } from '../runbook/model.js';
import type { GlossaryEntry } from './glossary.js';
import type { RenderMarkdown } from './markdown.js';

export function runIntro(runbook: Runbook, target: Target | undefined, markdown: RenderMarkdown): string {
  const on = target ? `${target.kind} ${target.name}` : 'this host';
  return [`Runbook ${runbook.id}: ${runbook.title} (on ${on})`, markdown(runbook.description, 2), ''].join('\n');
}

export function stepHeading(number: number, stepId: string, title: string): string {
  const text = `Step ${number} · ${stepId}: ${title}`;
  return `\n${text}\n${'─'.repeat(Math.min(text.length, 100))}`;
}

/** The step's markdown with its `${...}` templates filled in from the run so far. */
export function stepDescription(step: Step, scope: Scope, markdown: RenderMarkdown): string {
  if (!step.description.trim()) return '';
  return markdown(renderText(compileTemplate(step.description), scope), 2);
}

export function stepTitle(step: Step, scope: Scope): string {
  return renderText(compileTemplate(step.title), scope);
}

/** One line per probe: what it is, what it costs, how long it watches. */
export function probePlan(invocations: ProbeInvocation[], catalog: ProbeCatalog, budget?: Partial<OverheadBudget>): string {
  const lines = ['  Probes:'];
  for (const inv of invocations) {
    const def = catalog.get(inv.probe);
    if (!def) {
      lines.push(`  • ${inv.alias} (${inv.probe}): unknown probe`);
      continue;
    }
    const cost = [`overhead ${def.overhead}`, budgetText(def, budget), `duration ${durationText(def, inv)}`];
    lines.push(`  • ${inv.alias} (${def.id}): ${def.title}`, `      ${cost.join(' · ')}`);
  }
  return lines.join('\n');
}

function budgetText(def: ProbeDefinition, override?: Partial<OverheadBudget>): string {
  if (!def.budget) return 'no BPF budget (loads no BPF program)';
  const b = effectiveBudget(def.budget, override);
  return `budget ${Number((b.cpu * 100).toFixed(2))}% of a CPU, ${b.eventsPerSec.toLocaleString('en-US')} events/s`;
}

/** The rendered `duration` param, else the probe's default; probes without one take a single reading. */
function durationText(def: ProbeDefinition, inv: ProbeInvocation): string {
  const value = inv.params.duration ?? def.params.duration?.default;
  if (typeof value === 'number') return formatMs(value);
  if (typeof value === 'string' && value) return value;
  return 'one reading';
}

const STATUS_MARK: Record<Finding['status'], string> = { ok: '✔', skipped: '⊘', error: '✖', timeout: '⏱', interrupted: '■' };

export function findingReport(finding: Finding, def: ProbeDefinition | undefined, markdown: RenderMarkdown): string {
  const lines = [`  ${STATUS_MARK[finding.status]} ${finding.alias} (${finding.probe}) ${finding.status} [${finding.severity}]: ${finding.summary}`];
  if (def?.normal.trim()) lines.push('      What normal looks like:', markdown(def.normal, 8));
  return lines.join('\n');
}

/**
 * The branch a step left by, and the condition (or the absence of one) that chose it, with the
 * fields of findings the condition read: their values, units and what they mean.
 */
export function branchReport(entry: TimelineEntry, fields: ConditionField[] = []): string {
  const branch = entry.branch;
  if (!branch) return '  → (no branch recorded)';
  const lines = [`  → next: ${branch.goto}`];
  switch (branch.kind) {
    case 'next':
      lines.push(branch.condition !== undefined ? `    condition: ${branch.condition}  (true)` : '    condition: none, the fallback: no earlier condition held');
      break;
    case 'on_error':
      lines.push('    condition: on_error, a probe of this step did not finish ok');
      break;
    case 'timeout':
      lines.push('    condition: the step timed out');
      break;
    case 'choice':
      lines.push(`    your answer: ${branch.index}`);
      break;
  }
  if (branch.why) lines.push(`    why: ${branch.why}`);
  if (fields.length > 0) lines.push('    the condition read:', ...fields.map((f) => `      ${conditionFieldText(f)}`));
  for (const error of entry.conditionErrors ?? []) lines.push(`    (a condition could not be evaluated and counted as false: ${error})`);
  return lines.join('\n');
}

export function glossaryText(entry: GlossaryEntry, markdown: RenderMarkdown): string {
  return `${entry.term} (${entry.kind})\n${markdown(entry.text, 2)}`;
}
