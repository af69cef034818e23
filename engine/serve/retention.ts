// Keeps the data folder from growing without end on a hypervisor: ended runs (their rows and
// bundles) are deleted `retention` after they ended, checked at start and then periodically.
import { rmSync } from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import type { ServeConfig } from './config.js';
import type { RunStore } from './store.js';
import { runOutDir } from './worker.js';

export function startRetention(store: RunStore, config: ServeConfig, log: FastifyBaseLogger): () => void {
  const sweep = () => {
    const ids = store.expired(Date.now() - config.retentionMs);
    for (const id of ids) {
      rmSync(runOutDir(config.dataDir, id), { recursive: true, force: true });
      store.delete(id);
    }
    if (ids.length) log.info({ deleted: ids.length }, 'removed runs past retention');
  };
  sweep();
  // Often enough that a short retention holds to within half of itself; at least hourly.
  const timer = setInterval(sweep, Math.min(Math.max(config.retentionMs / 2, 500), 3_600_000));
  timer.unref();
  return () => clearInterval(timer);
}
