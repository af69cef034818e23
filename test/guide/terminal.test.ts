// `ebpfnet guide` in a real terminal (tmux), run for real on this host: prompts answered
// with the keys a person would press, the screen asserted, the bundle checked against it.
// The runs watch only `lo`, which does not drop: the path through each runbook is known.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import type { RunRecord } from '../../engine/run/record.js';
import { CLI, runCli } from '../helpers/cli.js';
import { TerminalSession } from '../helpers/tmux.js';

const work = mkdtempSync(join(tmpdir(), 'ebpfnet-guide-'));
const sessions: TerminalSession[] = [];
after(() => {
  for (const s of sessions) s.kill();
  rmSync(work, { recursive: true, force: true });
});

const testRunbook = join(packageRoot(), 'test', 'fixtures', 'runbooks', 'guide-test.yaml');
const hostDrops = ['host-drops', '--input', 'devices=lo', '--input', 'duration=300ms', '--input', 'long_duration=300ms'];

let n = 0;
function guide(args: string[]): { term: TerminalSession; out: string } {
  const out = join(work, `runs-${n}`);
  const term = TerminalSession.start(`guide-${process.pid}-${n++}`, [process.execPath, CLI, 'guide', ...args, '--out', out, '--format', 'html']);
  sessions.push(term);
  return { term, out };
}

/** The bundle the screen names, and its run.json. */
function bundleOf(screen: string): { dir: string; record: RunRecord } {
  const dir = /^Bundle: (\S+)$/m.exec(screen)?.[1];
  assert.ok(dir, `no "Bundle:" line on the screen:\n${screen}`);
  return { dir, record: JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunRecord };
}

const RUN_PROMPT = 'Run this step?';

