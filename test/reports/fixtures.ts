// Synthetic run bundles for the report tests: written to disk the way the runner writes
// them (run.json, raw/<step>-<visit>/<alias>/ with records.json, the runbook YAML), so
// that `ebpfnet report` reads them like any other bundle.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChartSpec, Finding, LayersChart, TableSpec } from '../../engine/probe/types.js';
import type { RunRecord, TimelineEntry } from '../../engine/run/record.js';

const T0 = Date.parse('2026-11-20T09:00:00.000Z');
const iso = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

export const HOST = {
  hostname: 'hv-07',
  kernelRelease: '6.18.44-fc-v782',
  kernelVersion: '#1 SMP PREEMPT_DYNAMIC',
  os: 'Debian GNU/Linux 12 (bookworm)',
  arch: 'x64',
  cpus: 2,
  memoryBytes: 25276026880,
  nodeVersion: 'v20.20.2',
  ebpfnetVersion: '0.1.0',
  root: true,
  bootTime: '2026-11-20T08:00:00.000Z',
  collectedAt: iso(0),
};

export interface FindingInput extends Partial<Finding> {
  probe: string;
  alias: string;
  step: string;
  /** Raw evidence: file name → content, with the record that made it. */
  rawFiles?: Array<{ name: string; content: string; argv?: string[]; path?: string; op?: string }>;
}

export interface BundleInput {
  id: string;
  status?: RunRecord['status'];
  runbookYaml?: string;
  runbookId: string;
  runbookTitle: string;
  target?: Record<string, unknown>;
  inputs?: Record<string, unknown>;
  timeline: TimelineEntry[];
  findings: FindingInput[];
  conclusion?: RunRecord['conclusion'];
  interruptions?: RunRecord['interruptions'];
  errors?: string[];
  command?: string;
}

/** Writes a bundle under `root` and returns its folder. */
export function writeBundle(root: string, input: BundleInput): string {
  const dir = join(root, input.id);
  mkdirSync(join(dir, 'raw'), { recursive: true });
  let runbookFile = join(root, `${input.runbookId}-missing.yaml`);
  let runbookSha = '0'.repeat(64);
  if (input.runbookYaml !== undefined) {
    runbookFile = join(root, `${input.id}-${input.runbookId}.yaml`);
    writeFileSync(runbookFile, input.runbookYaml);
    runbookSha = sha(input.runbookYaml);
  }
  const findings: Finding[] = input.findings.map((f, i) => {
    const { rawFiles, ...rest } = f;
    const visit = f.visit ?? 1;
    const evidence = `raw/${f.step}-${visit}/${f.alias}`;
    const raw: string[] = [];
    const records: unknown[] = [];
    if (rawFiles?.length) {
      mkdirSync(join(dir, evidence), { recursive: true });
      rawFiles.forEach((r, n) => {
        const file = `${evidence}/${String(n + 1).padStart(2, '0')}-${r.name}.out`;
        writeFileSync(join(dir, file), r.content);
        raw.push(file);
        records.push({
          seq: n + 1,
          op: r.op ?? (r.argv ? 'exec' : 'read'),
          name: r.name,
          ...(r.argv ? { argv: r.argv } : {}),
          ...(r.path ? { path: r.path } : {}),
          at: T0 + i * 1000,
          durationMs: 1.5,
          exitCode: 0,
          file,
          stdoutBytes: Buffer.byteLength(r.content),
          stderrBytes: 0,
        });
      });
      writeFileSync(
        join(dir, evidence, 'records.json'),
        JSON.stringify({ format: 'ebpfnet-probe-evidence', version: 1, probe: f.probe, params: f.params ?? {}, outcome: { status: f.status ?? 'ok' }, records }, null, 2),
      );
      raw.push(`${evidence}/records.json`);
    }
    return {
      status: 'ok',
      severity: 'info',
      summary: '',
      data: {},
      params: {},
      charts: [],
      tables: [],
      raw,
      ...(rawFiles?.length ? { evidence } : {}),
      driver: 'native',
      startedAt: iso(i * 1000),
      endedAt: iso(i * 1000 + 900),
      durationMs: 900,
      visit,
      ...rest,
    } as Finding;
  });
  const record: RunRecord = {
    schema: 'ebpfnet.run/1',
    id: input.id,
    status: input.status ?? 'completed',
    mode: 'live',
    runbook: { id: input.runbookId, title: input.runbookTitle, file: runbookFile, sha256: runbookSha },
    inputs: input.inputs ?? {},
    target: input.target ?? { kind: 'host', name: HOST.hostname },
    host: HOST,
    tool: { name: 'ebpfnet', version: '0.1.0', node: 'v20.20.2' },
    command: input.command ?? `ebpfnet diagnose ${input.runbookId}`,
    startedAt: iso(0),
    ...(input.status === 'interrupted' || input.status === 'running' ? {} : { endedAt: iso(input.timeline.length * 1000 + 500) }),
    timeline: input.timeline,
    findings,
    conclusion: input.conclusion ?? null,
    interruptions: input.interruptions ?? [],
    resumes: [],
    errors: input.errors ?? [],
  };
  writeFileSync(join(dir, 'run.json'), `${JSON.stringify(record, null, 2)}\n`);
  return dir;
}

