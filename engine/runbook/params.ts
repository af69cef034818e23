// Checks each probe call of each step against the probe catalog: the probe
// exists, every param is one it takes with a value of its type, required params
// are given, and finding names are unique within the step.
import type { ParamSpec, ProbeDefinition } from '../probe/types.js';
import { templateSpans } from './expressions.js';
import { expectedText, literalMismatch } from './literals.js';
import type { ParamTemplate } from './model.js';
import { toPointer } from '../yaml/positions.js';
import { isAskStep, probeCalls, type LocatedCall } from './raw.js';
import { describeValue } from '../yaml/schema-errors.js';
import { didYouMean, listSome } from '../yaml/suggest.js';
import type { CheckContext } from './check-context.js';

const hasTemplate = (value: unknown): value is string => typeof value === 'string' && value.includes('${');

/** True when the string is exactly one `${expr}`, which keeps the expression's type. */
function isWholeTemplate(value: string): boolean {
  try {
    const spans = templateSpans(value);
    return spans.length === 1 && spans[0]!.start === 0 && spans[0]!.end === value.length;
  } catch {
    return false; // an unclosed "${" is reported with the other template mistakes
  }
}

/** Types a template mixed with text cannot produce: it always gives text. */
const NOT_TEXT = new Set(['integer', 'number', 'boolean', 'string[]']);

function checkValue(ctx: CheckContext, pointer: string, name: string, spec: ParamSpec, value: ParamTemplate): void {
  if (hasTemplate(value)) {
    if (NOT_TEXT.has(spec.type) && !isWholeTemplate(value)) {
      ctx.problems.push(
        ctx.map.atValue(
          pointer,
          `param "${name}" takes ${expectedText(spec.type)}, but a template mixed with text gives text; write the value as exactly one \${...}`,
        ),
      );
    }
    return;
  }
  if (spec.type === 'string[]' && Array.isArray(value)) {
    value.forEach((item, k) => {
      if (typeof item !== 'string') {
        ctx.problems.push(ctx.map.atValue(`${pointer}/${k}`, `expected text (param "${name}" is a list of strings), got ${describeValue(item)}`));
      }
    });
    return;
  }
  const expected = literalMismatch(spec.type, value);
  if (expected !== undefined) {
    ctx.problems.push(ctx.map.atValue(pointer, `expected ${expected} for param "${name}", got ${describeValue(value)}`));
    return;
  }
  if (spec.enum && typeof value === 'string' && !spec.enum.includes(value)) {
    ctx.problems.push(
      ctx.map.atValue(pointer, `expected one of ${spec.enum.join(', ')} for param "${name}", got ${describeValue(value)}${didYouMean(value, spec.enum)}`),
    );
  }
}

function checkParams(ctx: CheckContext, located: LocatedCall, probe: ProbeDefinition): void {
  const given = located.call.params ?? {};
  const names = Object.keys(probe.params);
  for (const [name, value] of Object.entries(given)) {
    const pointer = `${located.pointer}/params${toPointer([name])}`;
    const spec = probe.params[name];
    if (!spec) {
      const list = names.length ? `its params: ${names.join(', ')}` : 'it takes no params';
      ctx.problems.push(ctx.map.atKey(pointer, `unknown param "${name}" for probe ${probe.id}${didYouMean(name, names)} (${list})`));
      continue;
    }
    checkValue(ctx, pointer, name, spec, value);
  }
  for (const [name, spec] of Object.entries(probe.params)) {
    if (spec.required && !(name in given)) {
      ctx.problems.push(
        ctx.map.atValue(
          `${located.pointer}/probe`,
          `probe ${probe.id} needs param "${name}" (${spec.type}: ${spec.description}); add it under "params:"`,
        ),
      );
    }
  }
}

export function checkProbeCalls(ctx: CheckContext): void {
  const known = ctx.catalog.ids();
  ctx.raw.steps.forEach((step, i) => {
    if (isAskStep(step)) return;
    const aliases = new Map<string, string>();
    probeCalls(step, i).forEach((located, j) => {
      const { call, pointer, alias } = located;
      const first = aliases.get(alias);
      if (first !== undefined) {
        const at = call.as !== undefined ? `${pointer}/as` : `${pointer}/probe`;
        const implicit = call.as === undefined ? ` (the default name of ${call.probe})` : '';
        ctx.problems.push(
          ctx.map.atValue(at, `finding name "${alias}"${implicit} is already used by ${first} of this step; give one of them a different "as:"`),
        );
      } else {
        aliases.set(alias, `probes[${j}]`);
      }
      const probe = ctx.catalog.get(call.probe);
      if (!probe) {
        const hint = didYouMean(call.probe, known);
        const list = known.length ? `known probes: ${listSome(known)}` : 'no probes are registered';
        ctx.problems.push(ctx.map.atValue(`${pointer}/probe`, `unknown probe "${call.probe}"${hint} (${list}; see \`ebpfnet probes list\`)`));
        return;
      }
      checkParams(ctx, located, probe);
    });
  });
}
