import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readEvidence, writeEvidence } from '../../engine/probe/evidence.js';
import { ReplayIO, ReplayMismatchError } from '../../engine/probe/replay-io.js';
import type { RawRecord } from '../../engine/probe/types.js';

async function tempBundle(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ebpfnet-evidence-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const RECORDS: RawRecord[] = [
  { seq: 1, op: 'readdir', name: 'devices', path: '/sys/class/net', at: 1000, durationMs: 0.5, stdout: 'eth0\nlo\n', stderr: '', exitCode: 0 },
  { seq: 2, op: 'exec', name: 'tc start/dev eth0', argv: ['tc', '-s', 'qdisc'], at: 1001, durationMs: 3, stdout: '', stderr: 'Warning: x\n', exitCode: 0 },
  {
    seq: 3,
    op: 'read',
    name: 'gone',
    path: '/sys/class/net/veth9/mtu',
    at: 1002,
    durationMs: 0.1,
    stdout: '',
    stderr: 'ENOENT: no such file or directory',
    exitCode: 2,
    error: 'cannot read /sys/class/net/veth9/mtu: ENOENT: no such file or directory',
  },
];

describe('evidence files', () => {
  it('writes one file per record, stderr only when present, and an index without the output', async (t) => {
    const bundle = await tempBundle(t);
    const rawDir = join(bundle, 'raw', '01-sample', 'iface');
    const written = await writeEvidence(rawDir, bundle, {
      probe: 'net.iface',
      params: { duration: 5000 },
      outcome: { status: 'error', reason: 'boom' },
      records: [...RECORDS].reverse(),
    });
    assert.deepEqual(written, [
      'raw/01-sample/iface/01-devices.out',
      'raw/01-sample/iface/02-tc_start_dev_eth0.out',
      'raw/01-sample/iface/02-tc_start_dev_eth0.err',
      'raw/01-sample/iface/03-gone.out',
      'raw/01-sample/iface/03-gone.err',
      'raw/01-sample/iface/records.json',
    ]);
    assert.deepEqual((await readdir(rawDir)).sort(), written.map((p) => p.split('/').pop()!).sort());
    assert.equal(await readFile(join(rawDir, '01-devices.out'), 'utf8'), 'eth0\nlo\n');
    assert.equal(await readFile(join(rawDir, '02-tc_start_dev_eth0.out'), 'utf8'), '');
    const index = JSON.parse(await readFile(join(rawDir, 'records.json'), 'utf8'));
    assert.deepEqual(index.outcome, { status: 'error', reason: 'boom' });
    assert.equal(index.records[0].file, 'raw/01-sample/iface/01-devices.out');
    assert.equal('stdout' in index.records[0], false);
    assert.equal(index.records[1].stderrFile, 'raw/01-sample/iface/02-tc_start_dev_eth0.err');
  });

  it('reads back exactly what was written', async (t) => {
    const bundle = await tempBundle(t);
    const rawDir = join(bundle, 'raw', 'x');
    await writeEvidence(rawDir, bundle, { probe: 'p', params: { a: 1 }, outcome: { status: 'ok' }, records: RECORDS });
    const back = await readEvidence(rawDir);
    assert.equal(back.probe, 'p');
    assert.deepEqual(back.params, { a: 1 });
    assert.deepEqual(back.outcome, { status: 'ok' });
    assert.deepEqual(
      back.records.map(({ file: _f, ...r }) => r),
      RECORDS,
    );
    assert.equal(back.records[0]!.file, 'raw/x/01-devices.out');
  });

  it('pads sequence numbers to the widest one', async (t) => {
    const bundle = await tempBundle(t);
    const many: RawRecord[] = Array.from({ length: 120 }, (_, i) => ({ ...RECORDS[0]!, seq: i + 1, name: `r${i + 1}` }));
    const written = await writeEvidence(join(bundle, 'r'), bundle, { probe: 'p', params: {}, outcome: { status: 'ok' }, records: many });
    assert.equal(written[0], 'r/001-r1.out');
    assert.equal(written[119], 'r/120-r120.out');
  });

  it('refuses an evidence folder outside the bundle', async (t) => {
    const bundle = await tempBundle(t);
    await assert.rejects(
      writeEvidence(join(bundle, '..', 'elsewhere'), bundle, { probe: 'p', params: {}, outcome: { status: 'ok' }, records: [] }),
      /is not inside the bundle/,
    );
    assert.equal(existsSync(join(bundle, '..', 'elsewhere')), false);
  });

  it('says clearly when a folder holds no evidence', async (t) => {
    const bundle = await tempBundle(t);
    await assert.rejects(readEvidence(bundle), /no readable probe evidence in/);
  });
});

describe('ReplayIO', () => {
  const signal = new AbortController().signal;

  it('answers calls in order with the recorded observations', async () => {
    const io = new ReplayIO(RECORDS, '/b/raw/x', signal);
    const a = await io.readDir('devices', '/sys/class/net');
    assert.equal(a.stdout, 'eth0\nlo\n');
    const b = await io.exec('tc start/dev eth0', ['tc', '-s', 'qdisc']);
    assert.equal(b.stderr, 'Warning: x\n');
    const c = await io.readFile('gone', '/sys/class/net/veth9/mtu', { allowFailure: true });
    assert.equal(c.exitCode, 2);
    assert.equal(io.remaining().length, 0);
  });

  it('throws the recorded error of a failed observation unless failure is allowed', async () => {
    const io = new ReplayIO([RECORDS[2]!], '/b', signal);
    await assert.rejects(io.readFile('gone', '/sys/class/net/veth9/mtu'), {
      message: 'cannot read /sys/class/net/veth9/mtu: ENOENT: no such file or directory',
    });
  });

  it('names the recording, what was expected and what was asked on a mismatch', async () => {
    const rec: RawRecord = { seq: 1, op: 'exec', name: 'tc-qdisc', argv: ['tc'], at: 1, durationMs: 1, stdout: '', stderr: '', exitCode: 0 };
    const io = new ReplayIO([rec], '/runs/b/raw/01-sample/qdisc', signal);
    await assert.rejects(io.readFile('x', '/x'), (err: unknown) => {
      assert.ok(err instanceof ReplayMismatchError);
      assert.equal(err.message, 'replay mismatch in /runs/b/raw/01-sample/qdisc: expected exec "tc-qdisc" but the probe asked for read "x"');
      return true;
    });
    await assert.rejects(io.exec('tc-qdisc', ['tc', '-s']), /exec "tc-qdisc" was recorded as \["tc"\] but the probe ran \["tc","-s"\]/);
    await io.exec('tc-qdisc', ['tc']);
    await assert.rejects(io.exec('more', ['tc']), /the recording has no more observations but the probe asked for exec "more"/);
  });

  it('checks the path of reads', async () => {
    const io = new ReplayIO([RECORDS[0]!], '/b', signal);
    await assert.rejects(io.readDir('devices', '/proc/net'), /readdir "devices" was recorded reading \/sys\/class\/net but the probe asked for \/proc\/net/);
  });

  it('sleeps instantly and deterministically answers concurrent calls in call order', async () => {
    const recs: RawRecord[] = ['a', 'b', 'c'].map((name, i) => ({ ...RECORDS[0]!, seq: i + 1, name, path: `/p/${name}`, stdout: name }));
    const io = new ReplayIO(recs, '/b', signal);
    const t0 = Date.now();
    await io.sleep(60_000);
    assert.ok(Date.now() - t0 < 100);
    const out = await Promise.all(['a', 'b', 'c'].map((n) => io.readDir(n, `/p/${n}`)));
    assert.deepEqual(
      out.map((r) => r.stdout),
      ['a', 'b', 'c'],
    );
  });

  it('rejects once aborted', async () => {
    const ac = new AbortController();
    const io = new ReplayIO(RECORDS, '/b', ac.signal);
    ac.abort();
    await assert.rejects(io.sleep(1), /probe aborted/);
    await assert.rejects(io.readDir('devices', '/sys/class/net'), /probe aborted/);
  });
});
