// other.arp on a LAN inside namespaces (a bridge br0 with three hosts): one host sends a burst
// of gratuitous ARP, two hosts share one IP and both answer the bridge's requests for it, one
// sends replies nobody asked for. The probe watches br0 and must count exactly what was sent,
// with the MACs the test gave the hosts; a quiet LAN shows nothing abnormal; replays agree.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { runCommand } from '../../engine/exec.js';
import { liveHandles } from '../../engine/native/guard.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Finding, Params } from '../../engine/probe/types.js';
import { attachPlan, programName, TRACEPOINTS } from '../../probes/other.arp/attach.js';
import { arpFinding, type ArpData, type ArpSender, type AttachCapture, type DumpCapture, type SenderEntry } from '../../probes/other.arp/findings.js';
import { otherArp, readDump } from '../../probes/other.arp/probe.js';
import { createBridgeLan, type BridgeLan, type LanHost } from '../helpers/bridge-lan.js';
import { assertEveryFlavourAttaches, TP_BTF_FIRST } from '../helpers/attach-plan.js';
import { whenAttached } from '../helpers/bpf-links.js';
import { tempBundle } from '../helpers/bundle.js';
import { assertProbeListedAndShown, runCli, startCli } from '../helpers/cli.js';
import { assertReplaysSame } from '../helpers/replay.js';
import { canBuildTopologies } from '../helpers/netns.js';
import { withTrafficInWindow } from '../helpers/probe-window.js';

const cannot = (await canBuildTopologies()) ?? ((await runCommand('arping', ['--help'])).stdout.includes('Habets') ? null : 'needs arping (apt-get install arping)');

const GARPS = 50;
const ASKS = 5;
const UNSOLICITED = 3;
const REPLY_WINDOW_MS = 500;
const NET = '192.168.77';
const GARPER = { ip: `${NET}.10`, mac: '02:00:00:00:00:0a' };
const DUP1 = { ip: `${NET}.20`, mac: '02:00:00:00:00:21' };
const DUP2 = { ip: `${NET}.20`, mac: '02:00:00:00:00:22' };
/** The IP the unsolicited replies claim (nobody asked for it). */
const STRAY_IP = `${NET}.40`;

/** A runbook with one other.arp step that branches on the finding's conflicts. */
const RUNBOOK = `id: arp-check
title: Is ARP on a bridge sane?
description: Watches the ARP a bridge receives and concludes on IP conflicts.
inputs:
  netns:
    type: string
    description: The bridge's network namespace.
  duration:
    type: duration
    default: 3s
    description: How long to watch.
steps:
  - id: watch
    title: Watch ARP on br0
    description: Counts ARP per sender IP and MAC for \${inputs.duration}.
    on_error: arp-unknown
    probe: other.arp
    as: arp
    params:
      netns: \${inputs.netns}
      dev: br0
      duration: \${inputs.duration}
    next:
      - if: findings.arp.conflicts.size() > 0
        goto: arp-ip-conflict
        why: One IP is claimed by several MACs.
      - goto: arp-normal
conclusions:
  - id: arp-ip-conflict
    title: Two hosts use one IP
    category: arp-conflict
    confidence: high
    summary: \${findings.arp.conflicts[0].ip} is claimed by \${findings.arp.conflicts[0].macs[0].mac} and \${findings.arp.conflicts[0].macs[1].mac}
    explanation: Replies for one IP came from two MACs.
    actions:
      - Find the two hosts by MAC and give one another address.
    evidence: [arp]
  - id: arp-normal
    title: ARP is normal
    category: inconclusive
    confidence: low
    summary: nothing abnormal
    explanation: No IP had two MACs.
    actions:
      - Look elsewhere.
    evidence: [arp]
  - id: arp-unknown
    title: The probe could not run
    category: inconclusive
    confidence: low
    summary: other.arp did not run
    explanation: See the finding.
    actions:
      - Run ebpfnet doctor.
    evidence: [arp]
`;

const request = (params: Record<string, unknown>) => ({ step: 's', alias: 'arp', probe: otherArp.id, params: params as Params });

