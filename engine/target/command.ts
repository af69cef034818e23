// Runs the host tools discovery asks (virsh, ovs-vsctl, ip): argument arrays,
// never a shell, so a VM name is only ever one argument; a timeout, so a hung
// daemon costs seconds, not the run.
import { runCommand } from '../exec.js';
import { findBinary } from '../host/binaries.js';

export interface CommandOutput {
  ok: boolean;
  stdout: string;
  /** stderr on one line, or why the command did not run. */
  error: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** stderr as one line: virsh says "error: failed to connect" first and why on the next line. */
function oneLine(stderr: string): string {
  const text = stderr
    .split('\n')
    .map((l) => l.trim().replace(/^error:\s*/i, ''))
    .filter(Boolean)
    .join(': ');
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

/** Runs `tool args...`; null when the tool is not installed. Never throws. */
export async function runTool(tool: string, args: string[], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CommandOutput | null> {
  const path = await findBinary(tool);
  if (!path) return null;
  try {
    const r = await runCommand(path, args, { timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    const stderr = oneLine(r.stderr);
    const error = r.timedOut ? `timed out after ${timeoutMs} ms` : r.startError ?? (stderr || (r.exitCode !== 0 ? `exit ${r.exitCode}` : ''));
    return { ok: r.exitCode === 0 && !r.timedOut, stdout: r.stdout, error };
  } catch (err) {
    return { ok: false, stdout: '', error: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
}
