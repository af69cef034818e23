import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { findFirstBinary } from '../../engine/host/binaries.js';
import { DOCTOR_BINARIES, formatDoctorTable, runDoctor, type DoctorReport } from '../../engine/host/doctor.js';
import { RUNNING_KERNEL } from '../helpers/running-kernel.js';

const doctorModule = new URL('../../engine/host/doctor.js', import.meta.url).pathname;

const FEATURE_IDS = ['root', 'kernel', 'kernel-config', 'btf', 'tracefs', 'tracepoints', 'kprobes', 'fentry', 'uprobes', 'ringbuf'];

test('doctor reports the running kernel', async () => {
  const r = await runDoctor();
  assert.equal(r.ok, true);
  const byId = new Map(r.checks.map((c) => [c.id, c]));
  const ids = [...FEATURE_IDS, ...DOCTOR_BINARIES.map((b) => `binary:${b.id}`), 'selftest'];
  assert.deepEqual(r.checks.map((c) => c.id), ids);
  assert.equal(byId.get('root')!.status, 'ok');
  assert.equal(byId.get('btf')!.status, 'ok');
  assert.equal(byId.get('tracefs')!.status, 'ok');
  assert.equal(byId.get('kprobes')!.status, RUNNING_KERNEL.kprobesAttach ? 'ok' : 'missing');
  assert.equal(byId.get('fentry')!.status, RUNNING_KERNEL.fentryAttaches ? 'ok' : 'missing');
  assert.equal(byId.get('uprobes')!.status, 'ok');
  assert.equal(byId.get('ringbuf')!.status, 'ok');
  const tp = byId.get('tracepoints')!;
  assert.notEqual(tp.status, 'missing');
  assert.match(tp.detail, /probe families present: skb\(\d+\) net\(\d+\) napi\(\d+\) qdisc\(\d+\) irq\(\d+\) sched\(\d+\) tcp\(\d+\)/);
  for (const spec of DOCTOR_BINARIES) {
    const c = byId.get(`binary:${spec.id}`)!;
    const found = await findFirstBinary(spec.names);
    if (found) {
      assert.equal(c.status, 'ok', spec.id);
      assert.ok(c.detail.startsWith(found.path), c.detail);
    } else {
      assert.equal(c.status, 'missing', spec.id);
      assert.match(c.detail, /^not found: apt-get install \S+$/);
    }
  }
  assert.match(byId.get('binary:tc')!.detail, /^\/usr\/sbin\/tc: tc utility, iproute2-/);
  assert.match(byId.get('binary:bpftool')!.detail, /^\/usr\/sbin\/bpftool: bpftool v\d/);
  assert.equal(r.features.kprobes.present, RUNNING_KERNEL.kprobesAttach);
  assert.equal(r.host.root, true);
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
});

test('the table lists every check id, aligned, without colours unless asked', async () => {
  const r = await runDoctor();
  const table = formatDoctorTable(r, { color: false });
  assert.doesNotMatch(table, /\x1b\[/);
  const lines = table.split('\n');
  assert.match(lines[0]!, /^CHECK\s+STATUS\s+DETAIL$/);
  const statusCol = lines[0]!.indexOf('STATUS');
  const detailCol = lines[0]!.indexOf('DETAIL');
  for (const c of r.checks) {
    const line = lines.find((l) => l.startsWith(`${c.id} `));
    assert.ok(line, `row for ${c.id}`);
    assert.equal(line.slice(statusCol, statusCol + c.status.length), c.status, c.id);
    assert.equal(line.slice(detailCol), c.detail, c.id);
  }
  assert.match(table, /ebpfnet can run here\.\n$/);
  assert.match(formatDoctorTable(r, { color: true }), /\x1b\[32mok\x1b\[0m/);
});

test('the table says why when something essential is missing', async () => {
  const r = await runDoctor();
  const notRoot: DoctorReport = {
    ...r,
    ok: false,
    checks: r.checks.map((c) => (c.id === 'root' ? { ...c, status: 'missing', detail: 'uid 1000: run ebpfnet as root (sudo)' } : c)),
  };
  assert.match(formatDoctorTable(notRoot, { color: false }), /ebpfnet cannot run here: root missing\.\n$/);
});

test('as nobody, doctor is not ok and says why, without crashing', () => {
  const script = `
    const d = await import(${JSON.stringify(doctorModule)});
    const r = await d.runDoctor();
    console.log(JSON.stringify({ ok: r.ok, checks: r.checks, table: d.formatDoctorTable(r, { color: false }) }));
  `;
  const r = spawnSync(
    'setpriv',
    ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '--input-type=module', '-e', script],
    { encoding: 'utf8', cwd: '/tmp' },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ id: string; status: string; detail: string }>; table: string };
  assert.equal(out.ok, false);
  const byId = new Map(out.checks.map((c) => [c.id, c]));
  assert.equal(byId.get('root')!.status, 'missing');
  assert.match(byId.get('root')!.detail, /^uid 65534: run ebpfnet as root \(sudo\)$/);
  // The kprobe PMU is in sysfs, which nobody reads too.
  assert.equal(byId.get('kprobes')!.status, RUNNING_KERNEL.kprobePmu ? 'ok' : 'missing');
  assert.equal(byId.get('fentry')!.status, 'warn');
  assert.match(byId.get('fentry')!.detail, /^unknown: /);
  assert.equal(byId.get('btf')!.status, 'ok');
  assert.match(out.table, /ebpfnet cannot run here: root missing\./);
});
