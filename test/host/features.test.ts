import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { test } from 'node:test';
import {
  detectFeatures,
  featureStatus,
  parseBpftoolProbe,
  parseBpftraceInfo,
  parseKernelConfig,
  parseKernelRelease,
} from '../../engine/host/features.js';

// The project's machine kind: kernel 6.18 with BTF, no kprobes, fentry refused, bpftool and bpftrace installed.

test('detectFeatures tells this machine the truth', async () => {
  const r = await detectFeatures();
  assert.equal(r.kernel, release());

  assert.equal(r.kprobes.present, false, r.kprobes.how);
  assert.match(r.kprobes.how, /no kprobe PMU in \/sys\/bus\/event_source\/devices/);
  assert.match(r.kprobes.how, /no kprobe_events in \/sys\/kernel\/tracing/);
  assert.match(r.kprobes.how, /CONFIG_KPROBES is not set/);

  assert.equal(r.tracepoints.present, true, r.tracepoints.how);
  for (const family of ['skb', 'net', 'napi', 'qdisc', 'irq', 'sched', 'tcp']) {
    assert.ok(r.tracepoints.categories.includes(family), `tracepoint family ${family}`);
  }
  assert.equal(r.uprobes.present, true, r.uprobes.how);
  assert.equal(r.btf.present, true, r.btf.how);
  assert.match(r.btf.how, /\/sys\/kernel\/btf\/vmlinux exists/);
  assert.equal(r.ringbuf.present, true, r.ringbuf.how);
  assert.match(r.ringbuf.how, /bpftool feature probe kernel: have_ringbuf_map_type true/);

  assert.equal(r.tools.bpftrace, '/usr/bin/bpftrace');
  assert.equal(r.fentry.present, false, r.fentry.how);
  assert.match(r.fentry.how, /kfunc: no/);
  // Our addon's own load-and-attach decides first, when it is built (npm run build builds it).
  assert.match(r.fentry.how, /^native probe: loading an fentry program on \w+ was refused: EPERM/);
  assert.match(r.kprobes.how, /^native probe: the program loads, but there is no kprobe PMU/);

  assert.equal(r.tracefs.present, true, r.tracefs.how);
  assert.equal(r.tracefs.path, '/sys/kernel/tracing');
  const mounts = readFileSync('/proc/mounts', 'utf8');
  assert.match(mounts, /^\S+ \/sys\/kernel\/tracing tracefs /m, 'tracefs is mounted after detection');

  assert.equal(r.config.available, true);
  assert.equal(r.config.source, '/proc/config.gz');
});

test('detection is cached per process, and refresh detects again', async () => {
  const a = await detectFeatures();
  assert.equal(await detectFeatures(), a);
  assert.deepEqual(await featureStatus('kprobes'), { present: a.kprobes.present, how: a.kprobes.how });
  const b = await detectFeatures({ refresh: true });
  assert.notEqual(b, a);
  assert.equal(b.kprobes.present, a.kprobes.present);
  assert.equal(await detectFeatures(), b);
});

test("bpftrace --info's kprobe line is not evidence: it says yes where kprobes are absent", () => {
  // bpftrace prints --info on stderr.
  const r = spawnSync('bpftrace', ['--info'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.status, 0);
  const info = parseBpftraceInfo(`${r.stdout}\n${r.stderr}`);
  assert.equal(info['Probe types']?.['kprobe'], 'yes');
  assert.equal(info['Probe types']?.['kfunc'], 'no');
  assert.equal(info['Probe types']?.['tracepoint'], 'yes');
  assert.equal(info['Kernel features']?.['btf'], 'yes');
});

test('parseBpftoolProbe reads the real `bpftool feature probe kernel -j`', () => {
  const json = execFileSync('bpftool', ['feature', 'probe', 'kernel', '-j'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const p = parseBpftoolProbe(json);
  assert.equal(p.mapTypes['ringbuf'], true);
  assert.equal(p.mapTypes['hash'], true);
  assert.equal(p.programTypes['tracepoint'], true);
  assert.equal(p.systemConfig['CONFIG_BPF_SYSCALL'], 'y');
});

test('parseKernelConfig and parseKernelRelease', () => {
  const cfg = parseKernelConfig('#\n# CONFIG_KPROBES is not set\nCONFIG_UPROBES=y\nCONFIG_HZ=250\nCONFIG_LOCALVERSION="-fc"\n');
  assert.equal(cfg.get('CONFIG_KPROBES'), 'n');
  assert.equal(cfg.get('CONFIG_UPROBES'), 'y');
  assert.equal(cfg.get('CONFIG_HZ'), '250');
  assert.equal(cfg.get('CONFIG_LOCALVERSION'), '-fc');
  assert.equal(cfg.get('CONFIG_NOPE'), undefined);
  assert.deepEqual(parseKernelRelease('6.18.44-fc-v782'), [6, 18, 44]);
  assert.deepEqual(parseKernelRelease('5.8-rc1'), [5, 8, 0]);
  assert.equal(parseKernelRelease('weird'), null);
});
