// Each probe folder's README.md is what `npm run readmes` writes from the probe's definition and
// the folder's files: a README that drifted from the definition (a param renamed, a data field
// added, a file moved) fails here.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import { fileRole, probeFolderFiles, probeReadme, README_HEADER } from '../../engine/probe/readme.js';
import { probeRegistry } from '../../probes/index.js';

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
  it('a README does not depend on what runs on this machine', () => {
    const emptyRundir = mkdtempSync(join(tmpdir(), 'ebpfnet-ovs-rundir-'));
    const saved = process.env.OVS_RUNDIR;
    try {
      for (const id of registry.ids()) {
        const dir = join(packageRoot(), 'probes', id);
        const def = registry.get(id)!;
        const here = probeReadme(def, probeFolderFiles(dir));
        process.env.OVS_RUNDIR = emptyRundir;
        const withoutOvs = probeReadme(def, probeFolderFiles(dir));
        delete process.env.OVS_RUNDIR;
        if (saved !== undefined) process.env.OVS_RUNDIR = saved;
        assert.equal(withoutOvs, here, `probes/${id}/README.md changes with the machine's state`);
      }
    } finally {
      if (saved === undefined) delete process.env.OVS_RUNDIR;
      else process.env.OVS_RUNDIR = saved;
      rmSync(emptyRundir, { recursive: true, force: true });
    }
  });

  it('a file\'s role is the first sentence of its leading comment, without the probe id', () => {
    assert.equal(fileRole('// other.tc: qdisc churn and filter hits. More text\n// here.\nimport x;\n'), 'qdisc churn and filter hits.');
    assert.equal(fileRole('// SPDX-License-Identifier: GPL-2.0\n/* vm.frames: a VM\'s frames\n * through its switch. Rest. */\n#include "x.h"\n'), "a VM's frames through its switch.");
    assert.equal(fileRole('#!/usr/bin/env bpftrace\n// Sojourn time per device\n'), 'Sojourn time per device');
    assert.equal(fileRole('import x from "y";\n'), '');
  });
});