/** Habets arping (package `arping`), which exits 1 when no reply came: only a failure to start is an error. */
async function arping(host: { ns: string }, args: string[]): Promise<void> {
  const r = await runCommand('ip', ['netns', 'exec', host.ns, 'arping', '-q', ...args]);
  if (r.exitCode !== 0 && r.exitCode !== 1) throw new Error(`arping ${args.join(' ')} failed (${r.exitCode}): ${r.stderr.trim()}`);
}

function sender(data: ArpData, ip: string, mac: string): ArpSender {
  const s = data.senders.find((x) => x.ip === ip && x.mac === mac);
  assert.ok(s, `a sender ${ip} ${mac} in ${JSON.stringify(data.senders.map((x) => [x.ip, x.mac]))}`);
  return s;
}

/** The faults, in order: a gratuitous burst, requests two hosts answer, then replies nobody asked for. */
async function abnormalTraffic(lan: BridgeLan): Promise<void> {
  const [garper, dup1] = lan.hosts as [LanHost, LanHost, LanHost];
  await arping(garper, ['-U', '-i', 'eth0', '-c', String(GARPS), '-W', '0.01', GARPER.ip]);
  await arping(lan, ['-i', 'br0', '-c', String(ASKS), '-W', '0.05', DUP1.ip]);
  await delay(REPLY_WINDOW_MS + 100); // past the session's first reply window: a stray reply is unsolicited
  await arping(dup1, ['-P', '-i', 'eth0', '-S', STRAY_IP, '-t', lan.bridgeMac, '-c', String(UNSOLICITED), '-W', '0.05', lan.bridgeIp]);
}

