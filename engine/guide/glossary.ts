// The guided mode's glossary: kernel drop reasons and the terms runbooks and findings use
// (glossary.yaml, next to this module; the build copies it into dist).
import { readFileSync } from 'node:fs';
import { parse } from '#yaml';
import { closest } from '../yaml/suggest.js';

export interface GlossaryEntry {
  term: string;
  kind: 'drop reason' | 'term';
  text: string;
}

interface GlossaryFile {
  reasons: Record<string, string>;
  terms: Record<string, string>;
}

let loaded: GlossaryEntry[] | undefined;

export function glossary(): GlossaryEntry[] {
  if (loaded) return loaded;
  const file = parse(readFileSync(new URL('./glossary.yaml', import.meta.url), 'utf8')) as GlossaryFile;
  const entries = (kind: GlossaryEntry['kind'], map: Record<string, string>) =>
    Object.entries(map).map(([term, text]) => ({ term, kind, text: text.trim() }));
  loaded = [...entries('drop reason', file.reasons), ...entries('term', file.terms)];
  return loaded;
}

/** Lookup ignores case, and the SKB_DROP_REASON_ prefix the kernel's sources use. */
const normalise = (text: string) => text.trim().toLowerCase().replace(/^skb_drop_reason_/, '');

export function lookUp(query: string, entries = glossary()): GlossaryEntry | undefined {
  const wanted = normalise(query);
  return entries.find((e) => normalise(e.term) === wanted);
}

/** Entries whose name contains the query, or the one a typo is closest to. */
export function closeMatches(query: string, entries = glossary()): string[] {
  const wanted = normalise(query);
  const containing = wanted ? entries.filter((e) => normalise(e.term).includes(wanted)).map((e) => e.term) : [];
  if (containing.length) return containing;
  const typo = closest(wanted, entries.map((e) => normalise(e.term)));
  return entries.filter((e) => normalise(e.term) === typo).map((e) => e.term);
}
