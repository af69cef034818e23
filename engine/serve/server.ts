// The HTTP side of `ebpfnet serve` (fastify): webhooks in, runs and reports out.
//   POST /webhooks/alertmanager   Alertmanager webhook (version 4)
//   POST /webhooks/grafana        Grafana alerting webhook (version 1), optionally HMAC-signed
//   GET  /runs[?status=&limit=&before=]   newest first
//   GET  /runs/:id                status, conclusion, links
//   GET  /runs/:id/report.:format html, pdf, md or json, rendered from the bundle on first ask
//   GET  /healthz
// Every request must be authenticated. An alert is on disk before its 2xx is sent.
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { REPORT_FILES, REPORT_FORMATS, type ReportFormat } from '../../reports/formats.js';
import type { ProbeCatalog } from '../probe/types.js';
import { RunBundle } from '../run/bundle.js';
import { parseAlerts, PayloadError, type AlertSource } from './alerts.js';
import { authorized, challenge, grafanaSignatureProblem } from './auth.js';
import type { ServeConfig } from './config.js';
import { runLinks } from './links.js';
import { routeAlert, targetOf } from './routing.js';
import { QueueFullError, type Admission, type RunRow, type RunStatus, type RunStore } from './store.js';

const RUN_ID = /^[0-9a-z]{9}-[0-9a-f]{6}$/;
const STATUSES: RunStatus[] = ['queued', 'running', 'completed', 'failed', 'interrupted', 'rejected'];
const CONTENT_TYPES: Record<ReportFormat, string> = {
  html: 'text/html; charset=utf-8',
  pdf: 'application/pdf',
  md: 'text/markdown; charset=utf-8',
  json: 'application/json; charset=utf-8',
};

export interface ServerParts {
  config: ServeConfig;
  /** The probes of this build, for the reports rendered on demand. */
  catalog: ProbeCatalog;
  store: RunStore;
  /** A run was queued. */
  wake(): void;
  currentRun(): string | undefined;
  logger: FastifyBaseLogger | boolean | { level: string };
}

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function runView(row: RunRow, publicUrl: string) {
  return {
    id: row.id,
    status: row.status,
    runbook: row.runbook,
    route: row.route,
    target: row.target,
    inputs: row.inputs,
    conclusion: row.conclusion,
    reason: row.reason,
    alert: { source: row.source, fingerprint: row.fingerprint, labels: row.labels, annotations: row.annotations, startsAt: row.startsAt },
    receivedAt: iso(row.receivedAt),
    startedAt: iso(row.startedAt),
    endedAt: iso(row.endedAt),
    durationMs: row.startedAt !== null && row.endedAt !== null ? row.endedAt - row.startedAt : null,
    attempts: row.attempts,
    duplicates: row.duplicates,
    lastSeenAt: iso(row.lastSeenAt),
    bundle: row.bundle,
    notification: row.notifyStatus ? { status: row.notifyStatus, attempts: row.notifyAttempts, error: row.notifyError } : null,
    links: runLinks(publicUrl, row),
  };
}

