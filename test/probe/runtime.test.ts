import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import Type from '#typebox';
import { runProbe, type RunProbeOptions } from '../../engine/probe/runtime.js';
import type { Params, ProbeDefinition, ProbeIO, RawRecord } from '../../engine/probe/types.js';
import { netIface } from '../../probes/net.iface/probe.js';
import { qdiscStats } from '../../probes/qdisc.stats/probe.js';
import { canBuildTopologies, createVethPair } from '../helpers/netns.js';
import { tempBundle } from '../helpers/bundle.js';


function request(def: ProbeDefinition, params: Record<string, unknown> = {}) {
  return { step: 'sample', alias: 'x', probe: def.id, params: params as Params };
}

async function index(dir: string) {
  return JSON.parse(await readFile(join(dir, 'records.json'), 'utf8')) as {
    outcome: { status: string; reason?: string };
    records: Array<RawRecord & { file: string }>;
  };
}

/** A small probe over files, to drive the runtime's paths without a network. */
function fileProbe(overrides: Partial<ProbeDefinition> = {}): ProbeDefinition & { collected: number } {
  const def = {
    collected: 0,
    id: 'test.files',
    title: 'test probe',
    description: 'reads /proc/loadavg',
    normal: 'anything',
    params: { times: { type: 'integer', default: 2, description: 'reads' } },
    requirements: [],
    overhead: 'none',
    driver: 'command',
    data: Type.Object({}),
    async collect(params: Params, io: ProbeIO) {
      def.collected++;
      for (let i = 0; i < (params.times as number); i++) {
        if (i > 0) await io.sleep(10);
        await io.readFile(`loadavg-${i}`, '/proc/loadavg');
      }
    },
    parse(records: RawRecord[]) {
      return { data: { reads: records.length, first: records[0]?.stdout ?? '' }, summary: `${records.length} reads`, severity: 'info' as const };
    },
    ...overrides,
  } satisfies ProbeDefinition & { collected: number };
  return def;
}

