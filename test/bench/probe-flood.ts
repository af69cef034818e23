// Any BPF probe's cost on the data path, and its load and attach times: packets per second
// of a UDP flood into an nftables drop (test/bench/udp-flood.ts) with no probe and with the
// probe attached at its default params, its overhead guard off so the cost itself shows.
// Where a bpftrace one-liner does the same job, it runs under the same flood beside it.
//   npm run build && node dist/test/bench/probe-flood.js <probe-id>... [--param id:name=value]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeRegistry } from '../../probes/index.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params } from '../../engine/probe/types.js';
import { flood, floodPair, FLOOD_PORT, FLOOD_SRC_PORT, median } from './udp-flood.js';

const SECONDS = Number(process.env.FLOOD_SECONDS ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const UNLIMITED = { cpu: 1, eventsPerSec: 1e12 };

/** bpftrace doing each probe's job, as near as a one-liner can (the aggregation in the kernel). */
const BPFTRACE: Record<string, string> = {
  'other.dev-queue': 'tracepoint:net:net_dev_queue { @n[str(args->name)] = count(); @b[str(args->name)] = sum(args->len); @h = hist(args->len); } tracepoint:net:net_dev_xmit { @rc[str(args->name), args->rc] = count(); }',
  'other.qdisc-dequeue': 'tracepoint:qdisc:qdisc_dequeue { @calls[args->ifindex, args->handle] = count(); @pk[args->ifindex, args->handle] = sum(args->packets); @h = hist(args->packets); }',
  'other.tc': 'tracepoint:qdisc:qdisc_create, tracepoint:qdisc:qdisc_destroy, tracepoint:qdisc:qdisc_reset { @[probe] = count(); }',
  'net.defrag': 'tracepoint:skb:kfree_skb /args->reason >= 94 && args->reason <= 96/ { @[args->reason] = count(); }',
  'perf.host-metrics': 'tracepoint:irq:softirq_entry { @s[cpu] = nsecs; } tracepoint:irq:softirq_exit /@s[cpu]/ { @t[cpu, args->vec] = sum(nsecs - @s[cpu]); @h[args->vec] = hist((nsecs - @s[cpu]) / 1000); delete(@s[cpu]); } tracepoint:net:netif_receive_skb { @rx[cpu] = count(); } tracepoint:net:net_dev_xmit { @tx[cpu] = count(); }',
  'other.offload': 'tracepoint:net:net_dev_start_xmit { @n[str(args->name), args->gso_type] = count(); @size = hist(args->gso_size); @segs = hist(args->gso_segs); @csum[args->ip_summed] = count(); }',
  'other.vlan-udp': 'tracepoint:net:net_dev_start_xmit { @[str(args->name), args->vlan_tagged, args->vlan_tci & 0xfff] = count(); @b[str(args->name), args->vlan_tci & 0xfff] = sum(args->len); }',
  'perf.host-latency': 'tracepoint:net:net_dev_queue { @q[args->skbaddr] = nsecs; } tracepoint:net:net_dev_start_xmit /@q[args->skbaddr]/ { @qdisc_driver = hist((nsecs - @q[args->skbaddr]) / 1000); delete(@q[args->skbaddr]); }',
};

/** Probes that follow one flow are given the flood's. */
const FOLLOWS_ONE_FLOW = new Set(['other.udp-path']);

const args = process.argv.slice(2);
const ids = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--param');
const extra = new Map<string, Params>();
args.forEach((a, i) => {
  if (args[i - 1] !== '--param') return;
  const m = /^([^:]+):([^=]+)=(.*)$/.exec(a);
  if (!m) throw new Error(`--param ${a}: expected id:name=value`);
  extra.set(m[1]!, { ...(extra.get(m[1]!) ?? {}), [m[2]!]: m[3]! });
});
const catalog = probeRegistry();
for (const id of ids) {
  const def = catalog.get(id);
  if (!def) throw new Error(`unknown probe ${id}`);
  if (def.driver !== 'native' && def.driver !== 'bpftrace') throw new Error(`${id} loads no BPF program (driver ${def.driver})`);
}
if (!ids.length) {
  console.error('usage: probe-flood.js <probe-id>... (BPF probes: native or bpftrace driver)');
  process.exit(2);
}

/** Every number under a key of this name, anywhere in the finding's data. */
function numbersNamed(value: unknown, key: string, out: number[] = []): number[] {
  if (Array.isArray(value)) value.forEach((v) => numbersNamed(v, key, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === key && typeof v === 'number') out.push(v);
      else numbersNamed(v, key, out);
    }
  }
  return out;
}