describe('other.arp', () => {
  before(() => assert.equal(cannot, null, `cannot run: ${cannot}`));

  it('is listed by the CLI, and `probes show` names the seed tool it replaces', () => {
    const shown = assertProbeListedAndShown('other.arp');
    assert.match(shown, /other\/trace-abnormal-arp\.bt/);
    assert.match(shown, /storm_pps/);
  });

  it('reads a dump: MAC mismatches warn, DAD probes claim no IP, early replies stay unverified, a steady sender is a storm on average', () => {
    const counts = { requests: 0, replies: 0, gratuitous: 0, probes: 0, unsolicited: 0, unverified: 0, other: 0 };
    const entry = (ip: string, mac: string, more: Partial<SenderEntry>): SenderEntry => ({ ifindex: 2, netns: 99, ip, mac, ...counts, macMismatch: 0, ethSrc: null, peakPerSec: 0, ...more });
    const att: AttachCapture = {
      method: 'tp_btf',
      btf: 'vmlinux',
      loadMs: 1,
      attach: [],
      filters: { netns: null, netnsInode: 0, dev: null, ifindex: 0, ip: null, replyWindowMs: 3000 },
    };
    const dump: DumpCapture = {
      windowMs: 10_000,
      seen: 127,
      unkeyed: 0,
      asked: 0,
      entries: [
        entry('0.0.0.0', GARPER.mac, { probes: 3 }),
        entry(GARPER.ip, GARPER.mac, { requests: 2, unverified: 1 }),
        entry(DUP1.ip, DUP1.mac, { requests: 1, macMismatch: 1, ethSrc: DUP2.mac }),
        // 120 gratuitous in 10 s, never more than 9 in one second: a storm on average (12/s).
        { ...entry(STRAY_IP, DUP2.mac, { gratuitous: 120, peakPerSec: 9 }), ifindex: 3, netns: 7 },
      ],
    };
    const r = arpFinding(att, { netnsInode: 99, devices: { '2': 'tap0' } }, dump, null, { stormPerSec: 10, top: 20 });
    assert.deepEqual(r.data.conflicts, [], 'DAD probes from 0.0.0.0 claim nothing');
    assert.deepEqual(r.data.mismatches, [{ device: 'tap0', ip: DUP1.ip, arpMac: DUP1.mac, ethMac: DUP2.mac, count: 1 }]);
    assert.deepEqual(r.data.storms, [{ device: 'if3@netns:7', mac: DUP2.mac, ips: [STRAY_IP], gratuitous: 120, unsolicited: 0, peakPerSec: 9, ratePerSec: 12 }]);
    assert.equal(r.data.totals.unverified, 1);
    assert.deepEqual(r.data.unsolicited, []);
    assert.match(r.data.notes.join('\n'), /1 reply arrived in the first 3s without a request seen/);
    assert.equal(r.severity, 'critical');
    assert.equal(r.data.senders[0]?.mac, DUP2.mac, 'the loudest sender first');
    const quiet = arpFinding(att, { netnsInode: 99, devices: {} }, { ...dump, entries: dump.entries.slice(0, 3) }, null, { stormPerSec: 10, top: 20 });
    assert.equal(quiet.severity, 'warning', 'a MAC mismatch alone warns');
  });

  it('loads every program of other.arp.bpf.o with its filters set, and each flavour attaches here', () => {
    const plan = attachPlan();
    assert.equal(plan.flatMap((s) => s.programs).length, 6);
    assertEveryFlavourAttaches('other.arp', plan, { targ_ifindex: 7, targ_netns: 1, targ_ip: Uint8Array.of(10, 0, 0, 1), reply_window_ns: 1_000_000n }, TRACEPOINTS, TP_BTF_FIRST);
    assert.equal(programName('netif_receive_skb', 'raw_tracepoint'), 'arp_receive_raw_tp');
  });

  it(`a gratuitous storm, one IP answered by two MACs and ${UNSOLICITED} unsolicited replies: exact counts with the hosts' MACs; an IP filter; replays the same`, async (t) => {
    const lan = await createBridgeLan(t, NET, [GARPER, DUP1, DUP2]);
    const b = await tempBundle(t, 'ebpfnet-arp-');
    const watch = { netns: lan.ns, dev: 'br0', duration: '4s', reply_window: `${REPLY_WINDOW_MS}ms` };
    // The filtered session runs around the whole unfiltered one, so both see all the traffic.
    const inner = withTrafficInWindow(otherArp, () => abnormalTraffic(lan));
    const unfiltered: Finding[] = [];
    const outer = withTrafficInWindow(otherArp, async () => {
      unfiltered.push(await runProbe(inner, request(watch), b.opts('all')));
    });
    const filtered = await runProbe(outer, request({ ...watch, ip: DUP1.ip, duration: '200ms' }), b.opts('ip'));
    const all = unfiltered[0];
    assert.ok(all);
    assert.equal(all.status, 'ok', all.reason);
    assert.equal(filtered.status, 'ok', filtered.reason);

    const data = all.data as ArpData;
    assert.equal(data.method, 'tp_btf');
    assert.equal(data.overhead?.stopped, undefined, 'within its budget');
    assert.deepEqual(data.filters, { netns: lan.ns, dev: 'br0', ip: null });
    // Every frame br0 received, and each request it sent left through br0 and its 3 ports.
    assert.equal(data.frames, GARPS + 2 * ASKS + UNSOLICITED);
    assert.equal(data.requestsSent, ASKS * 4);
    assert.deepEqual(Object.keys(data.byDevice), ['br0']);
    assert.deepEqual(data.totals, { requests: 0, replies: 2 * ASKS, gratuitous: GARPS, probes: 0, unsolicited: UNSOLICITED, unverified: 0, other: 0, macMismatch: 0 });

    // The storm: the gratuitous burst, from the host's MAC.
    assert.equal(sender(data, GARPER.ip, GARPER.mac).gratuitous, GARPS);
    assert.equal(data.storms.length, 1);
    const storm = data.storms[0]!;
    assert.deepEqual({ ...storm, peakPerSec: 0, ratePerSec: 0 }, { device: 'br0', mac: GARPER.mac, ips: [GARPER.ip], gratuitous: GARPS, unsolicited: 0, peakPerSec: 0, ratePerSec: 0 });
    // 50 frames 10 ms apart span a second boundary at most once.
    assert.ok(storm.peakPerSec >= GARPS / 2 && storm.peakPerSec <= GARPS, `peak ${storm.peakPerSec}/s`);

    // The conflict: both MACs answered each of the requests.
    assert.deepEqual(data.conflicts, [
      {
        ip: DUP1.ip,
        macs: [
          { mac: DUP1.mac, frames: ASKS, devices: ['br0'] },
          { mac: DUP2.mac, frames: ASKS, devices: ['br0'] },
        ],
      },
    ]);
    assert.equal(sender(data, DUP1.ip, DUP1.mac).replies, ASKS);
    assert.equal(sender(data, DUP2.ip, DUP2.mac).replies, ASKS);

    // The replies nobody asked for: the stray IP, from the sending host's MAC.
    assert.deepEqual(data.unsolicited, [{ device: 'br0', ip: STRAY_IP, mac: DUP1.mac, count: UNSOLICITED }]);
    assert.deepEqual(data.mismatches, []);
    assert.equal(data.abnormal, true);
    assert.equal(all.severity, 'critical');
    assert.equal(
      all.summary,
      `IP ${DUP1.ip} claimed by 2 MACs (${DUP1.mac}, ${DUP2.mac}); gratuitous ARP storm from ${GARPER.mac} (${GARPER.ip}) on br0: ${GARPS} in ${(data.windowMs / 1000).toFixed(1)}s, peak ${storm.peakPerSec}/s; ` +
        `${UNSOLICITED} unsolicited replies (${STRAY_IP} from ${DUP1.mac}) (${data.frames} ARP frames in ${(data.windowMs / 1000).toFixed(1)}s)`,
    );
    const offenders = all.tables.find((x) => x.title === 'Abnormal ARP: offenders');
    assert.deepEqual(
      offenders?.rows.map((r) => [r[0], r[1], r[2], r[4]]),
      [
        ['IP conflict', DUP1.ip, DUP1.mac, ASKS],
        ['IP conflict', DUP1.ip, DUP2.mac, ASKS],
        ['storm', GARPER.ip, GARPER.mac, GARPS],
        ['unsolicited reply', STRAY_IP, DUP1.mac, UNSOLICITED],
      ],
    );

    // The IP filter: only the frames whose sender or target is the duplicated IP.
    const ipData = filtered.data as ArpData;
    assert.equal(ipData.frames, 2 * ASKS);
    assert.equal(ipData.requestsSent, ASKS * 4);
    assert.deepEqual(ipData.conflicts, data.conflicts);
    assert.deepEqual([ipData.storms, ipData.unsolicited], [[], []]);

    // Replay: the same findings, without loading anything.
    const handles = liveHandles();
    assert.equal(handles.objects, 0, 'the live runs closed their objects');
    await assertReplaysSame(otherArp, watch, b, 'all', all);
    await assertReplaysSame(otherArp, { ...watch, ip: DUP1.ip, duration: '200ms' }, b, 'ip', filtered);
    assert.deepEqual(liveHandles(), handles);
    t.diagnostic(`load ${data.loadMs} ms, attach ${data.attach.map((a) => a.attachMs).join('/')} ms; ${Math.round(data.overhead?.nsPerEvent ?? 0)} ns/event, ${Math.round(data.overhead?.eventsPerSec ?? 0)} events/s; storm peak ${storm.peakPerSec}/s`);
  });

  it('a quiet LAN: requests answered once, nothing abnormal; each frame counted at the port and at the bridge', async (t) => {
    const lan = await createBridgeLan(t, NET, [GARPER]);
    const b = await tempBundle(t, 'ebpfnet-arp-quiet-');
    const def = withTrafficInWindow(otherArp, () => arping(lan, ['-i', 'br0', '-c', '3', '-W', '0.05', GARPER.ip]));
    const f = await runProbe(def, request({ netns: lan.ns, duration: '1s' }), b.opts('quiet'));
    assert.equal(f.status, 'ok', f.reason);
    const data = f.data as ArpData;
    assert.equal(data.abnormal, false);
    assert.deepEqual([data.conflicts, data.storms, data.unsolicited, data.mismatches], [[], [], [], []]);
    assert.deepEqual(data.byDevice, {
      br0: { requests: 0, replies: 3, gratuitous: 0, probes: 0, unsolicited: 0, unverified: 0, other: 0 },
      p1: { requests: 0, replies: 3, gratuitous: 0, probes: 0, unsolicited: 0, unverified: 0, other: 0 },
    });
    assert.equal(sender(data, GARPER.ip, GARPER.mac).replies, 3);
    assert.equal(f.severity, 'info');
    assert.match(f.summary, /^no abnormal ARP in \d+\.\ds: 0 requests, 6 replies, 0 gratuitous on 2 devices$/);

    await assertReplaysSame(otherArp, { netns: lan.ns, duration: '1s' }, b, 'quiet', f);
  });

  it('the fallback flavours (raw_tp, classic tracepoints), each loaded alone, count the same requests and replies', async (t) => {
    const lan = await createBridgeLan(t, NET, [GARPER]);
    const inode = Number(/net:\[(\d+)\]/.exec((await lan.inNs(['readlink', '/proc/self/ns/net'])).stdout)?.[1]);
    for (const method of ['raw_tracepoint', 'tracepoint'] as const) {
      const step = attachPlan().find((s) => s.method === method)!;
      const o = BpfObject.open(bpfObjectPath('other.arp'), { globals: { targ_netns: inode } });
      try {
        for (const p of o.programs()) p.autoload = step.programs.includes(p.name);
        o.load();
        step.attach(o);
        await arping(lan, ['-i', 'br0', '-c', '3', '-W', '0.05', GARPER.ip]);
        const dump = readDump(o, 0);
        // Each request left through br0 and its one port; each reply was received at the port and at br0.
        assert.equal(dump.asked, 6, method);
        assert.equal(dump.seen, 6, method);
        assert.deepEqual(
          dump.entries.map((e) => [e.ip, e.mac, e.replies, e.unverified]),
          [
            [GARPER.ip, GARPER.mac, 3, 0],
            [GARPER.ip, GARPER.mac, 3, 0],
          ],
          method,
        );
      } finally {
        o.close();
      }
    }
  });

  it('runs alone from the CLI (`ebpfnet probe run other.arp`): an idle LAN shows no ARP at all', async (t) => {
    const lan = await createBridgeLan(t, NET, [GARPER]);
    const b = await tempBundle(t, 'ebpfnet-arp-cli-');
    const r = runCli(['probe', 'run', 'other.arp', '--param', `netns=${lan.ns}`, '--param', 'dev=br0', '-d', '1', '--json', '--out', b.root]);
    assert.equal(r.status, 0, r.stderr);
    const f = JSON.parse(r.stdout) as Finding;
    assert.equal(f.status, 'ok', f.reason);
    assert.equal((f.data as ArpData).frames, 0);
    assert.match(f.summary, /^no abnormal ARP in 1\.\ds: 0 requests, 0 replies, 0 gratuitous on 0 devices$/);
  });

  it('is a runbook step: a runbook branches on its conflicts to a conclusion naming the IP and both MACs', async (t) => {
    const lan = await createBridgeLan(t, NET, [DUP1, DUP2]);
    const b = await tempBundle(t, 'ebpfnet-arp-runbook-');
    const file = join(b.root, 'arp-check.yaml');
    writeFileSync(file, RUNBOOK);
    const { done } = startCli(['diagnose', file, '--input', `netns=${lan.ns}`, '--input', 'duration=2s', '--out', join(b.root, 'runs'), '--json']);
    // Once its programs are attached, requests for the shared IP every 100 ms for 1.5 s: inside its 2 s window.
    await whenAttached('arp_', TRACEPOINTS.length);
    const [r] = await Promise.all([done, arping(lan, ['-i', 'br0', '-c', '15', '-W', '0.1', DUP1.ip])]);
    assert.equal(r.status, 0, `${r.stderr}\n${r.stdout}`);
    const result = JSON.parse(r.stdout) as { conclusion: { id: string; summary: string } | null };
    assert.equal(result.conclusion?.id, 'arp-ip-conflict', r.stdout);
    assert.equal(result.conclusion?.summary, `${DUP1.ip} is claimed by ${DUP1.mac} and ${DUP2.mac}`);
  });

  it('fails with a clear reason for a missing namespace or device', async (t) => {
    const lan = await createBridgeLan(t, NET, []);
    const b = await tempBundle(t, 'ebpfnet-arp-bad-');
    const ns = await runProbe(otherArp, request({ netns: 'ebpfnet-nosuch-ns', duration: '100ms' }), b.opts('ns'));
    assert.equal(ns.status, 'error');
    assert.match(ns.reason ?? '', /^no network namespace ebpfnet-nosuch-ns: /);
    const dev = await runProbe(otherArp, request({ netns: lan.ns, dev: 'nosuch0', duration: '100ms' }), b.opts('dev'));
    assert.equal(dev.status, 'error');
    assert.match(dev.reason ?? '', new RegExp(`no device nosuch0 in network namespace ${lan.ns}`));
    assert.equal(liveHandles().objects, 0);
  });
});
