// Runs queued diagnoses one at a time (probes on one host contend for its CPUs and its BPF
// budget). Each run is `ebpfnet diagnose` in a child process: the exact path the CLI takes,
// argument arrays and no shell, and a crash in a probe cannot take the server down. Each run
// writes its bundle under <data_dir>/runs/<run id>/, so a server that restarts finds it: a
// run still going is waited for, an interrupted one is resumed from its bundle, one that
// never started a bundle is queued again.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { formatMs } from '../duration.js';
import { makeDirs } from '../fs.js';
import { packageRoot } from '../package-info.js';
import { RUN_FILE, RunBundle, SNAPSHOT_FILE } from '../run/bundle.js';
import type { RunRecord } from '../run/record.js';
import type { ServeConfig } from './config.js';
import type { ConclusionSummary, RunEnd, RunRow, RunStore } from './store.js';
import { isAlive, processArgs } from '../host/process.js';

const CLI = join(packageRoot(), 'dist', 'engine', 'cli', 'main.js');
/** A run taken up this many times (server restarts while it ran) is given up. */
const MAX_ATTEMPTS = 3;

interface DiagnoseJson {
  status: 'completed' | 'failed' | 'interrupted';
  bundle: string;
  conclusion?: ConclusionSummary | null;
  errors?: string[];
}

export function runOutDir(dataDir: string, id: string): string {
  return join(dataDir, 'runs', id);
}

/** The bundle a run wrote under its folder (the newest, should a re-queued run have made two). */
export function findBundle(outDir: string): string | undefined {
  if (!existsSync(outDir)) return undefined;
  const dirs = readdirSync(outDir)
    .filter((d) => existsSync(join(outDir, d, RUN_FILE)))
    .sort();
  return dirs.length ? join(outDir, dirs[dirs.length - 1]!) : undefined;
}

function readRecord(bundle: string): RunRecord | undefined {
  try {
    return RunBundle.open(bundle).readRecord();
  } catch {
    return undefined;
  }
}

function summary(c: ConclusionSummary | null | undefined): ConclusionSummary | null {
  return c ? { id: c.id, title: c.title, category: c.category, confidence: c.confidence, summary: c.summary, caveats: c.caveats ?? [] } : null;
}


