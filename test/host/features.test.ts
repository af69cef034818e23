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
import { RUNNING_KERNEL } from '../helpers/running-kernel.js';

// Each answer is checked against what the running kernel reports (test/helpers/running-kernel.ts):
// this machine (6.18, no kprobes, fentry refused) and the kernel lab (6.1: both present) alike.

test('detectFeatures tells the running kernel\'s truth', async () => {
  const r = await detectFeatures();
  assert.equal(r.kernel, release());

  const kprobes = RUNNING_KERNEL.kprobePmu;
  assert.equal(r.kprobes.present, RUNNING_KERNEL.kprobesAttach, r.kprobes.how);
  assert.match(r.kprobes.how, kprobes ? /kprobe PMU in \/sys\/bus\/event_source\/devices/ : /no kprobe PMU in \/sys\/bus\/event_source\/devices/);
  assert.match(r.kprobes.how, kprobes ? /kprobe_events in \/sys\/kernel\/tracing/ : /no kprobe_events in \/sys\/kernel\/tracing/);
  const configured = RUNNING_KERNEL.config('CONFIG_KPROBES');
  if (configured === 'n') assert.match(r.kprobes.how, /CONFIG_KPROBES is not set/);
  if (configured === 'y') assert.match(r.kprobes.how, /CONFIG_KPROBES=y/);

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
  // Our addon's own load-and-attach decides first, when it is built (npm run build builds it).
  assert.equal(r.fentry.present, RUNNING_KERNEL.fentryAttaches, r.fentry.how);
  if (RUNNING_KERNEL.fentryAttaches) {
    assert.match(r.fentry.how, /kfunc: yes/);
    assert.match(r.fentry.how, /^native probe: attached an fentry program to \w+/);
  } else {
    assert.match(r.fentry.how, /kfunc: no/);
    assert.match(r.fentry.how, /^native probe: loading an fentry program on \w+ was refused: E[A-Z]+/);
  }
  assert.match(r.kprobes.how, kprobes ? /^native probe: attached a kprobe program to \w+ through the kprobe PMU/ : /^native probe: the program loads, but there is no kprobe PMU/);

  assert.equal(r.tracefs.present, true, r.tracefs.how);
  assert.equal(r.tracefs.path, '/sys/kernel/tracing');
  const mounts = readFileSync('/proc/mounts', 'utf8');
  assert.match(mounts, /^\S+ \/sys\/kernel\/tracing tracefs /m, 'tracefs is mounted after detection');

  assert.equal(r.config.available, RUNNING_KERNEL.configSource !== null);
  assert.equal(r.config.source, RUNNING_KERNEL.configSource);
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

test("bpftrace --info's kprobe line is not evidence: it says yes with or without kprobes (this machine has none)", () => {
  // bpftrace prints --info on stderr.
  const r = spawnSync('bpftrace', ['--info'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.status, 0);
  const info = parseBpftraceInfo(`${r.stdout}\n${r.stderr}`);
  assert.equal(info['Probe types']?.['kprobe'], 'yes');
  assert.equal(info['Probe types']?.['kfunc'], RUNNING_KERNEL.fentryAttaches ? 'yes' : 'no');
  assert.equal(info['Probe types']?.['tracepoint'], 'yes');
  assert.equal(info['Kernel features']?.['btf'], 'yes');
});

test('parseBpftoolProbe reads the real `bpftool feature probe kernel -j`', () => {
  const json = execFileSync('bpftool', ['feature', 'probe', 'kernel', '-j'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const p = parseBpftoolProbe(json);
  assert.equal(p.mapTypes['ringbuf'], true);
  assert.equal(p.mapTypes['hash'], true);
  assert.equal(p.programTypes['tracepoint'], true);
  assert.equal(p.systemConfig['CONFIG_BPF_SYSCALL'], RUNNING_KERNEL.config('CONFIG_BPF_SYSCALL'));
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
