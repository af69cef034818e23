// ebpfnet probe run <id>: run one probe alone and print its finding.
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../../fs.js';
import { RunBundle } from '../../../run/bundle.js';
import { resolveParams } from '../../../probe/params.js';
import type { CommonOption, Finding, TableSpec } from '../../../probe/types.js';
import { CliError, EXIT } from '../../../exit-codes.js';
import { budgetFlag, collect, parseAssignments } from '../../options.js';
import { abortOnSignals } from '../../signals.js';
import { findProbe } from '../probes/index.js';

/** The seed tools' common options, as commander flags, keyed by the param role they feed. */
const COMMON: Array<{ role: CommonOption; flags: string; description: string }> = [
  { role: 'interval', flags: '-i, --interval <duration>', description: 'sampling interval (1s, 500ms; a bare number is seconds)' },
  { role: 'duration', flags: '-d, --duration <duration>', description: 'how long to observe (10s, 2m; a bare number is seconds)' },
  { role: 'count', flags: '-c, --count <n>', description: 'stop after this many events or samples' },
  { role: 'src-ip', flags: '--src-ip <ip>', description: 'only packets from this address' },
  { role: 'dst-ip', flags: '--dst-ip <ip>', description: 'only packets to this address' },
  { role: 'pid', flags: '-p, --pid <pid>', description: 'only this process' },
  { role: 'dev', flags: '--dev <devices>', description: 'only these devices (comma-separated)' },
  { role: 'verbose', flags: '-v, --verbose', description: 'more detail' },
];

const flagKey = (role: CommonOption) => role.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function registerProbe(program: Command): void {
  const probe = program.command('probe').description('run a single probe');
  const run = probe
    .command('run')
    .description('run one probe on this host and print what it found (evidence is kept under --out)')
    .argument('<id>', 'probe id (`ebpfnet probes list`)')
    .option('--param <name=value>', 'set any probe param (repeatable)', collect, [])
    .option('--out <dir>', 'folder for the evidence bundle', process.env.EBPFNET_RUNS ?? 'runs')
    .option('--json', 'print the finding as JSON')
    .option('--budget <limits>', "overhead budget, overriding the probe's: cpu=5%,events=200k");
  for (const c of COMMON) run.option(c.flags, c.description);
  run.action(async (id: string, flags: Record<string, unknown> & { param: string[]; out: string; json?: boolean; budget?: string }) => {
    const def = await findProbe(id);
    const budget = budgetFlag(flags.budget);
    const params: Record<string, unknown> = parseAssignments(flags.param, '--param');
    for (const c of COMMON) {
      const value = flags[flagKey(c.role)];
      if (value === undefined) continue;
      const target = Object.entries(def.params).find(([, spec]) => spec.cliOption === c.role);
      // The seed tools took -d 5 and -i 1 in seconds; so do we.
      const seconds = (c.role === 'duration' || c.role === 'interval') && typeof value === 'string' && /^\d+(\.\d+)?$/.test(value);
      if (target) params[target[0]] = seconds ? `${value}s` : value;
      else if (c.role !== 'verbose') throw new CliError(`probe ${id} has no --${c.role} option (its params: ${Object.keys(def.params).join(', ')})`);
    }
    resolveParams(def, params); // a bad value is a usage error (exit 2), before any evidence folder exists
    const [{ runProbe }, { defaultAlias }] = await Promise.all([import('../../../probe/runtime.js'), import('../../../runbook/raw.js')]);
    // Signals first: a Ctrl-C from here on leaves a bundle that says it was interrupted.
    const signals = abortOnSignals();
    const bundle = RunBundle.create(flags.out, `probe-${id}`, hostname());
    const alias = defaultAlias(id);
    let finding: Finding;
    try {
      finding = await runProbe(def, { step: 'probe', alias, probe: id, params: params as never }, {
        rawDir: bundle.evidenceDir('probe', 1, alias),
        bundleRoot: bundle.dir,
        signal: signals.signal,
        ...(budget ? { budget } : {}),
      });
    } finally {
      signals.dispose();
    }
    writeFileAtomic(bundle.resolve('finding.json'), `${JSON.stringify(finding, null, 2)}\n`);
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...finding, bundle: bundle.dir }, null, 2)}\n`);
    else process.stdout.write(describeFinding(finding, bundle.dir, flags.verbose === true));
    process.exitCode = exitCodeFor(finding, signals.received());
  });
}

function exitCodeFor(finding: Finding, signal: NodeJS.Signals | undefined): number {
  switch (finding.status) {
    case 'ok':
      return EXIT.ok;
    case 'skipped':
      return EXIT.environment;
    case 'interrupted':
      return signal === 'SIGTERM' ? EXIT.sigterm : EXIT.sigint;
    default:
      return EXIT.failure;
  }
}

export function formatTable(table: TableSpec): string {
  const cells = [table.columns, ...table.rows.map((r) => r.map(String))];
  const widths = table.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [table.title, line(table.columns), ...cells.slice(1).map(line)].join('\n');
}

function describeFinding(f: Finding, dir: string, verbose: boolean): string {
  const out = [`${f.probe}: ${f.status} (${f.severity}) — ${f.summary}`];
  if (f.reason && f.status !== 'ok') out.push(`reason: ${f.reason}`);
  const tables = verbose ? f.tables : f.tables.slice(0, 1);
  for (const t of tables) out.push('', formatTable(t));
  out.push('', `evidence: ${dir}`);
  return `${out.join('\n')}\n`;
}
