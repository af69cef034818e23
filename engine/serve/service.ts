// Puts the server together: the data folder (one server per folder), the store, the run
// worker, the notifier and the HTTP listener; and takes them apart in order on SIGINT/SIGTERM
// (stop accepting, interrupt the run going so it resumes at the next start, close the store).
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, EXIT } from '../exit-codes.js';
import { makeDirs } from '../fs.js';
import { processArgs } from '../host/process.js';
import type { ProbeCatalog } from '../probe/types.js';
import type { ServeConfig } from './config.js';
import { Notifier } from './notifier.js';
import { startRetention } from './retention.js';
import { buildServer } from './server.js';
import { RunStore } from './store.js';
import { RunWorker } from './worker.js';

export interface Service {
  /** The address actually bound (port 0 picks one). */
  url: string;
  /** Settles once the service has shut down. */
  closed: Promise<void>;
  stop(): Promise<void>;
}

const PID_FILE = 'serve.pid';

function otherServer(dataDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, PID_FILE), 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid === process.pid) return undefined;
  return processArgs(pid)?.includes('serve') ? pid : undefined;
}

function openStore(file: string): RunStore {
  try {
    return new RunStore(file);
  } catch (err) {
    throw new CliError(`cannot open the run database ${file}: ${(err as Error).message.split('\n')[0]}`, EXIT.environment);
  }
}

export async function startService(config: ServeConfig, opts: { logLevel: string; catalog: ProbeCatalog }): Promise<Service> {
  try {
    makeDirs(join(config.dataDir, 'runs'));
    // Bundles hold host and VM facts: readable by root only.
    chmodSync(config.dataDir, 0o700);
  } catch (err) {
    throw new CliError(`cannot use data_dir ${config.dataDir}: ${(err as Error).message}`, EXIT.environment);
  }
  const other = otherServer(config.dataDir);
  if (other !== undefined) {
    throw new CliError(`another ebpfnet serve (pid ${other}) uses ${config.dataDir}: stop it, or give this one another data_dir`, EXIT.environment);
  }
  writeFileSync(join(config.dataDir, PID_FILE), `${process.pid}\n`);
  const store = openStore(join(config.dataDir, 'serve.sqlite'));

  let worker: RunWorker | undefined;
  const app = buildServer({
    config,
    catalog: opts.catalog,
    store,
    wake: () => worker?.wake(),
    currentRun: () => worker?.currentRun(),
    logger: { level: opts.logLevel },
  });
  const notifier = new Notifier(store, config, app.log);
  worker = new RunWorker(store, config, app.log, { onFinished: () => notifier.kick() });

  let stopRetention = () => {};
  let closing: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const stop = () => {
    closing ??= (async () => {
      app.log.info('shutting down');
      await app.close();
      stopRetention();
      await worker!.stop();
      await notifier.stop();
      store.close();
      rmSync(join(config.dataDir, PID_FILE), { force: true });
      resolveClosed();
    })();
    return closing;
  };
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    // A second signal means now: the run going keeps its bundle and is resumed next time.
    if (++signals > 1) process.exit(sig === 'SIGTERM' ? EXIT.sigterm : EXIT.sigint);
    void stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  void closed.then(() => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });

  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (err) {
    await stop();
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`cannot listen on ${config.listen.display}: ${code === 'EADDRINUSE' ? 'the address is in use' : (err as Error).message}`, EXIT.environment);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.listen.port;
  const host = config.listen.display.replace(/:\d+$/, '');
  const url = `http://${host}:${port}`;
  if (!config.publicUrl) config.publicUrl = url;
  if (!config.listen.loopback) {
    app.log.warn({ listen: config.listen.display }, 'listening beyond loopback without TLS: put a TLS proxy in front, or tokens travel in clear');
  }
  stopRetention = startRetention(store, config, app.log);
  worker.start();
  notifier.kick();
  app.log.info({ url, routes: config.routes.map((r) => r.name), dataDir: config.dataDir }, 'ebpfnet serve ready');
  // Whatever the log level, one line says where it listens (what an operator and a test wait for).
  process.stderr.write(`ebpfnet serve: listening on ${url} (${config.routes.length} route${config.routes.length === 1 ? '' : 's'}; data in ${config.dataDir})\n`);
  return { url, closed, stop };
}