const pair = await floodPair();
const floodFlow: Params = { src_ip: pair.hostIp, dst_ip: pair.peerIp, src_port: FLOOD_SRC_PORT, dst_port: FLOOD_PORT };
const scratch = mkdtempSync(join(tmpdir(), 'ebpfnet-probe-flood-'));
try {
  const pps: Record<string, number[]> = { 'no probe': [] };
  const facts: Record<string, { load: number[]; attach: number[]; nsPerEvent: number[] }> = {};
  for (let round = 0; round < ROUNDS; round++) {
    pps['no probe']!.push(flood(pair.peerIp, SECONDS));
    for (const id of ids) {
      const probe = runProbe(catalog.get(id)!, { step: 'bench', alias: 'p', probe: id, params: { duration: `${SECONDS + 3}s`, ...(FOLLOWS_ONE_FLOW.has(id) ? floodFlow : {}), ...(extra.get(id) ?? {}) } }, {
        rawDir: join(scratch, `${id}-${round}`),
        bundleRoot: scratch,
        signal: new AbortController().signal,
        budget: UNLIMITED,
      });
      await new Promise((resolve) => setTimeout(resolve, 1500)); // attached well before the flood
      (pps[id] ??= []).push(flood(pair.peerIp, SECONDS));
      const finding = await probe;
      if (finding.status !== 'ok') throw new Error(`${id}: ${finding.status}: ${finding.reason}`);
      const f = (facts[id] ??= { load: [], attach: [], nsPerEvent: [] });
      f.load.push(...numbersNamed(finding.data, 'loadMs').slice(0, 1));
      const attach = numbersNamed(finding.data, 'attachMs');
      if (attach.length) f.attach.push(attach.reduce((a, b) => a + b, 0));
      f.nsPerEvent.push(...numbersNamed(finding.data, 'nsPerEvent').slice(0, 1));
      const script = BPFTRACE[id];
      if (script) {
        const bt = spawn('bpftrace', ['-e', script], { stdio: 'ignore' });
        await new Promise((resolve) => setTimeout(resolve, 2500)); // compiled and attached
        (pps[`bpftrace: ${id}`] ??= []).push(flood(pair.peerIp, SECONDS));
        bt.kill('SIGINT');
        await new Promise((resolve) => bt.on('close', resolve));
      }
    }
  }
  const base = median(pps['no probe']!);
  console.log(`UDP flood into an nftables drop, ${SECONDS} s per run, median of ${ROUNDS}; load / attach (all programs) from the findings`);
  console.log('| probe | pps | vs no probe | load ms | attach ms | ns per event |');
  console.log('|---|---|---|---|---|---|');
  for (const [what, values] of Object.entries(pps)) {
    const p = median(values);
    const f = facts[what];
    const cell = (v: number[] | undefined, digits = 1) => (v && v.length ? median(v).toFixed(digits) : '');
    console.log(`| ${what} | ${Math.round(p).toLocaleString('en-US')} | ${what === 'no probe' ? '' : `${((p / base - 1) * 100).toFixed(1)} %`} | ${cell(f?.load)} | ${cell(f?.attach)} | ${cell(f?.nsPerEvent, 0)} |`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
  await pair.teardown();
}
