// Whether a process exists (signal 0 checks the pid only) and what it runs.
import { readFileSync } from 'node:fs';

/** True for a live pid (also one we may not signal: EPERM means it exists). */
export function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process's arguments (/proc/<pid>/cmdline); null when it is gone or unreadable. */
export function processArgs(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return null;
  }
}
