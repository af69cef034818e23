// What is wrong with a YAML file (a runbook, an inventory, a serve configuration), and where:
// every mistake a loader finds becomes a Problem at a 1-based line and column, reported all
// together.

export interface Problem {
  /** The file as the caller named it. */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  message: string;
}

/** `file:line:column: message`, the form editors and terminals turn into links. */
export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message}`;
}

/** By file, then line, then column; problems at the same place keep their order. */
export function sortProblems(problems: Problem[]): Problem[] {
  return [...problems].sort(
    (a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || a.column - b.column,
  );
}

/** Every problem found in one kind of file, sorted by position; the message lists them all. */
export class ProblemsError extends Error {
  readonly problems: Problem[];

  constructor(problems: Problem[], fallback: string) {
    const sorted = sortProblems(problems);
    super(sorted.length ? sorted.map(formatProblem).join('\n') : fallback);
    this.problems = sorted;
  }
}
