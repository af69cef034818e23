// Time to verdict: for each lab scenario, the wall time of `ebpfnet diagnose vm-loss|vm-latency
// --vm NAME --input duration=2s --json` (no inventory: the VM's address is learned inside the
// run) from the command's start to its exit with the conclusion, split into probe sampling (the `duration` each visited probe step waits for)
// and everything else (Node start, VM discovery, BPF load and attach, counter reads, parsing,
// branching, the bundle). One lab per bridge kind is shared by its scenarios; each fault is
// removed before the next.
//   npx tsc -p tsconfig.json && node dist/test/bench/verdict.js
// Root, QEMU and Open vSwitch needed; about two minutes. BENCHMARKS.md keeps the figures.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import type { RunRecord } from '../../engine/run/record.js';
import { Cleanup } from '../helpers/cleanup.js';
import { backgroundTraffic, backgroundUdp, backgroundUdpFlows, diagnoseVm, fillConntrack } from '../lab/scenario.js';
import { buildLabTopology, type LabTopology } from '../lab/topology.js';

const DURATION_MS = 2000;

interface Row {
  scenario: string;
  conclusion: string;
  wallMs: number;
  steps: number;
  samplingMs: number;
  /** Inside the steps, beyond their sampling: loads, attaches, reads, parsing. */
  inStepsMs: number;
  /** The slowest step's time beyond its sampling, and which. */
  worstStep: string;
  /** From the command's start to its first step (Node, modules, runbook, the VM resolved). */
  beforeMs: number;
  /** From the last step's end to the command's exit (branching, the bundle, the JSON). */
  afterMs: number;
}

const rows: Row[] = [];

/** Injects the fault, runs the runbook through the CLI, records the split, removes the fault. */
async function measure(lab: LabTopology, scenario: string, runbook: 'vm-loss' | 'vm-latency', inject: (u: Cleanup) => Promise<void>): Promise<void> {
  const undo = new Cleanup();
  try {
    await inject(undo);
    const t0 = performance.now();
    const startedAt = Date.now();
    // No inventory: the VM's address is learned (libvirt, its agent, its own frames) inside the run.
    const r = await diagnoseVm(undo, runbook, lab.vm.name, null);
    const wallMs = performance.now() - t0;
    const exitedAt = startedAt + wallMs;
    const record = JSON.parse(readFileSync(join(r.bundle, 'run.json'), 'utf8')) as RunRecord;
    const probeSteps = record.timeline.filter((e) => e.kind === 'probe');
    const steps = probeSteps.length;
    const over = probeSteps.map((e) => ({ step: e.step, ms: Date.parse(e.endedAt!) - Date.parse(e.startedAt) - DURATION_MS }));
    const worst = over.reduce((a, b) => (b.ms > a.ms ? b : a));
    // Within the slowest step, each probe's time beyond its sampling: where the step's extra goes.
    const byProbe = (record as unknown as { findings: Array<{ step: string; alias: string; durationMs: number }> }).findings
      .filter((f) => f.step === worst.step)
      .map((f) => `${f.alias} +${Math.round(f.durationMs - DURATION_MS)}`)
      .join(', ');
    rows.push({
      scenario,
      conclusion: r.conclusion?.id ?? '(none)',
      wallMs,
      steps,
      samplingMs: steps * DURATION_MS,
      inStepsMs: over.reduce((sum, o) => sum + o.ms, 0),
      worstStep: `${worst.step} +${Math.round(worst.ms)} ms: ${byProbe}`,
      beforeMs: Date.parse(probeSteps[0]!.startedAt) - startedAt,
      afterMs: exitedAt - Date.parse(probeSteps[probeSteps.length - 1]!.endedAt!),
    });
    console.log(`${scenario}: ${r.conclusion?.id} in ${Math.round(wallMs)} ms`);
  } finally {
    await undo.run();
  }
}

function traffic(u: Cleanup, lab: LabTopology, opts: { port: number; size?: number; intervalMs?: number }): void {
  const t = backgroundUdp(lab, lab.vm.ip, opts);
  u.after(() => t.stop());
}

