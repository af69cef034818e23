// What the checks of meaning (validate.ts and the checkers it runs) share: the runbook as
// read, where its values sit, the probes, the names it defines, and the problems found so far.
import type { ProbeCatalog } from '../probe/types.js';
import type { SourceMap } from '../yaml/positions.js';
import type { Problem } from '../yaml/problems.js';
import { isAskStep, probeCalls, type RawRunbook } from './raw.js';

/** What every check reads, and where it reports. */
export interface CheckContext {
  raw: RawRunbook;
  map: SourceMap;
  catalog: ProbeCatalog;
  /** Step and conclusion ids (one namespace) → pointer of the first definition. */
  ids: Map<string, string>;
  stepIds: Set<string>;
  askStepIds: Set<string>;
  conclusionIds: Set<string>;
  inputNames: Set<string>;
  /** Every finding name some step produces. */
  aliases: Set<string>;
  problems: Problem[];
}

export function createContext(raw: RawRunbook, map: SourceMap, catalog: ProbeCatalog): CheckContext {
  const ctx: CheckContext = {
    raw,
    map,
    catalog,
    ids: new Map(),
    stepIds: new Set(raw.steps.map((s) => s.id)),
    askStepIds: new Set(raw.steps.filter(isAskStep).map((s) => s.id)),
    conclusionIds: new Set(raw.conclusions.map((c) => c.id)),
    inputNames: new Set(Object.keys(raw.inputs ?? {})),
    aliases: new Set(),
    problems: [],
  };
  raw.steps.forEach((step, i) => {
    if (!isAskStep(step)) for (const { alias } of probeCalls(step, i)) ctx.aliases.add(alias);
  });
  return ctx;
}
