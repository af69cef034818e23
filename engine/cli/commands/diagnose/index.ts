// ebpfnet diagnose <runbook>: run a runbook and write a bundle.
// The work lives in action.ts, loaded only when this command runs.
import type { Command } from 'commander';
import { REPORT_FORMATS } from '../../../../reports/formats.js';
import { collect } from '../../options.js';
import type { DiagnoseFlags } from './action.js';

export function registerDiagnose(program: Command): void {
  program
    .command('diagnose')
    .description('run a runbook against this host (or a VM on it) and write a run bundle')
    .argument('[runbook]', 'runbook id (`ebpfnet runbooks list`) or path to a runbook YAML')
    .option('--vm <name>', 'the VM to diagnose (sets the runbook input "vm"; found through libvirt, QEMU processes or --inventory)')
    .option('--inventory <file>', 'YAML inventory of VMs for hosts without libvirt (default $EBPFNET_INVENTORY or /etc/ebpfnet/inventory.yaml)')
    .option('--input <name=value>', 'set a runbook input (repeatable; lists are comma-separated)', collect, [])
    .option('--out <dir>', 'folder for run bundles', process.env.EBPFNET_RUNS ?? 'runs')
    .option('--format <list>', `reports to write into the bundle at the end (also of an interrupted run): ${REPORT_FORMATS.join(',')}`)
    .option('--json', 'print one JSON document (conclusion and bundle path) instead of text')
    .option('--replay <bundle>', 'answer every probe from a recorded bundle instead of the host')
    .option('--resume <bundle>', 'continue an interrupted run')
    .option('--budget <limits>', 'overhead budget of every BPF probe, overriding theirs: cpu=5%,events=200k')
    .action(async (runbookArg: string | undefined, flags: DiagnoseFlags) => {
      const { diagnoseAction } = await import('./action.js');
      await diagnoseAction(runbookArg, flags);
    });
}
