// vm.frames' cost on the data path: packets per second of a UDP flood (test/bench/udp-flood.ts:
// from the host through a veth into a namespace that drops it) with no probe and with vm.frames
// attached in three scopes, its overhead guard off so the cost itself shows; ns per program run
// from the kernel's BPF run statistics (kernel.bpf_stats_enabled, through the guard).
//   - the flood is the VM's: the veth is its tap and the peer's MAC its guest MAC, so every
//     datagram is a delivery the programs weigh and count;
//   - not the VM's, ports given: every packet leaves at the ifindex check;
//   - not the VM's, any port (`ports` empty): every packet's MAC addresses are read and compared.
//   npm run build && node dist/test/bench/vm-frames-flood.js
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params } from '../../engine/probe/types.js';
import type { FramesData } from '../../probes/vm.frames/findings.js';
import { vmFrames } from '../../probes/vm.frames/probe.js';
import { newLabName } from '../lab/names.js';
import { run } from '../helpers/netns.js';
import { flood, floodPair, median } from './udp-flood.js';

const SECONDS = Number(process.env.FLOOD_SECONDS ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const UNLIMITED = { cpu: 1, eventsPerSec: 1e12 };

const pair = await floodPair();
const peerMac = (await pair.inNs(['cat', `/sys/class/net/${pair.peerDev}/address`])).stdout.trim();
// Two idle Ethernet devices (the ends of a veth pair): a tap and a port of a VM the flood is not for.
const names = newLabName();
const [idleTap, idlePort] = [names.dev('t'), names.dev('v')];
await run(['ip', 'link', 'add', idleTap, 'type', 'veth', 'peer', 'name', idlePort]);
const scratch = mkdtempSync(join(tmpdir(), 'ebpfnet-frames-flood-'));

const SCOPES: Record<string, Params> = {
  "the VM's frames (every packet counted)": { devs: [pair.hostDev], macs: [peerMac], ports: [idlePort] },
  'not the VM, ports given (ifindex check)': { devs: [idleTap], macs: ['02:eb:ff:00:00:01'], ports: [idlePort] },
  'not the VM, any port (MACs read)': { devs: [idleTap], macs: ['02:eb:ff:00:00:01'] },
};

try {
  const pps: Record<string, number[]> = { 'no probe': [] };
  const ns: Record<string, number[]> = {};
  const runs: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    pps['no probe']!.push(flood(pair.peerIp, SECONDS));
    for (const [i, [what, scope]] of Object.entries(SCOPES).entries()) {
      const probe = runProbe(vmFrames, { step: 'bench', alias: 'f', probe: vmFrames.id, params: { ...scope, duration: `${SECONDS + 3}s` } }, {
        rawDir: join(scratch, `${round}-${i}`),
        bundleRoot: scratch,
        signal: new AbortController().signal,
        budget: UNLIMITED,
      });
      await new Promise((resolve) => setTimeout(resolve, 1500)); // attached well before the flood
      (pps[what] ??= []).push(flood(pair.peerIp, SECONDS));
      const f = await probe;
      if (f.status !== 'ok') throw new Error(`${what}: ${f.status}: ${f.reason}`);
      const d = f.data as FramesData;
      (ns[what] ??= []).push(d.overhead?.nsPerEvent ?? NaN);
      (runs[what] ??= []).push(d.overhead?.runCnt ?? NaN);
      if (what.startsWith("the VM's") && d.toVm.delivered.packets === 0) throw new Error(`the flood was not counted as the VM's: ${f.summary} ${JSON.stringify(d.scope)}`);
    }
  }
  const base = median(pps['no probe']!);
  console.log(`UDP flood through a veth into a namespace's nftables drop, ${SECONDS} s per run, median of ${ROUNDS}; ns per program run from the kernel's BPF statistics`);
  console.log('| vm.frames scope | pps | vs no probe | program runs | ns per run |');
  console.log('|---|---|---|---|---|');
  for (const [what, values] of Object.entries(pps)) {
    const p = median(values);
    const cell = (v: number[] | undefined) => (v && v.length ? String(Math.round(median(v))) : '');
    console.log(`| ${what} | ${Math.round(p).toLocaleString('en-US')} | ${what === 'no probe' ? '' : `${((p / base - 1) * 100).toFixed(1)} %`} | ${cell(runs[what])} | ${cell(ns[what])} |`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
  await run(['ip', 'link', 'del', idleTap]).catch(() => undefined);
  await pair.teardown();
}
