import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { loadFirstWorking } from '../../engine/native/attach-plan.js';
import { liveHandles } from '../../engine/native/guard.js';
import { packageRoot } from '../../engine/package-info.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params } from '../../engine/probe/types.js';
import { dropsKernel, type DropsData } from '../../probes/drops.kernel/probe.js';
import { hasReasonField, KFREE_SKB, parseReasonNames } from '../../probes/lib/drop-reasons.js';
import { tracepointCategories, tracepointFormat, tracepointsIn } from '../../engine/host/tracefs.js';
import { detectFeatures } from '../../engine/host/features.js';
import { createSocket } from 'node:dgram';
import { u32Key } from '../../engine/native/map.js';
import { ipv4Bytes } from '../../engine/probe/bpf-values.js';
import { attachPlan, loadDrops, readsPacket } from '../../probes/lib/drops/attach.js';
import { readDropCounts } from '../../probes/lib/drops/session.js';
import { reasonAt } from '../../probes/lib/drops/locations.js';
import { tempBundle } from '../helpers/bundle.js';
import { runWindowOverTraffic } from '../helpers/probe-window.js';
import { canBuildTopologies, createVethPair, dropIcmpInNs, run } from '../helpers/netns.js';
import { quietPair } from '../helpers/netdev-probes.js';
import { assertDropsFlavoursAttach, NFT_PLACE, REASONED } from '../helpers/drops-kernel-object.js';

function drops(params: Record<string, unknown>) {
  return { step: 'drops', alias: 'drops', probe: 'drops.kernel', params: params as Params };
}

const cannot = await canBuildTopologies();

