import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { enableRunStats, parseProgramFdinfo, programRunStats } from '../../engine/native/stats.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { OverheadGuard, overBudget, parseBudget, runStatsControl, totalsOf, type RunTotals } from '../../engine/probe/overhead.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params } from '../../engine/probe/types.js';
import { dropsKernel, type DropsData } from '../../probes/drops.kernel/probe.js';
import { tempBundle } from '../helpers/bundle.js';
import { runCli } from '../helpers/cli.js';
import { canBuildTopologies, createVethPair, run, type VethPair } from '../helpers/netns.js';

describe('--budget parsing', () => {
  it('takes a CPU share, events per second, or both', () => {
    assert.deepEqual(parseBudget('2%'), { cpu: 0.02 });
    assert.deepEqual(parseBudget('cpu=0.5%,events=100k'), { cpu: 0.005, eventsPerSec: 100_000 });
    assert.deepEqual(parseBudget('events=2M'), { eventsPerSec: 2_000_000 });
    assert.deepEqual(parseBudget('cpu=0.1'), { cpu: 0.1 });
  });
  it('is a usage error on the command line (exit 2) before anything runs', () => {
    for (const args of [['probe', 'run', 'drops.kernel', '--budget', 'cpu=200%'], ['diagnose', 'host-drops', '--budget', 'x=1']]) {
      const r = runCli(args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^ebpfnet: bad --budget /m);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });

  it('rejects what it cannot read with a one-line hint', () => {
    assert.throws(() => parseBudget('cpu=150%'), /bad --budget cpu "150%": give a share of one CPU such as 2% or 0.02/);
    assert.throws(() => parseBudget('events=lots'), /bad --budget events "lots"/);
    assert.throws(() => parseBudget('mem=1G'), /use cpu=<share>% and\/or events=<per second>/);
  });
});

/** A reader whose totals grow by `cpu` of one CPU and `eps` runs per second of real time. */
function syntheticReader(rates: () => { cpu: number; eps: number }): () => Promise<RunTotals> {
  let last = performance.now();
  const totals = { runCnt: 0, runTimeNs: 0 };
  return async () => {
    const now = performance.now();
    const secs = (now - last) / 1000;
    last = now;
    const r = rates();
    totals.runTimeNs += r.cpu * secs * 1e9;
    totals.runCnt += r.eps * secs;
    return { ...totals };
  };
}

describe('OverheadGuard', () => {
  const budget = { cpu: 0.05, eventsPerSec: 100_000 };

  it('stops a probe that stays over its CPU budget, saying at what share', async () => {
    const guard = new OverheadGuard(syntheticReader(() => ({ cpu: 0.2, eps: 1000 })), budget, { intervalMs: 50, sustain: 2 });
    await new Promise((resolve) => guard.signal.addEventListener('abort', resolve, { once: true }));
    const report = await guard.stop();
    assert.match(report.stopped ?? '', /^overhead budget exceeded at 20% CPU \(budget 5\.0%\) after \d+ms$/);
    assert.ok(report.cpu > 0.15 && report.cpu < 0.25, `average ${report.cpu}`);
    assert.match((guard.signal.reason as Error).message, /^stopped: overhead budget exceeded/);
  });

  it('stops on events per second too', async () => {
    const guard = new OverheadGuard(syntheticReader(() => ({ cpu: 0.001, eps: 500_000 })), budget, { intervalMs: 50 });
    await new Promise((resolve) => guard.signal.addEventListener('abort', resolve, { once: true }));
    assert.match((await guard.stop()).stopped ?? '', /^overhead budget exceeded at \d+k events\/s \(budget 100k\/s\)/);
  });

  it('tolerates a one-interval spike and stays quiet within budget', async () => {
    let tick = 0;
    const guard = new OverheadGuard(
      syntheticReader(() => ({ cpu: tick++ === 3 ? 0.3 : 0.01, eps: 100 })),
      budget,
      { intervalMs: 40, sustain: 2 },
    );
    await delay(500);
    const report = await guard.stop();
    assert.equal(guard.signal.aborted, false);
    assert.equal(report.stopped, undefined);
    assert.ok(report.peakCpu > 0.05, `the spike is in the peak: ${report.peakCpu}`);
    assert.ok(report.cpu < 0.05, `but not in the average: ${report.cpu}`);
  });

  it('samples: the statistics on for the warm-up, then one interval in `every`, the cost taken from the sampled time only', async () => {
    const switches: string[] = [];
    let on = true;
    // Runs count only while on, as the kernel's do: 300 ns each, 100k runs a second.
    const reader = syntheticReader(() => (on ? { cpu: 0.03, eps: 100_000 } : { cpu: 0, eps: 0 }));
    const control = {
      on: async () => void ((on = true), switches.push('on')),
      off: async () => void ((on = false), switches.push('off')),
    };
    const guard = new OverheadGuard(reader, { cpu: 0.5, eventsPerSec: 1e6 }, { intervalMs: 20, duty: { warmMs: 60, every: 4 }, control });
    await delay(700);
    const report = await guard.stop();
    assert.equal(switches[0], 'off', 'off after the warm-up');
    assert.ok(switches.filter((x) => x === 'on').length >= 4, `switched on again and again: ${switches.join(' ')}`);
    assert.ok(report.sampledMs! < 0.6 * report.windowMs, `sampled ${report.sampledMs} of ${report.windowMs} ms`);
    assert.ok(Math.abs(report.nsPerEvent! - 300) < 30, `ns/event ${report.nsPerEvent}`);
    assert.ok(Math.abs(report.eventsPerSec - 100_000) < 25_000, `events/s while sampled ${report.eventsPerSec}`);
  });

  it('stops a probe over budget after the warm-up too, on sampled intervals', async () => {
    let on = true;
    let t = 0;
    // Within budget during the warm-up, then twice over it: two sampled intervals stop it.
    const reader = syntheticReader(() => (on ? { cpu: t++ < 4 ? 0.01 : 0.2, eps: 100 } : { cpu: 0, eps: 0 }));
    const control = { on: async () => void (on = true), off: async () => void (on = false) };
    const guard = new OverheadGuard(reader, budget, { intervalMs: 20, duty: { warmMs: 60, every: 3 }, control });
    await new Promise((resolve) => guard.signal.addEventListener('abort', resolve, { once: true }));
    const report = await guard.stop();
    assert.match(report.stopped ?? '', /^overhead budget exceeded at \d+% CPU/);
    assert.ok(report.sampledMs! < report.windowMs, `sampled ${report.sampledMs} of ${report.windowMs} ms`);
  });

  it('names the budget it was over in the events case only when CPU is within', () => {
    assert.equal(overBudget({ cpu: 0.01, eventsPerSec: 10 }, budget), null);
    assert.match(overBudget({ cpu: 0.06, eventsPerSec: 1e6 }, budget)!, /CPU/);
  });
});

/** The selftest's classic tracepoint program (getppid), loaded and attached, and its fd. */
function selftestTracepoint(): { obj: BpfObject; fd: number } {
  const obj = BpfObject.open(bpfObjectPath('selftest'), { autoload: { st_tp_btf: false, st_raw_tp: false, st_uprobe: false, st_uretprobe: false } });
  try {
    obj.load();
    obj.program('st_tracepoint').attach();
    return { obj, fd: obj.program('st_tracepoint').info.fd! };
  } catch (err) {
    obj.close();
    throw err;
  }
}

describe('run statistics of real programs', () => {
  it('counts run_cnt and run_time_ns of an attached program while statistics are on', async () => {
    const stats = await enableRunStats();
    assert.equal(stats.how, 'BPF_ENABLE_STATS');
    const { obj, fd } = selftestTracepoint();
    try {
      const before = totalsOf(await programRunStats('self', [fd]));
      for (let i = 0; i < 50; i++) process.ppid; // getppid() syscalls, the program's tracepoint
      await run(['true']);
      const after = await programRunStats('self', [fd]);
      assert.equal(after.length, 1);
      assert.equal(after[0]!.progType, 5, 'a tracepoint program');
      assert.ok(after[0]!.runCnt > before.runCnt, `run_cnt ${before.runCnt} → ${after[0]!.runCnt}`);
      assert.ok(after[0]!.runTimeNs > before.runTimeNs);
    } finally {
      obj.close();
      await stats.close();
    }
  });

  it("the guard's switch turns the kernel's statistics off: a program's run_cnt stands still while it runs", async () => {
    const { control, first } = await runStatsControl();
    assert.equal(first.how, 'BPF_ENABLE_STATS');
    const { obj, fd } = selftestTracepoint();
    try {
      const hits = async () => {
        const before = totalsOf(await programRunStats('self', [fd])).runCnt;
        await run(['true']); // a process's getppid() runs the program
        for (let i = 0; i < 50; i++) process.ppid;
        return totalsOf(await programRunStats('self', [fd])).runCnt - before;
      };
      assert.ok((await hits()) > 0, 'counted while on');
      await control.off();
      assert.equal(await hits(), 0, 'not counted while off (nothing else on this host holds the statistics on)');
      await control.on();
      assert.ok((await hits()) > 0, 'counted again once on');
    } finally {
      obj.close();
      await control.off();
    }
  });

  it('reads fdinfo text of programs and ignores other fds', () => {
    const prog = 'pos:\t0\nprog_type:\t17\nprog_id:\t42\nrun_time_ns:\t1500\nrun_cnt:\t3\n';
    assert.deepEqual(parseProgramFdinfo(7, prog), { fd: 7, progId: 42, progType: 17, runCnt: 3, runTimeNs: 1500 });
    assert.equal(parseProgramFdinfo(8, 'pos:\t0\nflags:\t02\nmap_type:\t1\nmap_id:\t9\n'), null);
  });
});

/** UDP to a port nftables drops in `pair`'s namespace, as fast as one process sends, for `ms`. */
function udpFlood(pair: VethPair, ms: number): Promise<number> {
  const script = `
    const s = require('node:dgram').createSocket('udp4'); const buf = Buffer.alloc(64);
    const end = Date.now() + ${ms}; let n = 0; let pending = 0;
    // Only datagrams the kernel took count; a refused one (ENOBUFS on a slow machine) is not sent.
    const sent = (err) => { pending--; if (!err) n++; if (pending === 0 && Date.now() >= end) s.close(() => console.log(n)); };
    function burst() { for (let i = 0; i < 128; i++) { pending++; s.send(buf, 9999, '${pair.peerIp}', sent); }
      if (Date.now() < end) setImmediate(burst); }
    burst();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(Number(out.trim())));
  });
}

const cannot = await canBuildTopologies();

describe('the guard on drops.kernel', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  async function droppingPair(t: Parameters<typeof createVethPair>[0]): Promise<VethPair> {
    const pair = await createVethPair(t, { noIpv6: true });
    await pair.inNs(['nft', 'add', 'table', 'inet', 'ebpfnet_guard']);
    await pair.inNs(['nft', 'add', 'chain', 'inet', 'ebpfnet_guard', 'in', '{ type filter hook input priority 0; }']);
    await pair.inNs(['nft', 'add', 'rule', 'inet', 'ebpfnet_guard', 'in', 'udp', 'dport', '9999', 'drop']);
    const mac = (await pair.inNs(['cat', `/sys/class/net/${pair.peerDev}/address`])).stdout.trim();
    await run(['ip', 'neigh', 'replace', pair.peerIp, 'lladdr', mac, 'dev', pair.hostDev]);
    return pair;
  }

  it('stops a session over budget early, keeps its counts, says why, and replays the same', async (t) => {
    const pair = await droppingPair(t);
    const b = await tempBundle(t, 'ebpfnet-guard-');
    const request = { step: 'guard', alias: 'drops', probe: 'drops.kernel', params: { duration: '8s', netns: pair.ns } as Params };
    const started = performance.now();
    const probe = runProbe(dropsKernel, request, b.opts('live', { budget: { cpu: 0.001 } }));
    await delay(800);
    const sent = await udpFlood(pair, 2500);
    const f = await probe;
    const tookMs = performance.now() - started;
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as DropsData;
    assert.ok(data.overhead, 'the finding has an overhead report');
    assert.match(data.overhead.stopped ?? '', /^overhead budget exceeded at [0-9.]+% CPU \(budget 0\.1%\) after /);
    assert.match(f.summary, /\(stopped: overhead budget exceeded at /);
    assert.ok(tookMs < 6000, `stopped early: took ${Math.round(tookMs)} ms of 8 s`);
    const nf = data.byReason.NETFILTER_DROP ?? 0;
    assert.ok(nf > 0 && nf < sent, `kept the drops counted before the stop: ${nf} of ${sent}`);
    assert.ok(data.windowMs < 6000, `the window ends at the stop: ${data.windowMs} ms`);
    assert.equal(data.overhead.budget.cpu, 0.001);
    assert.equal(data.overhead.stats, 'BPF_ENABLE_STATS');
    // The statistics were on for the first second and sampled after: their runs are a part of the window's.
    const o = data.overhead;
    assert.ok(o.runCnt > 0 && o.sampledMs! > 0 && o.sampledMs! < o.windowMs, `sampled ${o.sampledMs} ms of ${o.windowMs}: ${o.runCnt} runs`);
    assert.ok(o.eventsPerSec >= o.runCnt / (o.windowMs / 1000), 'the rate is of the sampled time, not diluted over the window');
    assert.ok(f.tables.some((tb) => tb.title === 'Overhead of the BPF programs' && String(tb.rows[0]!.at(-1)).startsWith('stopped: ')));

    const again = await runProbe(dropsKernel, request, b.opts('replay', { replayFrom: b.dir('live') }));
    assert.equal(again.status, 'ok', again.reason);
    assert.deepEqual(again.data, f.data);
  });

  it('leaves a session within budget alone and reports what it cost', async (t) => {
    const pair = await droppingPair(t);
    const b = await tempBundle(t, 'ebpfnet-guard-ok-');
    const probe = runProbe(dropsKernel, { step: 'guard', alias: 'drops', probe: 'drops.kernel', params: { duration: '2s', netns: pair.ns, stacks: false } }, b.opts('live'));
    await delay(800);
    await pair.ping({ count: 5, interval: 0.05, wait: 0.2 });
    await run(['ip', 'netns', 'exec', pair.ns, 'true']);
    const f = await probe;
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as DropsData;
    assert.equal(data.overhead?.stopped, undefined);
    assert.deepEqual(data.overhead?.budget, dropsKernel.budget);
    assert.ok(data.overhead!.windowMs >= 1500, `guarded the whole window: ${data.overhead!.windowMs}`);
    assert.ok(data.overhead!.cpu < 0.05);
  });
});

describe('the probe catalog', () => {
  it('every probe that loads BPF declares an overhead budget', async () => {
    const { probeRegistry } = await import('../../probes/index.js');
    const catalog = probeRegistry();
    const bpf = catalog.ids().map((id) => catalog.get(id)!).filter((d) => d.driver === 'native' || d.driver === 'bpftrace');
    assert.ok(bpf.length >= 5, `BPF probes: ${bpf.map((d) => d.id).join(', ')}`);
    for (const def of bpf) {
      assert.ok(def.budget, `${def.id} declares no budget`);
      assert.ok(def.budget.cpu > 0 && def.budget.cpu <= 0.5, `${def.id}: cpu budget ${def.budget.cpu}`);
      assert.ok(def.budget.eventsPerSec > 0, `${def.id}: events budget ${def.budget.eventsPerSec}`);
    }
  });
});