describe('runProbe', () => {
  it('runs a probe and writes its evidence', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const def = fileProbe();
    const f = await runProbe(def, request(def, { times: '3' }), b.opts('ok'));
    assert.equal(f.status, 'ok');
    assert.equal(f.summary, '3 reads');
    assert.deepEqual(f.params, { times: 3 });
    assert.equal(f.driver, 'command');
    assert.equal(f.alias, 'x');
    assert.equal(f.step, 'sample');
    assert.deepEqual(f.raw, ['raw/ok/01-loadavg-0.out', 'raw/ok/02-loadavg-1.out', 'raw/ok/03-loadavg-2.out', 'raw/ok/records.json']);
    for (const p of f.raw) assert.ok(existsSync(join(b.root, p)), p);
    assert.deepEqual((await index(b.dir('ok'))).outcome, { status: 'ok' });
    assert.ok(Date.parse(f.endedAt) >= Date.parse(f.startedAt));
  });

  it('turns bad params into an error finding, never a throw', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const f = await runProbe(netIface, request(netIface, { duration: 'abc' }), b.opts('bad'));
    assert.equal(f.status, 'error');
    assert.equal(f.reason, 'probe net.iface: param "duration": expected a duration like 5s, got "abc"');
    assert.equal(f.summary, `failed: ${f.reason}`);
    assert.equal(f.severity, 'warning');
    assert.deepEqual(f.data, {});
    assert.deepEqual((await index(b.dir('bad'))).outcome, { status: 'error', reason: f.reason });

    const g = await runProbe(netIface, request(netIface, { dev: 'eth0' }), b.opts('unknown'));
    assert.equal(g.status, 'error');
    assert.match(g.reason!, /^probe net\.iface: unknown param "dev" \(known params: devices, duration, interval, queues\)$/);
  });

  it('skips a probe whose binary is missing, without collecting, and replays the skip', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const def = fileProbe({ requirements: [{ kind: 'binary', name: 'ebpfnet-no-such-tool', package: 'ebpfnet-tools' }] });
    const f = await runProbe(def, request(def), b.opts('skip'));
    assert.equal(f.status, 'skipped');
    assert.match(f.reason!, /^binary ebpfnet-no-such-tool missing: .*ebpfnet-tools/);
    assert.equal(f.summary, `skipped: ${f.reason}`);
    assert.equal(f.severity, 'warning');
    assert.deepEqual(f.data, {});
    assert.equal(def.collected, 0);
    assert.deepEqual((await index(b.dir('skip'))).outcome, { status: 'skipped', reason: f.reason });

    const r = await runProbe(def, request(def), b.opts('skip-replay', { replayFrom: b.dir('skip') }));
    assert.equal(r.status, 'skipped');
    assert.equal(r.reason, f.reason);
    assert.equal(r.driver, 'replay');
    assert.equal(def.collected, 0);
  });

  it('reports a collect failure as an error with a one-line reason, and replays it', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const f = await runProbe(qdiscStats, request(qdiscStats, { devices: 'ebtnosuch0', duration: '1s' }), b.opts('tc'));
    assert.equal(f.status, 'error');
    assert.equal(f.reason, 'command "tc -s -j qdisc show dev ebtnosuch0" exited with code 1: Cannot find device "ebtnosuch0"');
    const idx = await index(b.dir('tc'));
    assert.equal(idx.records.length, 1, 'the failed command is in the evidence');
    assert.equal(idx.records[0]!.exitCode, 1);

    const r = await runProbe(qdiscStats, request(qdiscStats, { devices: 'ebtnosuch0', duration: '1s' }), b.opts('tc-replay', { replayFrom: b.dir('tc') }));
    assert.equal(r.status, 'error');
    assert.equal(r.reason, f.reason);
  });

  it('reports a parse failure as an error and keeps the evidence', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const def = fileProbe({
      parse() {
        throw new Error('unexpected format\nsecond line');
      },
    });
    const f = await runProbe(def, request(def), b.opts('parse'));
    assert.equal(f.status, 'error');
    assert.equal(f.reason, 'parse failed: unexpected format second line');
    assert.equal((await index(b.dir('parse'))).records.length, 2);
  });

  it('replays deterministically and says where a replay diverges', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const def = fileProbe();
    const live = await runProbe(def, request(def), b.opts('live'));
    const again = await runProbe(def, request(def), b.opts('replay', { replayFrom: b.dir('live') }));
    assert.equal(again.status, 'ok');
    assert.equal(again.driver, 'replay');
    assert.deepEqual(again.data, live.data);

    const more = await runProbe(def, request(def, { times: 3 }), b.opts('more', { replayFrom: b.dir('live') }));
    assert.equal(more.status, 'error');
    assert.equal(more.reason, `replay mismatch in ${b.dir('live')}: the recording has no more observations but the probe asked for read "loadavg-2"`);

    const fewer = await runProbe(def, request(def, { times: 1 }), b.opts('fewer', { replayFrom: b.dir('live') }));
    assert.equal(fewer.status, 'error');
    assert.match(fewer.reason!, /the probe finished but 1 recorded observation\(s\) were not asked for \(next: read "loadavg-1"\)/);

    const other = await runProbe(netIface, request(netIface), b.opts('other', { replayFrom: b.dir('live') }));
    assert.equal(other.status, 'error');
    assert.match(other.reason!, /it holds evidence of test\.files, not net\.iface/);
  });

  it('stops a probe that ignores its signal and still returns', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const def = fileProbe({
      async collect(_p, io) {
        await io.readFile('once', '/proc/loadavg');
        await new Promise((resolve) => setTimeout(resolve, 60_000).unref());
      },
    });
    const t0 = Date.now();
    const f = await runProbe(def, request(def), b.opts('stuck', { timeoutMs: 200 }));
    assert.equal(f.status, 'timeout');
    assert.ok(Date.now() - t0 < 5000);
    assert.equal((await index(b.dir('stuck'))).records.length, 1);
  });

  it('refuses an evidence folder outside the bundle (a caller bug)', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const def = fileProbe();
    await assert.rejects(runProbe(def, request(def), { ...b.opts('x'), rawDir: '/tmp/elsewhere-ebpfnet' }), TypeError);
  });
});

