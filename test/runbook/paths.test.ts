// Path coverage of every shipped runbook with xstate/graph: walking the compiled
// machine with recorded findings as the probes' answers must reach every step and
// every conclusion. A runbook diagnosing a VM (a `vm` input) branches on its target too
// (`target.path.bridgeKind`, `target.state`): it is walked once per recorded target
// (test/fixtures/targets/*.json, the `target` of real runs' run.json) and every step and
// conclusion must be reached by one of the walks. Host runbooks are walked with the host.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { getShortestPaths } from '@xstate/graph';
import type { AnyMachineSnapshot, EventObject } from 'xstate';
import { packageRoot } from '../../engine/package-info.js';
import { probeRegistry } from '../../probes/index.js';
import type { Finding } from '../../engine/probe/types.js';
import { compileRunbook, invokeId } from '../../engine/runbook/compile.js';
import type { RunContext } from '../../engine/runbook/run-model.js';
import { loadRunbookFile } from '../../engine/runbook/load.js';
import { resolveInputs } from '../../engine/runbook/inputs.js';
import { concludeFrom } from '../../engine/run/runner.js';
import type { InputType, Runbook } from '../../engine/runbook/model.js';

const fixtures = join(packageRoot(), 'test', 'fixtures', 'findings');
/** Findings no lab here can record (a starved vhost worker: no vhost-net on this kernel), written by hand and saying so. */
const writtenFixtures = join(packageRoot(), 'test', 'fixtures', 'findings-written');
const targetFixtures = join(packageRoot(), 'test', 'fixtures', 'targets');

const findingsCache = new Map<string, Finding[]>();

/** The findings in a folder, each labelled with its file (the walk tells states apart by these labels). */
function findingsIn(dir: string): Finding[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => ({ ...(JSON.parse(readFileSync(join(dir, f), 'utf8')) as Finding), fixture: join(dir, f) }))
    : [];
}

/** Findings recorded from real runs (test/fixtures/findings/<probe>/*.json), and the few written ones. */
function recordedFindings(probe: string): Finding[] {
  let found = findingsCache.get(probe);
  if (!found) {
    const written = findingsIn(join(writtenFixtures, probe));
    for (const f of written) assert.match(String((f as { written?: unknown }).written ?? ''), /^written:/, `${probe}: a written finding says why it is written`);
    found = [...findingsIn(join(fixtures, probe)), ...written];
    findingsCache.set(probe, found);
  }
  return found;
}

interface WalkTarget {
  /** The fixture file, or `host`. */
  label: string;
  target: Record<string, unknown>;
}

const HOST_TARGET: WalkTarget = { label: 'host', target: { kind: 'host', name: 'test' } };

/** Targets recorded from real runs (test/fixtures/targets/*.json): VMs on a Linux bridge, on OVS, paused... */
function recordedTargets(): WalkTarget[] {
  if (!existsSync(targetFixtures)) return [];
  return readdirSync(targetFixtures)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ label: f, target: JSON.parse(readFileSync(join(targetFixtures, f), 'utf8')) as Record<string, unknown> }));
}

/** The targets a runbook is walked with: every recorded VM target when it takes a `vm` input, else the host. */
function targetsFor(runbook: Runbook): WalkTarget[] {
  if (!Object.values(runbook.inputs).some((spec) => spec.type === 'vm')) return [HOST_TARGET];
  const recorded = recordedTargets();
  assert.ok(recorded.length > 0, `${runbook.id} takes a vm input: no recorded targets under ${targetFixtures}`);
  for (const { label, target } of recorded) {
    assert.equal(target.kind, 'vm', `${label}: not a VM target`);
    assert.ok(target.path !== null && typeof target.path === 'object', `${label}: no target.path (record it from a run.json of diagnose --vm)`);
  }
  return recorded;
}

const neverCalled = {
  runProbe: () => Promise.reject(new Error('graph traversal must not run probes')),
  ask: () => Promise.reject(new Error('graph traversal must not ask')),
};

function stepAndConclusionIds(runbook: Runbook): string[] {
  return [...runbook.steps.map((s) => s.id), ...runbook.conclusions.map((c) => c.id)];
}

