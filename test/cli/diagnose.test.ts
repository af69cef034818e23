// `ebpfnet diagnose host-drops` through the real CLI against real faults on a veth
// pair: each fault must lead to its own conclusion; replays, interruptions and
// resumes must keep complete bundles.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { packageRoot } from '../../engine/package-info.js';
import type { RunRecord } from '../../engine/run/record.js';
import { runCli, startCli, waitForRunBundle, type CliResult } from '../helpers/cli.js';
import { canBuildTopologies } from '../helpers/netns.js';
import { buildFaultLab, type FaultLab, type HostFault } from '../lab/host-faults.js';

const out = mkdtempSync(join(tmpdir(), 'ebpfnet-diagnose-'));
after(() => rmSync(out, { recursive: true, force: true }));

interface JsonResult {
  status: string;
  bundle: string;
  conclusion: { id: string; category: string; confidence: string; summary: string } | null;
}

const readRun = (bundle: string) => JSON.parse(readFileSync(join(bundle, 'run.json'), 'utf8')) as RunRecord;

function parseJson(r: CliResult): JsonResult {
  try {
    return JSON.parse(r.stdout) as JsonResult;
  } catch {
    throw new Error(`not JSON (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** Runs host-drops on the lab's host-side device while traffic flows. */
async function diagnoseLab(lab: FaultLab, extra: string[] = []): Promise<JsonResult> {
  const traffic = lab.traffic(8);
  const { done } = startCli(['diagnose', 'host-drops', '--input', `devices=${lab.pair.hostDev}`, '--input', 'duration=2s', '--out', out, '--json', ...extra]);
  const [r] = await Promise.all([done, traffic]);
  assert.equal(r.status, 0, r.stderr);
  return parseJson(r);
}

describe('diagnose --json and conditions that cannot be evaluated', () => {
  test('the JSON names every condition that failed, and the verdict carries it as a caveat at a lower confidence', async () => {
    const runbook = join(packageRoot(), 'test', 'serve', 'runbooks', 'condition-error.yaml');
    const r = await runCli(['diagnose', runbook, '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout) as JsonResult & { conditionErrors: string[]; conclusion: { caveats: string[]; declaredConfidence?: string } };
    assert.equal(json.conclusion?.id, 'by-default');
    assert.equal(json.conditionErrors.length, 1);
    assert.match(json.conditionErrors[0]!, /^watch: findings\.iface\.worst\.drops > 0: /);
    assert.deepEqual(json.conclusion.caveats, [`a condition could not be evaluated and counted as false: ${json.conditionErrors[0]}`]);
    assert.equal(json.conclusion.confidence, 'medium');
    assert.equal(json.conclusion.declaredConfidence, 'high');
  });
});


/**
 * Runs host-drops (4 s) on the lab's device and sends `signal` mid-run: once the run has its
 * bundle (its handlers in place), inside its window. Resolves to how the CLI ended.
 */
async function signalMidRun(l: FaultLab, signal: NodeJS.Signals): Promise<CliResult> {
  const known = new Set(readdirSync(out));
  const { child, done } = startCli(['diagnose', 'host-drops', '--input', `devices=${l.pair.hostDev}`, '--input', 'duration=4s', '--out', out, '--json']);
  await waitForRunBundle(out, 'host-drops', known);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  child.kill(signal);
  return done;
}
describe('diagnose host-drops on real faults', async () => {
  const cannot = await canBuildTopologies();
  before(() => assert.equal(cannot, null, `this test needs root, ip and ping: ${cannot}`));

  const labs = new Map<HostFault, FaultLab>();
  const lab = async (t: { after(fn: () => unknown): void }, fault: HostFault) => {
    const l = await buildFaultLab(t, fault);
    labs.set(fault, l);
    return l;
  };

  let qdiscBundle = '';

  test('a shaping qdisc that overflows → qdisc-drops naming the qdisc and device', async (t) => {
    const l = await lab(t, 'qdisc');
    const r = await diagnoseLab(l, ['--format', 'md,json']);
    assert.equal(r.status, 'completed');
    assert.equal(r.conclusion?.id, 'qdisc-drops');
    assert.equal(r.conclusion?.category, 'qdisc-drop');
    assert.match(r.conclusion!.summary, new RegExp(`^tbf qdisc 1: on ${l.pair.hostDev} dropped \\d+ packets in 2s$`));
    const run = readRun(r.bundle);
    assert.equal(run.status, 'completed');
    assert.deepEqual(run.timeline.map((s) => s.step), ['sample']);
    const qdisc = run.findings.find((f) => f.alias === 'qdisc')!;
    assert.ok((qdisc.data.totals as { drops: number }).drops > 0);
    for (const f of run.findings) for (const raw of f.raw) assert.ok(existsSync(join(r.bundle, raw)), raw);
    assert.ok(existsSync(join(r.bundle, 'snapshot.json')));
    assert.match(readFileSync(join(r.bundle, 'summary.md'), 'utf8'), /\*\*Verdict:\*\* A queueing discipline drops packets \(category `qdisc-drop`, confidence high, conclusion `qdisc-drops`\)/);
    assert.equal((JSON.parse(readFileSync(join(r.bundle, 'summary.json'), 'utf8')) as { conclusion: { id: string } }).conclusion.id, 'qdisc-drops');
    qdiscBundle = r.bundle;
  });

  test('an MTU smaller on the peer → device-drops on the host side, confirmed by a second look', async (t) => {
    const l = await lab(t, 'mtu');
    const r = await diagnoseLab(l);
    assert.equal(r.conclusion?.id, 'device-drops');
    assert.match(r.conclusion!.summary, new RegExp(`^${l.pair.hostDev} dropped [1-9]\\d* packets`));
    const run = readRun(r.bundle);
    assert.deepEqual(run.timeline.map((s) => s.step), ['sample', 'drop-detail']);
    const detail = run.findings.find((f) => f.alias === 'detail')!;
    assert.deepEqual(detail.params.devices, [l.pair.hostDev], 'drop-detail watches only what dropped (templated from the first finding)');
    assert.equal(detail.params.interval, 500);
    assert.equal((detail.data.worst as { direction: string }).direction, 'tx');
  });

  test('a healthy pair → no-host-drops, through the ask step and its default', async (t) => {
    const l = await lab(t, 'none');
    const r = await diagnoseLab(l);
    assert.equal(r.conclusion?.id, 'no-host-drops');
    const run = readRun(r.bundle);
    assert.deepEqual(run.timeline.map((s) => [s.step, s.answer ?? null]), [['sample', null], ['intermittent', 'stop']]);
  });

  test('--replay of a recorded bundle reaches the same verdict without touching the host', async () => {
    assert.ok(qdiscBundle, 'needs the qdisc run');
    await labs.get('qdisc')!.teardown(); // the device is gone: only the recording can answer
    const r = runCli(['diagnose', 'host-drops', '--replay', qdiscBundle, '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const replay = parseJson(r);
    assert.equal(replay.conclusion?.id, 'qdisc-drops');
    const original = readRun(qdiscBundle);
    const replayed = readRun(replay.bundle);
    assert.equal(replayed.mode, 'replay');
    assert.equal(replayed.conclusion?.summary, original.conclusion?.summary);
    assert.deepEqual(replayed.inputs, original.inputs, 'a replay takes the recorded inputs');
    const byAlias = (r: RunRecord) => Object.fromEntries(r.findings.map((f) => [f.alias, f.data]));
    assert.deepEqual(byAlias(replayed), byAlias(original));

    // A different question is answered from the recording: that device was not there.
    const other = parseJson(runCli(['diagnose', 'host-drops', '--replay', qdiscBundle, '--out', out, '--json', '--input', 'devices=gone0']));
    assert.equal(other.conclusion?.id, 'inconclusive');
    const refused = readRun(other.bundle).findings.find((f) => f.alias === 'iface')!;
    assert.equal(refused.status, 'error');
    assert.match(refused.reason ?? "", /no device gone0/);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    test(`${signal} mid-run leaves a complete bundle marked interrupted; --resume finishes it`, async (t) => {
      const l = await lab(t, 'qdisc');
      const traffic = l.traffic(12);
      const r = await signalMidRun(l, signal);
      assert.equal(r.status, signal === 'SIGINT' ? 130 : 143, r.stderr);
      const interrupted = parseJson(r);
      assert.equal(interrupted.status, 'interrupted');
      assert.equal(interrupted.conclusion, null);
      const run = readRun(interrupted.bundle);
      assert.equal(run.status, 'interrupted');
      assert.equal(run.interruptions[0]?.reason, `received ${signal}`);
      assert.equal(run.timeline[0]?.status, 'interrupted');
      assert.ok(run.findings.length >= 1 && run.findings.every((f) => f.status === 'interrupted'), 'the cut probes are recorded');
      assert.ok(existsSync(join(interrupted.bundle, 'snapshot.json')));

      const resumed = runCli(['diagnose', '--resume', interrupted.bundle, '--json']);
      await traffic;
      assert.equal(resumed.status, 0, resumed.stderr);
      const finished = parseJson(resumed);
      assert.equal(finished.bundle, interrupted.bundle);
      assert.equal(finished.conclusion?.id, 'qdisc-drops');
      assert.equal(readRun(interrupted.bundle).resumes.length, 1);
    });
  }
});

describe('diagnose after a crash', async () => {
  test('SIGKILL leaves run.json "running" with a snapshot; --resume finishes the run', async (t) => {
    assert.equal(await canBuildTopologies(), null);
    const l = await buildFaultLab(t, 'qdisc');
    const traffic = l.traffic(12);
    await signalMidRun(l, 'SIGKILL');
    const bundle = join(out, readdirSync(out).filter((d) => d.includes('-host-drops-')).sort().pop()!);
    const crashed = readRun(bundle);
    assert.equal(crashed.status, 'running', 'nothing could mark it: the process was killed');
    assert.ok(existsSync(join(bundle, 'snapshot.json')));
    const resumed = runCli(['diagnose', '--resume', bundle, '--json']);
    await traffic;
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.equal(parseJson(resumed).conclusion?.id, 'qdisc-drops');
  });
});

describe('diagnose: usage errors are one line and exit 2', () => {
  test('a bad input value', () => {
    const r = runCli(['diagnose', 'host-drops', '--input', 'duration=soon', '--out', out]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim(), 'ebpfnet: input "duration": expected a duration like 500ms, 5s or 2m, got "soon"');
  });
  test('an unknown input', () => {
    const r = runCli(['diagnose', 'host-drops', '--input', 'vlan=3', '--out', out]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^ebpfnet: unknown input "vlan" \(runbook host-drops takes devices, duration, long_duration\)/);
  });
  test('--vm on a host runbook', () => {
    const r = runCli(['diagnose', 'host-drops', '--vm', 'test-vm', '--out', out]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /does not take --vm/);
  });
  test('an --out folder that cannot be written', () => {
    const r = runCli(['diagnose', 'host-drops', '--out', '/proc/ebpfnet-runs', '--input', 'duration=1s']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ebpfnet: cannot create a run bundle under \/proc\/ebpfnet-runs \(\w+\): choose a writable folder with --out\n$/);
  });
  test('--resume of something that is not a bundle', () => {
    const r = runCli(['diagnose', '--resume', out]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is not a run bundle: it has no run\.json/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});

describe('probe run', () => {
  test('net.iface on a live pair, with the seed options --dev and -d', async (t) => {
    const l = await buildFaultLab(t, 'none');
    const traffic = l.traffic(2);
    const { done } = startCli(['probe', 'run', 'net.iface', '--dev', l.pair.hostDev, '-d', '1s', '--out', out, '--json']);
    const [r] = await Promise.all([done, traffic]);
    assert.equal(r.status, 0, r.stderr);
    const finding = JSON.parse(r.stdout) as { status: string; data: { devices: Array<{ name: string; deltas: { tx_packets: number } }> }; bundle: string };
    assert.equal(finding.status, 'ok');
    assert.equal(finding.data.devices[0]?.name, l.pair.hostDev);
    assert.ok(finding.data.devices[0]!.deltas.tx_packets > 0);
    assert.ok(existsSync(join(finding.bundle, 'finding.json')));
  });
  test('-d with a bare number means seconds, as in the seed tools', () => {
    const r = runCli(['probe', 'run', 'qdisc.stats', '-d', '1', '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const finding = JSON.parse(r.stdout) as { params: { duration: number }; data: { durationMs: number } };
    assert.equal(finding.params.duration, 1000);
    assert.ok(finding.data.durationMs >= 900 && finding.data.durationMs < 2000, String(finding.data.durationMs));
  });
  test('an option the probe does not have is refused', () => {
    const r = runCli(['probe', 'run', 'net.iface', '--src-ip', '10.0.0.1']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /probe net.iface has no --src-ip option/);
  });
  test('a bad param value is one line', () => {
    const r = runCli(['probe', 'run', 'net.iface', '-d', 'forever', '--out', out]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^ebpfnet: probe net.iface: param "duration": expected a duration/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
