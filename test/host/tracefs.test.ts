import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import {
  ensureTracefs,
  findTracefs,
  hasTracepoint,
  parseMounts,
  parseTracepointName,
  tracepointCategories,
  tracepointFormat,
  tracepointsIn,
} from '../../engine/host/tracefs.js';

const tracefsModule = new URL('../../engine/host/tracefs.js', import.meta.url).pathname;

test('hasTracepoint: skb:kfree_skb exists, made-up and malformed names do not', async () => {
  assert.equal(await hasTracepoint('skb:kfree_skb'), true);
  assert.equal(await hasTracepoint('net:net_dev_queue'), true);
  assert.equal(await hasTracepoint('skb:ebpfnet_no_such_event'), false);
  assert.equal(await hasTracepoint('ebpfnet_no_such_family:kfree_skb'), false);
  assert.equal(await hasTracepoint('../..:passwd'), false);
  assert.equal(await hasTracepoint('skb/kfree_skb'), false);
});

test('tracepointFormat returns the format file, with the drop reasons of kfree_skb', async () => {
  const fmt = await tracepointFormat('skb:kfree_skb');
  assert.ok(fmt);
  assert.match(fmt, /^name: kfree_skb$/m);
  assert.match(fmt, /field:enum skb_drop_reason reason;/);
  assert.match(fmt, /\{ \d+, "NETFILTER_DROP" \}/);
  assert.equal(await tracepointFormat('skb:ebpfnet_no_such_event'), null);
});

test('categories and events are listed from tracefs', async () => {
  const cats = await tracepointCategories();
  assert.ok(cats.includes('skb') && cats.includes('sched'));
  assert.deepEqual([...cats].sort(), cats);
  assert.ok((await tracepointsIn('skb')).includes('kfree_skb'));
  assert.deepEqual(await tracepointsIn('../..'), []);
});

test('ensureTracefs finds the mounted tracefs', async () => {
  const s = await ensureTracefs();
  assert.equal(s.path, '/sys/kernel/tracing');
  assert.equal(await findTracefs(), '/sys/kernel/tracing');
  assert.equal(s.kernelSupports, true);
});

test('ensureTracefs mounts tracefs where it is not mounted (private mount namespace)', () => {
  // A private mount namespace: unmounting tracefs there leaves the host's mount alone.
  const script = `
    import { execFileSync } from 'node:child_process';
    import { readFileSync } from 'node:fs';
    const mountsOf = (type) => readFileSync('/proc/mounts', 'utf8').split('\\n').filter((l) => l.split(' ')[2] === type);
    const tracefsMounts = () => mountsOf('tracefs');
    // debugfs too: where it is mounted (Debian's kernels), looking in it mounts tracefs again.
    for (const type of ['tracefs', 'debugfs']) while (mountsOf(type).length > 0) execFileSync('umount', [mountsOf(type)[0].split(' ')[1]]);
    const t = await import(${JSON.stringify(tracefsModule)});
    const before = await t.findTracefs();
    const status = await t.ensureTracefs();
    const kfree = await t.hasTracepoint('skb:kfree_skb');
    console.log(JSON.stringify({ before, status, kfree, mounts: tracefsMounts() }));
  `;
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    before: string | null;
    status: { path: string | null; mountedByUs: boolean; how: string };
    kfree: boolean;
    mounts: string[];
  };
  assert.equal(out.before, null);
  assert.equal(out.status.path, '/sys/kernel/tracing');
  assert.equal(out.status.mountedByUs, true);
  assert.match(out.status.how, /mounted it at \/sys\/kernel\/tracing/);
  assert.equal(out.kfree, true);
  assert.equal(out.mounts.length, 1);
  assert.match(out.mounts[0]!, /^nodev \/sys\/kernel\/tracing tracefs /);
});

test('parseMounts and parseTracepointName', () => {
  const m = parseMounts('nodev /sys/kernel/tracing tracefs rw,relatime 0 0\n/dev/sda1 /mnt/with\\040space ext4 rw 0 0\n');
  assert.equal(m.length, 2);
  assert.deepEqual(m[0], { source: 'nodev', target: '/sys/kernel/tracing', fstype: 'tracefs', options: ['rw', 'relatime'] });
  assert.equal(m[1]!.target, '/mnt/with space');
  assert.deepEqual(parseTracepointName('skb:kfree_skb'), { category: 'skb', event: 'kfree_skb' });
  assert.equal(parseTracepointName('kfree_skb'), null);
  assert.equal(parseTracepointName('a:b:c'), null);
});