const cannot = await canBuildTopologies();

describe('runProbe stopping net.iface mid-sample', () => {
  // CI runs as root with iproute2 and ping installed: a missing tool is a failure, not a skip.
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));
  it('gives interrupted with the partial evidence on disk when aborted', async (t) => {
    const pair = await createVethPair(t);
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(new Error('Ctrl-C')), 700);
    const f = await runProbe(
      netIface,
      request(netIface, { devices: [pair.hostDev], duration: '5s', interval: '200ms' }),
      b.opts('abort', { signal: ac.signal }),
    );
    assert.ok(Date.now() - t0 < 2500, 'stopped promptly');
    assert.equal(f.status, 'interrupted');
    assert.match(f.reason!, /^stopped after \d+ms: Ctrl-C$/);
    assert.deepEqual(f.data, {});
    const idx = await index(b.dir('abort'));
    assert.equal(idx.outcome.status, 'interrupted');
    // readdir of the devices and of the device's queues, then one batch per sample: at least
    // samples 0..2 (t = 0, 200, 400 ms), not all 26. The first batch also reads the queues'
    // attributes (tx_timeout, BQL), which are read at the ends of the window only.
    assert.deepEqual(idx.records.slice(0, 2).map((r) => r.op), ['readdir', 'readdir']);
    const batches = idx.records.slice(2);
    assert.ok(batches.length >= 3, `only ${batches.length} samples`);
    assert.ok(batches.length < 26);
    assert.ok(batches.every((r) => r.op === 'readfiles'));
    assert.ok(batches.slice(1).every((r) => r.paths?.length === 19 || r.paths?.length === 24));
    assert.ok(batches[0]!.paths!.length > batches[1]!.paths!.length);
    const files = await readdir(b.dir('abort'));
    assert.equal(files.filter((n) => n.endsWith('.out')).length, idx.records.length);
    assert.equal(f.raw.length, idx.records.length + 1);
    for (const r of idx.records) assert.ok(existsSync(join(b.root, r.file)), r.file);

    // A replay reproduces the interruption.
    const r = await runProbe(netIface, request(netIface, { devices: [pair.hostDev], duration: '5s', interval: '200ms' }), b.opts('abort-replay', { replayFrom: b.dir('abort') }));
    assert.equal(r.status, 'interrupted');
    assert.equal(r.reason, f.reason);
  });

  it('gives timeout when its own time limit passes, keeping the evidence', async (t) => {
    const pair = await createVethPair(t);
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const t0 = Date.now();
    const f = await runProbe(
      netIface,
      request(netIface, { devices: [pair.hostDev], duration: '5s', interval: '100ms' }),
      b.opts('timeout', { timeoutMs: 600 }),
    );
    assert.ok(Date.now() - t0 < 2500);
    assert.equal(f.status, 'timeout');
    assert.equal(f.reason, 'timed out after 600ms');
    assert.equal(f.summary, 'timeout: timed out after 600ms');
    const idx = await index(b.dir('timeout'));
    assert.deepEqual(idx.outcome, { status: 'timeout', reason: 'timed out after 600ms' });
    assert.ok(idx.records.length >= 1 + 2, `only ${idx.records.length} records`);
  });

  it('gives interrupted at once when the signal is already aborted', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-runtime-');
    const ac = new AbortController();
    ac.abort();
    const f = await runProbe(netIface, request(netIface), b.opts('pre', { signal: ac.signal }));
    assert.equal(f.status, 'interrupted');
    assert.deepEqual((await index(b.dir('pre'))).records, []);
  });
});
