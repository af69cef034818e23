// ebpfnet doctor: what this host can do, as a table or JSON.
import type { Command } from 'commander';
import { EXIT } from '../../../exit-codes.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check root, BTF, tracepoints, kprobes, fentry, uprobes, ring buffers and the tools probes use')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }) => {
      const { formatDoctorTable, runDoctor } = await import('../../../host/doctor.js');
      const report = await runDoctor();
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorTable(report));
      if (!report.ok) process.exitCode = EXIT.environment;
    });
}
