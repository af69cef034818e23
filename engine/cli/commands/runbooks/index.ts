// ebpfnet runbooks list|show|validate|graph
import type { Command } from 'commander';
import { RunbookError } from '../../../runbook/errors.js';
import { formatProblem } from '../../../yaml/problems.js';
import { CliError, EXIT } from '../../../exit-codes.js';
import { jsonSubcommand } from '../../options.js';

/** The loader, catalog and runbook finder: loaded when a subcommand runs, not at startup. */
async function engine() {
  const [{ probeRegistry }, { loadRunbookFile }, source, graph] = await Promise.all([
    import('../../../../probes/index.js'),
    import('../../../runbook/load.js'),
    import('../../../runbook/catalog.js'),
    import('../../../runbook/graph.js'),
  ]);
  return { catalog: probeRegistry(), loadRunbookFile, ...source, ...graph };
}

export function registerRunbooks(program: Command): void {
  const runbooks = program.command('runbooks').description('list, show, validate and draw runbooks');

  jsonSubcommand(runbooks, 'list', 'the runbooks ebpfnet knows (shipped and $EBPFNET_RUNBOOKS)').action(async (flags: { json?: boolean }) => {
    const { catalog, loadRunbookFile, runbookFiles } = await engine();
    const rows = runbookFiles().map((file) => {
      try {
        const rb = loadRunbookFile(file, catalog);
        return { id: rb.id, title: rb.title, file, steps: rb.steps.length, conclusions: rb.conclusions.length, valid: true };
      } catch (err) {
        const message = err instanceof RunbookError ? `${err.problems.length} problem(s)` : (err as Error).message;
        return { id: file.split('/').pop()!.replace(/\.ya?ml$/, ''), title: `INVALID: ${message}`, file, steps: 0, conclusions: 0, valid: false };
      }
    });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    const width = Math.max(2, ...rows.map((r) => r.id.length));
    for (const r of rows) process.stdout.write(`${r.id.padEnd(width)}  ${r.title}\n`);
  });

  runbooks
    .command('show')
    .description("a runbook's description, inputs, steps and conclusions")
    .argument('<runbook>', 'id or path')
    .action(async (arg: string) => {
      const { catalog, openRunbook } = await engine();
      const rb = openRunbook(arg, catalog);
      const out: string[] = [`${rb.id}: ${rb.title}`, `file: ${rb.file}`, '', rb.description.trim(), '', 'Inputs:'];
      for (const [name, spec] of Object.entries(rb.inputs)) {
        const def = spec.default !== undefined ? ` (default ${JSON.stringify(spec.default)})` : ' (required)';
        out.push(`  ${name}: ${spec.type}${def} — ${spec.description}`);
      }
      out.push('', 'Steps:');
      for (const step of rb.steps) {
        if (step.kind === 'probe') {
          out.push(`  ${step.id}: ${step.title} [${step.probes.map((p) => `${p.probe} as ${p.as}`).join(', ')}]`);
          for (const b of step.next) out.push(`    ${b.if ? `if ${b.if}` : 'otherwise'} → ${b.goto}`);
          if (step.on_error) out.push(`    on error → ${step.on_error}`);
        } else {
          out.push(`  ${step.id}: ${step.title} [ask: ${step.question}]`);
          for (const c of step.choices) out.push(`    ${c.id}${c.id === step.default ? ' (default)' : ''}: ${c.label} → ${c.goto}`);
        }
      }
      out.push('', 'Conclusions:');
      for (const c of rb.conclusions) out.push(`  ${c.id}: ${c.title} [${c.category}, ${c.confidence}]`);
      process.stdout.write(`${out.join('\n')}\n`);
    });

  runbooks
    .command('validate')
    .description('check runbook files; prints file:line:column: message for each problem')
    .argument('[files...]', 'runbook files (default: every known runbook)')
    .action(async (files: string[]) => {
      const { catalog, loadRunbookFile, runbookFiles } = await engine();
      const targets = files.length ? files : runbookFiles();
      let bad = 0;
      for (const file of targets) {
        try {
          const rb = loadRunbookFile(file, catalog);
          process.stdout.write(`${file}: ok (${rb.id}: ${rb.steps.length} steps, ${rb.conclusions.length} conclusions)\n`);
        } catch (err) {
          if (!(err instanceof RunbookError)) throw err;
          bad++;
          for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
        }
      }
      if (bad) {
        process.stderr.write(`${bad} of ${targets.length} runbook(s) invalid\n`);
        process.exitCode = EXIT.usage;
      }
    });

  runbooks
    .command('graph')
    .description("print a runbook's decision graph")
    .argument('<runbook>', 'id or path')
    .option('--format <format>', 'mermaid or dot', 'mermaid')
    .action(async (arg: string, flags: { format: string }) => {
      const { catalog, openRunbook, toDot, toMermaid } = await engine();
      const rb = openRunbook(arg, catalog);
      if (flags.format === 'mermaid') process.stdout.write(toMermaid(rb));
      else if (flags.format === 'dot') process.stdout.write(toDot(rb));
      else throw new CliError(`unknown graph format "${flags.format}" (mermaid or dot)`);
    });
}