/** Whether `pid` is still the diagnose child of this run (pids are reused). */
function isRunChild(pid: number, outDir: string): boolean {
  return processArgs(pid)?.includes(outDir) ?? false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WorkerEvents {
  /** A run ended (completed, failed or given up): its notification may be sent. */
  onFinished(id: string): void;
}

export class RunWorker {
  private wakeUp: (() => void) | undefined;
  private stopping = false;
  private current: { id: string; child: ReturnType<typeof spawn> } | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly store: RunStore,
    private readonly config: ServeConfig,
    private readonly log: FastifyBaseLogger,
    private readonly events: WorkerEvents,
  ) {}

  start(): void {
    this.loop = this.run().catch((err: unknown) => this.log.error({ err }, 'the run worker stopped'));
  }

  /** A new run was queued. */
  wake(): void {
    this.wakeUp?.();
  }

  /** The run now going, if any. */
  currentRun(): string | undefined {
    return this.current?.id;
  }

  /** Stops taking runs; a run going is interrupted (its bundle kept) and resumes at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.current?.child.kill('SIGTERM');
    this.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    await this.recover();
    while (!this.stopping) {
      const row = this.store.claimNext(Date.now());
      if (!row) {
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        this.wakeUp = undefined;
        continue;
      }
      await this.execute(row, this.diagnoseArgs(row));
    }
  }

  /** What a previous server left: each is settled, one at a time, before new runs start. */
  private async recover(): Promise<void> {
    for (const row of this.store.unfinished()) {
      if (this.stopping) return;
      const outDir = runOutDir(this.config.dataDir, row.id);
      if (row.status === 'running' && row.pid !== null && isAlive(row.pid) && isRunChild(row.pid, outDir)) {
        this.log.info({ run: row.id, child: row.pid }, 'waiting for a run the previous server left going');
        while (isAlive(row.pid) && !this.stopping) await sleep(200);
      }
      const bundle = row.bundle ?? findBundle(outDir);
      const record = bundle ? readRecord(bundle) : undefined;
      if (bundle && record && record.status !== 'running' && record.status !== 'interrupted') {
        this.settle(row.id, { status: record.status === 'completed' ? 'completed' : 'failed', bundle, conclusion: summary(record.conclusion), reason: record.errors[0] ?? null });
      } else if (row.attempts >= MAX_ATTEMPTS) {
        this.settle(row.id, { status: 'failed', bundle: bundle ?? null, reason: `given up after ${row.attempts} attempts (the server stopped during each)` });
      } else if (bundle && existsSync(join(bundle, SNAPSHOT_FILE))) {
        this.log.info({ run: row.id, bundle }, 'resuming an interrupted run');
        this.store.claim(row.id, Date.now());
        await this.execute(this.store.get(row.id)!, ['diagnose', '--resume', bundle, '--json', ...this.formatArgs()]);
      } else {
        this.store.requeue(row.id, 'the server stopped before the run began; queued again');
      }
    }
  }

  private formatArgs(): string[] {
    return this.config.formats.length ? ['--format', this.config.formats.join(',')] : [];
  }

  /** Inputs become arguments one by one: nothing of an alert goes through a shell. */
  private diagnoseArgs(row: RunRow): string[] {
    const route = this.config.routes.find((r) => r.name === row.route);
    const runbook = route?.runbook.file ?? row.runbook!;
    const args = ['diagnose', runbook, '--json', '--out', runOutDir(this.config.dataDir, row.id), ...this.formatArgs()];
    for (const [name, value] of Object.entries(row.inputs)) {
      const text = Array.isArray(value) ? value.join(',') : String(value);
      args.push(...(name === 'vm' ? ['--vm', text] : ['--input', `${name}=${text}`]));
    }
    if (this.config.inventory) args.push('--inventory', this.config.inventory);
    return args;
  }

  private async execute(row: RunRow, args: string[]): Promise<void> {
    const outDir = runOutDir(this.config.dataDir, row.id);
    makeDirs(outDir);
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.current = { id: row.id, child };
    if (child.pid !== undefined) this.store.setPid(row.id, child.pid);
    this.log.info({ run: row.id, runbook: row.runbook, target: row.target, child: child.pid }, 'run started');
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8192)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
    }, this.config.runTimeoutMs);
    const code = await new Promise<number | null>((resolve) => {
      child.on('error', (err) => {
        stderr += err.message;
        resolve(null);
      });
      child.on('close', (c) => resolve(c));
    });
    clearTimeout(timer);
    this.current = undefined;
    let result: DiagnoseJson | undefined;
    try {
      result = JSON.parse(stdout) as DiagnoseJson;
    } catch {
      result = undefined;
    }
    const bundle = result?.bundle ?? findBundle(outDir) ?? null;
    const lastError = stderr.trim().split('\n').filter(Boolean).pop()?.replace(/^ebpfnet: /, '');
    let end: RunEnd;
    if (result?.status === 'completed') {
      end = { status: 'completed', bundle, conclusion: summary(result.conclusion) };
    } else if (timedOut) {
      // Stopped by the timeout: before its run began (a slow start, no bundle) or during it.
      const after = `stopped after the run timeout (${formatMs(this.config.runTimeoutMs)})`;
      end = { status: 'failed', bundle, reason: bundle ? `${after}; the bundle keeps what it found` : `${after}, before its run began: nothing was gathered` };
    } else if (result?.status === 'interrupted' && this.stopping) {
      end = { status: 'interrupted', bundle, reason: 'the server stopped during the run; it resumes at the next start' };
    } else {
      end = { status: 'failed', bundle, reason: result?.errors?.[0] ?? lastError ?? `diagnose exited with code ${code}` };
    }
    this.settle(row.id, end);
  }

  private settle(id: string, end: RunEnd): void {
    this.store.finish(id, end, Date.now(), this.config.notify !== undefined);
    this.log.info({ run: id, status: end.status, conclusion: end.conclusion?.id, reason: end.reason }, 'run ended');
    if (end.status !== 'interrupted') this.events.onFinished(id);
  }
}