export function readRecord(dir: string): RunRecord {
  return JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunRecord;
}

function entry(step: string, i: number, title: string, probes: Array<[string, string]>, branch?: TimelineEntry['branch'], extra: Partial<TimelineEntry> = {}): TimelineEntry {
  return {
    step,
    visit: 1,
    title,
    kind: 'probe',
    startedAt: iso(i * 1000),
    endedAt: iso(i * 1000 + 950),
    status: 'done',
    probes: probes.map(([alias, probe]) => ({ alias, probe })),
    ...(branch ? { branch } : {}),
    ...extra,
  };
}

/** The demo run's first step: kernel drops counted, which led on to the latency step. */
function dropsStep(): TimelineEntry {
  return entry('drops', 0, 'Count kernel drops with their reasons', [['kdrops', 'drops.kernel'], ['monitor', 'drops.monitor']], {
    kind: 'next',
    index: 0,
    goto: 'latency',
    condition: 'findings.kdrops.total > 100',
    why: 'The kernel dropped packets while we watched.',
  });
}

/** The demo run's second step, with the branch it took if it ended. */
function latencyStep(branch?: TimelineEntry['branch']): TimelineEntry {
  return entry('latency', 1, 'Time the qdisc and each layer', [['qlat', 'qdisc.latency'], ['iface', 'net.iface']], branch);
}

/** A runbook of two probe steps whose findings carry every chart kind the report draws. */
export const CHARTS_RUNBOOK = `id: vm-path-demo
title: Where the packets of a VM are dropped or delayed
description: |
  Counts the kernel's drops with their **reasons**, then times the qdisc and each
  layer of the path. Written for the report tests.
inputs:
  duration:
    type: duration
    default: 2s
    description: How long each probe watches.
steps:
  - id: drops
    title: Count kernel drops with their reasons
    description: |
      Counts every \`kfree_skb\` for \`\${inputs.duration}\`, by reason and location.
    probes:
      - probe: drops.kernel
        as: kdrops
      - probe: drops.monitor
        as: monitor
    next:
      - if: findings.kdrops.total > 100
        goto: latency
        why: The kernel dropped packets while we watched.
      - goto: healthy
        why: Nothing dropped.
  - id: latency
    title: Time the qdisc and each layer
    probes:
      - probe: qdisc.latency
        as: qlat
      - probe: net.iface
        as: iface
    on_error: healthy
    next:
      - if: findings.qlat.totalPackets > 0
        goto: netfilter-drops
        why: Drops and queueing were both measured.
      - goto: healthy
conclusions:
  - id: netfilter-drops
    title: A netfilter rule drops the VM's packets
    category: netfilter
    confidence: high
    summary: "nftables dropped \${findings.kdrops.total} packets"
    explanation: The kernel counted drops with reason NETFILTER_DROP.
    actions:
      - List the rules with \`nft list ruleset\`.
    evidence: [kdrops, qlat]
  - id: healthy
    title: Nothing dropped
    category: none
    confidence: medium
    summary: No drop
    explanation: Nothing dropped.
    actions: []
    evidence: [kdrops]
`;

