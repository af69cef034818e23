// Each probe folder's README.md is what `npm run readmes` writes from the probe's definition and
// the folder's files: a README that drifted from the definition (a param renamed, a data field
// added, a file moved) fails here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { fileRole, probeFolderFiles, probeReadme, README_HEADER } from '../../engine/probe/readme.js';
import { probeRegistry } from '../../probes/index.js';
import { withoutOvsVswitchd } from '../helpers/ovs-vm-suite.js';

describe('probe READMEs', () => {
  const registry = probeRegistry();

  for (const id of registry.ids()) {
    it(`probes/${id}/README.md is written from its definition (npm run readmes)`, () => {
      const dir = join(packageRoot(), 'probes', id);
      const def = registry.get(id)!;
      const text = readFileSync(join(dir, 'README.md'), 'utf8');
      assert.equal(text, probeReadme(def, probeFolderFiles(dir)), `probes/${id}/README.md is stale: run npm run build && npm run readmes`);
      assert.ok(text.startsWith(`${README_HEADER}\n\n# ${id}: ${def.title}\n`));
      for (const param of Object.keys(def.params)) assert.ok(text.includes(`| \`${param}\` |`), `param ${param} listed`);
    });
  }

  // Requirements read when a probe runs (is ovs-vswitchd up, under which pid) must not leak into
  // the README: CI writes them with OVS up or down depending on which test ran before.
  it('a README does not depend on what runs on this machine', async () => {
    const here = registry.ids().map((id) => probeReadme(registry.get(id)!, probeFolderFiles(join(packageRoot(), 'probes', id))));
    const withoutOvs = await withoutOvsVswitchd(async () =>
      registry.ids().map((id) => probeReadme(registry.get(id)!, probeFolderFiles(join(packageRoot(), 'probes', id)))),
    );
    registry.ids().forEach((id, i) => assert.equal(withoutOvs[i], here[i], `probes/${id}/README.md changes with the machine's state`));
  });

  it('a file\'s role is the first sentence of its leading comment, without the probe id', () => {
    assert.equal(fileRole('// other.tc: qdisc churn and filter hits. More text\n// here.\nimport x;\n'), 'qdisc churn and filter hits.');
    assert.equal(fileRole('// SPDX-License-Identifier: GPL-2.0\n/* vm.frames: a VM\'s frames\n * through its switch. Rest. */\n#include "x.h"\n'), "a VM's frames through its switch.");
    assert.equal(fileRole('#!/usr/bin/env bpftrace\n// Sojourn time per device\n'), 'Sojourn time per device');
    assert.equal(fileRole('import x from "y";\n'), '');
  });
});
