// Progress on a terminal: a spinner per step on stderr. Silent when piped or --json.
import type { Ora } from 'ora';
import type { ProgressEvent } from '../run/runner.js';

/** Loads ora (90 ms) only for a terminal: an alert's or a script's run never pays for it. */
export async function progressReporter(enabled: boolean): Promise<((event: ProgressEvent) => void) | undefined> {
  if (!enabled) return undefined;
  const { default: ora } = await import('ora');
  let spinner: Ora | undefined;
  return (event) => {
    switch (event.type) {
      case 'step':
        spinner = ora({ text: `${event.entry.step}: ${event.entry.title}`, stream: process.stderr }).start();
        break;
      case 'finding':
        if (spinner) spinner.text = `${event.finding.step}: ${event.finding.alias} ${event.finding.status} — ${event.finding.summary}`;
        break;
      case 'step-end': {
        const why = event.entry.branch?.why ? ` → ${event.entry.branch.goto} (${event.entry.branch.why})` : event.entry.branch ? ` → ${event.entry.branch.goto}` : '';
        spinner?.succeed(`${event.entry.step}: ${event.entry.title}${why}`);
        spinner = undefined;
        break;
      }
      case 'interrupted':
        spinner?.fail(`interrupted: ${event.reason}`);
        spinner = undefined;
        break;
      case 'conclusion':
        break;
    }
  };
}
