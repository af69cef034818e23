// A cheap probe for runner tests: reads a number from a file, after an optional delay.
import Type from '#typebox';
import { ProbeRegistry } from '../../engine/probe/registry.js';
import type { ProbeDefinition } from '../../engine/probe/types.js';

export const fileProbe: ProbeDefinition = {
  id: 'test.file',
  title: 'Read a number from a file',
  description: 'Test probe.',
  normal: 'Any number.',
  params: {
    path: { type: 'string', description: 'file', required: true },
    delay: { type: 'duration', description: 'wait first', default: 0 },
  },
  requirements: [],
  overhead: 'none',
  driver: 'command',
  // Open: runner-test.yaml reads a field it never has, to test how a run takes that.
  data: Type.Record(Type.String(), Type.Unknown()),
  async collect(params, io) {
    if (Number(params.delay) > 0) await io.sleep(Number(params.delay));
    await io.readFile('value', String(params.path));
  },
  parse(records) {
    const value = Number.parseInt(records[0]!.stdout.trim(), 10);
    return { data: { value }, summary: `value ${value}`, severity: 'info' };
  },
};

/** A catalog holding only fileProbe, for test/runbooks/valid/runner-test.yaml. */
export const fileProbeCatalog = new ProbeRegistry([fileProbe]);
