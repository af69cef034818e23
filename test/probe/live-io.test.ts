import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileReadings } from '../../engine/probe/file-readings.js';
import { LiveIO } from '../../engine/probe/live-io.js';
import { ReplayIO } from '../../engine/probe/replay-io.js';

const never = () => new AbortController().signal;

describe('LiveIO exec', () => {
  it('runs an argument array without a shell and records it', async () => {
    const io = new LiveIO(never());
    const before = Date.now();
    const rec = await io.exec('echo', ['echo', '$HOME;', 'x*']);
    assert.equal(rec.stdout, '$HOME; x*\n');
    assert.equal(rec.exitCode, 0);
    assert.equal(rec.op, 'exec');
    assert.deepEqual(rec.argv, ['echo', '$HOME;', 'x*']);
    assert.ok(rec.at >= before && rec.at <= Date.now());
    assert.ok(rec.durationMs > 0);
    assert.equal(rec.error, undefined);
  });

  it('throws a clear error on a non-zero exit, keeping stderr and the exit code', async () => {
    const io = new LiveIO(never());
    await assert.rejects(io.exec('ls', ['ls', '/nonexistent-ebpfnet']), {
      message: /^command "ls \/nonexistent-ebpfnet" exited with code 2: ls: cannot access '\/nonexistent-ebpfnet': No such file or directory$/,
    });
    const [rec] = io.records();
    assert.equal(rec!.exitCode, 2);
    assert.match(rec!.stderr, /No such file or directory/);
  });

  it('returns a failure when allowed', async () => {
    const io = new LiveIO(never());
    const rec = await io.exec('false', ['false'], { allowFailure: true });
    assert.equal(rec.exitCode, 1);
    assert.match(rec.error!, /exited with code 1/);
  });

  it('says when the binary is missing (exit 127)', async () => {
    const io = new LiveIO(never());
    await assert.rejects(io.exec('x', ['ebpfnet-no-such-binary']), /^Error: command "ebpfnet-no-such-binary" could not start: spawn ebpfnet-no-such-binary ENOENT$/);
    assert.equal(io.records()[0]!.exitCode, 127);
  });

  it('kills a command past its own timeout', async () => {
    const io = new LiveIO(never());
    const t0 = Date.now();
    await assert.rejects(io.exec('sleep', ['sleep', '5'], { timeoutMs: 200 }), { message: 'command "sleep 5" timed out after 200ms' });
    assert.ok(Date.now() - t0 < 2000, 'killed promptly');
    assert.equal(io.records()[0]!.exitCode, 128 + 15);
  });

  it('kills a running command when aborted', async () => {
    const ac = new AbortController();
    const io = new LiveIO(ac.signal);
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(io.exec('sleep', ['sleep', '5']), /was stopped: the probe was aborted/);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(io.records().length, 1);
    await assert.rejects(io.exec('echo', ['echo']), /probe aborted/);
  });

  it('keeps every record in call order, also when a later one fails', async () => {
    const io = new LiveIO(never());
    const slow = io.exec('slow', ['sh', '-c', 'sleep 0.2; echo slow']);
    const fast = io.exec('fast', ['false']).catch((e: Error) => e);
    await Promise.all([slow, fast]);
    await io.readDir('dir', '/nonexistent-ebpfnet').catch(() => undefined);
    const recs = io.records();
    assert.deepEqual(
      recs.map((r) => [r.seq, r.name, r.exitCode]),
      [
        [1, 'slow', 0],
        [2, 'fast', 1],
        [3, 'dir', 2],
      ],
    );
    assert.equal(recs[0]!.stdout, 'slow\n');
  });
});

describe('LiveIO reads', () => {
  it('reads files and lists directories sorted, one entry per line', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ebpfnet-io-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'b'), 'bee\n');
    await writeFile(join(dir, 'a'), 'ay');
    const io = new LiveIO(never());
    const list = await io.readDir('list', dir);
    assert.equal(list.stdout, 'a\nb\n');
    assert.equal(list.path, dir);
    const file = await io.readFile('b', join(dir, 'b'));
    assert.equal(file.stdout, 'bee\n');
    assert.equal(file.op, 'read');
  });

  it('reads sysfs counters', async () => {
    const io = new LiveIO(never());
    const rec = await io.readFile('lo-rx', '/sys/class/net/lo/statistics/rx_packets');
    assert.match(rec.stdout, /^\d+\n$/);
  });

  it('throws on a failed read, or records it with its errno when allowed', async () => {
    const io = new LiveIO(never());
    await assert.rejects(io.readFile('x', '/nonexistent-ebpfnet/x'), {
      message: 'cannot read /nonexistent-ebpfnet/x: ENOENT: no such file or directory',
    });
    const rec = await io.readFile('y', '/nonexistent-ebpfnet/y', { allowFailure: true });
    assert.equal(rec.exitCode, 2);
    assert.equal(rec.error, 'cannot read /nonexistent-ebpfnet/y: ENOENT: no such file or directory');
    assert.equal(io.records().length, 2);
  });

  it('reads many files as one observation, each failure noted in its entry, and a replay answers it', async () => {
    const io = new LiveIO(never());
    const paths = ['/sys/class/net/lo/statistics/rx_packets', '/nonexistent-ebpfnet/z', '/sys/class/net/lo/mtu'];
    const rec = await io.readFiles('batch', paths);
    assert.equal(rec.op, 'readfiles');
    assert.deepEqual(rec.paths, paths);
    const files = fileReadings(rec);
    assert.deepEqual(files.map((f) => f.path), paths);
    assert.match(files[0]!.text!, /^\d+\n$/);
    assert.deepEqual(files[1], { path: '/nonexistent-ebpfnet/z', errno: 2, error: 'cannot read /nonexistent-ebpfnet/z: ENOENT: no such file or directory' });
    assert.equal(files[2]!.text, '65536\n');
    assert.equal(io.records().length, 1);

    const replay = new ReplayIO(io.records(), 'test', never());
    assert.deepEqual(fileReadings(await replay.readFiles('batch', paths)), files);
    const other = new ReplayIO(io.records(), 'test', never());
    await assert.rejects(other.readFiles('batch', paths.slice(1)), /replay mismatch in test: readfiles "batch" was recorded reading other files/);
  });
});

describe('LiveIO sleep', () => {
  it('waits', async () => {
    const io = new LiveIO(never());
    const t0 = performance.now();
    await io.sleep(120);
    assert.ok(performance.now() - t0 >= 110);
  });

  it('rejects promptly when aborted', async () => {
    const ac = new AbortController();
    const io = new LiveIO(ac.signal);
    const t0 = performance.now();
    setTimeout(() => ac.abort(new Error('Ctrl-C')), 50);
    await assert.rejects(io.sleep(10_000), { message: 'probe aborted: Ctrl-C' });
    assert.ok(performance.now() - t0 < 500);
    await assert.rejects(io.sleep(1), /probe aborted/);
  });
});
