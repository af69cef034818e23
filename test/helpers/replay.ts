// Replaying a live probe run's evidence must give the same finding, without loading any BPF.
import assert from 'node:assert/strict';
import { liveHandles } from '../../engine/native/guard.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params, ProbeDefinition } from '../../engine/probe/types.js';
import type { TempBundle } from './bundle.js';

/**
 * Replays raw/`from` of `b` through `probe` (into raw/replay-`from`) and asserts the same data,
 * summary, severity, charts and tables; returns the replay for checks of a test's own.
 */
export async function assertReplaysSame(probe: ProbeDefinition, params: Record<string, unknown>, b: TempBundle, from: string, live: Finding): Promise<Finding> {
  const request = { step: live.step, alias: live.alias, probe: probe.id, params: params as Params };
  const r = await runProbe(probe, request, b.opts(`replay-${from}`, { replayFrom: b.dir(from) }));
  assert.equal(r.status, 'ok', r.reason);
  assert.equal(r.driver, 'replay');
  assert.deepEqual(r.data, live.data);
  assert.equal(r.summary, live.summary);
  assert.equal(r.severity, live.severity);
  assert.deepEqual(r.charts, live.charts);
  assert.deepEqual(r.tables, live.tables);
  return r;
}

/** assertReplaysSame, and the replay loaded no BPF: the addon's live handles are as before it. */
export async function assertReplaysWithoutBpf(probe: ProbeDefinition, params: Record<string, unknown>, b: TempBundle, from: string, live: Finding): Promise<Finding> {
  const handles = liveHandles();
  const r = await assertReplaysSame(probe, params, b, from, live);
  assert.deepEqual(liveHandles(), handles, 'a replay loads no BPF');
  return r;
}