describe('ebpfnet guide in a terminal', () => {
  test('a step explained and run, its finding next to normal, the branch and its condition, a question answered, the verdict', async () => {
    const { term } = guide([testRunbook, '--budget', 'cpu=2%']);
    let screen = await term.waitForText(RUN_PROMPT);
    assert.match(screen, /Runbook guide-test: Guided mode test on the loopback device/);
    assert.match(screen, /Step 1 · watch: Watch the loopback counters/);
    assert.match(screen, /Reads the counters of lo at the start and end of a 200ms window\./, 'the description, its template rendered');
    assert.match(screen, /lo \(net\.iface\): Interface counters and rates\n\s+overhead none · no BPF budget \(loads no BPF program\) · duration 200ms/);
    assert.match(
      screen,
      /drops \(drops\.kernel\): Kernel packet drops by reason\n\s+overhead low · budget 2% of a CPU, 1,000,000 events\/s · duration 200ms/,
      "the probe's budget with --budget's CPU share over it",
    );
    assert.match(screen, /❯ Run it/, 'Run is preselected');

    term.keys('Enter');
    screen = await term.waitForText('Which conclusion should this run reach?');
    assert.match(screen, /✔ lo \(net\.iface\) ok \[info\]: no drops or errors on 1 device in 200ms/);
    assert.match(screen, /What normal looks like:\n\s+Drops and errors stay at 0 on every interface\./);
    assert.match(screen, /✔ drops \(drops\.kernel\) ok \[\w+\]: .*\n\s+What normal looks like:\n\s+A busy host drops a trickle of packets/);
    assert.match(screen, /→ next: question\n\s+condition: findings\.lo\.totals\.drops == 0 {2}\(true\)\n\s+why: Loopback dropped nothing, as expected\./);
    assert.match(screen, /why: Loopback dropped nothing, as expected\.\n\s+the condition read:\n\s+findings\.lo\.totals\.drops = 0 packets: Drops of every device\./, 'the field it read, its value and meaning');
    assert.match(screen, /Step 2 · question: Choose the ending/);
    assert.match(screen, /❯ The calm one \(after 200ms\)\n\s+The loud one/, 'the choices, labels rendered, the default preselected');

    term.keys('Down', 'Enter');
    const { status, screen: end } = await term.exited();
    assert.equal(status, 0, end);
    assert.match(end, /→ next: loud\n\s+your answer: loud\n\s+why: The loud one/);
    assert.match(end, /^Verdict: The loud ending \[loud, test, confidence medium\]$/m);
    assert.match(end, /^ {2}lo dropped 0 packets; the loud ending was chosen$/m);
    const { dir, record } = bundleOf(end);
    assert.match(end, new RegExp(`^Report: ${dir}/report\\.html$`, 'm'));
    assert.equal(record.conclusion?.id, 'loud');
    assert.deepEqual(record.timeline.map((t) => [t.step, t.branch?.goto]), [['watch', 'question'], ['question', 'loud']]);
    assert.equal(record.timeline[1]!.answer, 'loud');
  });

  test('host-drops: the glossary from the prompt, the step run, the question left at its default', async () => {
    const { term } = guide(hostDrops);
    await term.waitForText(RUN_PROMPT);
    term.keys('Down', 'Down', 'Enter');
    await term.waitForText('Glossary: type to filter');
    term.keys('-l', 'FULL_RING');
    await term.waitForText('❯ FULL_RING');
    term.keys('Enter');
    let screen = await term.waitForText(RUN_PROMPT, 2);
    assert.match(screen, /FULL_RING \(drop reason\)\n\s+A ring between a device and its reader was full\./);

    term.keys('Enter');
    screen = await term.waitForText('Is the loss intermittent');
    assert.match(screen, /Step 1 · sample: Watch interface and qdisc counters/);
    assert.match(screen, /What normal looks like:\n\s+Drops stay at 0\. Overlimits on a shaping qdisc/, "qdisc.stats' normal");
    assert.match(screen, /→ next: intermittent\n\s+condition: none, the fallback: no earlier condition held\n\s+why: No counter rose\./);
    assert.match(screen, /Step 2 · intermittent: Nothing dropped while we watched/);
    assert.match(screen, /Neither the interfaces nor the qdiscs dropped anything in 300ms\./);
    assert.match(screen, /❯ No, conclude now/, 'the default is preselected');

    term.keys('Enter');
    const { status, screen: end } = await term.exited();
    assert.equal(status, 0, end);
    assert.match(end, /your answer: stop/);
    assert.match(end, /^Verdict: This host's interfaces and qdiscs did not drop \[no-host-drops, no-host-drop, confidence medium\]$/m);
    const { record } = bundleOf(end);
    assert.equal(record.conclusion?.id, 'no-host-drops');
    assert.ok(record.findings.every((f) => f.status === 'ok'));
  });

  test('host-drops: a skipped step is recorded as skipped by the operator and routed through on_error', async () => {
    const { term } = guide(hostDrops);
    await term.waitForText(RUN_PROMPT);
    term.keys('Down', 'Enter');
    const { status, screen } = await term.exited();
    assert.equal(status, 0, screen);
    assert.match(screen, /Skipped: its probes are recorded as "skipped by the operator"\./);
    assert.match(screen, /⊘ iface \(net\.iface\) skipped \[warning\]: skipped: skipped by the operator/);
    assert.match(screen, /→ next: inconclusive\n\s+condition: on_error, a probe of this step did not finish ok/);
    assert.match(screen, /^Verdict: The counters could not be read \[inconclusive, inconclusive, confidence low\]$/m);
    const { record } = bundleOf(screen);
    assert.equal(record.conclusion?.id, 'inconclusive');
    assert.deepEqual(
      record.findings.map((f) => [f.alias, f.status, f.reason]).sort(),
      [['iface', 'skipped', 'skipped by the operator'], ['qdisc', 'skipped', 'skipped by the operator']],
    );
  });

  test('Quit keeps the bundle, marked interrupted, and `diagnose --resume` finishes it', async () => {
    const { term } = guide(hostDrops);
    await term.waitForText(RUN_PROMPT);
    term.keys('Down', 'Down', 'Down', 'Enter');
    const { status, screen } = await term.exited();
    assert.equal(status, 130, screen);
    const { dir, record } = bundleOf(screen);
    assert.match(screen, new RegExp(`Interrupted \\(quit by the operator\\); continue with: ebpfnet diagnose --resume ${dir}`));
    assert.equal(record.status, 'interrupted');
    assert.equal(record.interruptions[0]?.reason, 'quit by the operator');
    assert.equal(record.interruptions[0]?.step, 'sample');

    const resumed = runCli(['diagnose', '--resume', dir, '--json']);
    assert.equal(resumed.status, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout) as { status: string; conclusion: { id: string } };
    assert.equal(result.status, 'completed');
    assert.equal(result.conclusion.id, 'no-host-drops');
  });

  /** Starts the run of `args`, presses Ctrl-C once `text` shows, and asserts it exits 130; returns its screen and bundle. */
  async function ctrlCAt(args: string[], text: string) {
    const { term } = guide(args);
    await term.waitForText(RUN_PROMPT);
    term.keys('Enter');
    await term.waitForText(text);
    term.keys('C-c');
    const { status, screen } = await term.exited();
    assert.equal(status, 130, screen);
    return { screen, ...bundleOf(screen) };
  }

  test('Ctrl-C while the probes run interrupts the run, its bundle kept', async () => {
    const { screen, record } = await ctrlCAt([testRunbook, '--input', 'duration=20s'], 'Running 2 probes…');
    assert.match(screen, /Interrupted \(received SIGINT\); continue with: ebpfnet diagnose --resume/);
    assert.equal(record.status, 'interrupted');
    assert.equal(record.interruptions[0]?.reason, 'received SIGINT');
    assert.equal(record.interruptions[0]?.step, 'watch');
  });

  test('Ctrl-C at a question stops the run the same way', async () => {
    const { record } = await ctrlCAt([testRunbook], 'Which conclusion should this run reach?');
    assert.equal(record.status, 'interrupted');
    assert.equal(record.interruptions[0]?.step, 'question');
  });
});
