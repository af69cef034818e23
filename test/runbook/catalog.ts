// A small probe catalog for loader tests: param types the shipped probes may not
// have (required, enum, integer, ip, boolean). The loader only reads ids and params.
import Type from '#typebox';
import type { ParamSpec, ProbeCatalog, ProbeDefinition } from '../../engine/probe/types.js';

function probe(id: string, params: Record<string, ParamSpec>): ProbeDefinition {
  return {
    id,
    title: id,
    description: `Test probe ${id}.`,
    normal: 'n/a',
    params,
    requirements: [],
    overhead: 'none',
    driver: 'command',
    data: Type.Record(Type.String(), Type.Unknown()),
    async collect() {
      throw new Error('the loader never runs probes');
    },
    parse() {
      throw new Error('the loader never runs probes');
    },
  };
}

const defs = [
  probe('net.iface', {
    devices: { type: 'string[]', description: 'Interfaces', default: [] },
    duration: { type: 'duration', description: 'Window', default: '5s' },
    interval: { type: 'duration', description: 'Sampling period' },
  }),
  probe('qdisc.stats', {
    devices: { type: 'string[]', description: 'Interfaces', default: [] },
    duration: { type: 'duration', description: 'Window', default: '5s' },
  }),
  probe('ping.rtt', {
    dst: { type: 'ip', description: 'Address to ping', required: true },
    count: { type: 'integer', description: 'Echo requests', default: 3 },
    ratio: { type: 'number', description: 'Loss threshold', default: 0.5 },
    verbose: { type: 'boolean', description: 'Log each reply', default: false },
    family: { type: 'string', description: 'Address family', enum: ['inet', 'inet6'], default: 'inet' },
  }),
];

export const testCatalog: ProbeCatalog = {
  get: (id) => defs.find((d) => d.id === id),
  ids: () => defs.map((d) => d.id).sort(),
};
