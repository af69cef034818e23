// ebpfnet serve: receive alert webhooks and diagnose what they are about.
// The work lives in action.ts, loaded only when this command runs.
import type { Command } from 'commander';
import type { ServeFlags } from './action.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('receive Alertmanager and Grafana webhooks and run the runbook each alert is routed to, one run at a time')
    .requiredOption('--config <file>', 'routing and server configuration (YAML; see engine/serve/README.md)')
    .option('--listen <host:port>', 'address to listen on, overriding the file (default 127.0.0.1:9465: loopback only)')
    .option('--log-level <level>', 'fatal, error, warn, info or debug (JSON lines on stdout)', 'info')
    .option('--check', 'check the configuration and exit')
    .action(async (flags: ServeFlags) => {
      const { serveAction } = await import('./action.js');
      await serveAction(flags);
    });
}
