import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { checkRequirements, unmetRequirements } from '../../engine/probe/requirements.js';
import { RUNNING_KERNEL } from '../helpers/running-kernel.js';

const requirementsModule = new URL('../../engine/probe/requirements.js', import.meta.url).pathname;

test('root passes as root', async () => {
  assert.equal(process.geteuid!(), 0, 'the host tests run as root');
  assert.equal(await checkRequirements([{ kind: 'root' }]), null);
  assert.equal(await checkRequirements([]), null);
});

test('a missing binary gives the apt-get hint', async () => {
  assert.equal(
    await checkRequirements([{ kind: 'binary', name: 'ebpfnet-no-such-binary-4711', package: 'ebpfnet-pkg' }]),
    'binary ebpfnet-no-such-binary-4711 missing: apt-get install ebpfnet-pkg',
  );
  assert.match(
    (await checkRequirements([{ kind: 'binary', name: 'ebpfnet-no-such-binary-4711' }])) ?? '',
    /^binary ebpfnet-no-such-binary-4711 missing: .*apt-file search bin\/ebpfnet-no-such-binary-4711/,
  );
  assert.equal(await checkRequirements([{ kind: 'binary', name: 'tc' }]), null);
});

test('kernel features: what the running kernel lacks is reported missing (kprobes and fentry here), the present ones pass', async () => {
  assert.equal(
    await checkRequirements([{ kind: 'kernel', feature: 'kprobes' }]),
    RUNNING_KERNEL.kprobesAttach ? null : 'kernel has no kprobes (CONFIG_KPROBES off): this probe needs them',
  );
  const fentry = await checkRequirements([{ kind: 'kernel', feature: 'fentry' }]);
  if (RUNNING_KERNEL.fentryAttaches) assert.equal(fentry, null);
  else assert.match(fentry ?? '', /^kernel refuses fentry\/fexit programs/);
  for (const feature of ['btf', 'tracefs', 'tracepoints', 'uprobes', 'ringbuf'] as const) {
    assert.equal(await checkRequirements([{ kind: 'kernel', feature }]), null, feature);
  }
});

test('tracepoints and paths', async () => {
  assert.equal(await checkRequirements([{ kind: 'tracepoint', name: 'skb:kfree_skb' }]), null);
  assert.match(
    (await checkRequirements([{ kind: 'tracepoint', name: 'skb:ebpfnet_no_such_event' }])) ?? '',
    /^tracepoint skb:ebpfnet_no_such_event missing/,
  );
  assert.match((await checkRequirements([{ kind: 'tracepoint', name: 'kfree_skb' }])) ?? '', /not of the form category:name/);
  assert.equal(await checkRequirements([{ kind: 'path', path: '/proc/net/snmp', why: 'x' }]), null);
  assert.equal(
    await checkRequirements([{ kind: 'path', path: '/ebpfnet/no/such/path', why: 'start the lab first' }]),
    '/ebpfnet/no/such/path missing: start the lab first',
  );
});

test('the first unmet requirement is the one reported; unmetRequirements lists all', async () => {
  const reqs = [
    { kind: 'binary', name: 'tc' },
    { kind: 'kernel', feature: 'btf' },
    { kind: 'tracepoint', name: 'skb:kfree_skb' },
    { kind: 'tracepoint', name: 'skb:ebpfnet_no_such_event' },
    { kind: 'binary', name: 'ebpfnet-no-such-binary-4711', package: 'p' },
  ] as const;
  assert.match((await checkRequirements([...reqs])) ?? '', /ebpfnet_no_such_event/);
  const unmet = await unmetRequirements([...reqs]);
  assert.deepEqual(
    unmet.map((u) => u.requirement),
    [reqs[3], reqs[4]],
  );
});

test('as nobody, the root requirement says to run as root', () => {
  const script = `
    const { checkRequirements } = await import(${JSON.stringify(requirementsModule)});
    console.log(await checkRequirements([{ kind: 'root' }, { kind: 'kernel', feature: 'btf' }]));
  `;
  const r = spawnSync(
    'setpriv',
    ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '--input-type=module', '-e', script],
    { encoding: 'utf8', cwd: '/tmp' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'not root: run ebpfnet as root (sudo)');
});
