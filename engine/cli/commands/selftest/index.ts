// ebpfnet selftest: inject known drops in a private namespace and check drops.kernel counts them.
import type { Command } from 'commander';
import { CliError, EXIT } from '../../../exit-codes.js';

export function registerSelftest(program: Command): void {
  program
    .command('selftest')
    .description('inject known drops in a private namespace and check that drops.kernel counts exactly those')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }) => {
      const { runSelftest, formatSelftest, SelftestUnavailable } = await import('../../../selftest/selftest.js');
      const { saveSelftest } = await import('../../../host/selftest-state.js');
      const { probeRegistry } = await import('../../../../probes/index.js');
      // Ctrl-C / SIGTERM stop the run; the topology is torn down before the process exits.
      const stop = new AbortController();
      let signalled: NodeJS.Signals | undefined;
      const onSignal = (sig: NodeJS.Signals) => {
        signalled = sig;
        stop.abort(new Error(`received ${sig}`));
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        let result;
        try {
          result = await runSelftest({ catalog: probeRegistry(), signal: stop.signal });
        } catch (err) {
          if (err instanceof SelftestUnavailable) throw new CliError(err.message, EXIT.environment);
          throw err;
        }
        if (signalled) {
          process.stderr.write(`ebpfnet: selftest interrupted by ${signalled}; topology removed\n`);
          process.exitCode = signalled === 'SIGINT' ? EXIT.sigint : EXIT.sigterm;
          return;
        }
        try {
          await saveSelftest(result);
        } catch (err) {
          process.stderr.write(`ebpfnet: could not store the selftest result: ${err instanceof Error ? err.message : String(err)}\n`);
        }
        process.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : formatSelftest(result));
        process.exitCode = result.status === 'ok' ? EXIT.ok : result.status === 'mismatch' ? EXIT.failure : EXIT.environment;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