/** Events a state can take: each running probe answering with each recorded finding, each ask choice, each timeout. */
function eventsFor(runbook: Runbook) {
  return (snapshot: AnyMachineSnapshot): EventObject[] => {
    const top = typeof snapshot.value === 'string' ? snapshot.value : Object.keys(snapshot.value as object)[0]!;
    const step = runbook.steps.find((s) => s.id === top);
    if (!step) return [];
    const context = snapshot.context as RunContext;
    const events: EventObject[] = [];
    if (step.kind === 'ask') {
      for (const choice of step.choices) events.push({ type: `xstate.done.actor.${invokeId(step.id, 'ask')}`, output: choice.id } as EventObject);
      return events;
    }
    for (const call of step.probes) {
      const id = invokeId(step.id, call.as);
      if (!(id in snapshot.children)) continue;
      const visit = context.visits[step.id] ?? 1;
      for (const finding of recordedFindings(call.probe)) {
        events.push({ type: `xstate.done.actor.${id}`, output: { ...finding, step: step.id, alias: call.as, visit } } as EventObject);
      }
    }
    events.push({ type: `xstate.after.timeout:${step.id}.${runbook.id}.${step.id}` });
    return events;
  };
}

const SAMPLE: Record<InputType, unknown> = {
  string: 'x',
  integer: 1,
  number: 1.5,
  boolean: true,
  duration: '1s',
  ip: '192.0.2.1',
  vm: 'test-vm',
  'string[]': ['a'],
};

/** The runbook's defaults, with a sample value for each required input (a VM input names the target). */
function sampleInputs(runbook: Runbook, target: Record<string, unknown>): Record<string, unknown> {
  const given: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(runbook.inputs)) {
    if (spec.default !== undefined) continue;
    given[name] = spec.type === 'vm' && typeof target.name === 'string' ? target.name : SAMPLE[spec.type];
  }
  return resolveInputs(runbook, given);
}

/** Where a walk with `target` ended up: the top-level states it reaches, and the conclusions' texts rendered there. */
function walkWith(runbook: Runbook, target: Record<string, unknown>): { reached: Set<string>; unrendered: string[] } {
  const machine = compileRunbook(runbook, neverCalled);
  const paths = getShortestPaths(machine, {
    input: { inputs: sampleInputs(runbook, target), target, host: {} },
    events: eventsFor(runbook) as never,
    // Findings decide the branches; the trail and visit counts only grow, so they stay out of the
    // key. A finding is named by its fixture file: the whole of each would make keys of megabytes.
    serializeState: (s: AnyMachineSnapshot) =>
      JSON.stringify({ v: s.value, f: Object.entries((s.context as RunContext).findings).map(([alias, f]) => [alias, (f as { fixture?: string }).fixture ?? f.status]) }),
  } as never);
  const reached = new Set<string>();
  const unrendered: string[] = [];
  const conclusions = new Set(runbook.conclusions.map((c) => c.id));
  for (const p of paths) {
    const v = p.state.value as unknown;
    const id = typeof v === 'string' ? v : Object.keys(v as object)[0]!;
    reached.add(id);
    if (!conclusions.has(id)) continue;
    // What the on-call engineer reads: a template part that cannot be evaluated shows as ‹expr›.
    const c = concludeFrom(runbook, id, p.state.context as RunContext);
    for (const text of [c.title, c.summary, c.explanation, ...c.actions]) {
      const bad = /‹[^›]*›/.exec(text);
      if (bad) unrendered.push(`${id}: ${bad[0]}`);
    }
  }
  return { reached, unrendered };
}

const shippedDir = join(packageRoot(), 'runbooks');
const shipped = readdirSync(shippedDir).filter((f) => f.endsWith('.yaml'));

describe('every shipped runbook: every step and conclusion is reachable with recorded findings', () => {
  test('there are shipped runbooks', () => assert.ok(shipped.length > 0));

  for (const file of shipped) {
    test(file, () => {
      const runbook = loadRunbookFile(join(shippedDir, file), probeRegistry());
      for (const step of runbook.steps) {
        if (step.kind !== 'probe') continue;
        for (const call of step.probes) {
          assert.ok(recordedFindings(call.probe).length > 0, `no recorded findings for ${call.probe} under ${fixtures}`);
        }
      }
      const targets = targetsFor(runbook);
      const reached = new Set<string>();
      const unrendered = new Set<string>();
      for (const { target } of targets) {
        const walk = walkWith(runbook, target);
        for (const id of walk.reached) reached.add(id);
        for (const u of walk.unrendered) unrendered.add(u);
      }
      const walked = targets.map((t) => t.label).join(', ');
      const never = stepAndConclusionIds(runbook).filter((id) => !reached.has(id));
      assert.deepEqual(never, [], `${runbook.id}: never reached: ${never.join(', ')} (walked with ${walked})`);
      assert.deepEqual([...unrendered], [], `${runbook.id}: conclusion texts that cannot be rendered with recorded findings`);
    });
  }
});
