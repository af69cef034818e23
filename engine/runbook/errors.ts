// The error a runbook loader throws: every problem of the file, at its line and column.
import { ProblemsError, type Problem } from '../yaml/problems.js';

/** Thrown by the loader with every problem it found, sorted by position. */
export class RunbookError extends ProblemsError {
  constructor(problems: Problem[]) {
    super(problems, 'invalid runbook');
    this.name = 'RunbookError';
  }
}
