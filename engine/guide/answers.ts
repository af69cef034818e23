// Who answers the guide's questions: the person at the terminal (@inquirer/prompts), or,
// with --yes, nobody: every step runs and every question takes its default.
import { Separator, search, select } from '@inquirer/prompts';
import type { StepDecision } from '../run/runner.js';
import type { AskChoice, AskStep } from '../runbook/model.js';
import { glossary, lookUp } from './glossary.js';
import type { RenderMarkdown } from './markdown.js';
import { glossaryText } from './screen.js';

/** An ask step's answer: a choice id, or the person stopping the run. */
export type AskAnswer = { choice: string } | 'quit';

export interface Answerer {
  confirmStep(signal: AbortSignal): Promise<StepDecision>;
  /** `labels` are the choices' labels with their templates rendered. */
  answerAsk(step: AskStep, labels: Map<string, string>, signal: AbortSignal): Promise<AskAnswer>;
}

export function unattendedAnswerer(write: (text: string) => void): Answerer {
  return {
    async confirmStep() {
      write('  --yes: running it.');
      return 'run';
    },
    async answerAsk(step, labels) {
      write(`  ${step.question}\n  --yes: taking the default, "${labels.get(step.default) ?? step.default}".`);
      return { choice: step.default };
    },
  };
}

type Menu = { kind: 'choice'; id: string } | { kind: 'glossary' } | { kind: 'quit' };

export function promptingAnswerer(write: (text: string) => void, markdown: RenderMarkdown): Answerer {
  const showGlossary = async (signal: AbortSignal) => {
    const entries = glossary();
    const term = await search(
      {
        message: 'Glossary: type to filter drop reasons and terms, Enter to read one',
        pageSize: 12,
        source: (typed) => {
          const wanted = (typed ?? '').toLowerCase();
          return entries.filter((e) => e.term.toLowerCase().includes(wanted)).map((e) => ({ value: e.term, name: e.term, description: e.kind }));
        },
      },
      { signal },
    );
    const entry = lookUp(term, entries);
    if (entry) write(glossaryText(entry, markdown));
  };

  return {
    async confirmStep(signal) {
      try {
        for (;;) {
          const action = await select<StepDecision | 'glossary'>(
            {
              message: 'Run this step?',
              default: 'run',
              choices: [
                { value: 'run', name: 'Run it', description: 'run the probes above now' },
                { value: 'skip', name: 'Skip it', description: 'record its probes as skipped; the runbook goes on as if they could not run' },
                { value: 'glossary', name: 'Glossary…', description: 'look up a drop reason or a term' },
                { value: 'quit', name: 'Quit', description: 'stop here; the bundle is kept and the run can be resumed' },
              ],
            },
            { signal },
          );
          if (action !== 'glossary') return action;
          await showGlossary(signal);
        }
      } catch (err) {
        if (isPromptClosed(err)) return 'quit';
        throw err;
      }
    },

    async answerAsk(step, labels, signal) {
      const choices = step.choices.map((c: AskChoice) => ({
        value: { kind: 'choice', id: c.id } as Menu,
        name: labels.get(c.id) ?? c.label,
        description: c.id === step.default ? `the default (goes to ${c.goto})` : `goes to ${c.goto}`,
      }));
      try {
        for (;;) {
          const picked = await select<Menu>(
            {
              message: step.question,
              default: choices.find((c) => c.value.kind === 'choice' && c.value.id === step.default)?.value,
              choices: [
                ...choices,
                new Separator(),
                { value: { kind: 'glossary' }, name: 'Glossary…', description: 'look up a drop reason or a term' },
                { value: { kind: 'quit' }, name: 'Quit', description: 'stop here; the bundle is kept and the run can be resumed' },
              ],
            },
            { signal },
          );
          if (picked.kind === 'choice') return { choice: picked.id };
          if (picked.kind === 'quit') return 'quit';
          await showGlossary(signal);
        }
      } catch (err) {
        if (isPromptClosed(err)) return 'quit';
        throw err;
      }
    },
  };
}

/** Ctrl-C inside a prompt (the terminal is in raw mode, so no SIGINT arrives), or the run aborted. */
function isPromptClosed(err: unknown): boolean {
  return err instanceof Error && (err.name === 'ExitPromptError' || err.name === 'AbortPromptError');
}
