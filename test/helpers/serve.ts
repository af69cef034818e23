// `ebpfnet serve` as a real process on a loopback port the kernel picks, with a real HTTP
// client (fetch) to talk to it. The data folder outlives a server, so a test can stop or
// kill one and start the next on the same folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from '#yaml';
import { Cleanup } from './cleanup.js';
import { CLI } from './cli.js';
import type { TeardownHost } from './netns.js';

export const TOKEN = 'serve-test-token-0123456789';
export const AUTH = { authorization: `Bearer ${TOKEN}` };

export interface ServeHome {
  dir: string;
  dataDir: string;
  configFile: string;
  /** Rewrites the configuration (a server reads it when it starts). */
  configure(config: Record<string, unknown>): void;
  /** Extra arguments go after the defaults, so `--log-level warn` wins. */
  start(args?: string[]): Promise<ServeProcess>;
}

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Everything the server logged (JSON lines), for failure messages. */
  log(): string;
  /** Sends a signal and waits for the process to exit; resolves to its exit code or signal. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

/** A base configuration: token auth, the data folder of this home, no cool-down surprises. */
export function baseConfig(dataDir: string, extra: Record<string, unknown>): Record<string, unknown> {
  return { listen: '127.0.0.1:0', data_dir: dataDir, auth: { token: TOKEN }, ...extra };
}

/**
 * A home for one test, configured as baseConfig with `extra`; its teardown (returned, for more
 * steps) runs in reverse order of setup once the test ends, so servers stop before what they use goes.
 */
export function testHome(t: TeardownHost, extra: Record<string, unknown>): { home: ServeHome; cleanup: Cleanup } {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const home = serveHome(cleanup);
  home.configure(baseConfig(home.dataDir, extra));
  return { home, cleanup };
}

export function serveHome(t: TeardownHost, prefix = 'ebpfnet-serve-'): ServeHome {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const dataDir = join(dir, 'data');
  const configFile = join(dir, 'serve.yaml');
  const running = new Set<ServeProcess>();
  t.after(async () => {
    for (const p of running) await p.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    dataDir,
    configFile,
    configure(config) {
      writeFileSync(configFile, stringify(config));
    },
    async start(args = []) {
      const p = await startServe(configFile, args);
      running.add(p);
      return p;
    },
  };
}

export function startServe(configFile: string, args: string[] = []): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile, '--log-level', 'info', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | string | null>((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  const proc = (url: string): ServeProcess => ({
    url,
    child,
    log: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not become ready in 120 s:\n${out}`));
    }, 120_000); // a hang guard: Node starts in seconds under the kernel lab's emulated CPU
    let ready = false;
    const onData = (d: Buffer) => {
      // Bounded, and scanned only until ready: a load test makes megabytes of request logs.
      out = (out + d.toString()).slice(-1_000_000);
      const m = ready ? null : /ebpfnet serve: listening on (http:\/\/\S+) /.exec(out);
      if (m) {
        ready = true;
        clearTimeout(timer);
        resolve(proc(m[1]!));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before it was ready:\n${out}`));
    });
  });
}

/** An Alertmanager (webhook version 4) payload for these alerts. */
export function alertmanagerPayload(alerts: Array<{ labels: Record<string, string>; fingerprint?: string; status?: 'firing' | 'resolved' }>) {
  return {
    version: '4',
    groupKey: '{}:{alertname="test"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'ebpfnet',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager.invalid',
    alerts: alerts.map((a) => ({
      status: a.status ?? 'firing',
      labels: a.labels,
      annotations: { summary: 'test alert' },
      startsAt: new Date().toISOString(),
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus.invalid/graph',
      ...(a.fingerprint ? { fingerprint: a.fingerprint } : {}),
    })),
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

export async function post(url: string, body: unknown, headers: Record<string, string> = AUTH): Promise<Answer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

export async function get(url: string, headers: Record<string, string> = AUTH): Promise<Answer> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

/** Polls GET /runs/:id until `done` holds for it; fails with the last view and the server's log. */
export async function waitForRun(server: ServeProcess, id: string, done: (run: any) => boolean, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < deadline) {
    last = (await get(`${server.url}/runs/${id}`)).body;
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${id} did not get there in ${timeoutMs} ms; last: ${JSON.stringify(last)}\n${server.log().slice(-3000)}`);
}

export const ended = (run: any) => ['completed', 'failed', 'rejected'].includes(run.status);