const barChart: ChartSpec = {
  kind: 'bar',
  title: 'Drops by reason in 2s',
  unit: 'packets',
  bars: [
    { label: 'NETFILTER_DROP', value: 2150 },
    { label: 'NO_SOCKET', value: 412 },
    { label: 'QDISC_DROP', value: 61 },
    { label: 'NOT_SPECIFIED', value: 3 },
  ],
};

const timeSeries: ChartSpec = {
  kind: 'timeseries',
  title: 'Drops per second by reason',
  unit: 'drops/s',
  series: [
    { name: 'NETFILTER_DROP', points: Array.from({ length: 10 }, (_, i) => [T0 + i * 1000, 900 + (i % 3) * 150] as [number, number]) },
    { name: 'NO_SOCKET', points: Array.from({ length: 10 }, (_, i) => [T0 + i * 1000, 200 - i * 10] as [number, number]) },
  ],
};

const histogram: ChartSpec = {
  kind: 'histogram',
  title: 'tap0: qdisc sojourn time (log2 buckets)',
  unit: 'µs',
  buckets: [
    { low: 1, high: 2, count: 40 },
    { low: 2, high: 4, count: 310 },
    { low: 4, high: 8, count: 1200 },
    { low: 8, high: 16, count: 640 },
    { low: 16, high: 32, count: 90 },
    { low: 32, high: 64, count: 21 },
    { low: 64, high: 128, count: 4 },
  ],
  percentiles: { P50: 8, P95: 32, P99: 64, max: 97.3 },
};

const layers: LayersChart = {
  kind: 'layers',
  title: 'Latency by layer, VM → uplink',
  unit: 'µs',
  layers: ['virtio', 'vhost', 'tap', 'bridge', 'qdisc', 'NIC'],
  rows: [
    { label: 'P50', values: [4, 11, 2, 3, 8, 5] },
    { label: 'P99', values: [9, 48, 5, 7, 64, 12] },
  ],
};

const dropsTable: TableSpec = {
  title: 'Drops by location',
  columns: ['reason', 'location', 'device', 'count'],
  rows: [
    ['NETFILTER_DROP', 'nft_do_chain+0x3a4', 'tap0', 2150],
    ['NO_SOCKET', '__udp4_lib_rcv+0x6f1', 'tap0', 412],
  ],
};

