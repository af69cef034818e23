// `ebpfnet selftest`: builds a private namespace + veth pair, injects a known number of drops
// of known reasons, runs drops.kernel filtered to that namespace, and checks that it counted
// exactly those. Answers "can I trust a 'no drops here' verdict on this kernel?".
//
//   (a) N ICMP echo requests from the root namespace, dropped by an nftables rule on the
//       namespace's input hook → NETFILTER_DROP at nft_do_chain.
//   (b) M UDP datagrams from the namespace to the host side, whose MTU is smaller than the
//       datagrams: veth hands them to __dev_forward_skb2, which frees them as not forwardable
//       with kfree_skb() → NOT_SPECIFIED (no dedicated reason on 6.x kernels; the skb still
//       belongs to the sending device, so it is counted in the namespace).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../exec.js';
import { SELFTEST_VERSION, type SelftestAttach, type SelftestCheck, type SelftestResult } from '../host/selftest-state.js';
import { runProbe } from '../probe/runtime.js';
import type { Params, ProbeCatalog } from '../probe/types.js';
import { canBuildTopologies, createVethPair, ping, type VethPair } from './topology.js';

const NFT_TABLE = 'ebpfnet_selftest';
/** Size of the UDP payload of case (b), and the host-side MTU that is too small for it. */
const MTU_PAYLOAD = 1200;
const SMALL_MTU = 1000;

/** The selftest cannot run on this host (not root, missing tools): exit 3. */
export class SelftestUnavailable extends Error {}

/** What the selftest reads of drops.kernel's data (it has more). */
interface DropsReading {
  [field: string]: unknown;
  method: string | null;
  attach: SelftestAttach[];
  fallback?: string;
  /** Drops counted but not aggregated (the map was full). */
  lost?: number;
  /** The busiest (reason, location) groups. */
  top: Array<{ reason: string; location: string; count: number }>;
}

export interface SelftestOptions {
  /** The probes of this build: the selftest runs their drops.kernel. */
  catalog: ProbeCatalog;
  /** ICMP packets for the nftables case (default 20). */
  icmp?: number;
  /** UDP datagrams for the MTU case (default 10). */
  mtu?: number;
  signal?: AbortSignal;
}

/** Why this host cannot run the selftest, or null. */
export async function selftestUnavailable(): Promise<string | null> {
  if (process.geteuid?.() !== 0) return 'selftest needs root (it creates a network namespace and loads BPF): run it with sudo';
  const topo = await canBuildTopologies();
  if (topo !== null) return `selftest ${topo}`;
  if ((await runCommand('nft', ['--version'])).failed) return 'selftest needs nft (apt-get install nftables)';
  return null;
}

