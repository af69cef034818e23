// Path coverage of every shipped runbook with xstate/graph: walking the compiled
// machine with recorded findings as the probes' answers must reach every step and
// every conclusion.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { getShortestPaths } from '@xstate/graph';
import type { AnyMachineSnapshot, EventObject } from 'xstate';
import { packageRoot } from '../../engine/package-info.js';
import { probeRegistry } from '../../engine/probe/registry.js';
import type { Finding } from '../../engine/probe/types.js';
import { compileRunbook, invokeId, type RunContext } from '../../engine/runbook/compile.js';
import { loadRunbookFile } from '../../engine/runbook/load.js';
import { resolveInputs } from '../../engine/runbook/inputs.js';
import type { InputType, Runbook } from '../../engine/runbook/model.js';

const fixtures = join(packageRoot(), 'test', 'fixtures', 'findings');

/** Findings recorded from real runs, per probe id (test/fixtures/findings/<probe>/*.json). */
function recordedFindings(probe: string): Finding[] {
  const dir = join(fixtures, probe);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Finding);
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

/** The runbook's defaults, with a sample value for each required input. */
function sampleInputs(runbook: Runbook): Record<string, unknown> {
  const given: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(runbook.inputs)) if (spec.default === undefined) given[name] = SAMPLE[spec.type];
  return resolveInputs(runbook, given);
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
      const machine = compileRunbook(runbook, neverCalled);
      const paths = getShortestPaths(machine, {
        input: { inputs: sampleInputs(runbook), target: { kind: 'host', name: 'test' }, host: {} },
        events: eventsFor(runbook) as never,
        // Findings decide the branches; the trail and visit counts only grow, so they stay out of the key.
        serializeState: (s: AnyMachineSnapshot) => JSON.stringify({ v: s.value, f: (s.context as RunContext).findings }),
      } as never);
      const reached = new Set(
        paths.map((p) => {
          const v = p.state.value as unknown;
          return typeof v === 'string' ? v : Object.keys(v as object)[0]!;
        }),
      );
      for (const id of stepAndConclusionIds(runbook)) assert.ok(reached.has(id), `${runbook.id}: ${id} is never reached`);
    });
  }
});
