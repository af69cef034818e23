import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { runProbe, type RunProbeOptions } from '../../engine/probe/runtime.js';
import type { Finding, Params, RawRecord } from '../../engine/probe/types.js';
import { netNft, normalizeRuleText, parseIptablesSave, parseNftText, ruleTextFromJson, type NftData } from '../../probes/net.nft/probe.js';
import { createVethPair, run, type TeardownHost, type VethPair, cannotBuildWith } from '../helpers/netns.js';
import { tempBundle, type TempBundle } from '../helpers/bundle.js';
import { runWindowOverTraffic } from '../helpers/probe-window.js';
import { assertReplaysSame } from '../helpers/replay.js';

function nft(params: Record<string, unknown>) {
  return { step: 'netfilter', alias: 'nft', probe: 'net.nft', params: params as Params };
}

const cannot = await cannotBuildWith([['nft', '--version'], 'nftables']);
const hasIptables = await run(['iptables', '--version']).then(() => true, () => false);

/** A veth pair whose namespace has the nftables `ruleset` loaded (given the pair, if it names its addresses), and a bundle for the test's runs. */
async function rulesetLab(t: TeardownHost, ruleset: string | ((pair: VethPair) => string)): Promise<{ pair: VethPair; b: TempBundle }> {
  const pair = await createVethPair(t, { noIpv6: true });
  const input = typeof ruleset === 'string' ? ruleset : ruleset(pair);
  await execa('ip', ['netns', 'exec', pair.ns, 'nft', '-f', '-'], { input });
  return { pair, b: await tempBundle(t, 'ebpfnet-nft-') };
}

/** The handle nft gives the rule of `chain` whose text contains `needle` (read with nft's own listing). */
async function handleOf(pair: VethPair, family: string, table: string, chain: string, needle: string): Promise<number> {
  const { stdout } = await pair.inNs(['nft', '-a', 'list', 'chain', family, table, chain]);
  const line = stdout.split('\n').find((l) => l.includes(needle));
  const m = line ? /# handle (\d+)/.exec(line) : null;
  assert.ok(m, `no rule with "${needle}" in ${stdout}`);
  return Number(m[1]);
}

