// ebpfnet vms [name]: the VMs on this host (libvirt, QEMU processes, inventory),
// or one VM's facts as `--vm NAME` resolves them. The work lives in action.ts,
// loaded only when this command runs.
import type { Command } from 'commander';
import type { VmsFlags } from './action.js';

export function registerVms(program: Command): void {
  program
    .command('vms')
    .description('list the VMs on this host (libvirt, QEMU processes, inventory) with their taps and bridges')
    .argument('[name]', "show one VM's facts, as `diagnose --vm NAME` finds them")
    .option('--inventory <file>', 'inventory of VMs (default $EBPFNET_INVENTORY, else /etc/ebpfnet/inventory.yaml when present)')
    .option('--json', 'print JSON')
    .option('--listen <duration>', "also learn addresses from the VMs' own frames for this long (as root; 0: do not)", '1s')
    .action(async (name: string | undefined, flags: VmsFlags) => {
      const { vmsAction } = await import('./action.js');
      await vmsAction(name, flags);
    });
}