export async function runSelftest(opts: SelftestOptions): Promise<SelftestResult> {
  const why = await selftestUnavailable();
  if (why !== null) throw new SelftestUnavailable(why);
  const dropsKernel = opts.catalog.get('drops.kernel');
  if (!dropsKernel) throw new SelftestUnavailable('this build has no drops.kernel probe to check');
  const N = opts.icmp ?? 20;
  const M = opts.mtu ?? 10;
  const signal = opts.signal ?? new AbortController().signal;
  const started = performance.now();
  const at = new Date().toISOString();
  const kernel = (await readFile('/proc/sys/kernel/osrelease', 'utf8')).trim();
  const base = { version: SELFTEST_VERSION, at, kernel, other: {}, method: null, attach: [] as SelftestAttach[] };

  const teardowns: Array<() => Promise<void>> = [];
  const bundle = await mkdtemp(join(tmpdir(), 'ebpfnet-selftest-'));
  try {
    const pair: VethPair = await createVethPair({ after: (fn) => teardowns.push(async () => void (await fn())) }, { names: 'selftest', hostMtu: SMALL_MTU, noIpv6: true });
    await pair.inNs(['nft', 'add', 'table', 'inet', NFT_TABLE]);
    await pair.inNs(['nft', 'add', 'chain', 'inet', NFT_TABLE, 'input', '{ type filter hook input priority 0; policy accept; }']);
    await pair.inNs(['nft', 'add', 'rule', 'inet', NFT_TABLE, 'input', 'meta', 'l4proto', 'icmp', 'drop']);
    // Resolve the neighbours first, so that no queued packet is dropped or freed differently.
    await pair.inNs(['ping', '-n', '-q', '-c', '1', '-W', '1', '-s', '16', pair.hostIp]).catch(() => undefined);

    const params: Params = { duration: '3s', netns: pair.ns, stacks: false, top: 50 };
    const probe = runProbe(
      dropsKernel,
      { step: 'selftest', alias: 'drops', probe: 'drops.kernel', params },
      { rawDir: join(bundle, 'raw', 'drops'), bundleRoot: bundle, signal },
    );
    // Loading and attaching takes milliseconds; leave it a comfortable margin.
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 1200)), probe]);

    // (a) N echo requests, each dropped once by the rule (ping -c without -w sends exactly N).
    const p = signal.aborted ? null : await ping(pair.peerIp, pair.hostDev, { count: N, interval: 0.02, wait: 0.2 });
    // (b) M datagrams larger than the host side's MTU, sent from inside the namespace.
    const sent = signal.aborted ? 0 : await sendOversized(pair, M);

    const f = await probe;
    if (f.status !== 'ok') throw new Error(`drops.kernel ${f.status}: ${f.reason ?? f.summary}`);
    const data = f.data as DropsReading;
    const counted = (reason: string, fn: string) =>
      data.top.filter((g) => g.reason === reason && g.location.startsWith(`${fn}+`)).reduce((s, g) => s + g.count, 0);
    const checks: SelftestCheck[] = [
      mk('netfilter', `${N} ICMP echo requests dropped by an nft rule`, 'NETFILTER_DROP', 'nft_do_chain', p?.transmitted ?? 0, counted('NETFILTER_DROP', 'nft_do_chain')),
      mk('mtu', `${M} UDP datagrams of ${MTU_PAYLOAD + 28} bytes to a peer with MTU ${SMALL_MTU}`, 'NOT_SPECIFIED', '__dev_forward_skb2', sent, counted('NOT_SPECIFIED', '__dev_forward_skb2')),
    ];
    const other: Record<string, number> = {};
    for (const g of data.top) {
      const fn = g.location.replace(/\+0x.*$/, '');
      if ((g.reason === 'NETFILTER_DROP' && fn === 'nft_do_chain') || (g.reason === 'NOT_SPECIFIED' && fn === '__dev_forward_skb2')) continue;
      other[`${g.reason} at ${fn}`] = (other[`${g.reason} at ${fn}`] ?? 0) + g.count;
    }
    if (data.lost) other.lost = data.lost;
    if (p !== null && p.transmitted !== N) throw new Error(`ping sent ${p.transmitted} of ${N} echo requests`);
    return {
      ...base,
      status: checks.every((c) => c.verdict === 'ok') ? 'ok' : 'mismatch',
      durationMs: Math.round(performance.now() - started),
      checks,
      other,
      method: data.method,
      attach: data.attach,
      ...(data.fallback !== undefined ? { fallback: data.fallback } : {}),
    };
  } catch (err) {
    return { ...base, status: 'error', durationMs: Math.round(performance.now() - started), checks: [], error: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  } finally {
    for (const t of teardowns.reverse()) await t().catch(() => undefined);
    await rm(bundle, { recursive: true, force: true });
  }
}

function mk(id: string, label: string, reason: string, location: string, expected: number, counted: number): SelftestCheck {
  const tolerance = 0;
  return { id, label, reason, location, expected, counted, tolerance, verdict: Math.abs(counted - expected) <= tolerance ? 'ok' : 'mismatch' };
}

/** Sends `count` oversized UDP datagrams from inside the namespace; returns how many left the socket. */
async function sendOversized(pair: VethPair, count: number): Promise<number> {
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    const buf = Buffer.alloc(${MTU_PAYLOAD});
    let ok = 0;
    (async () => {
      for (let i = 0; i < ${count}; i++) {
        await new Promise((r) => s.send(buf, 9, ${JSON.stringify(pair.hostIp)}, (e) => { if (!e) ok++; r(); }));
        await new Promise((r) => setTimeout(r, 10));
      }
      s.close();
      console.log(ok);
    })();`;
  const r = await pair.inNs([process.execPath, '-e', script]);
  return Number(r.stdout.trim());
}

/** The result as a table and a verdict line. */
export function formatSelftest(r: SelftestResult): string {
  const lines: string[] = [];
  if (r.checks.length > 0) {
    const rows = [['CHECK', 'REASON', 'EXPECTED', 'COUNTED', 'VERDICT'], ...r.checks.map((c) => [c.id, `${c.reason} @ ${c.location}`, String(c.expected), String(c.counted), c.verdict])];
    const w = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
    for (const row of rows) lines.push(row.map((cell, i) => cell.padEnd(w[i]!)).join('  ').trimEnd());
  }
  for (const a of r.attach) {
    const load = a.loadMs !== undefined ? `, load ${a.loadMs} ms against ${a.btf ?? 'vmlinux'} BTF` : '';
    lines.push(`attach: ${a.program} via ${a.method} (${a.target}) in ${a.attachMs} ms${load}`);
  }
  if (r.fallback) lines.push(`fallback: ${r.fallback}`);
  const other = Object.entries(r.other);
  if (other.length > 0) lines.push(`other drops in the namespace: ${other.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  lines.push('');
  lines.push(
    r.status === 'ok'
      ? `selftest ok: drops.kernel counted every injected drop on ${r.kernel} (${(r.durationMs / 1000).toFixed(1)}s).`
      : r.status === 'mismatch'
        ? `selftest FAILED: drops.kernel's counts disagree with the injected drops on ${r.kernel}; do not trust a "no drops" verdict.`
        : `selftest error: ${r.error ?? 'unknown'}`,
  );
  return `${lines.join('\n')}\n`;
}