async function linux(): Promise<void> {
  const lab = await buildLabTopology(undefined, { bridge: 'linux' });
  // The VM's own echoed traffic throughout, as a VM in use has: its address is learned from it.
  const own = backgroundTraffic(lab, lab.vm, { intervalMs: 20 });
  try {
    await lab.peer.pinNeighbor(lab.vm.ip, lab.vm.mac);
    const table = `ebpfnet_bench_${process.pid}`;
    await measure(lab, 'healthy VM (loss)', 'vm-loss', async (u) => traffic(u, lab, { port: 7, intervalMs: 5 }));
    await measure(lab, 'nftables drop rule', 'vm-loss', async (u) => {
      u.after(() => execa('nft', ['delete', 'table', 'bridge', table], { reject: false }));
      await execa('nft', ['-f', '-'], { input: `table bridge ${table} { chain vmfwd { type filter hook forward priority 0; ip daddr ${lab.vm.ip} udp dport 9 counter drop; }; }` });
      traffic(u, lab, { port: 9 });
    });
    await measure(lab, 'tbf with a tiny queue', 'vm-loss', async (u) => {
      u.after(() => execa('tc', ['qdisc', 'del', 'dev', lab.vm.tap, 'root'], { reject: false }));
      await execa('tc', ['qdisc', 'add', 'dev', lab.vm.tap, 'root', 'tbf', 'rate', '200kbit', 'burst', '1600', 'limit', '3000']);
      traffic(u, lab, { port: 9, size: 1000, intervalMs: 2 });
    });
    await measure(lab, 'conntrack table full', 'vm-loss', async (u) => {
      const ct = fillConntrack(`${table}_ct`, 16);
      u.after(() => ct.undo());
      const flows = backgroundUdpFlows(lab, lab.vm.ip, 9, 200);
      u.after(() => flows.stop());
    });
    await measure(lab, 'tap MTU 1000 on a 1500 path', 'vm-loss', async (u) => {
      u.after(() => execa('ip', ['link', 'set', 'dev', lab.vm.tap, 'mtu', '1500'], { reject: false }));
      await execa('ip', ['link', 'set', 'dev', lab.vm.tap, 'mtu', '1000']);
      traffic(u, lab, { port: 9, size: 1200 });
    });
    await measure(lab, 'VM stopped, tap ring full', 'vm-loss', async (u) => {
      u.after(() => lab.vm.resume());
      await lab.vm.pause();
      traffic(u, lab, { port: 9, intervalMs: 1 });
    });
    await measure(lab, 'tbf shaping (latency)', 'vm-latency', async (u) => {
      u.after(() => execa('tc', ['qdisc', 'del', 'dev', lab.vm.tap, 'root'], { reject: false }));
      await execa('tc', ['qdisc', 'add', 'dev', lab.vm.tap, 'root', 'tbf', 'rate', '400kbit', 'burst', '1600', 'latency', '400ms']);
      traffic(u, lab, { port: 7, size: 1000, intervalMs: 5 });
    });
    await measure(lab, 'healthy VM (latency)', 'vm-latency', async (u) => traffic(u, lab, { port: 7, intervalMs: 5 }));
  } finally {
    await own.stop().catch(() => undefined);
    await lab.teardown();
  }
}

async function ovs(): Promise<void> {
  const lab = await buildLabTopology(undefined, { bridge: 'ovs' });
  const own = backgroundTraffic(lab, lab.vm, { intervalMs: 20 });
  try {
    await lab.peer.pinNeighbor(lab.vm.ip, lab.vm.mac);
    await measure(lab, 'OVS flow actions=drop', 'vm-loss', async (u) => {
      await lab.ovs!.addFlow('priority=200,udp,tp_dst=9,actions=drop');
      traffic(u, lab, { port: 9 });
    });
  } finally {
    await own.stop().catch(() => undefined);
    await lab.teardown();
  }
}

function print(): void {
  const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log('\n| scenario | runbook → conclusion | steps | wall, command to verdict | probe sampling | everything else | before the first step | inside steps (slowest) | after the last step |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.scenario} | ${r.conclusion} | ${r.steps} | ${fmt(r.wallMs)} | ${fmt(r.samplingMs)} | **${fmt(r.wallMs - r.samplingMs)}** | ${fmt(r.beforeMs)} | ${fmt(r.inStepsMs)} (${r.worstStep}) | ${fmt(r.afterMs)} |`);
  }
}

if (process.geteuid?.() !== 0) throw new Error('needs root (labs, namespaces, eBPF)');
await linux();
await ovs();
print();
