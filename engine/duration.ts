// Durations as people write them ("500ms", "5s", "2m") and as milliseconds.
import ms from 'ms';

/** A number and one unit of ms, s, m, h: what runbooks, CLI options and messages use. */
const DURATION = /^\d+(\.\d+)?\s*(ms|s|m|h)$/;

/**
 * A duration in whole milliseconds: a number of ms, or a string with a unit ("500ms", "5s",
 * "2m", "1.5h"). A bare number in a string is refused: "5" could mean seconds or ms.
 */
export function parseDuration(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) && raw >= 0 ? Math.round(raw) : undefined;
  if (typeof raw !== 'string') return undefined;
  const s = raw.trim();
  if (!DURATION.test(s)) return undefined;
  const n = ms(s as ms.StringValue) as number | undefined;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? Math.round(n) : undefined;
}

/** "5s", "500ms", "1.5s", "2m", "1m30s": short and exact enough for summaries and errors. */
export function formatMs(msValue: number): string {
  const v = Math.round(msValue);
  if (v < 1000) return `${v}ms`;
  if (v < 60_000) return v % 1000 === 0 ? `${v / 1000}s` : `${Number((v / 1000).toFixed(2))}s`;
  const minutes = Math.floor(v / 60_000);
  const rest = v - minutes * 60_000;
  return rest === 0 ? `${minutes}m` : `${minutes}m${formatMs(rest)}`;
}