/** Every chart kind, a skipped probe, lost events, a guard stop, attach facts of both drivers. */
export function chartsBundle(root: string, id = '20261120-090000-vm-path-demo-vm1'): string {
  return writeBundle(root, {
    id,
    runbookYaml: CHARTS_RUNBOOK,
    runbookId: 'vm-path-demo',
    runbookTitle: 'Where the packets of a VM are dropped or delayed',
    target: {
      kind: 'vm',
      name: 'vm1',
      uuid: '4c4c4544-0042-3510-8050-b4c04f4d4e31',
      taps: ['tap0'],
      bridge: 'br0',
      ip: '10.0.0.2',
      pid: 4242,
      // As a run without an inventory records them: each address with where it came from.
      ips: [
        { address: '10.0.0.2', source: 'frames', mac: '52:54:00:12:34:56', dev: 'tap0' },
        { address: 'fd00::2', prefix: 64, source: 'libvirt-agent' },
      ],
      vcpuThreads: [{ tid: 4243, index: 0, name: 'qemu-system-x86', source: 'qmp' }],
    },
    inputs: { duration: '2s' },
    command: 'ebpfnet diagnose vm-path-demo --vm vm1 --input duration=2s',
    timeline: [
      dropsStep(),
      latencyStep({
        kind: 'next',
        index: 0,
        goto: 'netfilter-drops',
        condition: 'findings.qlat.totalPackets > 0',
        why: 'Drops and queueing were both measured.',
      }),
    ],
    findings: [
      {
        probe: 'drops.kernel',
        alias: 'kdrops',
        step: 'drops',
        severity: 'critical',
        summary: '2626 drops in 2s: NETFILTER_DROP 2150 at nft_do_chain on tap0',
        data: {
          total: 2626,
          lost: 17,
          method: 'tp_btf',
          fallback: 'fentry unavailable: the kernel has no BTF for kfree_skb_reason',
          attach: [{ program: 'drops_tp_btf', method: 'tp_btf', target: 'kfree_skb', attachMs: 1.1, loadMs: 12.5, btf: '/var/cache/ebpfnet/btf/min.btf' }],
          overhead: { budget: { cpu: 0.05, eventsPerSec: 1e6 }, stats: 'BPF_ENABLE_STATS', windowMs: 2000, runCnt: 5252, runTimeNs: 1.3e6, cpu: 0.0007, peakCpu: 0.002, eventsPerSec: 2626, peakEventsPerSec: 4100, nsPerEvent: 250 },
          notes: ['stacks symbolised from /proc/kallsyms'],
        },
        params: { duration: 2000, stacks: true },
        charts: [barChart],
        tables: [dropsTable],
        rawFiles: [{ name: 'dump', content: '{"entries":[{"reason":2,"count":2150}]}\n', op: 'capture' }],
      },
      {
        probe: 'drops.monitor',
        alias: 'monitor',
        step: 'drops',
        severity: 'warning',
        summary: 'NETFILTER_DROP steady at ~1000/s for 10 windows',
        data: { overhead: { budget: { cpu: 0.02, eventsPerSec: 1e5 }, stats: 'BPF_ENABLE_STATS', windowMs: 1300, runCnt: 9000, runTimeNs: 6e7, cpu: 0.046, peakCpu: 0.08, eventsPerSec: 6900, peakEventsPerSec: 9000, nsPerEvent: 6600, stopped: 'overhead budget exceeded at 4.6% CPU (budget 2.0%) after 1.3s' } },
        charts: [timeSeries],
      },
      {
        probe: 'qdisc.latency',
        alias: 'qlat',
        step: 'latency',
        driver: 'bpftrace',
        severity: 'warning',
        summary: 'tap0: 2305 packets, P50 8 µs, P99 64 µs, max 97 µs (percentiles at log2 bucket resolution)',
        data: {
          totalPackets: 2305,
          lostEvents: 3,
          attach: { attachMs: 1130, loadedMs: 1190, attachedProbes: 4, probes: ['tracepoint:qdisc:qdisc_enqueue', 'tracepoint:qdisc:qdisc_dequeue'], programCount: 2, programs: [{ progId: 81, progType: 5, method: 'tracepoint', target: 'tracepoint:qdisc:qdisc_enqueue' }, { progId: 82, progType: 5, method: 'tracepoint', target: 'tracepoint:qdisc:qdisc_dequeue' }] },
        },
        charts: [histogram, layers],
        rawFiles: [{ name: 'bpftrace', content: '@us[tap0]: [4, 8) 1200 |@@@@@@@@@@@@@@@@@@@@|\n', argv: ['bpftrace', '-f', 'json', 'probes/qdisc.latency/qdisc.latency.bt'] }],
      },
      {
        probe: 'net.iface',
        alias: 'iface',
        step: 'latency',
        driver: 'command',
        status: 'skipped',
        severity: 'info',
        summary: 'skipped: the kernel has no kprobes',
        reason: 'kernel feature missing: kprobes (CONFIG_KPROBES is not set)',
      },
    ],
    conclusion: {
      id: 'netfilter-drops',
      title: 'A netfilter rule drops the VM\'s packets',
      category: 'netfilter',
      confidence: 'high',
      summary: 'nftables dropped 2150 packets of vm1 on tap0 in 2s',
      explanation: 'The kernel counted **2150** drops with reason `NETFILTER_DROP` at `nft_do_chain` on **tap0**.\n\n- steady at ~1000/s\n- the qdisc adds at most 64 µs\n',
      actions: ['List the rules with `nft list ruleset` and find the one that drops traffic to 10.0.0.2.', 'Check the counters with `nft list chain inet filter forward`.'],
      evidence: [
        { alias: 'kdrops', probe: 'drops.kernel', step: 'drops', status: 'ok', summary: '2626 drops in 2s: NETFILTER_DROP 2150 at nft_do_chain on tap0' },
        { alias: 'qlat', probe: 'qdisc.latency', step: 'latency', status: 'ok', summary: 'tap0: 2305 packets, P99 64 µs' },
      ],
    },
  });
}

