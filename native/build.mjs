#!/usr/bin/env node
// Builds the addon with node-gyp (configure + build, never `rebuild`: its clean step would
// delete build/bpf). Headers come from the running Node's own install when it ships them
// (/usr/include/node), so no download is needed.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const prefix = dirname(dirname(process.execPath));
const nodedir =
  process.env.npm_config_nodedir || (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
const gyp = process.env.npm_config_node_gyp;
const [cmd, pre] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
const args = [...pre, 'configure', 'build', '-j', 'max', '--loglevel', 'warn', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
if (r.error) {
  console.error(`native/build: cannot run node-gyp (${r.error.message}); run the build through npm: npm run build`);
  process.exit(1);
}
process.exit(r.status ?? 1);
