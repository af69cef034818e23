// `ebpfnet guide` without a terminal (pipes, as from a script), and its glossary.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { RunRecord } from '../../engine/run/record.js';
import { runCli } from '../helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'ebpfnet-guide-yes-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('ebpfnet guide without a terminal', () => {
  test('refuses in one line with a usage exit code, unless --yes', () => {
    const r = runCli(['guide', 'host-drops', '--out', work]);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'ebpfnet: guide needs a terminal to ask before each step; add --yes to run every step unattended, or use `ebpfnet diagnose`\n',
    );
  });

  test('--yes prints the same explanations, runs every step and takes each default', () => {
    const out = join(work, 'runs');
    const r = runCli(['guide', 'host-drops', '--yes', '--input', 'devices=lo', '--input', 'duration=200ms', '--out', out, '--format', 'html']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Step 1 · sample: Watch interface and qdisc counters/);
    assert.match(r.stdout, /overhead none · no BPF budget \(loads no BPF program\) · duration 200ms/);
    assert.match(r.stdout, /--yes: running it\./);
    assert.match(r.stdout, /What normal looks like:/);
    assert.match(r.stdout, /Is the loss intermittent, so that a longer sample could catch it\?\n\s+--yes: taking the default, "No, conclude now"\./);
    assert.match(r.stdout, /^Verdict: .* \[no-host-drops, /m);
    const dir = /^Bundle: (\S+)$/m.exec(r.stdout)![1]!;
    assert.match(r.stdout, new RegExp(`^Report: ${dir}/report\\.html$`, 'm'));
    const record = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunRecord;
    assert.equal(record.conclusion?.id, 'no-host-drops');
    assert.equal(record.timeline[1]!.answer, 'stop');

    // The recorded run replayed, as for training: the same steps shown, the same verdict.
    const replay = runCli(['guide', 'host-drops', '--yes', '--replay', dir, '--out', out, '--format', 'html']);
    assert.equal(replay.status, 0, replay.stderr);
    assert.match(replay.stdout, /Step 1 · sample: Watch interface and qdisc counters/);
    assert.match(replay.stdout, /Step 2 · intermittent: Nothing dropped while we watched\n(.*\n)*\s+your answer: stop/, 'the recorded answer, shown though nobody was asked');
    const replayDir = /^Bundle: (\S+)$/m.exec(replay.stdout)![1]!;
    const replayed = JSON.parse(readFileSync(join(replayDir, 'run.json'), 'utf8')) as RunRecord;
    assert.equal(replayed.mode, 'replay');
    assert.equal(replayed.conclusion?.id, 'no-host-drops');
  });
});

describe('ebpfnet guide --glossary', () => {
  test('one entry, looked up regardless of case and of the SKB_DROP_REASON_ prefix', () => {
    const r = runCli(['guide', '--glossary', 'FULL_RING']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^FULL_RING \(drop reason\)\n {2}A ring between a device and its reader was full\./);
    assert.equal(runCli(['guide', '--glossary', 'skb_drop_reason_full_ring']).stdout, r.stdout);
  });

  test('every entry, drop reasons and terms', () => {
    const r = runCli(['guide', '--glossary']);
    assert.equal(r.status, 0, r.stderr);
    for (const term of ['NETFILTER_DROP (drop reason)', 'NO_SOCKET (drop reason)', 'OVS_DROP_LAST_ACTION (drop reason)', 'megaflow (term)', 'vCPU runnable-not-running (term)', 'p99 (term)']) {
      assert.ok(r.stdout.includes(term), `${term} is listed`);
    }
  });

  test('an unknown term is one line naming the close matches', () => {
    const r = runCli(['guide', '--glossary', 'NEIGH']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^ebpfnet: no glossary entry "NEIGH"; close: NEIGH_FAILED, NEIGH_QUEUEFULL, NEIGH_CREATEFAIL, NEIGH_DEAD .*\n$/);
    const typo = runCli(['guide', '--glossary', 'megaflw']);
    assert.match(typo.stderr, /close: megaflow/);
  });
});
