// The fields of findings a branch condition reads, with what their probes declare of them
// (description, unit) and the value the run saw: what the report and guided mode print
// beside the branch a step took, so that a reader sees why it held.
import { describe } from '../probe/data-schema.js';
import type { Finding, ProbeCatalog } from '../probe/types.js';
import { compileExpression, type Scope } from './expressions.js';
import { findingSchema, readFields, type AliasSource, type FieldRead } from './field-paths.js';

export interface ConditionField {
  /** `findings.kernel.total`, `findings.lat.layers[].count`. */
  path: string;
  /** What the run saw, when the field stands alone in the condition (not inside a comprehension). */
  value?: string;
  unit?: string;
  description?: string;
}

const MAX_VALUE = 80;

function valueOf(read: FieldRead, scope: Scope | undefined): string | undefined {
  if (!scope || read.source === undefined) return undefined;
  try {
    // As JSON: a string reads quoted, an empty list as [].
    const text = JSON.stringify(compileExpression(read.source).evaluate(scope)) ?? 'undefined';
    return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
  } catch {
    return undefined; // a failed probe's finding has no data: nothing to show
  }
}

/**
 * The finding fields `condition` reads, described by the data of the probes that produced
 * `findings` (by alias); values are read from `scope` when given. Empty for a condition that
 * does not parse or reads no declared field.
 */
export function conditionFields(condition: string, findings: Record<string, Pick<Finding, 'probe'>>, catalog: ProbeCatalog, scope?: Scope): ConditionField[] {
  const source = (alias: string): AliasSource => {
    const probe = findings[alias]?.probe;
    const data = probe === undefined ? undefined : catalog.get(probe)?.data;
    return probe !== undefined && data ? { kind: 'declared', probes: [probe], schemas: [findingSchema(data)] } : { kind: 'unchecked' };
  };
  let reads: FieldRead[];
  try {
    reads = readFields(condition, source).reads;
  } catch {
    return [];
  }
  return reads.map((read) => {
    const declared = read.nodes.map(describe);
    const value = valueOf(read, scope);
    return {
      path: `findings.${read.alias}.${read.path}`,
      ...(value !== undefined ? { value } : {}),
      ...(declared.find((d) => d.unit !== undefined) ?? {}),
      ...(declared.find((d) => d.description !== undefined) ?? {}),
    };
  });
}

/** `findings.kernel.total = 412 packets: Packets the kernel freed as drops.` */
export function conditionFieldText(f: ConditionField): string {
  const value = f.value !== undefined ? ` = ${f.value}${f.unit ? ` ${f.unit}` : ''}` : f.unit ? ` (${f.unit})` : '';
  return `${f.path}${value}${f.description ? `: ${f.description}` : ''}`;
}
