// Which way imports may point (DESIGN.md, Layout). test/layers/layering.test.ts holds the
// sources to every rule; `npx depcruise --config .dependency-cruiser.cjs engine probes reports test`
// prints the same findings.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'no import circles, type-only imports included',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'engine-core-points-down',
      comment:
        'the engine under the commands (the YAML kit, runbooks, runs, probe runtime, host, targets, native, selftest, ' +
        'and the plain modules of engine/) imports no command, server, guided mode, report or probe: they are handed in from above',
      severity: 'error',
      from: { path: '^engine/((native|probe|host|runbook|run|target|yaml|selftest)/|[^/]+\\.ts$)' },
      to: { path: '^(engine/(cli|serve|guide)/|reports/|probes/)' },
    },
    {
      name: 'yaml-kit-stands-alone',
      comment: 'the YAML kit (engine/yaml) imports nothing else of ebpfnet: runbooks, inventories and serve build on it',
      severity: 'error',
      from: { path: '^engine/yaml/' },
      to: { path: '^(engine|reports|probes)/', pathNot: '^engine/yaml/' },
    },
    {
      name: 'reports-under-commands',
      comment: 'the reports may read the engine, never the commands (engine/cli) or the server (engine/serve) that write them',
      severity: 'error',
      from: { path: '^reports/' },
      to: { path: '^engine/(cli|serve)/' },
    },
    {
      name: 'serve-and-guide-under-cli',
      comment: 'the webhook server and guided mode are wired by the commands, never the other way round',
      severity: 'error',
      from: { path: '^engine/(serve|guide)/' },
      to: { path: '^engine/cli/' },
    },
    {
      name: 'probe-imports-no-other-probe',
      comment: 'a probe folder (probes/<id>/) imports its own files, the probe library (probes/lib/) and the engine, never another probe; the library imports no probe',
      severity: 'error',
      from: { path: '^probes/([^/]+)/' },
      to: { path: '^probes/[^/]+/', pathNot: '^probes/($1|lib)/' },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count: a circle of types is still a circle.
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|build)/' },
  },
};