/** A runbook of `n` probe steps in a chain, each one's way out the next step or a conclusion. */
export function longRunbook(n: number): string {
  const steps = Array.from({ length: n }, (_, i) => {
    const next = i + 1 < n ? `s${i + 2}` : 'all-quiet';
    return `  - id: s${i + 1}
    title: Look again, round ${i + 1}
    probe: net.iface
    as: r${i + 1}
    params:
      duration: 100ms
    next:
      - if: findings.r${i + 1}.totals.drops > 0
        goto: dropping
        why: An interface dropped.
      - goto: ${next}
        why: Still nothing.
`;
  });
  return `id: long-watch
title: Watch the interfaces ${n} times
description: A long chain of steps, for the report tests.
steps:
${steps.join('')}conclusions:
  - id: dropping
    title: An interface drops
    category: device
    confidence: high
    summary: An interface dropped
    explanation: One of the looks saw drops.
    actions: []
    evidence: [r1]
  - id: all-quiet
    title: No interface dropped in ${n} looks
    category: none
    confidence: medium
    summary: No interface dropped in ${n} looks
    explanation: Every look found the counters still.
    actions: []
    evidence: [r${n}]
`;
}

/** A run of `n` steps, each with a finding, a table and a time series. */
export function longBundle(root: string, n = 50, id = '20261120-091500-long-watch-hv-07'): string {
  const timeline = Array.from({ length: n }, (_, i) =>
    entry(`s${i + 1}`, i, `Look again, round ${i + 1}`, [[`r${i + 1}`, 'net.iface']], {
      kind: 'next',
      index: 1,
      goto: i + 1 < n ? `s${i + 2}` : 'all-quiet',
      why: 'Still nothing.',
    }),
  );
  return writeBundle(root, {
    id,
    runbookYaml: longRunbook(n),
    runbookId: 'long-watch',
    runbookTitle: `Watch the interfaces ${n} times`,
    timeline,
    findings: timeline.map((t, i) => ({
      probe: 'net.iface',
      alias: `r${i + 1}`,
      step: t.step,
      driver: 'command' as const,
      summary: `no drops or errors on 3 devices in 100ms (round ${i + 1})`,
      data: { totals: { drops: 0, errors: 0 }, dropping: [] },
      charts: [{ kind: 'timeseries', title: 'Packets per second', unit: 'packets/s', series: [{ name: 'eth0 rx', points: [[T0 + i * 1000, 10 + i], [T0 + i * 1000 + 100, 12 + i]] }] }],
      tables: [{ title: 'Interfaces', columns: ['device', 'rx packets', 'tx packets'], rows: [['eth0', 100 + i, 90 + i], ['tap0', 5, 7]] }],
      rawFiles: [{ name: 's0', content: `[{"path":"/sys/class/net/eth0/statistics/rx_packets","text":"${100 + i}\\n"}]\n`, op: 'readfiles' }],
    })),
    conclusion: {
      id: 'all-quiet',
      title: `No interface dropped in ${n} looks`,
      category: 'none',
      confidence: 'medium',
      summary: `No interface dropped in ${n} looks`,
      explanation: 'Every look found the counters still.',
      actions: [],
      evidence: [{ alias: `r${n}`, probe: 'net.iface', step: `s${n}`, status: 'ok', summary: 'no drops' }],
    },
  });
}

/** A run stopped by SIGINT in its second step: no verdict. */
export function interruptedBundle(root: string, id = '20261120-093000-vm-path-demo-vm1'): string {
  return writeBundle(root, {
    id,
    status: 'interrupted',
    runbookYaml: CHARTS_RUNBOOK,
    runbookId: 'vm-path-demo',
    runbookTitle: 'Where the packets of a VM are dropped or delayed',
    target: { kind: 'vm', name: 'vm1' },
    timeline: [
      dropsStep(),
      { ...latencyStep(), status: 'interrupted', endedAt: undefined } as TimelineEntry,
    ],
    findings: [
      { probe: 'drops.kernel', alias: 'kdrops', step: 'drops', summary: '2626 drops in 2s', data: { total: 2626 }, charts: [barChart] },
      { probe: 'qdisc.latency', alias: 'qlat', step: 'latency', status: 'interrupted', summary: 'interrupted', reason: 'received SIGINT', driver: 'bpftrace' },
    ],
    interruptions: [{ at: iso(1500), reason: 'received SIGINT', step: 'latency' }],
  });
}

