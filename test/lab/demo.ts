// The demo: builds a veth pair into a namespace (the host side stands in for a VM's
// tap), makes a shaping qdisc on it drop packets while traffic flows, and diagnoses
// the host with the host-drops runbook through the real CLI. Needs root.
//   npm run demo
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../engine/package-info.js';
import { CLI } from '../helpers/cli.js';
import { canBuildTopologies } from '../helpers/netns.js';
import { buildFaultLab } from './host-faults.js';

function runCliInherit(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

const cannot = await canBuildTopologies();
if (cannot) {
  console.error(`demo: cannot build the lab: ${cannot}`);
  process.exit(3);
}

const lab = await buildFaultLab(undefined, 'qdisc');
const cleanup = () => void lab.teardown();
process.once('SIGINT', cleanup);
process.once('SIGTERM', cleanup);
let code = 1;
try {
  console.log(`lab: ${lab.pair.hostDev} (host side) <-> ${lab.pair.peerDev} in netns ${lab.pair.ns}; fault: tbf qdisc at 8 kbit/s on ${lab.pair.hostDev}`);
  const traffic = lab.traffic(8);
  const out = join(packageRoot(), 'runs');
  code = await runCliInherit([
    'diagnose', 'host-drops',
    '--input', `devices=${lab.pair.hostDev}`,
    '--input', 'duration=3s',
    '--format', 'md,json',
    '--out', out,
  ]);
  await traffic;
  const bundle = newestBundle(out);
  console.log(`\n--- ${join(bundle, 'summary.md')} ---\n`);
  console.log(readFileSync(join(bundle, 'summary.md'), 'utf8'));
} finally {
  await lab.teardown();
}
process.exit(code);

/** Bundle names start with a timestamp: the last in order is this run's. */
function newestBundle(out: string): string {
  const dirs = readdirSync(out).filter((d) => d.includes('-host-drops-')).sort();
  return join(out, dirs[dirs.length - 1]!);
}
