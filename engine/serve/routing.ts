// Which route takes an alert (the first whose matchers all hold, as Alertmanager routes
// without `continue`), and the runbook inputs it gives. Values from labels are checked
// against the runbook's input types here: a label that is not a VM name never reaches a run.
import { InputError, resolveInputs } from '../runbook/inputs.js';
import type { InputValue } from '../runbook/model.js';
import type { IncomingAlert } from './alerts.js';
import type { Route } from './config.js';

export type Routed =
  | { kind: 'run'; route: Route; inputs: Record<string, InputValue> }
  /** `target`: what the alert named as its VM, as sent (for listings only; it is never run). */
  | { kind: 'rejected'; route: Route; reason: string; target: string }
  | { kind: 'unmatched' };

export function matches(route: Route, labels: Record<string, string>): boolean {
  for (const [name, value] of Object.entries(route.match)) if (labels[name] !== value) return false;
  for (const [name, re] of Object.entries(route.matchRe)) if (!re.test(labels[name] ?? '')) return false;
  return true;
}

export function routeAlert(alert: IncomingAlert, routes: Route[]): Routed {
  const route = routes.find((r) => matches(r, alert.labels));
  if (!route) return { kind: 'unmatched' };
  const given: Record<string, unknown> = {};
  const rejected = (reason: string): Routed => ({ kind: 'rejected', route, reason, target: typeof given.vm === 'string' ? given.vm : 'host' });
  for (const [name, source] of Object.entries(route.inputs)) {
    if ('value' in source) {
      given[name] = source.value;
      continue;
    }
    const [kind, key] = 'label' in source ? ['label', source.label] : ['annotation', source.annotation];
    const value = kind === 'label' ? alert.labels[key] : alert.annotations[key];
    if (value !== undefined) given[name] = value;
    else if (route.runbook.inputs[name]?.default === undefined) {
      return rejected(`the alert has no ${kind} "${key}", which route ${route.name} maps to input "${name}"`);
    }
  }
  try {
    return { kind: 'run', route, inputs: resolveInputs(route.runbook, given) };
  } catch (err) {
    if (err instanceof InputError) return rejected(`route ${route.name}: ${err.message}`);
    throw err;
  }
}

/** What a run is about, for listings: the VM when the runbook takes one, else the host. */
export function targetOf(inputs: Record<string, InputValue>): string {
  return typeof inputs.vm === 'string' ? inputs.vm : 'host';
}
