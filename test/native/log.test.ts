// libbpf's messages reach the logger given to routeLibbpfLogs, with their level.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { BpfError } from '../../engine/native/errors.js';
import { closeAll } from '../../engine/native/guard.js';
import { routeLibbpfLogs, type LibbpfLevel } from '../../engine/native/log.js';
import { BpfObject } from '../../engine/native/object.js';
import { fixtureObject } from './support.js';

after(() => {
  routeLibbpfLogs(null);
  closeAll();
});

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

function failLoad(): void {
  const obj = BpfObject.open(fixtureObject('broken'));
  try {
    assert.throws(() => obj.load(), BpfError);
  } finally {
    obj.close();
  }
}

test('libbpf lines reach the logger with their level, up to the level asked for', async () => {
  const lines: Array<[LibbpfLevel, string]> = [];
  routeLibbpfLogs((level, text) => lines.push([level, text]), 'warn');
  failLoad();
  await settle();
  assert.ok(lines.length > 0, 'no line delivered');
  assert.ok(lines.every(([level]) => level === 'warn'), JSON.stringify(lines.map(([l]) => l)));
  assert.ok(lines.some(([, text]) => /prog 'broken_deref': BPF program load failed/.test(text)));
  assert.ok(lines.every(([, text]) => !text.endsWith('\n')), 'lines come without their newline');

  lines.length = 0;
  routeLibbpfLogs((level, text) => lines.push([level, text]), 'debug');
  failLoad();
  await settle();
  assert.ok(lines.some(([level]) => level === 'debug'), 'debug lines when asked for');

  lines.length = 0;
  routeLibbpfLogs(null);
  failLoad();
  await settle();
  assert.deepEqual(lines, []);
});
