import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runProbe } from '../../engine/probe/runtime.js';
import { otherTc, readDump, type TcData, type TcEvent } from '../../probes/other.tc/probe.js';
import type { FilterHits } from '../../probes/other.tc/hits.js';
import { callObjectOpener, parseCalls, readCallMaps, TC_KPROBES } from '../../probes/other.tc/kprobes.js';
import { detectFeatures, kernelConfig } from '../../engine/host/features.js';
import { packageRoot } from '../../engine/package-info.js';
import type { RawRecord } from '../../engine/probe/types.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { netdevGlobals, netdevPlan, tcHandle } from '../../probes/lib/netdev.js';
import { tempBundle } from '../helpers/bundle.js';
import { canBuildTopologies, run } from '../helpers/netns.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';
import { quietPair, request, udpFromNs } from '../helpers/netdev-probes.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { assertEveryFlavourAttaches, assertVerified } from '../helpers/attach-plan.js';

const cannot = await canBuildTopologies();

/** The events of `list` that match `want` (every field given), in order. */
function matching(list: TcEvent[], want: Partial<TcEvent>): TcEvent[] {
  return list.filter((e) => Object.entries(want).every(([k, v]) => e[k as keyof TcEvent] === v));
}

describe('other.tc in a namespace', () => {
  before(() => assert.equal(cannot, null, `cannot run: ${cannot}`));

  it('records an add, a replace and a delete of a root qdisc with device, kind and handle, in order; a quiet device shows nothing; replays it', async (t) => {
    const pair = await quietPair(t);
    const quiet = await quietPair(t);
    const changes = async () => {
      await run(['tc', '-n', pair.ns, 'qdisc', 'add', 'dev', pair.peerDev, 'root', 'handle', '5:', 'tbf', 'rate', '1mbit', 'burst', '2k', 'latency', '100ms']);
      await run(['tc', '-n', pair.ns, 'qdisc', 'replace', 'dev', pair.peerDev, 'root', 'handle', '6:', 'pfifo', 'limit', '100']);
      await run(['tc', '-n', pair.ns, 'qdisc', 'del', 'dev', pair.peerDev, 'root']);
      // Left in place: its handle can only come from tc's listing at the end.
      await run(['tc', '-n', pair.ns, 'qdisc', 'add', 'dev', pair.peerDev, 'root', 'handle', '8:', 'tbf', 'rate', '2mbit', 'burst', '4k', 'latency', '50ms']);
    };
    const b = await tempBundle(t, 'ebpfnet-tc-');
    const nsParams = { netns: pair.ns, duration: '1500ms' };
    const quietParams = { dev: quiet.hostDev, duration: '1500ms' };
    const [f, idle] = await Promise.all([
      runProbe(withTrafficInWindow(otherTc, changes), request(otherTc.id, nsParams), b.opts('churn')),
      runProbe(otherTc, request(otherTc.id, quietParams), b.opts('quiet')),
    ]);
    assert.equal(f.status, 'ok', f.reason);
    assert.equal(f.driver, 'native');
    const data = f.data as TcData;
    t.diagnostic(f.summary);
    t.diagnostic(JSON.stringify(data.events.map((e) => `${e.type} ${e.kind} ${e.handle} ${e.parent}`)));
    // The shared plan's first flavour: raw_tp programs relocated against a cached minimal BTF.
    assert.equal(data.method, 'raw_tracepoint', data.fallback);
    assert.equal(data.btf, 'minimal (cached)');
    assert.deepEqual(data.attach.map((a) => a.program), ['tc_create_raw_tp', 'tc_destroy_raw_tp', 'tc_reset_raw_tp']);
    assert.equal(data.fallback, undefined);
    t.diagnostic(`load ${data.loadMs} ms, attach ${data.attach.map((a) => a.attachMs).join(' + ')} ms`);
    const device = `${pair.peerDev}@${pair.ns}`;
    assert.ok(data.events.every((e) => e.device === device && e.dev === pair.peerDev && e.netns === pair.ns), 'only the namespace device');

    // tc created exactly the three root qdiscs it was asked to, in order, each named with its
    // handle (the kernel's own come and go too: the device's default noqueue, the tbfs' bfifo).
    const creates = data.events.filter((e) => e.type === 'create' && e.parent === 'root' && e.kind !== 'noqueue');
    assert.deepEqual(
      creates.map((e) => [e.kind, e.handle, e.parent, e.handleFrom]),
      [
        ['tbf', '5:', 'root', 'later event'],
        ['pfifo', '6:', 'root', 'later event'],
        ['tbf', '8:', 'root', 'tc'],
      ],
    );
    assert.deepEqual(
      matching(data.events, { type: 'create', kind: 'bfifo' }).map((e) => e.parent),
      ['5:1', '8:1'],
      "each tbf's inner bfifo",
    );
    // Configured changes: the three creates and the two destroys of qdiscs with a handle.
    assert.equal(data.configured, 5);
    // The replace destroyed the tbf, the delete the pfifo: each after its own create.
    const [tbfDestroy] = matching(data.events, { type: 'destroy', kind: 'tbf', handle: '5:', parent: 'root' });
    const [pfifoDestroy] = matching(data.events, { type: 'destroy', kind: 'pfifo', handle: '6:', parent: 'root' });
    assert.ok(tbfDestroy && pfifoDestroy, 'both root qdiscs were destroyed');
    assert.deepEqual(matching(data.events, { type: 'destroy', handle: '8:' }), [], 'the last tbf lives on');
    const at = (e: TcEvent) => data.events.indexOf(e);
    assert.ok(at(creates[0]!) < at(tbfDestroy) && at(creates[1]!) < at(tbfDestroy), 'the tbf went once the pfifo replaced it');
    assert.ok(at(tbfDestroy) < at(pfifoDestroy) && at(pfifoDestroy) < at(creates[2]!), 'the pfifo went with the delete, before the last add');
    assert.ok(data.events.every((e, i) => i === 0 || e.atMs >= data.events[i - 1]!.atMs), 'in time order');
    assert.ok(data.events.every((e) => e.atMs >= 0 && e.atMs <= data.windowMs));
    assert.equal(data.lost, 0);
    assert.equal(f.severity, 'warning');
    assert.match(f.summary, new RegExp(`create tbf 5: on ${device.replace(/[.]/g, '\\.')}`));

    assert.equal(idle.status, 'ok', idle.reason);
    assert.equal((idle.data as TcData).eventCount, 0);
    assert.match(idle.summary, new RegExp(`^no qdisc change on ${quiet.hostDev}`));

    await assertReplaysSame(otherTc, nsParams, b, 'churn', f);
    await assertReplaysSame(otherTc, quietParams, b, 'quiet', idle);
  });

  it('counts a u32 filter\'s hits and its mirred action\'s packets on a clsact egress hook (N matched of N + M sent); a filter that matched nothing and a mirred to a device that is gone are called out; replays it', async (t) => {
    const pair = await quietPair(t);
    const [N, M] = [12, 5];
    const tc = (...argv: string[]) => run(['tc', '-n', pair.ns, ...argv]);
    // Mirror targets inside the namespace (no dummy driver here: veth pairs).
    await run(['ip', '-n', pair.ns, 'link', 'add', 'mirror0', 'type', 'veth', 'peer', 'name', 'mirror1']);
    await run(['ip', '-n', pair.ns, 'link', 'set', 'mirror1', 'up']); // a veth whose peer is down drops what it is sent
    await run(['ip', '-n', pair.ns, 'link', 'set', 'mirror0', 'up']);
    await run(['ip', '-n', pair.ns, 'link', 'add', 'gone0', 'type', 'veth', 'peer', 'name', 'gone1']);
    await tc('qdisc', 'add', 'dev', pair.peerDev, 'clsact');
    // IPv4 total length 128: the datagrams of 100 bytes (the others are 228), mirrored to mirror0.
    await tc('filter', 'add', 'dev', pair.peerDev, 'egress', 'protocol', 'ip', 'prio', '10', 'u32', 'match', 'u16', '128', '0xffff', 'at', '2', 'action', 'mirred', 'egress', 'mirror', 'dev', 'mirror0');
    // Nothing goes to port 5555, and its mirror's device is deleted below.
    await tc('filter', 'add', 'dev', pair.peerDev, 'egress', 'protocol', 'ip', 'prio', '20', 'u32', 'match', 'ip', 'dport', '5555', '0xffff', 'action', 'mirred', 'egress', 'mirror', 'dev', 'gone0');
    await run(['ip', '-n', pair.ns, 'link', 'del', 'gone0']);

    const b = await tempBundle(t, 'ebpfnet-tc-hits-');
    const params = { netns: pair.ns, dev: pair.peerDev, duration: '1s' };
    const traffic = async () => {
      await udpFromNs(pair, N, 100);
      await udpFromNs(pair, M, 200);
    };
    const f = await runProbe(withTrafficInWindow(otherTc, traffic), request(otherTc.id, params), b.opts('hits'));
    assert.equal(f.status, 'ok', f.reason);
    t.diagnostic(f.summary);
    const hits = (f.data as TcData).hits!;
    t.diagnostic(JSON.stringify(hits.filters.map((x) => [x.pref, x.matches, x.lookups, x.matchesFrom])));
    const device = `${pair.peerDev}@${pair.ns}`;
    const byPref = (pref: number) => hits.filters.find((x) => x.pref === pref)!;
    const matching: FilterHits = byPref(10);
    assert.deepEqual([matching.device, matching.direction, matching.kind, matching.handle], [device, 'egress', 'u32', '800::800']);
    assert.equal(matching.matches, N, 'the filter matched the N datagrams of 100 bytes');
    assert.equal(matching.actions.length, 1);
    const mirror = matching.actions[0]!;
    assert.deepEqual(mirror.mirred, { action: 'mirror', direction: 'egress', device: 'mirror0', missing: false });
    assert.equal(mirror.packets, N);
    assert.equal(mirror.bytes, N * (100 + 28 + 14), 'frames of 100 bytes of UDP payload');
    assert.equal(mirror.overlimits, 0);
    // The kernel keeps u32 perf counters exactly with CONFIG_CLS_U32_PERF: then every datagram
    // was looked at by the first filter; without them lookups are unknown, not guessed.
    const u32Perf = (await kernelConfig()).options.get('CONFIG_CLS_U32_PERF') === 'y';
    assert.equal(matching.lookups !== null, u32Perf, `lookups ${matching.lookups} with CONFIG_CLS_U32_PERF ${u32Perf ? 'set' : 'not set'}`);
    if (u32Perf) {
      assert.equal(matching.matchesFrom, 'filter');
      assert.equal(matching.lookups, N + M);
      assert.equal(byPref(20).lookups, M);
    } else assert.equal(matching.matchesFrom, 'first action');
    const idle = byPref(20);
    assert.equal(idle.matches, 0);
    assert.deepEqual(idle.actions[0]!.mirred, { action: 'mirror', direction: 'egress', device: '*', missing: true });
    assert.equal(hits.filters.length, 2);
    assert.equal(hits.idle, 1);
    assert.equal(hits.missingTargets, 1);
    assert.equal(hits.mirredFailures, 0);
    // The action table lists both mirreds, the first with the N packets.
    assert.deepEqual(hits.actions.map((a) => [a.mirred?.device, a.packets]).sort(), [['*', 0], ['mirror0', N]]);
    assert.equal(f.severity, 'warning');
    assert.match(f.summary, new RegExp(`; tc filters: 1 mirred action to a device that is gone, filter u32 pref 10 on ${device.replace(/[.]/g, '\\.')} egress matched ${N}, 1 filter matched nothing$`));
    assert.ok((f.data as TcData).notes.some((n) => n.includes('mirror to a device that no longer exists')));
    assert.ok(f.tables!.some((tb) => tb.title.startsWith('tc filters') && tb.rows.length === 2));
    // The kprobes (tcf_classify, tcf_action_exec) attach exactly where kprobes exist.
    const calls = (f.data as TcData).calls!;
    assert.deepEqual([...calls.attached, ...calls.failed.map((x) => x.split(':')[0])].sort(), ['kprobe tcf_action_exec', 'kprobe tcf_classify']);
    if ((await detectFeatures()).kprobes.present === false) assert.deepEqual(calls.attached, []);
    else {
      const hook = calls.hooks.find((h) => h.device === device && h.direction === 'egress')!;
      assert.equal(hook.lookups, N + M);
      assert.deepEqual(hook.actionRuns, { mirred: N });
    }
    await assertReplaysSame(otherTc, params, b, 'hits', f);
  });

  it('the kprobe flavour (tcf_classify, tcf_action_exec) passes the verifier; its map reads back in the layout of probes/other.tc/other.tc.h', async () => {
    const o = (await callObjectOpener({ dev: 'veth0', netns: null, netnsInode: 0 }))();
    try {
      o.load();
      assertVerified(o, TC_KPROBES);
      // struct tc_kp_key: netdev_id {ifindex, netns, name[16]}, call, ingress, kind[16].
      const key = Buffer.alloc(48);
      key.writeUInt32LE(7, 0);
      key.writeUInt32LE(4026532777, 4);
      key.write('veth0', 8, 'latin1');
      key.writeUInt32LE(1, 24);
      key.writeUInt32LE(1, 28);
      key.write('mirred', 32, 'latin1');
      const count = Buffer.alloc(8);
      count.writeBigUInt64LE(12n);
      o.map('calls').update(key, count);
      assert.deepEqual(readCallMaps(o).entries, [{ ifindex: 7, netns: 4026532777, name: 'veth0', call: 'actions', ingress: true, kind: 'mirred', count: 12 }]);
    } finally {
      o.close();
    }
  });

  it('a kprobe session written by hand (fixture, not recorded; the real one runs in the kernel lab): lookups and action runs per device and hook', () => {
    const fixture = JSON.parse(readFileSync(join(packageRoot(), 'test', 'fixtures', 'other.tc', 'kprobes-u32-mirred.json'), 'utf8')) as { device: string; records: RawRecord[] };
    const calls = parseCalls(fixture.records)!;
    assert.deepEqual(calls.attached, ['kprobe tcf_classify', 'kprobe tcf_action_exec']);
    assert.deepEqual(calls.failed, []);
    assert.deepEqual(calls.hooks, [{ device: fixture.device, direction: 'egress', lookups: 17, firstFilter: 'u32', actionRuns: { mirred: 12 } }]);
    assert.equal(calls.lost, 0);
    assert.equal(calls.windowMs, 1012);
  });

  it('every flavour of other.tc.bpf.o (raw_tp, tp_btf, classic tracepoint) loads and attaches', () => {
    assertEveryFlavourAttaches('other.tc', netdevPlan({ tc_create: 'qdisc:qdisc_create', tc_destroy: 'qdisc:qdisc_destroy', tc_reset: 'qdisc:qdisc_reset' }), netdevGlobals({ dev: null, netns: null, netnsInode: 0 }), ['qdisc_create', 'qdisc_destroy', 'qdisc_reset']);
  });

  it('the classic tracepoint flavour records the same changes, by device name (the fallback where tp_btf is refused)', async (t) => {
    const pair = await quietPair(t);
    const names = ['create', 'destroy', 'reset'];
    const dev = new Uint8Array(16);
    dev.set(Buffer.from(pair.peerDev));
    const o = BpfObject.open(bpfObjectPath('other.tc'), {
      autoload: Object.fromEntries(names.flatMap((n) => [[`tc_${n}_tp_btf`, false], [`tc_${n}_tracepoint`, true]])),
      globals: { targ_dev: dev },
    });
    try {
      o.load();
      for (const n of names) assert.match(o.program(`tc_${n}_tracepoint`).attachTracepoint('qdisc', `qdisc_${n}`).target, new RegExp(`qdisc_${n}`));
      await run(['tc', '-n', pair.ns, 'qdisc', 'add', 'dev', pair.peerDev, 'root', 'handle', '5:', 'tbf', 'rate', '1mbit', 'burst', '2k', 'latency', '100ms']);
      await run(['tc', '-n', pair.ns, 'qdisc', 'del', 'dev', pair.peerDev, 'root']);
      const dump = readDump(o);
      assert.equal(dump.lost, 0);
      assert.ok(dump.events.every((e) => e.name === pair.peerDev && e.ifindex === 0 && e.netns === 0), 'named only');
      const tbf = dump.events.filter((e) => e.kind === 'tbf' && e.type !== 'reset').map((e) => [e.type, tcHandle(e.handle), tcHandle(e.parent)]);
      assert.deepEqual(tbf, [
        ['create', 'none', 'root'],
        ['destroy', '5:', 'root'],
      ]);
    } finally {
      o.close();
    }
  });
});