describe('drops.kernel', () => {
  before(() => assert.equal(cannot, null, `cannot build test topologies: ${cannot}`));

  it('counts ICMP dropped by nftables in a namespace, and replays without loading BPF', async (t) => {
    const pair = await createVethPair(t);
    await dropIcmpInNs(pair);
    const b = await tempBundle(t, 'ebpfnet-drops-');
    const params = { duration: '4s', netns: pair.ns, src_ip: pair.hostIp, protocol: 'icmp' };
    const N = 20;
    // ping -c sends each echo request once: every request is one drop. (With -w, ping keeps
    // sending past -c until the deadline when no reply comes: no deadline here.) The pings start
    // once the programs are attached: loading takes seconds on a slow lab kernel.
    let ping!: Awaited<ReturnType<typeof pair.ping>>;
    const f = await runWindowOverTraffic(dropsKernel, drops(params), b.opts('live'), async () => {
      ping = await pair.ping({ count: N, interval: 0.05, wait: 0.2 });
    });
    assert.equal(f.status, 'ok', f.reason);
    assert.equal(ping.transmitted, N);
    assert.equal(ping.received, 0);
    const data = f.data as DropsData;
    assert.equal(data.method, REASONED ? 'tp_btf' : 'kprobe');
    assert.equal(data.reasonsFrom, REASONED ? 'kernel' : 'location');
    assert.equal(data.attach.length, 1);
    assert.ok(data.attach[0]!.attachMs >= 0 && data.attach[0]!.attachMs < 1000, `attachMs ${data.attach[0]!.attachMs}`);
    const nf = data.byReason.NETFILTER_DROP ?? 0;
    assert.ok(Math.abs(nf - N) <= Math.ceil(N * 0.05), `NETFILTER_DROP ${nf}, expected ${N}`);
    assert.deepEqual(Object.keys(data.byReason), ['NETFILTER_DROP']);
    // On 6.x nft_do_chain frees the dropped skb itself (NF_DROP_REASON): the location is there.
    const loc = Object.keys(data.byLocation);
    assert.equal(loc.length, 1);
    assert.match(loc[0]!, new RegExp(`^${NFT_PLACE}\\+0x`));
    assert.ok(data.topStacks.length > 0 && data.topStacks[0]!.frames[0]!.startsWith(`${NFT_PLACE}+`), JSON.stringify(data.topStacks[0]));
    assert.equal(f.severity, 'critical');
    assert.match(f.summary, new RegExp(`^${nf} drops in [0-9.]+s: NETFILTER_DROP ${nf} at ${NFT_PLACE}`));
    assert.deepEqual(Object.keys(data.byDevice), [`if${Object.keys(data.byDevice)[0]!.slice(2).split('@')[0]}@${pair.ns}`]);
    assert.ok(f.charts.some((c) => c.kind === 'bar' && c.title === 'Drops by reason'));

    // Replay: identical data; no BPF object is opened.
    const handlesBefore = liveHandles();
    const r = await runProbe(dropsKernel, drops(params), b.opts('replay', { replayFrom: b.dir('live') }));
    assert.equal(r.status, 'ok', r.reason);
    assert.equal(r.driver, 'replay');
    assert.deepEqual(r.data, f.data);
    assert.equal(r.summary, f.summary);
    assert.deepEqual(liveHandles(), handlesBefore);
    assert.equal(liveHandles().objects, 0, 'the live run closed its object');
  });

  it("names a qdisc's drops QDISC_DROP as the qdisc counts them, stacks off; before 5.17 by the caller of the helper that freed them, from the stack it always takes there", async (t) => {
    const pair = await quietPair(t);
    await run(['tc', 'qdisc', 'add', 'dev', pair.hostDev, 'root', 'handle', '5:', 'pfifo', 'limit', '0']);
    const qdiscDrops = async () => (JSON.parse((await run(['tc', '-s', '-j', 'qdisc', 'show', 'dev', pair.hostDev])).stdout) as Array<{ handle: string; drops: number }>).find((q) => q.handle === '5:')!.drops;
    const before = await qdiscDrops();
    const b = await tempBundle(t, 'ebpfnet-drops-qdisc-');
    const N = 20;
    const f = await runWindowOverTraffic(dropsKernel, drops({ duration: '3s', dev: pair.hostDev, stacks: false }), b.opts('qdisc'), async () => {
      const socket = createSocket('udp4');
      for (let i = 0; i < N; i++) await new Promise<void>((resolve) => socket.send(Buffer.alloc(16), 9, pair.peerIp, () => resolve()));
      socket.close();
    });
    assert.equal(f.status, 'ok', f.reason);
    const dropped = (await qdiscDrops()) - before;
    assert.equal(dropped, N, 'the pfifo of no room dropped every datagram');
    const data = f.data as DropsData;
    assert.equal(data.reasonsFrom, REASONED ? 'kernel' : 'location');
    assert.deepEqual(data.byReason, { QDISC_DROP: N }, JSON.stringify(data.byLocation));
    assert.deepEqual(data.dominantFamily, { family: 'qdisc', count: N, share: 1 });
  });

  it('the ip filter counts a VM address as source or destination, and nothing else', async (t) => {
    const pair = await createVethPair(t);
    await dropIcmpInNs(pair);
    const b = await tempBundle(t, 'ebpfnet-drops-ip-');
    const run = (name: string, ip: string, traffic: () => Promise<unknown>) =>
      runWindowOverTraffic(dropsKernel, drops({ duration: '3s', netns: pair.ns, ip, stacks: false }), b.opts(name), async () => void (await traffic()));
    const N = 10;
    // Nested windows: the pings fall inside both probes' windows.
    let peer!: Awaited<ReturnType<typeof runProbe>>;
    const other = await run('other', '192.0.2.77', async () => {
      peer = await run('peer', pair.peerIp, () => pair.ping({ count: N, interval: 0.05, wait: 0.2 }));
    });
    assert.equal(peer!.status, 'ok', peer!.reason);
    assert.equal((peer!.data as DropsData).byReason.NETFILTER_DROP, N);
    assert.equal((other!.data as DropsData).total, 0);
  });

  it('each tracepoint flavour counts two interleaved causes exactly, through its per-CPU pending counts', async (t) => {
    const pair = await createVethPair(t);
    await dropIcmpInNs(pair);
    const peerNetns = Number((await pair.inNs(['stat', '-L', '-c', '%i', '/proc/self/ns/net'])).stdout.trim());
    // Only the pair's packets: ICMP echo requests the peer's nftables drops (NETFILTER_DROP) and
    // UDP datagrams to a closed port of the peer (NO_SOCKET), sent interleaved, so every CPU's
    // pending entry keeps changing key and its count moves into the shared table.
    const globals = { want_stacks: 0, targ_family: 4, targ_addr: ipv4Bytes(pair.hostIp)! };
    const names = parseReasonNames((await tracepointFormat(KFREE_SKB)) ?? '');
    const REASONS = Object.fromEntries([...names].map(([n, name]) => [name, n]));
    const N = 20;
    const M = 40;
    // The address filter reads the packet: the plan starts with the program that reads its headers with plain loads.
    const plan = attachPlan(REASONED, readsPacket(globals));
    if (REASONED) assert.deepEqual(plan.map((a) => a.program).slice(0, 2), ['drops_tp_btf_hdr', 'drops_tp_btf']);
    else assert.deepEqual(plan.map((a) => a.program), ['drops_kprobe_legacy']);
    // Before 5.17 the kprobe on kfree_skb is the whole plan.
    for (const attempt of plan.filter((a) => !REASONED || a.method !== 'kprobe')) {
      let loaded;
      try {
        loaded = await loadDrops(globals, REASONED, [attempt]);
      } catch (e) {
        // Verifiers that read skb->head as a number refuse the plain header loads; the plan then goes on to drops_tp_btf.
        if (attempt.program !== 'drops_tp_btf_hdr') throw e;
        const fallen = await loadDrops(globals, true);
        fallen.obj.close();
        assert.equal(fallen.link.program, 'drops_tp_btf');
        assert.deepEqual(fallen.fallbacks, [], 'still tp_btf: no fallback of method');
        continue;
      }
      try {
        assert.equal(loaded.method, attempt.method);
        assert.equal(loaded.link.program, attempt.program);
        const socket = createSocket('udp4');
        const sent = (async () => {
          for (let i = 0; i < M; i++) {
            await new Promise<void>((resolve, reject) => socket.send(Buffer.alloc(16), 9, pair.peerIp, (e) => (e ? reject(e) : resolve())));
            await delay(12);
          }
        })();
        const ping = await pair.ping({ count: N, interval: 0.025, wait: 0.2 });
        await sent;
        socket.close();
        await delay(100);
        assert.equal(ping.transmitted, N);
        loaded.obj.detach();
        const { entries, pendingSeen } = readDropCounts(loaded.obj);
        const inPeer = entries.filter((e) => e.netns === peerNetns);
        if (REASONED) {
          const byReason = (name: string) => inPeer.filter((e) => e.reason === REASONS[name]).reduce((n, e) => n + e.count, 0);
          assert.equal(byReason('NETFILTER_DROP'), N, `${attempt.program}: ${JSON.stringify(entries)}`);
          assert.equal(byReason('NO_SOCKET'), M, `${attempt.program}: ${JSON.stringify(entries)}`);
        } else {
          // No reasons: the two causes are two places (nf_hook_slow, the UDP receive path).
          const byPlace = new Map<string, number>();
          for (const e of inPeer) byPlace.set(String(e.location), (byPlace.get(String(e.location)) ?? 0) + e.count);
          assert.deepEqual([...byPlace.values()].sort((a, b) => a - b), [N, M], `${attempt.program}: ${JSON.stringify(entries)}`);
        }
        const counted = entries.reduce((n, e) => n + e.count, 0);
        const seen = Number(loaded.obj.map('totals').sumU64(u32Key(0))) + pendingSeen;
        assert.equal(seen, counted, `${attempt.program}: every drop let through is counted once`);
      } finally {
        loaded.obj.close();
      }
    }
  });

  it("a variant step the kernel refuses is no fallback of method; when nothing works, its reason is in the error", async () => {
    const path = bpfObjectPath('drops.kernel');
    const refused = { method: 'tp_btf' as const, programs: ['drops_no_such_variant'], variant: true, attach: () => [] };
    // What works here: the tp_btf program, or before 5.17 the kprobe on kfree_skb.
    const [works] = attachPlan(REASONED).filter((a) => a.method === (REASONED ? 'tp_btf' : 'kprobe'));
    const loaded = await loadFirstWorking(path, [refused, { method: works!.method, programs: [works!.program], attach: (o) => [works!.attach(o)] }], { what: 'drops.kernel' });
    try {
      assert.equal(loaded.links[0]!.program, works!.program);
      assert.deepEqual(loaded.fallbacks, []);
    } finally {
      loaded.obj.close();
    }
    await assert.rejects(loadFirstWorking(path, [refused], { what: 'drops.kernel' }), /^Error: no way to attach drops\.kernel on this kernel: tp_btf: no program drops_no_such_variant/);
  });

  it('chooses the kprobe on kfree_skb where the tracepoint has no reason (before 5.17)', () => {
    assert.deepEqual(attachPlan(false).map((a) => [a.program, a.method]), [['drops_kprobe_legacy', 'kprobe']]);
    assert.deepEqual(attachPlan(true).map((a) => a.method), ['tp_btf', 'raw_tracepoint', 'tracepoint', 'kprobe']);
    assert.equal(hasReasonField('field:void * location;\toffset:16;\n\tfield:enum skb_drop_reason reason;\toffset:26;'), true);
    assert.equal(hasReasonField('field:void * location;\toffset:16;\n\tfield:unsigned short protocol;\toffset:24;'), false);
  });

  it('before 5.17, names a drop as a later kernel does at its place: the dropping function, or the caller of a freeing helper', () => {
    assert.equal(reasonAt(['nf_hook_slow+0x98', 'ip_rcv+0x40']), 'NETFILTER_DROP');
    assert.equal(reasonAt(['tun_net_xmit+0x2f0 [tun]', 'dev_hard_start_xmit+0x9e']), 'FULL_RING');
    assert.equal(reasonAt(['tun_net_xmit.cold+0x1c [tun]', 'dev_hard_start_xmit+0x9e']), 'FULL_RING');
    assert.equal(reasonAt(['nf_hook_slow.part.0+0x40']), 'NETFILTER_DROP');
    // A qdisc's drops are freed in a list, by its caller's caller.
    assert.equal(reasonAt(['kfree_skb_list+0x21', '__dev_queue_xmit+0x7a3', 'ip_finish_output2+0x1c4']), 'QDISC_DROP');
    // A full AF_PACKET reader (a userspace switch's port), as 5.10 frees it.
    assert.equal(reasonAt(['packet_rcv+0x311', '__netif_receive_skb_core+0x5a1']), 'PACKET_SOCK_ERROR');
    assert.equal(reasonAt(['__udp4_lib_rcv+0x5d8', 'ip_protocol_deliver_rcu+0x3a']), 'NOT_SPECIFIED');
    // A frame for another MAC, freed by IP's receive: OTHERHOST, as later kernels say; elsewhere not.
    assert.equal(reasonAt(['ip_rcv+0x7d', '__netif_receive_skb_one_core+0x3f'], true), 'OTHERHOST');
    assert.equal(reasonAt(['ipv6_rcv+0x5e'], true), 'OTHERHOST');
    assert.equal(reasonAt(['ip_rcv+0x7d'], false), 'NOT_SPECIFIED');
    assert.equal(reasonAt(['nf_hook_slow+0x98'], true), 'NETFILTER_DROP');
    assert.equal(reasonAt([]), 'NOT_SPECIFIED');
  });

  it('reads the reason names of the tracepoint format', () => {
    const names = parseReasonNames('__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 12, "NETFILTER_DROP" })');
    assert.deepEqual([...names], [
      [2, 'NOT_SPECIFIED'],
      [12, 'NETFILTER_DROP'],
    ]);
  });

  it('every shipped BPF object passes the verifier; the kprobe twins attach where the kernel has kprobes', async () => {
    const dir = join(packageRoot(), 'build', 'bpf');
    const objects = readdirSync(dir).filter((f) => f.endsWith('.bpf.o'));
    assert.ok(objects.includes('drops.kernel.bpf.o'));
    const categories = await tracepointCategories();
    assert.ok(categories.length > 0, 'tracefs is mounted');
    const events = new Set((await Promise.all(categories.map((c) => tracepointsIn(c)))).flat());
    // A program on a BTF tracepoint this kernel lacks (sock:sk_data_ready before 6.3) cannot
    // load here; it is left unloaded (perf.host-latency then has no socket stage; other.udp-path
    // needs it and does not run).
    // Before 5.17 kfree_skb has no reason argument: its programs that read one cannot load
    // (drops.kernel uses its kprobe there; ovs.drops' kernel programs do not run).
    const missing = (section: string) => {
      const tp = /^\??(?:tp_btf|raw_tp|raw_tracepoint|tracepoint\/skb)\/(.+)$/.exec(section)?.[1];
      return tp !== undefined && (!events.has(tp) || (!REASONED && tp === 'kfree_skb'));
    };
    for (const file of objects) {
      const o = BpfObject.open(join(dir, file));
      try {
        for (const p of o.programs()) if (p.autoload && missing(p.section)) p.autoload = false;
        o.load();
      } finally {
        o.close();
      }
    }
    const kprobes = (await detectFeatures()).kprobes.present;
    // Each twin's function, where the kernel has it: kfree_skb_reason from 5.17, kfree_skb (a function) before.
    const kallsyms = readFileSync('/proc/kallsyms', 'utf8');
    const twins = { drops_kprobe: 'kfree_skb_reason', drops_kprobe_legacy: 'kfree_skb' };
    await assertDropsFlavoursAttach({}, (o) => {
      for (const [name, fn] of Object.entries(twins)) {
        if (kprobes && new RegExp(`^\\S+ [tT] ${fn}$`, 'm').test(kallsyms)) assert.ok(o.program(name).attach().attachMs >= 0, name);
        else assert.throws(() => o.program(name).attach(), kprobes ? /ENOENT/ : /kprobe/, name);
      }
    });
  });

  it('is skipped with a clear reason when not root', async () => {
    const script = `
      const { runProbe } = await import(${JSON.stringify(join(packageRoot(), 'dist/engine/probe/runtime.js'))});
      const { dropsKernel } = await import(${JSON.stringify(join(packageRoot(), 'dist/probes/drops.kernel/probe.js'))});
      const { mkdtempSync } = await import('node:fs');
      const root = mkdtempSync('/tmp/ebpfnet-drops-nobody-');
      const f = await runProbe(dropsKernel, { step: 's', alias: 'd', probe: 'drops.kernel', params: {} },
        { rawDir: root + '/raw/d', bundleRoot: root, signal: new AbortController().signal });
      (await import('node:fs')).rmSync(root, { recursive: true, force: true });
      console.log(JSON.stringify({ status: f.status, reason: f.reason }));`;
    const r = await execa('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '--input-type=module', '-e', script], {
      stdin: 'ignore',
      cwd: '/tmp',
    });
    const f = JSON.parse(String(r.stdout).trim().split('\n').at(-1)!) as { status: string; reason: string };
    assert.equal(f.status, 'skipped');
    assert.match(f.reason, /^not root/);
  });
});
