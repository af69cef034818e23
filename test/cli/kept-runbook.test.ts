// `diagnose --resume` and `ebpfnet report` through the real CLI on a bundle whose runbook file
// was edited, then removed, after the run: both use the copy of the runbook the bundle keeps.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { RunRecord } from '../../engine/run/record.js';
import { runCli, startCli, type CliResult } from '../helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'ebpfnet-kept-runbook-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));
const out = join(work, 'runs');

const TITLE = 'Watched as the kept runbook says';
const RUNBOOK = `id: kept-runbook
title: A runbook edited after its run
description: For the test of the copy of the runbook a bundle keeps.
inputs:
  duration:
    type: duration
    default: 3s
    description: How long to watch.
steps:
  - id: watch
    title: Watch the loopback device
    on_error: failed
    probe: net.iface
    as: iface
    params:
      devices: [lo]
      duration: \${inputs.duration}
    next:
      - goto: watched
conclusions:
  - id: watched
    title: ${TITLE}
    category: test
    confidence: high
    summary: watched
    explanation: The run's own runbook.
    evidence: [iface]
  - id: failed
    title: The probe failed
    category: inconclusive
    confidence: low
    summary: failed
    explanation: It failed.
`;

interface JsonResult {
  status: string;
  bundle: string;
  conclusion: { id: string; title: string } | null;
}

function parseJson(r: CliResult): JsonResult {
  try {
    return JSON.parse(r.stdout) as JsonResult;
  } catch {
    throw new Error(`not JSON (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** Waits until the run has written its bundle (its signal handlers are in place by then). */
async function bundleStarted(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(out) && readdirSync(out).some((d) => existsSync(join(out, d, 'run.json')))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no bundle under ${out} after 10s`);
}

describe('a bundle whose runbook file changed, then is gone', () => {
  test('resumes and reports with the runbook it ran', async () => {
    const file = join(work, 'kept-runbook.yaml');
    writeFileSync(file, RUNBOOK);
    const { child, done } = startCli(['diagnose', file, '--out', out, '--json']);
    await bundleStarted();
    child.kill('SIGINT');
    const interrupted = await done;
    assert.equal(interrupted.status, 130, interrupted.stderr);
    const { bundle, status } = parseJson(interrupted);
    assert.equal(status, 'interrupted');
    assert.equal(readFileSync(join(bundle, 'runbook.yaml'), 'utf8'), RUNBOOK);

    writeFileSync(file, RUNBOOK.replace(TITLE, 'Edited after the run'));
    const resumed = runCli(['diagnose', '--resume', bundle, '--json']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.equal(parseJson(resumed).conclusion?.title, TITLE);
    assert.deepEqual((JSON.parse(readFileSync(join(bundle, 'run.json'), 'utf8')) as RunRecord).errors, []);

    rmSync(file);
    const report = runCli(['report', bundle, '--format', 'html']);
    assert.equal(report.status, 0, report.stderr);
    const html = readFileSync(join(bundle, 'report.html'), 'utf8');
    // Only the runbook draws the conclusion the run did not reach.
    assert.match(html, /class="node gnode conclusion"[\s\S]*?>failed<\/text>/);
    assert.doesNotMatch(html, /could not be read here|changed since the run/);
  });
});
