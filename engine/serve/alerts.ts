// Alert payloads as Alertmanager (webhook version 4) and Grafana alerting (version 1) send
// them, checked against a schema and reduced to the alerts ebpfnet routes. Fields neither
// sender documents as required are optional; unknown fields are allowed, as both add some.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ErrorObject, SchemaObject } from 'ajv';

export type AlertSource = 'alertmanager' | 'grafana';

export interface IncomingAlert {
  source: AlertSource;
  status: 'firing' | 'resolved';
  /** The sender's fingerprint, or one made from the labels when it sent none. */
  fingerprint: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt?: string;
  groupKey?: string;
}

const strings: SchemaObject = {
  type: 'object',
  additionalProperties: { type: 'string', maxLength: 4096 },
  maxProperties: 256,
};

const alert: SchemaObject = {
  type: 'object',
  required: ['status', 'labels'],
  properties: {
    status: { enum: ['firing', 'resolved'] },
    labels: strings,
    annotations: strings,
    startsAt: { type: 'string' },
    endsAt: { type: 'string' },
    fingerprint: { type: 'string', pattern: '^[A-Za-z0-9]{1,64}$' },
  },
};

const payload = (version: string): SchemaObject => ({
  type: 'object',
  required: ['version', 'status', 'alerts'],
  properties: {
    version: { const: version },
    status: { enum: ['firing', 'resolved'] },
    groupKey: { type: 'string' },
    alerts: { type: 'array', maxItems: 1000, items: alert },
  },
});

const VERSIONS: Record<AlertSource, string> = { alertmanager: '4', grafana: '1' };
const OTHER: Record<AlertSource, AlertSource> = { alertmanager: 'grafana', grafana: 'alertmanager' };

type Check = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
const checks = new Map<AlertSource, Check>();

function checkFor(source: AlertSource): Check {
  let check = checks.get(source);
  if (!check) {
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
    check = new Ajv({ allErrors: false, strict: true }).compile(payload(VERSIONS[source])) as Check;
    checks.set(source, check);
  }
  return check;
}

export class PayloadError extends Error {}

/** One line naming the first thing wrong, where it is, and what was expected. */
function explain(source: AlertSource, err: ErrorObject, body: unknown): string {
  const where = err.instancePath ? err.instancePath.slice(1).replace(/\//g, '.') : 'the body';
  if (err.instancePath === '/version') {
    const got = (body as { version?: unknown }).version;
    const hint = got === VERSIONS[OTHER[source]] ? ` — it looks like a ${OTHER[source]} payload: POST it to /webhooks/${OTHER[source]}` : '';
    return `version: expected "${VERSIONS[source]}" (${source} webhook payload), got ${JSON.stringify(got)}${hint}`;
  }
  if (err.keyword === 'required') return `${where}: missing "${String(err.params.missingProperty)}"`;
  if (err.keyword === 'enum') return `${where}: expected one of ${(err.params.allowedValues as string[]).join(', ')}`;
  if (err.keyword === 'pattern' && where.endsWith('fingerprint')) return `${where}: expected up to 64 letters and digits`;
  return `${where}: ${err.message ?? 'is not valid'}`;
}

/** Labels → a stable id, as a sender without fingerprints would have made one. */
export function labelsFingerprint(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}\u0000${labels[k]}`)
    .join('\u0001');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Checks a parsed body and returns its alerts; throws PayloadError with a one-line reason. */
export function parseAlerts(source: AlertSource, body: unknown): IncomingAlert[] {
  const check = checkFor(source);
  if (!check(body)) throw new PayloadError(explain(source, check.errors![0]!, body));
  const doc = body as { groupKey?: string; alerts: Array<Record<string, unknown>> };
  return doc.alerts.map((a) => {
    const labels = a.labels as Record<string, string>;
    return {
      source,
      status: a.status as IncomingAlert['status'],
      fingerprint: typeof a.fingerprint === 'string' ? a.fingerprint : labelsFingerprint(labels),
      labels,
      annotations: (a.annotations as Record<string, string> | undefined) ?? {},
      ...(typeof a.startsAt === 'string' ? { startsAt: a.startsAt } : {}),
      ...(doc.groupKey !== undefined ? { groupKey: doc.groupKey } : {}),
    };
  });
}
