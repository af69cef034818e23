// The command line that runs the same diagnosis again, safe to paste into a shell.

/** Quotes one word for a POSIX shell. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function reproduceCommand(
  runbookId: string,
  inputs: Record<string, unknown>,
  target: { kind: string; name: string },
  budget?: { cpu?: number; eventsPerSec?: number },
  inventory?: string,
): string {
  const words = ['ebpfnet', 'diagnose', runbookId];
  if (target.kind === 'vm') words.push('--vm', target.name);
  if (target.kind === 'vm' && inventory !== undefined) words.push('--inventory', inventory);
  const limits = [budget?.cpu !== undefined ? `cpu=${+(budget.cpu * 100).toPrecision(6)}%` : '', budget?.eventsPerSec !== undefined ? `events=${budget.eventsPerSec}` : ''];
  if (limits.some(Boolean)) words.push('--budget', limits.filter(Boolean).join(','));
  for (const [name, value] of Object.entries(inputs)) {
    if (name === 'vm' && target.kind === 'vm') continue;
    const text = Array.isArray(value) ? value.join(',') : String(value);
    words.push('--input', `${name}=${text}`);
  }
  return words.map(shellWord).join(' ');
}
