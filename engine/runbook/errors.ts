// The errors of finding and loading runbooks: a runbook that is not there, and one whose file
// has problems (each at its line and column).
import { ProblemsError, type Problem } from '../yaml/problems.js';

/** Thrown by the loader with every problem it found, sorted by position. */
export class RunbookError extends ProblemsError {
  constructor(problems: Problem[]) {
    super(problems, 'invalid runbook');
    this.name = 'RunbookError';
  }
}

/** No runbook by that id, or no file at that path: nothing ran (the CLI exits with a usage error). */
export class UnknownRunbookError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownRunbookError';
  }
}