/** Strings a VM name, an alert or a probe's output could carry to attack a report. */
export const HOSTILE = {
  script: `<script>document.title='PWNED'</script>`,
  img: `"><img src=x onerror="document.title='PWNED'">`,
  braces: `{{constructor.constructor('return 1')()}} {{{raw}}}`,
  svg: `<svg onload="document.title='PWNED'">`,
  cdata: `]]></style><script>document.title='PWNED'</script>`,
  comment: `--> <!-- x`,
  js: `[click me](javascript:document.title='PWNED')`,
};

/** Hostile text everywhere a bundle carries text: names, inputs, summaries, cells, labels, raw output. */
export function hostileBundle(root: string, id = '20261120-094500-hostile'): string {
  const h = HOSTILE;
  const step = `s1${h.img}`;
  return writeBundle(root, {
    id,
    runbookId: `rb${h.script}`,
    runbookTitle: `Title ${h.script}`,
    target: { kind: 'vm', name: `vm${h.script}${h.img}`, note: h.braces, tap: h.svg },
    inputs: { [`in${h.img}`]: h.script, braces: h.braces },
    command: `ebpfnet diagnose x --vm '${h.img}'`,
    timeline: [
      entry(step, 0, `Step ${h.script} ${h.comment}`, [[`a${h.img}`, 'drops.kernel']], {
        kind: 'next',
        index: 0,
        goto: `c${h.svg}`,
        condition: `findings.a.total > 0 ${h.img}`,
        why: `because ${h.script}`,
      }),
    ],
    findings: [
      {
        probe: 'drops.kernel',
        alias: `a${h.img}`,
        step,
        summary: `summary ${h.script} ${h.braces}`,
        reason: `reason ${h.img}`,
        status: 'error',
        data: { notes: [`note ${h.script}`], lost: 5, overhead: { cpu: 0.01, peakCpu: 0.02, eventsPerSec: 10, nsPerEvent: 5, stopped: `stop ${h.img}` } },
        params: { [`p${h.img}`]: h.script },
        charts: [
          { kind: 'bar', title: `bars ${h.script}`, unit: h.img, bars: [{ label: h.script, value: 3 }, { label: h.img, value: 2 }, { label: h.cdata, value: 1 }] },
          { kind: 'timeseries', title: `series ${h.svg}`, unit: h.braces, series: [{ name: h.script, points: [[T0, 1], [T0 + 1000, 2]] }, { name: h.cdata, points: [[T0, 2], [T0 + 1000, 1]] }] },
          { kind: 'histogram', title: `hist ${h.img}`, unit: h.svg, buckets: [{ low: 1, high: 2, count: 5 }, { low: 2, high: 4, count: 9 }], percentiles: { [h.script]: 1.5, P99: 3 } },
          { kind: 'layers', title: `layers ${h.img}`, unit: h.img, layers: [h.script, h.cdata], rows: [{ label: h.svg, values: [1, 2] }] },
          { kind: `nope${h.img}`, title: h.script } as unknown as ChartSpec,
        ],
        tables: [{ title: `table ${h.script}`, columns: [h.img, h.braces], rows: [[h.script, h.cdata], [h.svg, 7]] }],
        rawFiles: [{ name: 'out', content: `${h.script}\n${h.img}\n${h.cdata}\n`, argv: ['sh', '-c', h.img] }],
      },
    ],
    conclusion: {
      id: `c${h.svg}`,
      title: `Verdict ${h.script}`,
      category: `cat${h.img}`,
      confidence: 'high',
      summary: `Summary ${h.img} ${h.braces}`,
      explanation: `Explained ${h.script} and ${h.img} and ${h.js}, <b>bold</b> ![pic](https://example.com/x.png)`,
      actions: [`Do ${h.script}`, h.js],
      evidence: [{ alias: `a${h.img}`, probe: 'drops.kernel', step, status: 'error', summary: `ev ${h.script}` }],
    },
    errors: [`error ${h.script}`],
    interruptions: [{ at: iso(100), reason: `reason ${h.img}`, step }],
  });
}
