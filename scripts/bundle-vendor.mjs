#!/usr/bin/env node
// Bundles the libraries every ebpfnet process loads into one module each (dist/vendor/*.js),
// imported as #typebox and #yaml (package.json "imports"). Their packages ship as hundreds
// of small modules (typebox ~370, yaml ~70): resolving and reading each costs little here
// but seconds per process on a slow host (0.26 s → 0.09 s here for typebox; 4.6 s under the
// kernel lab's TCG), and every CLI run and test file pays it.
import { build } from 'esbuild';

const VENDORED = {
  typebox: { contents: "export * from 'typebox';\nexport { default } from 'typebox';\n", platform: 'node' },
  // yaml's "node" export is CommonJS, whose names a bundle cannot re-export: its ESM build
  // (the package's "default" export, plain JavaScript) is taken instead.
  yaml: { contents: "export * from 'yaml';\n", platform: 'neutral' },
};

const root = new URL('..', import.meta.url).pathname;
for (const [name, { contents, platform }] of Object.entries(VENDORED)) {
  await build({
    stdin: { contents, resolveDir: root, loader: 'js', sourcefile: `vendor-${name}.js` },
    bundle: true,
    format: 'esm',
    platform,
    target: 'es2022',
    outfile: `${root}dist/vendor/${name}.js`,
    legalComments: 'inline',
    logLevel: 'warning',
  });
}
