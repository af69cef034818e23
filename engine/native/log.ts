// Routes libbpf's messages to a logger. Without one they are dropped: every failing call
// already carries what libbpf printed during it (BpfError.log).
import { addon } from './addon.js';

export type LibbpfLevel = 'warn' | 'info' | 'debug';

const LEVELS: LibbpfLevel[] = ['warn', 'info', 'debug'];

/** Sends libbpf lines up to `maxLevel` to `fn` (asynchronously, in order); null stops it. */
export function routeLibbpfLogs(fn: ((level: LibbpfLevel, text: string) => void) | null, maxLevel: LibbpfLevel = 'info'): void {
  if (!fn) {
    addon().setLogCallback(null);
    return;
  }
  addon().setLogCallback((level, text) => fn(LEVELS[level] ?? 'debug', text), LEVELS.indexOf(maxLevel));
}
