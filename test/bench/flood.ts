// Overhead on the data path: packets per second of a UDP flood that an nftables rule
// drops, with no probe, with ebpfnet's drops.kernel attached, and with a bpftrace
// one-liner doing the same aggregation. Needs root.
//   npm run build && node dist/test/bench/flood.js
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeRegistry } from '../../probes/index.js';
import { runProbe } from '../../engine/probe/runtime.js';
import { flood, floodPair, median } from './udp-flood.js';
import type { DropsData } from '../../probes/drops.kernel/probe.js';
import { DROPS_BUDGET } from '../../probes/lib/drops/session.js';

const UNLIMITED = { cpu: 1, eventsPerSec: 1e12 };
const costs: string[] = [];
const dropsKernelBudget = () => `${DROPS_BUDGET.cpu * 100}% CPU, ${DROPS_BUDGET.eventsPerSec} events/s`;

const SECONDS = Number(process.env.FLOOD_SECONDS ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

const pair = await floodPair();
const scratch = mkdtempSync(join(tmpdir(), 'ebpfnet-flood-'));
try {

  // Each probe side by side with the bpftrace one-liner doing the same aggregation.
  const BPFTRACE = {
    'bpftrace: reason, location': 'tracepoint:skb:kfree_skb { @[args->reason, args->location] = count(); }',
    'bpftrace: + kernel stack': 'tracepoint:skb:kfree_skb { @[args->reason, args->location, kstack] = count(); }',
  };
  const results: Record<string, number[]> = { 'no probe': [] };
  const add = (what: string, pps: number) => (results[what] ??= []).push(pps);
  for (let round = 0; round < ROUNDS; round++) {
    add('no probe', flood(pair.peerIp, SECONDS));
    for (const stacks of [false, true]) {
      const def = probeRegistry().get('drops.kernel')!;
      const probe = runProbe(def, { step: 'bench', alias: 'drops', probe: 'drops.kernel', params: { duration: `${SECONDS + 3}s`, stacks } }, {
        rawDir: join(scratch, `drops-${round}-${stacks}`),
        bundleRoot: scratch,
        signal: new AbortController().signal,
        budget: UNLIMITED, // measure the cost itself, not the guard stopping it
      });
      await new Promise((resolve) => setTimeout(resolve, 1500)); // attached well before the flood
      add(`drops.kernel: ${stacks ? '+ kernel stack' : 'reason, location'}`, flood(pair.peerIp, SECONDS));
      const finding = await probe;
      if (finding.status !== 'ok') throw new Error(`drops.kernel: ${finding.status}: ${finding.reason}`);
      const o = (finding.data as DropsData).overhead;
      if (o) costs.push(`stacks ${stacks ? 'on ' : 'off'}: ${Math.round(o.nsPerEvent ?? 0)} ns per drop, ${(o.peakCpu * 100).toFixed(1)}% of one CPU at peak`);
    }
    for (const [what, script] of Object.entries(BPFTRACE)) {
      const bt = spawn('bpftrace', ['-e', script], { stdio: 'ignore' });
      await new Promise((resolve) => setTimeout(resolve, 2000));
      add(what, flood(pair.peerIp, SECONDS));
      bt.kill('SIGINT');
      await new Promise((resolve) => bt.on('close', resolve));
    }
  }
  // The default budget under the same flood: the guard stops the session and keeps its counts.
  const guarded = runProbe(probeRegistry().get('drops.kernel')!, { step: 'bench', alias: 'drops', probe: 'drops.kernel', params: { duration: `${SECONDS + 3}s` } }, {
    rawDir: join(scratch, 'guarded'),
    bundleRoot: scratch,
    signal: new AbortController().signal,
  });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  add('drops.kernel, default budget', flood(pair.peerIp, SECONDS));
  const stopped = (await guarded).data as DropsData;
  const base = median(results['no probe']!);
  console.log(`program cost (kernel run statistics): ${costs.join('; ')}`);
  console.log(`default budget (${dropsKernelBudget()}): ${stopped.overhead?.stopped ? `stopped: ${stopped.overhead.stopped}, ${stopped.total} drops kept` : 'not stopped'}`);
  console.log(`UDP flood into an nftables drop, ${SECONDS} s per run, median of ${ROUNDS}`);
  for (const [what, values] of Object.entries(results)) {
    const pps = median(values);
    console.log(`${what.padEnd(34)} ${Math.round(pps).toLocaleString('en-US').padStart(10)} pps  ${((pps / base - 1) * 100).toFixed(1).padStart(6)} %`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
  await pair.teardown();
}
