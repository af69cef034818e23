// The server's memory: every accepted alert, the run it became, and its notification, in
// SQLite (better-sqlite3). An alert is committed to disk (WAL, synchronous=FULL) before the
// webhook is answered, so an acknowledged alert survives a crash. The queue is this table:
// one worker takes the oldest queued row; dedupe and the queue bound are checked in the same
// transaction that stores the alert, so a storm of copies cannot race past them.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { InputValue } from '../runbook/model.js';
import type { IncomingAlert } from './alerts.js';

export type RunStatus = 'queued' | 'running' | 'completed' | 'failed' | 'interrupted' | 'rejected';
export type NotifyStatus = 'pending' | 'sent' | 'failed';

export interface ConclusionSummary {
  id: string;
  title: string;
  category: string;
  confidence: string;
  summary: string;
  /** Why the verdict is less certain (conditions that failed, evidence missing); absent in old rows. */
  caveats?: string[];
}

export interface RunRow {
  id: string;
  fingerprint: string;
  source: string;
  route: string | null;
  runbook: string | null;
  inputs: Record<string, InputValue>;
  target: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string | null;
  receivedAt: number;
  status: RunStatus;
  reason: string | null;
  startedAt: number | null;
  endedAt: number | null;
  pid: number | null;
  attempts: number;
  bundle: string | null;
  conclusion: ConclusionSummary | null;
  duplicates: number;
  lastSeenAt: number;
  notifyStatus: NotifyStatus | null;
  notifyAttempts: number;
  notifyError: string | null;
  notifyNextAt: number | null;
}

/** What the webhook handler hands the store for one alert. */
export type Admission =
  | { kind: 'run'; alert: IncomingAlert; route: string; runbook: string; inputs: Record<string, InputValue>; target: string }
  | { kind: 'rejected'; alert: IncomingAlert; route: string; runbook: string; reason: string; target: string };

export type Admitted = { kind: 'queued' | 'rejected'; id: string } | { kind: 'duplicate'; id: string; status: RunStatus };

export class QueueFullError extends Error {
  constructor(readonly queued: number) {
    super(`the queue is full (${queued} runs waiting)`);
  }
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  fingerprint TEXT NOT NULL,
  source TEXT NOT NULL,
  route TEXT,
  runbook TEXT,
  inputs TEXT NOT NULL,
  target TEXT NOT NULL,
  labels TEXT NOT NULL,
  annotations TEXT NOT NULL,
  starts_at TEXT,
  received_at INTEGER NOT NULL,
  status TEXT NOT NULL,
  reason TEXT,
  started_at INTEGER,
  ended_at INTEGER,
  pid INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  bundle TEXT,
  conclusion TEXT,
  duplicates INTEGER NOT NULL DEFAULT 0,
  last_seen_at INTEGER NOT NULL,
  notify_status TEXT,
  notify_attempts INTEGER NOT NULL DEFAULT 0,
  notify_error TEXT,
  notify_next_at INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_fingerprint ON runs (fingerprint, seq);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, seq);
