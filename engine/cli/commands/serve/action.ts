// ebpfnet serve: checks the configuration, then runs the server until SIGINT/SIGTERM.
import { probeRegistry } from '../../../../probes/index.js';
import { loadServeConfig } from '../../../serve/config.js';
import { startService } from '../../../serve/service.js';
import { CliError, EXIT } from '../../../exit-codes.js';

export interface ServeFlags {
  config: string;
  listen?: string;
  logLevel: string;
  check?: boolean;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export async function serveAction(flags: ServeFlags): Promise<void> {
  if (!LEVELS.includes(flags.logLevel)) throw new CliError(`--log-level ${flags.logLevel}: expected one of ${LEVELS.join(', ')}`);
  // A ServeConfigError lists every problem at its file:line:column (main.ts prints them).
  const catalog = probeRegistry();
  const config = loadServeConfig(flags.config, { catalog, ...(flags.listen ? { listen: flags.listen } : {}) });
  if (flags.check) {
    process.stdout.write(`${flags.config}: ok (${config.routes.length} route${config.routes.length === 1 ? '' : 's'}: ${config.routes.map((r) => `${r.name} → ${r.runbook.id}`).join(', ')})\n`);
    return;
  }
  if (process.getuid?.() !== 0) {
    throw new CliError('ebpfnet serve must run as root: the runs it starts load BPF programs', EXIT.environment);
  }
  const service = await startService(config, { logLevel: flags.logLevel, catalog });
  await service.closed;
}
