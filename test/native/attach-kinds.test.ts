// What the kernel accepts: kprobe/fentry twins and the feature probes that predict them,
// and the verifier log of a program it rejects.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { BpfError } from '../../engine/native/errors.js';
import { featureStatuses } from '../../engine/host/features.js';
import { nativeFeatures } from '../../engine/native/features.js';
import { closeAll } from '../../engine/native/guard.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { fixtureObject } from './support.js';

after(() => closeAll());

const features = nativeFeatures();

test('feature probes answer for every type, with the errno of what failed', () => {
  assert.equal(features.btf.present, true);
  assert.equal(features.progTypes.tracepoint.supported, true);
  assert.equal(features.mapTypes.ringbuf.supported, true);
  for (const attempt of [features.kprobe, features.fentry]) {
    if (attempt.attaches) {
      assert.equal(attempt.loads, true);
      assert.equal(attempt.errno, undefined);
    } else {
      assert.ok(attempt.errno && attempt.errno > 0, attempt.how);
      assert.match(attempt.code ?? '', /^E[A-Z0-9]+$/);
      assert.ok(attempt.how.includes(attempt.code!), attempt.how);
    }
  }
  const statuses = featureStatuses(features);
  assert.equal(statuses.kprobes.present, features.kprobe.attaches);
  assert.equal(statuses.fentry.present, features.fentry.attaches);
  assert.equal(statuses.ringbuf.present, true);
});

test('the kprobe twin passes the verifier; attaching it fails exactly when the probe said so', () => {
  const obj = BpfObject.open(bpfObjectPath('selftest'), { autoload: { st_kprobe: true } });
  try {
    assert.equal(obj.program('st_kprobe').autoload, true);
    assert.equal(obj.program('st_kprobe').type, 'kprobe');
    obj.load();
    assert.notEqual(obj.program('st_kprobe').info.fd, null, 'loaded: the verifier accepted it');
    if (features.kprobe.attaches) {
      const link = obj.program('st_kprobe').attachKprobe('vfs_read');
      assert.equal(link.detach(), true);
      return;
    }
    assert.throws(
      () => obj.program('st_kprobe').attach(),
      (e: unknown) =>
        e instanceof BpfError &&
        typeof e.errno === 'number' &&
        e.errno > 0 &&
        /^attach st_kprobe \(auto kprobe\/vfs_read\): .+ \(E[A-Z0-9]+\)$/.test(e.message),
    );
    assert.throws(
      () => obj.program('st_kprobe').attachKretprobe('vfs_read'),
      /^BpfError: attach st_kprobe \(kprobe vfs_read\): .+ \(E[A-Z0-9]+\)$/,
    );
  } finally {
    obj.close();
  }
});

test('the fentry twin loads and attaches exactly when the probe said so', () => {
  const obj = BpfObject.open(bpfObjectPath('selftest'), { autoload: { st_fentry: true } });
  try {
    assert.equal(obj.program('st_fentry').type, 'tracing');
    assert.equal(obj.program('st_fentry').info.attachType, 'trace_fentry');
    if (!features.fentry.loads) {
      assert.throws(
        () => obj.load(),
        (e: unknown) =>
          e instanceof BpfError && e.code === features.fentry.code && e.errno === features.fentry.errno && /st_fentry/.test(e.log),
      );
      return;
    }
    obj.load();
    if (features.fentry.attaches) assert.equal(obj.program('st_fentry').attachTrace().detach(), true);
    else assert.throws(() => obj.program('st_fentry').attachTrace(), BpfError);
  } finally {
    obj.close();
  }
});

test('twins start with autoload off, so the object loads on kernels without them', () => {
  const obj = BpfObject.open(bpfObjectPath('selftest'));
  try {
    assert.equal(obj.program('st_kprobe').autoload, false);
    assert.equal(obj.program('st_fentry').autoload, false);
    obj.load();
    assert.equal(obj.program('st_fentry').info.fd, null);
    assert.throws(() => obj.program('st_fentry').attachTrace(), /program not loaded \(autoload off\)/);
    assert.throws(() => (obj.program('st_kprobe').autoload = true), /already loaded/);
  } finally {
    obj.close();
  }
});

test('a program the verifier rejects: load fails with the verifier log', () => {
  const obj = BpfObject.open(fixtureObject('broken'));
  try {
    let caught: unknown;
    try {
      obj.load();
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof BpfError, String(caught));
    assert.equal(caught.code, 'EACCES');
    assert.match(caught.message, /^load .*broken\.bpf\.o: Permission denied \(EACCES\)$/);
    assert.match(caught.log, /prog 'broken_deref': BPF program load failed/);
    const verifier = caught.verifierLog;
    assert.ok(verifier, 'no verifier log');
    assert.match(verifier, /invalid mem access 'map_value_or_null'/);
    assert.equal(obj.loaded, false);
  } finally {
    obj.close();
  }
});

test('a missing object file is an errno error', () => {
  assert.throws(
    () => BpfObject.open('/nonexistent/ebpfnet.bpf.o'),
    (e: unknown) => e instanceof BpfError && e.code === 'ENOENT' && /^open \/nonexistent\/ebpfnet\.bpf\.o: /.test(e.message),
  );
});