export function buildServer(parts: ServerParts): FastifyInstance {
  const { config, store } = parts;
  const app = Fastify({
    bodyLimit: config.maxBodyBytes,
    logger: parts.logger as never,
    // Alertmanager sends one request per group; keep-alive connections are reused by it.
    keepAliveTimeout: 30_000,
  });

  // The raw bytes are kept: Grafana's signature is over them, not over re-serialised JSON.
  // JSON only (415 for anything else).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    if ((body as Buffer).length === 0) {
      done(new HttpError(400, 'the body is empty: expected an alert payload'), undefined);
      return;
    }
    try {
      done(null, JSON.parse((body as Buffer).toString('utf8')));
    } catch (err) {
      done(new HttpError(400, `the body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    if (!authorized(req.headers.authorization, config.auth)) {
      reply.header('www-authenticate', challenge(config.auth));
      throw new HttpError(401, 'authentication required: send Authorization: Bearer <token> (or the configured basic credentials)');
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err instanceof HttpError ? err.statusCode : (err.statusCode ?? 500);
    if (err instanceof HttpError) for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
    let message = err.message;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') message = `the body is larger than the limit of ${config.maxBodyBytes} bytes (limits.max_body_bytes)`;
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') message = 'send the alert as JSON (Content-Type: application/json)';
    if (status >= 500 && !(err instanceof HttpError)) req.log.error({ err }, 'request failed');
    void reply.status(status).send({ error: message });
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` });
  });

  const webhook = (source: AlertSource) => async (req: FastifyRequest, reply: FastifyReply) => {
    if (source === 'grafana' && config.grafanaHmac) {
      const problem = grafanaSignatureProblem(req.rawBody ?? Buffer.alloc(0), req.headers, config.grafanaHmac, Date.now());
      if (problem) throw new HttpError(401, problem);
    }
    let alerts;
    try {
      alerts = parseAlerts(source, req.body);
    } catch (err) {
      if (err instanceof PayloadError) throw new HttpError(400, err.message);
      throw err;
    }
    const ignored = { resolved: 0, unmatched: 0 };
    const admissions: Admission[] = [];
    for (const alert of alerts) {
      if (alert.status === 'resolved') {
        ignored.resolved++;
        continue;
      }
      const routed = routeAlert(alert, config.routes);
      if (routed.kind === 'unmatched') ignored.unmatched++;
      else if (routed.kind === 'rejected') admissions.push({ kind: 'rejected', alert, route: routed.route.name, runbook: routed.route.runbook.id, reason: routed.reason, target: routed.target });
      else admissions.push({ kind: 'run', alert, route: routed.route.name, runbook: routed.route.runbook.id, inputs: routed.inputs, target: targetOf(routed.inputs) });
    }
    let admitted;
    try {
      admitted = store.admit(admissions, { now: Date.now(), cooldownMs: config.cooldownMs, queueLimit: config.queueLimit });
    } catch (err) {
      if (!(err instanceof QueueFullError)) throw err;
      // Roughly when a slot frees: when the run going ends, about one usual run length (5 s to 1 h).
      const seconds = Math.min(3600, Math.max(5, Math.ceil(store.meanRunMs(30_000) / 1000)));
      throw new HttpError(503, `${err.message}; retry later`, { 'retry-after': String(seconds) });
    }
    const answer = {
      accepted: [] as Array<Record<string, unknown>>,
      duplicates: [] as Array<Record<string, unknown>>,
      rejected: [] as Array<Record<string, unknown>>,
      ignored,
    };
    admitted.forEach((a, i) => {
      const item = admissions[i]!;
      const base = { id: a.id, fingerprint: item.alert.fingerprint, url: runLinks(config.publicUrl, { id: a.id, bundle: null }).run };
      if (a.kind === 'queued') answer.accepted.push({ ...base, route: item.route, runbook: item.runbook, target: item.kind === 'run' ? item.target : null });
      else if (a.kind === 'duplicate') answer.duplicates.push({ ...base, status: a.status });
      else answer.rejected.push({ ...base, reason: item.kind === 'rejected' ? item.reason : '' });
    });
    if (answer.accepted.length) parts.wake();
    // Nothing usable at all, and the sender should hear it: every alert routed was refused.
    const status = answer.accepted.length ? 202 : answer.rejected.length && !answer.duplicates.length ? 422 : 200;
    return reply.status(status).send(answer);
  };

  app.post('/webhooks/alertmanager', webhook('alertmanager'));
  app.post('/webhooks/grafana', webhook('grafana'));

  app.get('/healthz', async () => ({ ok: true, running: parts.currentRun() ?? null, counts: store.counts() }));

  app.get('/runs', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    if (q.status !== undefined && !STATUSES.includes(q.status as RunStatus)) {
      throw new HttpError(400, `status: expected one of ${STATUSES.join(', ')}`);
    }
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'limit: expected an integer from 1 to 1000');
    if (q.before !== undefined && !RUN_ID.test(q.before)) throw new HttpError(400, 'before: expected a run id');
    const rows = store.list({ limit, ...(q.status ? { status: q.status as RunStatus } : {}), ...(q.before ? { before: q.before } : {}) });
    return { runs: rows.map((r) => runView(r, config.publicUrl)), counts: store.counts() };
  });

  const findRun = (id: string): RunRow => {
    const row = RUN_ID.test(id) ? store.get(id) : undefined;
    if (!row) throw new HttpError(404, `no run ${id} (GET /runs lists them)`);
    return row;
  };

  app.get('/runs/:id', async (req) => runView(findRun((req.params as { id: string }).id), config.publicUrl));

  // One render at a time: a PDF starts a browser, and a burst of downloads must not start ten.
  let rendering: Promise<unknown> = Promise.resolve();
  app.get('/runs/:id/report.:format', async (req, reply) => {
    const { id, format } = req.params as { id: string; format: string };
    const row = findRun(id);
    if (!(REPORT_FORMATS as readonly string[]).includes(format)) throw new HttpError(404, `no report format "${format}" (formats: ${REPORT_FORMATS.join(', ')})`);
    if (row.status === 'queued' || row.status === 'running') throw new HttpError(409, `run ${id} is ${row.status}: its reports are ready when it ends`);
    if (!row.bundle) throw new HttpError(404, `run ${id} has no bundle (${row.status}${row.reason ? `: ${row.reason}` : ''})`);
    const file = join(row.bundle, REPORT_FILES[format as ReportFormat]);
    if (!existsSync(file)) {
      const render = rendering.then(async () => {
        if (existsSync(file)) return;
        const { writeReports } = await import('../../reports/render.js');
        const bundle = RunBundle.open(row.bundle!);
        const { problems } = await writeReports(bundle.dir, bundle.readRecord(), [format as ReportFormat], { catalog: parts.catalog });
        if (!existsSync(file)) throw new HttpError(503, problems[0] ?? `the ${format} report could not be written`);
      });
      rendering = render.catch(() => undefined);
      await render;
    }
    void reply.header('content-type', CONTENT_TYPES[format as ReportFormat]);
    void reply.header('content-disposition', `inline; filename="ebpfnet-${id}-${REPORT_FILES[format as ReportFormat]}"`);
    return reply.send(createReadStream(file));
  });

  return app;
}
