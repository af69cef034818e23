// Exit codes (documented in the README) and the error that carries one: the commands and the
// server they start (engine/serve) both end with them, so they live below both.

export const EXIT = {
  ok: 0,
  /** The run failed, or a probe errored. */
  failure: 1,
  /** Bad command line, runbook, inputs or unknown names: nothing ran. */
  usage: 2,
  /** The host cannot do it: not root, a requirement missing (doctor, probe run). */
  environment: 3,
  /** Stopped by SIGINT / SIGTERM; the bundle is kept, marked interrupted. */
  sigint: 130,
  sigterm: 143,
} as const;

/** An error the user can fix; printed as one line, never with a stack. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
  }
}
