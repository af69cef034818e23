// Tells a configured URL (a ticket system, a chat hook) how each run ended: the verdict and
// links to its reports. Attempts are kept in the store, so a notification due when the server
// stops is sent after it starts again; failures back off exponentially (1 s, 2 s, 4 s, ... up to
// 5 min) for `retries` more attempts.
import type { FastifyBaseLogger } from 'fastify';
import type { ServeConfig } from './config.js';
import { runLinks } from './links.js';
import type { RunRow, RunStore } from './store.js';

const MAX_BACKOFF_MS = 5 * 60_000;

export function notificationBody(row: RunRow, publicUrl: string) {
  return {
    run: row.id,
    status: row.status,
    runbook: row.runbook,
    target: row.target,
    alert: { fingerprint: row.fingerprint, source: row.source, labels: row.labels, startsAt: row.startsAt },
    conclusion: row.conclusion,
    reason: row.reason,
    links: runLinks(publicUrl, row),
  };
}

export class Notifier {
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: RunStore,
    private readonly config: ServeConfig,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Sends what is due now, then sleeps until the next retry is due. */
  kick(): void {
    if (!this.config.notify || this.stopped) return;
    if (this.sending) {
      void this.sending.then(() => this.kick());
      return;
    }
    clearTimeout(this.timer);
    this.sending = this.sendDue().finally(() => {
      this.sending = undefined;
      this.schedule();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.sending;
  }

  private schedule(): void {
    const next = this.store.nextNotificationAt();
    if (next === undefined || this.stopped) return;
    this.timer = setTimeout(() => this.kick(), Math.max(0, next - Date.now()));
    this.timer.unref();
  }

  private async sendDue(): Promise<void> {
    const notify = this.config.notify!;
    for (const row of this.store.dueNotifications(Date.now())) {
      if (this.stopped) return;
      const attempt = row.notifyAttempts + 1;
      const error = await this.post(notify, row);
      if (error === undefined) {
        this.store.setNotify(row.id, 'sent', attempt, null, null);
        this.log.info({ run: row.id, attempt }, 'notification sent');
      } else if (attempt > notify.retries) {
        this.store.setNotify(row.id, 'failed', attempt, error, null);
        this.log.warn({ run: row.id, attempt, error }, 'notification given up');
      } else {
        const backoff = Math.min(1000 * 2 ** (attempt - 1), MAX_BACKOFF_MS);
        this.store.setNotify(row.id, 'pending', attempt, error, Date.now() + backoff);
        this.log.warn({ run: row.id, attempt, error, retryInMs: backoff }, 'notification failed; will retry');
      }
    }
  }

  /** undefined when the receiver took it (2xx), else why not. */
  private async post(notify: NonNullable<ServeConfig['notify']>, row: RunRow): Promise<string | undefined> {
    try {
      const res = await fetch(notify.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...notify.headers },
        body: JSON.stringify(notificationBody(row, this.config.publicUrl)),
        signal: AbortSignal.timeout(notify.timeoutMs),
      });
      await res.arrayBuffer();
      return res.ok ? undefined : `HTTP ${res.status}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return cause ?? (err as Error).message;
    }
  }
}
