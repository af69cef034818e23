// What the probes reading skb:kfree_skb share: the drop reasons this kernel names (the
// tracepoint format's __print_symbolic table), whether the tracepoint passes a reason at all,
// and the symbols of the code locations drops happened at. Each is recorded as a capture, so
// a replay names reasons and locations as the live run did.
import { symbolise } from '../../engine/host/kallsyms.js';
import { tracepointFormat } from '../../engine/host/tracefs.js';
import type { ProbeIO } from '../../engine/probe/types.js';

export const KFREE_SKB = 'skb:kfree_skb';

/**
 * Records the format of skb:kfree_skb as the capture `name` and returns it: the reason names
 * this kernel uses are its __print_symbolic table (parseReasonNames).
 */
export async function captureReasonFormat(io: ProbeIO, name: string): Promise<string> {
  const rec = await io.capture(name, async () => {
    const text = await tracepointFormat(KFREE_SKB);
    if (text === null) throw new Error(`cannot read the format of tracepoint ${KFREE_SKB}`);
    return text;
  });
  return rec.stdout;
}

/** `{ 12, "NETFILTER_DROP" }` pairs of the tracepoint format's __print_symbolic. */
export function parseReasonNames(format: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const m of format.matchAll(/\{\s*(\d+)\s*,\s*"([A-Za-z0-9_]+)"\s*\}/g)) names.set(Number(m[1]), m[2]!);
  return names;
}

/** Whether the kfree_skb tracepoint passes the drop reason (5.17+). */
export function hasReasonField(format: string): boolean {
  return /field:[^;]*\breason;/.test(format);
}

/** Records `symbol+0xoff` of each address (from /proc/kallsyms) as the capture `name`. */
export async function captureSymbols(io: ProbeIO, name: string, addrs: string[]): Promise<void> {
  await io.capture(name, async () => JSON.stringify(await symbolise([...new Set(addrs)].sort())));
}
