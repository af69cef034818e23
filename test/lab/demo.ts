// The demo: the built-in lab (a real QEMU VM under TCG on an Open vSwitch bridge on the
// userspace datapath, a peer namespace sending it UDP), one fault injected (an OpenFlow
// rule that drops the VM's UDP), and `ebpfnet diagnose vm-loss --vm <vm>` through the
// real CLI, ending in HTML and PDF reports. Needs root.
//   npm run demo
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../engine/package-info.js';
import { CLI } from '../helpers/cli.js';
import { backgroundUdp } from './scenario.js';
import { buildLabTopology } from './topology.js';
import { canBootVms } from './vm.js';

function runCliInherit(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

const cannot = await canBootVms();
if (cannot) {
  console.error(`demo: cannot boot the lab VM: ${cannot}`);
  process.exit(3);
}

console.log('lab: booting a VM on an Open vSwitch bridge (netdev datapath)...');
const lab = await buildLabTopology(undefined, { bridge: 'ovs' });
const scratch = mkdtempSync(join(tmpdir(), 'ebpfnet-demo-'));
const traffic = backgroundUdp(lab, lab.vm.ip, { port: 9, intervalMs: 2 });
const cleanup = async () => {
  await traffic.stop();
  await lab.teardown();
  rmSync(scratch, { recursive: true, force: true });
};
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
process.once('SIGTERM', () => void cleanup().then(() => process.exit(143)));
let code = 1;
try {
  console.log(`lab: VM ${lab.vm.name} (${lab.vm.ip}) on tap ${lab.vm.tap}, bridge ${lab.bridge.name}; peer ${lab.peer.ip} in netns ${lab.peer.ns}`);
  console.log(`fault: OpenFlow rule "priority=200,udp,tp_dst=9,actions=drop" on ${lab.bridge.name}; the peer sends UDP to ${lab.vm.ip}:9\n`);
  await lab.ovs!.addFlow('priority=200,udp,tp_dst=9,actions=drop');
  // The VM's address, as an inventory (a CMDB) would give it: the host only bridges the VM.
  const inventory = join(scratch, 'inventory.yaml');
  writeFileSync(inventory, `vms:\n  ${lab.vm.name}:\n    ips: [${lab.vm.ip}]\n`);
  const out = join(packageRoot(), 'runs');
  code = await runCliInherit([
    'diagnose', 'vm-loss',
    '--vm', lab.vm.name,
    '--inventory', inventory,
    '--input', 'duration=3s',
    '--format', 'html,pdf,md,json',
    '--out', out,
  ]);
  const bundle = newestBundle(out);
  console.log(`\n--- ${join(bundle, 'summary.md')} ---\n`);
  console.log(readFileSync(join(bundle, 'summary.md'), 'utf8'));
  const reports = readdirSync(bundle).filter((f) => /\.(html|pdf)$/.test(f));
  console.log(`reports: ${reports.map((f) => join(bundle, f)).join('\n         ')}`);
} finally {
  await cleanup();
}
process.exit(code);

/** Bundle names start with a timestamp: the last in order is this run's. */
function newestBundle(out: string): string {
  const dirs = readdirSync(out).filter((d) => d.includes('-vm-loss-')).sort();
  return join(out, dirs[dirs.length - 1]!);
}