/** Sends `count` UDP datagrams of `size` bytes from the root namespace to ip:port. */
async function sendUdp(ip: string, port: number, count: number, size: number): Promise<void> {
  const sock = createSocket('udp4');
  try {
    for (let i = 0; i < count; i++) {
      await new Promise<void>((resolve, reject) => sock.send(Buffer.alloc(size, i), port, ip, (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    sock.close();
  }
}

/** Waits (at most 15s) until `read` reaches `want`; the probe's own window is what the test checks. */
async function until(read: () => Promise<number>, want: number): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if ((await read()) >= want) return;
    await delay(100);
  }
}

/** nft's counter of the rule with `handle`, read directly. */
async function counterOf(pair: VethPair, family: string, table: string, handle: number): Promise<number> {
  const { stdout } = await pair.inNs(['nft', '-j', 'list', 'table', family, table]);
  for (const item of (JSON.parse(stdout) as { nftables: Array<Record<string, { handle?: number; expr?: Array<Record<string, { packets?: number }>> }>> }).nftables) {
    const rule = item.rule;
    if (rule?.handle !== handle) continue;
    for (const stmt of rule.expr ?? []) if (stmt.counter?.packets !== undefined) return stmt.counter.packets;
  }
  return -1;
}

/** Runs net.nft over a window in which `traffic` runs (it starts after the first sample and ends before the second). */
function windowed(params: Record<string, unknown>, opts: RunProbeOptions, traffic: () => Promise<void>) {
  return runWindowOverTraffic(netNft, nft(params), opts, traffic);
}

/** net.nft over 300ms while `count` datagrams go to `port`, the window held until nft's own counter of `rule` has them all. */
function windowedCounted(pair: VethPair, opts: RunProbeOptions, rule: { family: string; table: string; handle: number }, port: number, count: number) {
  return windowed({ netns: pair.ns, duration: '300ms' }, opts, async () => {
    await sendUdp(pair.peerIp, port, count, 10);
    await until(() => counterOf(pair, rule.family, rule.table, rule.handle), count);
  });
}

/** The finding's data and its one dropper, asserting the run went well and named exactly one. */
function soleDropper(f: Finding): { data: NftData; d: NftData['droppers'][number] } {
  assert.equal(f.status, 'ok', f.reason);
  const data = f.data as NftData;
  assert.equal(data.droppers.length, 1, JSON.stringify(data.droppers));
  return { data, d: data.droppers[0]! };
}

describe('net.nft in a namespace', () => {
  // CI runs as root with iproute2, ping and nftables installed: a missing tool is a failure, not a skip.
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('names the counted drop rule that dropped N datagrams, with its handle, text, hook and counts, and replays identically', async (t) => {
    const { pair, b } = await rulesetLab(
      t,
      `table inet ebpfnet_t {
        chain input {
          type filter hook input priority 0; policy accept;
          udp dport 9999 counter drop
          udp dport 9998 counter accept
        }
      }`,
    );
    const handle = await handleOf(pair, 'inet', 'ebpfnet_t', 'input', 'udp dport 9999');
    const N = 7;
    const payload = 32;
    const params = { netns: pair.ns, duration: '500ms' };
    const f = await windowed(params, b.opts('drop'), async () => {
      await sendUdp(pair.peerIp, 9999, N, payload);
      await sendUdp(pair.peerIp, 9998, 3, payload);
      await until(() => counterOf(pair, 'inet', 'ebpfnet_t', handle), N);
    });
    const { data, d } = soleDropper(f);
    assert.equal(data.cumulative, false);
    assert.equal(data.netns, pair.ns);
    assert.equal(d.source, 'nft');
    assert.equal(d.family, 'inet');
    assert.equal(d.table, 'ebpfnet_t');
    assert.equal(d.chain, 'input');
    assert.equal(d.handle, handle);
    assert.match(d.rule, /udp dport 9999/);
    assert.match(d.rule, /\bcounter\b/);
    assert.match(d.rule, /\bdrop$/);
    assert.doesNotMatch(d.rule, /packets \d/, 'counter values are left out of the text');
    assert.equal(d.verdict, 'drop');
    assert.equal(d.packets, N);
    assert.equal(d.bytes, N * (20 + 8 + payload), 'nft counts IP packet bytes');
    assert.equal(d.hook, 'input');
    assert.equal(d.priority, 0);
    assert.deepEqual(d.via, []);
    assert.deepEqual(data.top, d);
    assert.equal(data.total, N);
    assert.equal(data.totalBytes, d.bytes);
    assert.deepEqual(data.dropRulesWithoutCounters, []);
    assert.deepEqual(data.policyDropChains, []);
    assert.equal(data.counts.rules, 2);
    assert.equal(data.counts.dropRules, 1);
    assert.equal(data.counts.countedDropRules, 1);
    assert.equal(f.severity, 'critical');
    assert.equal(f.summary.split(';')[0], `inet ebpfnet_t input handle ${handle} \`${d.rule}\` dropped ${N} packets (${d.bytes} bytes) in 500ms`);
    const bars = f.charts.find((c) => c.kind === 'bar');
    assert.ok(bars && bars.kind === 'bar');
    assert.deepEqual(bars.bars, [{ label: `ebpfnet_t input #${handle}`, value: N }]);
    assert.equal(f.tables[0]!.rows.length, 1);

    await assertReplaysSame(netNft, params, b, 'drop', f);
  });

  it('follows a jump: the dropper in a regular chain carries the hook of the base chain that reaches it', async (t) => {
    const { pair, b } = await rulesetLab(
      t,
      (pair) => `table ip ebpfnet_j {
        chain vmfilter {
          udp dport 9999 counter reject
        }
        chain fw {
          type filter hook input priority 10; policy accept;
          ip saddr ${pair.hostIp} jump vmfilter
        }
      }`,
    );
    const handle = await handleOf(pair, 'ip', 'ebpfnet_j', 'vmfilter', 'udp dport 9999');
    const f = await windowedCounted(pair, b.opts('jump'), { family: 'ip', table: 'ebpfnet_j', handle }, 9999, 4);
    const { d } = soleDropper(f);
    assert.deepEqual(
      { chain: d.chain, handle: d.handle, verdict: d.verdict, packets: d.packets, hook: d.hook, priority: d.priority, via: d.via },
      { chain: 'vmfilter', handle, verdict: 'reject', packets: 4, hook: 'input', priority: 10, via: ['fw'] },
    );
  });

  it('lists a drop rule without a counter, with the command that makes it countable', async (t) => {
    const { pair, b } = await rulesetLab(
      t,
      `table inet ebpfnet_u {
        chain input {
          type filter hook input priority 0; policy accept;
          udp dport 9999 drop
          counter udp dport 9997 drop
        }
        chain unused {
          tcp dport 1 drop
        }
      }`,
    );
    const plain = await handleOf(pair, 'inet', 'ebpfnet_u', 'input', 'udp dport 9999');
    const early = await handleOf(pair, 'inet', 'ebpfnet_u', 'input', 'udp dport 9997');
    const f = await windowed({ netns: pair.ns, duration: '300ms' }, b.opts('nocounter'), () => sendUdp(pair.peerIp, 9999, 3, 10));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as NftData;
    assert.deepEqual(data.droppers, [], 'nothing can be proven');
    assert.deepEqual(
      data.dropRulesWithoutCounters.map((r) => [r.handle, r.rule, r.verdict, r.hook]),
      [
        [plain, 'udp dport 9999 drop', 'drop', 'input'],
        [early, 'counter udp dport 9997 drop', 'drop', 'input'],
      ],
      'the rule in a chain no hook reaches is left out',
    );
    const [noCounter, counterFirst] = data.dropRulesWithoutCounters;
    assert.match(noCounter!.why, /no counter/);
    assert.equal(noCounter!.hint, `add \`counter\` just before the verdict: \`nft replace rule inet ebpfnet_u input handle ${plain} udp dport 9999 counter drop\``);
    assert.match(counterFirst!.why, /before some of its matches/);
    assert.equal(f.severity, 'warning');
    assert.match(f.summary, /^no counted netfilter rule dropped in 300ms \(cannot tell for 2 drop rules without a counter\)/);

    // The hint is a command nft takes: after it, the same traffic names the rule.
    await pair.inNs(['nft', 'replace', 'rule', 'inet', 'ebpfnet_u', 'input', 'handle', String(plain), 'udp', 'dport', '9999', 'counter', 'drop']);
    const f2 = await windowedCounted(pair, b.opts('counted'), { family: 'inet', table: 'ebpfnet_u', handle: plain }, 9999, 3);
    const data2 = f2.data as NftData;
    assert.deepEqual(data2.droppers.map((d) => [d.handle, d.packets]), [[plain, 3]]);
  });

  it('reports policy-drop chains: uncounted with a hint, counted through a final bare counter rule', async (t) => {
    const { pair, b } = await rulesetLab(
      t,
      `table inet ebpfnet_p {
        chain input {
          type filter hook input priority 0; policy drop;
          udp dport 9996 accept
          counter
        }
        chain fwd_chain {
          type filter hook forward priority 0; policy drop;
        }
      }`,
    );
    const countRule = await handleOf(pair, 'inet', 'ebpfnet_p', 'input', 'counter');
    const N = 5;
    const f = await windowedCounted(pair, b.opts('policy'), { family: 'inet', table: 'ebpfnet_p', handle: countRule }, 9995, N);
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as NftData;
    const byChain = new Map(data.policyDropChains.map((c) => [c.chain, c]));
    assert.deepEqual([...byChain.keys()].sort(), ['fwd_chain', 'input']);
    const input = byChain.get('input')!;
    assert.equal(input.counted, true);
    assert.equal(input.packets, N);
    assert.equal(input.hook, 'input');
    assert.equal(input.rules, 2);
    assert.match(input.countedBy!, new RegExp(`rule handle ${countRule}`));
    const fwd = byChain.get('fwd_chain')!;
    assert.equal(fwd.counted, false);
    assert.equal(fwd.packets, null);
    assert.equal(fwd.hook, 'forward');
    assert.match(fwd.hint!, /nft add rule inet ebpfnet_p fwd_chain counter/);
    assert.deepEqual(
      data.droppers.map((d) => [d.chain, d.verdict, d.rule, d.handle, d.packets]),
      [['input', 'policy', 'policy drop', countRule, N]],
    );
    assert.equal(f.severity, 'critical');
    assert.match(f.summary, new RegExp(`^the drop policy of inet ebpfnet_p input dropped ${N} packets`));
  });

  it('finds no dropper in a healthy ruleset, and keeps only the rules of one device with dev', async (t) => {
    const { pair, b } = await rulesetLab(
      t,
      `table inet ebpfnet_h {
        chain input {
          type filter hook input priority 0; policy accept;
          iifname "lo" accept
          iifname "ebtnosuch0" udp dport 9999 counter drop
          udp dport 9999 counter accept
        }
      }`,
    );
    const f = await windowed({ netns: pair.ns, duration: '300ms', dev: pair.peerDev }, b.opts('healthy'), () => sendUdp(pair.peerIp, 9999, 3, 10));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as NftData;
    assert.deepEqual(data.droppers, []);
    assert.equal(data.total, 0);
    assert.equal(data.top, undefined);
    assert.deepEqual(data.dropRulesWithoutCounters, []);
    assert.deepEqual(data.policyDropChains, []);
    assert.equal(data.counts.dropRules, 0, 'the drop rule of another device does not apply to this one');
    assert.equal(data.dev, pair.peerDev);
    assert.equal(f.severity, 'info');
    assert.deepEqual(f.charts, []);
    assert.equal(f.summary, `no counted netfilter rule dropped in 300ms on ${pair.peerDev}; 3 rules in 1 table of ${pair.ns}`);
  });

  it('names iptables-nft rules in both syntaxes', { skip: hasIptables ? false : 'iptables is not installed' }, async (t) => {
    const pair = await createVethPair(t, { noIpv6: true });
    await pair.inNs(['iptables', '-A', 'INPUT', '-p', 'udp', '--dport', '7777', '-j', 'DROP']);
    const handle = await handleOf(pair, 'ip', 'filter', 'INPUT', 'udp dport 7777');
    const b = await tempBundle(t, 'ebpfnet-nft-');
    const f = await windowedCounted(pair, b.opts('ipt'), { family: 'ip', table: 'filter', handle }, 7777, 4);
    const { data, d } = soleDropper(f);
    assert.deepEqual([d.source, d.family, d.table, d.chain, d.handle, d.packets], ['nft', 'ip', 'filter', 'INPUT', handle, 4]);
    assert.equal(d.iptables, '-A INPUT -p udp -m udp --dport 7777 -j DROP');
    assert.deepEqual(data.iptables.find((s) => s.tool === 'iptables-save'), { tool: 'iptables-save', present: true, variant: 'nf_tables', rules: 1 });
    assert.equal(data.total, 4, 'counted once, not once per syntax');
  });

  it('fails clearly for a namespace that does not exist', async (t) => {
    const b = await tempBundle(t, 'ebpfnet-nft-');
    const f = await runProbe(netNft, nft({ netns: 'ebpfnet-nosuch-ns', duration: '100ms' }), b.opts('nosuch'));
    assert.equal(f.status, 'error');
    assert.match(f.reason!, /^no network namespace ebpfnet-nosuch-ns: Cannot open network namespace/);
  });
});

// ---------------------------------------------------------------------------------------------

function rec(seq: number, name: string, at: number, stdout: string, extra: Partial<RawRecord> = {}): RawRecord {
  return { seq, op: 'exec', name, argv: ['nft'], at, durationMs: 1, stdout, stderr: '', exitCode: 0, ...extra };
}

const META = { metainfo: { version: '1.0.6', json_schema_version: 1 } };
const ruleset = (items: unknown[]) => JSON.stringify({ nftables: [META, ...items] });
const chain = (name: string, extra: Record<string, unknown> = {}) => ({ chain: { family: 'inet', table: 't', name, handle: 1, ...extra } });
const rule = (chainName: string, handle: number, expr: unknown[]) => ({ rule: { family: 'inet', table: 't', chain: chainName, handle, expr } });
const match = (left: unknown, right: unknown, op = '==') => ({ match: { op, left, right } });
const iif = (right: unknown, op = '==') => match({ meta: { key: 'iifname' } }, right, op);
const dport = (n: number) => match({ payload: { protocol: 'udp', field: 'dport' } }, n);
const counter = (packets: number) => ({ counter: { packets, bytes: packets * 100 } });
const base = chain('input', { type: 'filter', hook: 'input', prio: 0, policy: 'accept' });

describe('net.nft parser', () => {
  const params: Params = { duration: 5000 };
  const missing: Partial<RawRecord> = { exitCode: 127, error: 'command "iptables-save -c" could not start: not found' };
  const noIptables = [rec(2, 'iptables-save-start', 0, '', missing), rec(3, 'ip6tables-save-start', 0, '', missing)];

  it('counts deltas, proves only counters after every match, and classifies the rest', () => {
    const items = (a: number, b: number, c: number) => [
      { table: { family: 'inet', name: 't', handle: 1 } },
      base,
      rule('input', 4, [dport(1), counter(a), { drop: null }]),
      rule('input', 5, [counter(b), dport(2), { drop: null }]),
      rule('input', 6, [{ vmap: { key: { payload: { protocol: 'udp', field: 'dport' } }, data: { set: [[3, { drop: null }], [4, { accept: null }]] } } }]),
      rule('input', 7, [dport(5), { counter: 'named1' }, { reject: null }]),
      { counter: { family: 'inet', table: 't', name: 'named1', handle: 9, packets: c, bytes: c } },
    ];
    const r = netNft.parse(
      [rec(1, 'nft-start', 1000, ruleset(items(10, 10, 1))), ...noIptables, rec(4, 'nft-end', 6000, ruleset(items(25, 99, 4))), rec(5, 'nft-text', 6000, '', { exitCode: 1, error: 'nft failed' })],
      params,
    );
    const data = r.data as NftData;
    assert.equal(data.durationMs, 5000);
    assert.deepEqual(
      data.droppers.map((d) => [d.handle, d.packets, d.verdict, d.rule]),
      [
        [4, 15, 'drop', 'udp dport 1 counter drop'],
        [7, 3, 'reject', 'udp dport 5 counter name "named1" reject'],
      ],
    );
    assert.deepEqual(
      data.dropRulesWithoutCounters.map((u) => [u.handle, u.verdict]),
      [
        [5, 'drop'],
        [6, 'vmap'],
      ],
    );
    assert.ok(data.notes.some((n) => n.startsWith('nft -a list ruleset failed')));
    assert.deepEqual(data.iptables, [
      { tool: 'iptables-save', present: false, variant: null, rules: 0 },
      { tool: 'ip6tables-save', present: false, variant: null, rules: 0 },
    ]);
    assert.equal(r.severity, 'critical');
  });

  it('counts a rule that appeared or was reset from zero, and a single read as cumulative', () => {
    const one = (p: number, expr = [dport(1), counter(p), { drop: null }]) => ruleset([base, rule('input', 4, expr)]);
    const reset = netNft.parse([rec(1, 'nft-start', 0, one(50)), rec(2, 'nft-end', 1000, one(3))], params).data as NftData;
    assert.equal(reset.droppers[0]!.packets, 3);
    assert.ok(reset.notes.some((n) => n.includes('went down (reset)')));
    const changed = netNft.parse([rec(1, 'nft-start', 0, one(50)), rec(2, 'nft-end', 1000, one(60, [dport(2), counter(60), { drop: null }]))], params).data as NftData;
    assert.equal(changed.droppers[0]!.packets, 60);
    assert.ok(changed.notes.some((n) => n.includes('changed during the window')));
    const once = netNft.parse([rec(1, 'nft-start', 0, one(8))], { duration: 0 });
    assert.equal((once.data as NftData).cumulative, true);
    assert.equal((once.data as NftData).droppers[0]!.packets, 8);
    assert.equal(once.severity, 'warning', 'past drops, not necessarily now');
    assert.match(once.summary, /dropped 8 packets \(800 bytes\) since the rules were created/);
  });

  it('filters by device: names, wildcards, sets, negations and netdev chains', () => {
    const rules = [
      base,
      rule('input', 1, [iif('tap0'), counter(1), { drop: null }]),
      rule('input', 2, [iif('tap*'), counter(1), { drop: null }]),
      rule('input', 3, [iif({ set: ['eth0', 'tap1'] }), counter(1), { drop: null }]),
      rule('input', 4, [iif('tap0', '!='), counter(1), { drop: null }]),
      rule('input', 5, [iif('eth0', '!='), counter(1), { drop: null }]),
      rule('input', 6, [iif('@ifaces'), counter(1), { drop: null }]),
      rule('input', 7, [dport(9), counter(1), { drop: null }]),
      chain('ing', { type: 'filter', hook: 'ingress', prio: 0, policy: 'accept', dev: 'eth0' }),
      rule('ing', 8, [counter(1), { drop: null }]),
    ];
    const handles = (dev: string) =>
      (netNft.parse([rec(1, 'nft-start', 0, ruleset(rules))], { duration: 0, dev }).data as NftData).droppers.map((d) => d.handle).sort((a, b) => a! - b!);
    assert.deepEqual(handles('tap0'), [1, 2, 5, 6, 7]);
    assert.deepEqual(handles('eth0'), [3, 4, 6, 7, 8]);
  });

  it('reads legacy iptables counters and iptables policy counters', () => {
    const save = (drop: number, policy: number) => `# Generated by iptables-save v1.8.9 (legacy) on Wed Nov 25 17:54:50 2026
*filter
:INPUT ACCEPT [100:1000]
:FORWARD DROP [${policy}:${policy * 50}]
:OUTPUT ACCEPT [0:0]
[${drop}:${drop * 60}] -A INPUT -i tap0 -p udp -m udp --dport 53 -j DROP
[9:90] -A INPUT -j ACCEPT
COMMIT
# Completed on Wed Nov 25 17:54:50 2026
`;
    const recs = [
      rec(1, 'nft-start', 0, ruleset([])),
      rec(2, 'iptables-save-start', 0, save(5, 2)),
      rec(3, 'ip6tables-save-start', 0, '', missing),
      rec(4, 'nft-end', 1000, ruleset([])),
      rec(5, 'iptables-save-end', 1000, save(12, 9)),
    ];
    const data = netNft.parse(recs, params).data as NftData;
    assert.deepEqual(
      data.droppers.map((d) => [d.source, d.table, d.chain, d.rule, d.verdict, d.packets, d.bytes]),
      [
        ['iptables-legacy', 'filter', 'INPUT', '-A INPUT -i tap0 -p udp -m udp --dport 53 -j DROP', 'drop', 7, 420],
        ['iptables-legacy', 'filter', 'FORWARD', 'policy DROP', 'policy', 7, 350],
      ],
    );
    assert.equal(data.total, 14);
    assert.deepEqual(data.droppers.map((d) => d.hook), ['input', 'forward']);
    assert.deepEqual(
      data.policyDropChains.map((c) => [c.family, c.table, c.chain, c.hook, c.rules, c.counted, c.packets]),
      [['ip', 'filter', 'FORWARD', 'forward', 0, true, 7]],
    );
    const onEth = netNft.parse(recs, { duration: 5000, dev: 'eth0' }).data as NftData;
    assert.deepEqual(onEth.droppers.map((d) => d.chain), ['FORWARD'], 'the -i tap0 rule does not apply to eth0');
    assert.deepEqual(parseIptablesSave(save(1, 1)).rules.map((x) => [x.chain, x.index, x.target]), [
      ['INPUT', 0, 'DROP'],
      ['INPUT', 1, 'ACCEPT'],
    ]);
  });

  it("takes a rule's text from nft's listing, by table, chain and handle", () => {
    const text = `table inet filt { # handle 1
	set blocked { # handle 3
		type ipv4_addr
	}

	chain input { # handle 1
		type filter hook input priority filter; policy accept;
		udp dport 9999 counter packets 12 bytes 720 drop # handle 4
		ip saddr @blocked drop comment "x # y" # handle 5
	}
}
table ip nat { # handle 2
	chain post { # handle 1
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth0" masquerade # handle 4
	}
}
`;
    assert.deepEqual([...parseNftText(text)], [
      ['inet|filt|input|4', 'udp dport 9999 counter drop'],
      ['inet|filt|input|5', 'ip saddr @blocked drop comment "x # y"'],
      ['ip|nat|post|4', 'oifname "eth0" masquerade'],
    ]);
    assert.equal(normalizeRuleText('tcp dport 22  counter packets 0 bytes 0 reject'), 'tcp dport 22 counter reject');
    assert.equal(
      ruleTextFromJson([iif({ set: ['a', 'b'] }), match({ payload: { protocol: 'ip', field: 'saddr' } }, { prefix: { addr: '10.0.0.0', len: 8 } }), counter(1), { drop: null }]),
      'iifname { a, b } ip saddr 10.0.0.0/8 counter drop',
    );
  });
});
