// Guided mode explains the branch a step took by the fields of findings its condition read:
// the value the run saw, its unit, and what the probe declares the field means.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { branchReport } from '../../engine/guide/screen.js';
import { probeRegistry } from '../../probes/index.js';
import type { Finding } from '../../engine/probe/types.js';
import type { TimelineEntry } from '../../engine/run/record.js';
import { findingView } from '../../engine/runbook/run-model.js';
import { conditionFields } from '../../engine/runbook/condition-fields.js';

const condition = 'findings.iface.totals.drops > 0 && findings.iface.devices.exists(d, d.drops > 0) && findings.other.x == 1';
const iface = { probe: 'net.iface', alias: 'iface', status: 'ok', summary: 'eth0 dropped 12 packets', severity: 'critical', data: { totals: { drops: 12 }, devices: [] } } as unknown as Finding;
const other = { probe: 'test.unknown', alias: 'other', status: 'ok', summary: '', severity: 'info', data: { x: 1 } } as unknown as Finding;
const scope = { inputs: {}, findings: { iface: findingView(iface), other: findingView(other) }, answers: {}, target: {}, host: {} };

describe('the fields a branch condition read', () => {
  test('are those of probes that declare their data, with the values the run saw where they stand alone', () => {
    assert.deepEqual(conditionFields(condition, { iface, other }, probeRegistry(), scope), [
      { path: 'findings.iface.totals.drops', value: '12', unit: 'packets', description: 'Drops of every device.' },
      { path: 'findings.iface.devices', value: '[]', description: 'Every watched device, with its deltas and rates.' },
      { path: 'findings.iface.devices[].drops', unit: 'packets', description: 'rx_dropped + tx_dropped over the window.' },
    ]);
  });

  test('guided mode prints them under the branch taken', () => {
    const entry: TimelineEntry = {
      step: 'sample',
      visit: 1,
      title: 'Sample',
      kind: 'probe',
      startedAt: '2026-11-20T09:00:00Z',
      status: 'done',
      probes: [{ alias: 'iface', probe: 'net.iface' }],
      branch: { kind: 'next', index: 0, goto: 'drops', condition, why: 'It dropped.' },
    };
    assert.equal(
      branchReport(entry, conditionFields(condition, { iface, other }, probeRegistry(), scope)),
      [
        '  → next: drops',
        `    condition: ${condition}  (true)`,
        '    why: It dropped.',
        '    the condition read:',
        '      findings.iface.totals.drops = 12 packets: Drops of every device.',
        '      findings.iface.devices = []: Every watched device, with its deltas and rates.',
        '      findings.iface.devices[].drops (packets): rx_dropped + tx_dropped over the window.',
      ].join('\n'),
    );
  });
});
