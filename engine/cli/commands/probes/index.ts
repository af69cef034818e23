// ebpfnet probes list|show
import type { Command } from 'commander';
import { describeRequirement } from '../../../probe/requirement-text.js';
import type { ProbeDefinition } from '../../../probe/types.js';
import { dataFields } from '../../../probe/data-schema.js';
import { CliError } from '../../../exit-codes.js';
import { fieldsTable } from './fields.js';
import { jsonSubcommand } from '../../options.js';


/** The registry loads every probe module: import it when a command needs it, not at startup. */
async function registry() {
  const { probeRegistry } = await import('../../../../probes/index.js');
  return probeRegistry();
}

export async function findProbe(id: string): Promise<ProbeDefinition> {
  const probes = await registry();
  const def = probes.get(id);
  if (!def) throw new CliError(`unknown probe "${id}" (known: ${probes.ids().join(', ')})`);
  return def;
}

export function registerProbes(program: Command): void {
  const probes = program.command('probes').description('the probe catalog');

  jsonSubcommand(probes, 'list', 'every probe, with its driver and overhead').action(async (flags: { json?: boolean }) => {
    const all = (await registry()).all();
    if (flags.json) {
      const rows = all.map((p) => ({ id: p.id, title: p.title, driver: p.driver, overhead: p.overhead, replaces: p.replaces ?? [] }));
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    const width = Math.max(2, ...all.map((p) => p.id.length));
    process.stdout.write(`${'ID'.padEnd(width)}  DRIVER    OVERHEAD  TITLE\n`);
    for (const p of all) process.stdout.write(`${p.id.padEnd(width)}  ${p.driver.padEnd(8)}  ${p.overhead.padEnd(8)}  ${p.title}\n`);
  });

  jsonSubcommand(probes, 'show', "a probe's documentation, params, requirements and the fields of its findings' data")
    .argument('<id>', 'probe id')
    .action(async (id: string, flags: { json?: boolean }) => {
      const p = await findProbe(id);
      if (flags.json) {
        const { collect: _c, parse: _p, ...meta } = p;
        const fields = dataFields(p.data);
        process.stdout.write(`${JSON.stringify({ ...meta, fields }, null, 2)}\n`);
        return;
      }
      const out = [`${p.id}: ${p.title}`, `driver ${p.driver}, overhead ${p.overhead}`];
      if (p.replaces?.length) out.push(`replaces: ${p.replaces.join(', ')}`);
      out.push('', p.description.trim(), '', 'What normal looks like:', p.normal.trim(), '', 'Params:');
      for (const [name, spec] of Object.entries(p.params)) {
        const def = spec.default !== undefined ? ` = ${JSON.stringify(spec.default)}` : spec.required ? ' (required)' : '';
        const opt = spec.cliOption ? ` [--${spec.cliOption}]` : '';
        out.push(`  ${name}: ${spec.type}${def}${opt} — ${spec.description}`);
      }
      out.push('', `Requires: ${p.requirements.map((r) => describeRequirement(r)).join(', ') || 'nothing'}`, '', ...fieldsTable(p.data));
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