`;

/** Sortable by time, unique without coordination: 8 base-36 digits of ms, 6 hex of random. */
function newRunId(now: number): string {
  return `${now.toString(36).padStart(9, '0')}-${randomBytes(3).toString('hex')}`;
}

type Raw = Record<string, unknown>;

function fromRaw(r: Raw): RunRow {
  const json = <T>(v: unknown, empty: T): T => (typeof v === 'string' ? (JSON.parse(v) as T) : empty);
  return {
    id: r.id as string,
    fingerprint: r.fingerprint as string,
    source: r.source as string,
    route: (r.route as string | null) ?? null,
    runbook: (r.runbook as string | null) ?? null,
    inputs: json(r.inputs, {}),
    target: r.target as string,
    labels: json(r.labels, {}),
    annotations: json(r.annotations, {}),
    startsAt: (r.starts_at as string | null) ?? null,
    receivedAt: r.received_at as number,
    status: r.status as RunStatus,
    reason: (r.reason as string | null) ?? null,
    startedAt: (r.started_at as number | null) ?? null,
    endedAt: (r.ended_at as number | null) ?? null,
    pid: (r.pid as number | null) ?? null,
    attempts: r.attempts as number,
    bundle: (r.bundle as string | null) ?? null,
    conclusion: json<ConclusionSummary | null>(r.conclusion, null),
    duplicates: r.duplicates as number,
    lastSeenAt: r.last_seen_at as number,
    notifyStatus: (r.notify_status as NotifyStatus | null) ?? null,
    notifyAttempts: r.notify_attempts as number,
    notifyError: (r.notify_error as string | null) ?? null,
    notifyNextAt: (r.notify_next_at as number | null) ?? null,
  };
}

export interface RunEnd {
  status: 'completed' | 'failed' | 'interrupted';
  bundle?: string | null;
  conclusion?: ConclusionSummary | null;
  reason?: string | null;
}

export class RunStore {
  private readonly db: BetterSqlite3.Database;

  constructor(file: string) {
    const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // FULL: a commit is on disk when it returns, which is when the webhook gets its 2xx.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`${file} was written by a newer ebpfnet (schema ${version}); upgrade ebpfnet or use another data_dir`);
    }
    this.db.exec(SCHEMA);
    this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }

  close(): void {
    this.db.close();
  }

  /**
   * Stores a webhook's alerts at once, or none of them: a full queue refuses the whole
   * payload (QueueFullError), so the sender's retry brings all of it again.
   * A fingerprint with a run waiting or going, or one that ended within `cooldownMs`,
   * is counted as a duplicate of that run instead.
   */
  admit(items: Admission[], opts: { now: number; cooldownMs: number; queueLimit: number }): Admitted[] {
    const latest = this.db.prepare('SELECT id, status, ended_at FROM runs WHERE fingerprint = ? ORDER BY seq DESC LIMIT 1');
    const bump = this.db.prepare('UPDATE runs SET duplicates = duplicates + 1, last_seen_at = ? WHERE id = ?');
    const queued = this.db.prepare("SELECT COUNT(*) AS n FROM runs WHERE status = 'queued'");
    const insert = this.db.prepare(`INSERT INTO runs
      (id, fingerprint, source, route, runbook, inputs, target, labels, annotations, starts_at, received_at, status, reason, ended_at, last_seen_at)
      VALUES (@id, @fingerprint, @source, @route, @runbook, @inputs, @target, @labels, @annotations, @starts_at, @now, @status, @reason, @ended_at, @now)`);
    return this.db.transaction((list: Admission[]) => {
      const out: Admitted[] = [];
      let waiting = (queued.get() as { n: number }).n;
      for (const item of list) {
        const last = latest.get(item.alert.fingerprint) as { id: string; status: RunStatus; ended_at: number | null } | undefined;
        const active = last && (last.status === 'queued' || last.status === 'running' || last.status === 'interrupted');
        const cooling = last && last.ended_at !== null && opts.now - last.ended_at < opts.cooldownMs;
        if (last && (active || cooling)) {
          bump.run(opts.now, last.id);
          out.push({ kind: 'duplicate', id: last.id, status: last.status });
          continue;
        }
        if (item.kind === 'run' && waiting >= opts.queueLimit) throw new QueueFullError(waiting);
        const id = newRunId(opts.now);
        const rejected = item.kind === 'rejected';
        insert.run({
          id,
          fingerprint: item.alert.fingerprint,
          source: item.alert.source,
          route: item.route,
          runbook: item.runbook,
          inputs: JSON.stringify(rejected ? {} : item.inputs),
          target: item.target,
          labels: JSON.stringify(item.alert.labels),
          annotations: JSON.stringify(item.alert.annotations),
          starts_at: item.alert.startsAt ?? null,
          now: opts.now,
          status: rejected ? 'rejected' : 'queued',
          reason: rejected ? item.reason : null,
          // A rejected alert has ended: its cool-down starts now, so its repeats are counted, not stored.
          ended_at: rejected ? opts.now : null,
        });
        if (!rejected) waiting++;
        out.push({ kind: rejected ? 'rejected' : 'queued', id });
      }
      return out;
    }).immediate(items);
  }

  /** Marks the oldest queued run as running and returns it; undefined when none waits. */
  claimNext(now: number): RunRow | undefined {
    return this.db.transaction(() => {
      const row = this.db.prepare("SELECT * FROM runs WHERE status = 'queued' ORDER BY seq LIMIT 1").get() as Raw | undefined;
      if (!row) return undefined;
      this.db.prepare("UPDATE runs SET status = 'running', started_at = ?, attempts = attempts + 1, pid = NULL WHERE id = ?").run(now, row.id);
      return this.get(row.id as string);
    }).immediate();
  }

  /** Takes back an interrupted run to continue it (its bundle is resumed). */
  claim(id: string, now: number): void {
    this.db.prepare("UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?), attempts = attempts + 1, pid = NULL WHERE id = ?").run(now, id);
  }

  setPid(id: string, pid: number | null, bundle?: string | null): void {
    this.db.prepare('UPDATE runs SET pid = ?, bundle = COALESCE(?, bundle) WHERE id = ?').run(pid, bundle ?? null, id);
  }

  /** Records how a run ended; a finished (not interrupted) run's notification becomes due when `notify`. */
  finish(id: string, end: RunEnd, now: number, notify: boolean): void {
    this.db
      .prepare(`UPDATE runs SET status = @status, bundle = COALESCE(@bundle, bundle), conclusion = @conclusion, reason = @reason,
        pid = NULL, ended_at = COALESCE(@ended, ended_at),
        notify_status = CASE WHEN @pending = 1 THEN 'pending' ELSE notify_status END,
        notify_next_at = CASE WHEN @pending = 1 THEN @now ELSE notify_next_at END
        WHERE id = @id`)
      .run({
        id,
        status: end.status,
        bundle: end.bundle ?? null,
        conclusion: end.conclusion ? JSON.stringify(end.conclusion) : null,
        reason: end.reason ?? null,
        ended: end.status === 'interrupted' ? null : now,
        pending: notify && end.status !== 'interrupted' ? 1 : 0,
        now,
      });
  }

  requeue(id: string, reason: string): void {
    this.db.prepare("UPDATE runs SET status = 'queued', pid = NULL, reason = ? WHERE id = ?").run(reason, id);
  }

  get(id: string): RunRow | undefined {
    const row = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as Raw | undefined;
    return row ? fromRaw(row) : undefined;
  }

  list(opts: { status?: RunStatus; limit: number; before?: string }): RunRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.status) {
      where.push('status = ?');
      args.push(opts.status);
    }
    if (opts.before) {
      where.push('seq < (SELECT seq FROM runs WHERE id = ?)');
      args.push(opts.before);
    }
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, opts.limit) as Raw[]).map(fromRaw);
  }

  /** Runs a previous server left running or interrupted, oldest first. */
  unfinished(): RunRow[] {
    return (this.db.prepare("SELECT * FROM runs WHERE status IN ('running', 'interrupted') ORDER BY seq").all() as Raw[]).map(fromRaw);
  }

  counts(): Record<RunStatus, number> {
    const out: Record<string, number> = { queued: 0, running: 0, completed: 0, failed: 0, interrupted: 0, rejected: 0 };
    for (const r of this.db.prepare('SELECT status, COUNT(*) AS n FROM runs GROUP BY status').all() as Array<{ status: string; n: number }>) {
      out[r.status] = r.n;
    }
    return out as Record<RunStatus, number>;
  }

  /** Mean duration of the last completed runs, ms: what a waiting alert may expect per run ahead. */
  meanRunMs(fallback: number): number {
    const r = this.db
      .prepare("SELECT AVG(ended_at - started_at) AS ms FROM (SELECT ended_at, started_at FROM runs WHERE status = 'completed' AND started_at IS NOT NULL ORDER BY seq DESC LIMIT 20)")
      .get() as { ms: number | null };
    return r.ms ?? fallback;
  }

  /** Ended runs older than `before`, whose notification is not still due: what retention removes. */
  expired(before: number): string[] {
    const rows = this.db
      .prepare("SELECT id FROM runs WHERE status IN ('completed', 'failed', 'rejected') AND ended_at < ? AND (notify_status IS NULL OR notify_status != 'pending') ORDER BY seq")
      .all(before) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM runs WHERE id = ?').run(id);
  }

  dueNotifications(now: number): RunRow[] {
    return (this.db.prepare("SELECT * FROM runs WHERE notify_status = 'pending' AND notify_next_at <= ? ORDER BY seq").all(now) as Raw[]).map(fromRaw);
  }

  nextNotificationAt(): number | undefined {
    const r = this.db.prepare("SELECT MIN(notify_next_at) AS at FROM runs WHERE notify_status = 'pending'").get() as { at: number | null };
    return r.at ?? undefined;
  }

  setNotify(id: string, status: NotifyStatus, attempts: number, error: string | null, nextAt: number | null): void {
    this.db.prepare('UPDATE runs SET notify_status = ?, notify_attempts = ?, notify_error = ?, notify_next_at = ? WHERE id = ?').run(status, attempts, error, nextAt, id);
  }
}
