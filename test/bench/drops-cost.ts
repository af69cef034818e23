// What drops.kernel's handler costs per drop, from the kernel's own run statistics
// (run_time_ns / run_cnt, BPF_ENABLE_STATS), under a UDP flood into an nftables drop
// (udp-flood.ts): unscoped, and scoped to a VM in the ways a VM's drops match (or do not).
// The raw_tp flavour is attached, as the probe does by default. BEFORE_OBJ adds a row for
// another build of drops.kernel.bpf.o (e.g. the previous commit's) with its default globals.
//   npm run build && ROUNDS=5 FLOOD_SECONDS=3 [BEFORE_OBJ=/tmp/old/drops.bpf.o] node dist/test/bench/drops-cost.js
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { GlobalValue } from '../../engine/native/globals.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { enableRunStats, programRunStats } from '../../engine/native/stats.js';
import { resolveScope } from '../../probes/lib/drops/scope.js';
import { flood, floodPair, median } from './udp-flood.js';

const SECONDS = Number(process.env.FLOOD_SECONDS ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const BEFORE = process.env.BEFORE_OBJ;

interface Variant {
  what: string;
  path: string;
  globals: Record<string, GlobalValue>;
}

const pair = await floodPair();
const peerMac = (await pair.inNs(['cat', `/sys/class/net/${pair.peerDev}/address`])).stdout.trim();
const hostMac = (await readFile(`/sys/class/net/${pair.hostDev}/address`, 'utf8')).trim();
const noStacks = { want_stacks: 0 };
const scope = async (macs: string[], ips: string[], devs: string[]) => ({ ...noStacks, ...(await resolveScope({ macs, ips, devs })).globals });
// Another VM: none of its MACs, addresses or devices is the flood's.
const other = { macs: ['02:00:5e:10:00:01'], ips: ['192.0.2.10', '2001:db8::10'], devs: ['lo'] };
const after = bpfObjectPath('drops.kernel');
const variants: Variant[] = [
  ...(BEFORE ? [{ what: 'before: no scope, stacks off', path: BEFORE, globals: noStacks }, { what: 'before: no scope, sampled stacks (default)', path: BEFORE, globals: {} }] : []),
  { what: 'no scope, stacks off', path: after, globals: noStacks },
  { what: 'no scope, sampled stacks (default)', path: after, globals: {} },
  { what: 'scope by MAC, matches (dst MAC)', path: after, globals: await scope([peerMac], [], []) },
  { what: 'scope by IPv4, matches (dst)', path: after, globals: await scope([], [pair.peerIp], []) },
  { what: "scope of another VM's MAC+IPv4+IPv6+dev: no match", path: after, globals: await scope(other.macs, other.ips, other.devs) },
  { what: 'full scope (8 MACs, 16 IPs, 8 devs), matches by the last IP', path: after, globals: await scope(
    Array.from({ length: 8 }, (_, i) => `02:00:5e:10:00:${(i + 1).toString(16).padStart(2, '0')}`),
    [...Array.from({ length: 8 }, (_, i) => `2001:db8::${i + 1}`), ...Array.from({ length: 7 }, (_, i) => `192.0.2.${i + 1}`), pair.peerIp],
    ['lo'],
  ) },
];

// bpftrace doing the same jobs, side by side: its kfree_skb program's cost per drop, from the
// same statistics (read from bpftrace's own fds). Scoped: the VM's frames by destination MAC.
const macLE = (mac: string) => {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  return { u32: `0x${[b[3], b[2], b[1], b[0]].map((x) => x!.toString(16).padStart(2, '0')).join('')}`, u16: `0x${[b[5], b[4]].map((x) => x!.toString(16).padStart(2, '0')).join('')}` };
};
const m = macLE(peerMac);
const bpftraceVariants: Record<string, string> = {
  'bpftrace: by reason, location, device': 'tracepoint:skb:kfree_skb { @[args->reason, args->location, ((struct sk_buff *)args->skbaddr)->dev->ifindex] = count(); }',
  'bpftrace: the same, scoped by destination MAC (matches)': `tracepoint:skb:kfree_skb { $s = (struct sk_buff *)args->skbaddr; $m = $s->head + $s->mac_header; if (*(uint32 *)$m == ${m.u32} && *(uint16 *)($m + 4) == ${m.u16}) { @[args->reason, args->location, $s->dev->ifindex] = count(); } }`,
};

/** Runs bpftrace with `script` through one flood; ns per run of its busiest program. */
async function bpftraceCost(script: string): Promise<{ ns: number; pps: number }> {
  const bt = spawn('bpftrace', ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      bt.stdout!.on('data', (d: Buffer) => d.toString().includes('Attaching') && setTimeout(resolve, 500));
      bt.on('exit', (code) => reject(new Error(`bpftrace exited (${code})`)));
    });
    const before = await programRunStats(bt.pid!);
    const pps = flood(pair.peerIp, SECONDS, 0);
    const after = await programRunStats(bt.pid!);
    const deltas = after.map((a) => {
      const b = before.find((x) => x.progId === a.progId);
      return { runs: a.runCnt - (b?.runCnt ?? 0), ns: a.runTimeNs - (b?.runTimeNs ?? 0) };
    });
    const busiest = deltas.sort((x, y) => y.runs - x.runs)[0];
    return { ns: busiest && busiest.runs > 0 ? busiest.ns / busiest.runs : Number.NaN, pps };
  } finally {
    bt.kill('SIGKILL');
  }
}

const stats = await enableRunStats();
if (stats.how === 'unavailable') throw new Error(`no BPF run statistics: ${stats.why}`);
const results = new Map<string, { ns: number[]; pps: number[] }>();
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of variants) {
      const o = BpfObject.open(v.path, { globals: v.globals, autoload: { drops_raw_tp: true, drops_tp_btf: false } });
      try {
        o.load();
        o.program('drops_raw_tp').attachRawTracepoint('kfree_skb');
        const fd = o.program('drops_raw_tp').info.fd!;
        const [start] = await programRunStats('self', [fd]);
        const pps = flood(pair.peerIp, SECONDS, 0);
        if (pps === 0) throw new Error('the flood sender failed');
        const [end] = await programRunStats('self', [fd]);
        const runs = end!.runCnt - start!.runCnt;
        const r = results.get(v.what) ?? { ns: [], pps: [] };
        r.ns.push(runs > 0 ? (end!.runTimeNs - start!.runTimeNs) / runs : Number.NaN);
        r.pps.push(pps);
        results.set(v.what, r);
      } finally {
        o.close();
      }
    }
    for (const [what, script] of Object.entries(bpftraceVariants)) {
      const { ns, pps } = await bpftraceCost(script);
      const r = results.get(what) ?? { ns: [], pps: [] };
      r.ns.push(ns);
      r.pps.push(pps);
      results.set(what, r);
    }
  }
} finally {
  await stats.close();
  await pair.teardown();
}
console.log(`drops.kernel handler (raw_tp) under a UDP flood into an nftables drop (${hostMac} -> ${peerMac}), ${SECONDS} s per run, median of ${ROUNDS}; statistics: ${stats.how}`);
console.log('| variant | ns per drop | min–max | pps |');
console.log('|---|---|---|---|');
for (const [what, r] of results) {
  const ns = r.ns.filter(Number.isFinite);
  console.log(`| ${what} | ${median(ns).toFixed(0)} | ${Math.min(...ns).toFixed(0)}–${Math.max(...ns).toFixed(0)} | ${Math.round(median(r.pps)).toLocaleString('en-US')} |`);
}
