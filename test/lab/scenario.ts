// Running a runbook against a lab VM the way an on-call engineer would: traffic flowing
// from the peer, the VM named by --vm (its address from an inventory file, as a CMDB would
// give it: the host has no neighbour entry for a VM it only bridges), the CLI's JSON read back.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { startCli } from '../helpers/cli.js';
import type { TeardownHost } from '../helpers/netns.js';
import { createDomain, ensureLibvirt, type TestDomain } from '../helpers/libvirt.js';
import { buildLabTopology, type LabTopology } from './topology.js';
import type { UdpSendOptions, UdpSendResult } from './udp-send.js';
import { guestKernelArgs, macFor, type Vm } from './vm.js';

const UDP_SEND = fileURLToPath(new URL('./udp-send.js', import.meta.url));

export interface RunResult {
  status: string;
  bundle: string;
  conclusion: { id: string; summary: string; category: string; confidence: string; evidence: Array<{ alias: string; probe: string; status: string; dir?: string }> } | null;
}

/** diagnoseVm while UDP from the peer (backgroundUdp with `udp`) flows to `ip` for the whole run. */
export async function diagnoseVmUnderUdp(t: TeardownHost, lab: LabTopology, runbook: string, vm: string, ip: string, udp: BackgroundUdpOptions, extra: string[] = []): Promise<RunResult> {
  const traffic = backgroundUdp(lab, ip, udp);
  t.after(() => traffic.stop());
  const r = await diagnoseVm(t, runbook, vm, ip, extra);
  await traffic.stop();
  return r;
}

/**
 * A lab without a QEMU VM of its own, and a libvirt domain on its bridge (direct kernel boot)
 * at .50 of the lab's subnet, booted once it answers ping (within `bootMs`).
 */
export async function libvirtGuestLab(t: TeardownHost, bootMs: number): Promise<{ lab: LabTopology; dom: TestDomain; ip: string }> {
  await ensureLibvirt();
  const lab = await buildLabTopology(t, { bridge: 'linux', vms: 0 });
  const ip = `${lab.subnet.split('.').slice(0, 3).join('.')}.50`;
  const mac = macFor(`libvirt-${process.pid}`);
  const dom = await createDomain(t, {
    interfaces: [{ bridge: lab.bridge.name, mac }],
    kernelArgs: guestKernelArgs({ ip: `${ip}/24`, gateway: lab.peer.ip, mac }).split(' '),
  });
  await lab.peer.pinNeighbor(ip, mac);
  const deadline = Date.now() + bootMs;
  while ((await lab.peer.ping(ip, { count: 1, wait: 1 })).received === 0) {
    assert.ok(Date.now() < deadline, `the libvirt guest ${dom.name} never answered ping`);
  }
  return { lab, dom, ip };
}

export interface BackgroundUdpOptions {
  port: number;
  size?: number;
  intervalMs?: number;
}

/** UDP from the peer namespace to `ip:port`, paced, until stopped. */
export function backgroundUdp(lab: LabTopology, ip: string, opts: BackgroundUdpOptions): { stop(): Promise<void> } {
  const sender = udpSendInPeer(lab, { to: ip, port: opts.port, count: 1_000_000, size: opts.size ?? 200, intervalMs: opts.intervalMs ?? 2 });
  return { stop: async () => void (await sender.stop('SIGKILL')) };
}

export interface BackgroundTrafficOptions {
  /** Between datagrams (default 20 ms: 50 a second, echoed). */
  intervalMs?: number;
  /** Payload bytes (default 200). */
  size?: number;
  /** To the VM's IPv6 address instead of its IPv4 one. */
  ipv6?: boolean;
  /** Default 7, which the guest echoes; 9 discards. */
  port?: number;
}

/**
 * Traffic of a VM's own, as each VM on a hypervisor has: numbered UDP datagrams from the peer
 * to the VM (its echo port unless told), paced, until stopped. `stop()` says how many were
 * sent and how many came back (the echoes of the last 500 ms are still awaited).
 */
export function backgroundTraffic(lab: LabTopology, vm: Vm, opts: BackgroundTrafficOptions = {}): { stop(): Promise<UdpSendResult> } {
  const traffic = backgroundTrafficOf(lab, [{ vm, ...opts }]);
  return { stop: async () => (await traffic.stop())[0]! };
}

/** backgroundTraffic for several streams from one process (one result each, in order). */
export function backgroundTrafficOf(lab: LabTopology, streams: Array<BackgroundTrafficOptions & { vm: Vm }>): { stop(): Promise<UdpSendResult[]> } {
  const options = streams.map(({ vm, ...opts }): UdpSendOptions => {
    const to = opts.ipv6 ? vm.ipv6 : vm.ip;
    if (!to) throw new Error(`backgroundTraffic: VM ${vm.name} has no IPv6 address (boot it with ipv6)`);
    const port = opts.port ?? 7;
    return { to, port, count: 1_000_000, size: opts.size ?? 200, intervalMs: opts.intervalMs ?? 20, expectEcho: port === 7, echoWaitMs: 500 };
  });
  const sender = udpSendInPeer(lab, options);
  return {
    stop: async () => {
      const out = await sender.stop('SIGTERM');
      try {
        return JSON.parse(out) as UdpSendResult[];
      } catch {
        throw new Error(`udp-send to ${options.map((o) => `${o.to}:${o.port}`).join(', ')} printed no result: ${out.trim() || '(nothing)'}`);
      }
    },
  };
}

/** udp-send.ts in the peer's namespace; stop() signals it and resolves with what it printed. */
function udpSendInPeer(lab: LabTopology, o: UdpSendOptions | UdpSendOptions[]): { stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<string> } {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', lab.peer.ns, process.execPath, UDP_SEND, JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  // 'close': the process ended and its output was read to the end.
  const exited = new Promise((resolve) => child.once('close', resolve));
  return {
    stop: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
      return out;
    },
  };
}

/** Datagrams from a new source port each (so a new flow each), `pps` a second, from the peer to `ip:port`, until stopped. */
export function backgroundUdpFlows(lab: LabTopology, ip: string, port: number, pps: number): { stop(): Promise<void> } {
  const code = `const d = require('node:dgram');
const [ip, port, pps] = process.argv.slice(1).map((v, i) => (i ? Number(v) : v));
setInterval(() => {
  for (let i = 0; i < pps / 100; i++) {
    const s = d.createSocket('udp4');
    s.send(Buffer.alloc(64), port, ip, () => s.close());
  }
}, 10);`;
  const child = spawn('ip', ['netns', 'exec', lab.peer.ns, process.execPath, '-e', code, ip, String(port), String(pps)], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

const CT_MAX = '/proc/sys/net/netfilter/nf_conntrack_max';
const BR_NF_CALL = '/proc/sys/net/bridge/bridge-nf-call-iptables';

/**
 * A full connection-tracking table on the host's bridged traffic, as on a hypervisor whose
 * security groups use br_netfilter: bridged IPv4 goes through the ip hooks, an nftables
 * `ct state` rule makes conntrack track it, and `nf_conntrack_max` is lowered to `max`.
 * Returns the undo (the old limit and bridge setting back, the table removed); safe twice.
 */
export function fillConntrack(table: string, max: number): { undo(): void } {
  const oldMax = readFileSync(CT_MAX, 'utf8').trim();
  const oldCall = readFileSync(BR_NF_CALL, 'utf8').trim();
  let undone = false;
  const undo = () => {
    if (undone) return;
    undone = true;
    writeFileSync(CT_MAX, oldMax);
    writeFileSync(BR_NF_CALL, oldCall);
    spawnSync('nft', ['delete', 'table', 'ip', table]);
  };
  try {
    writeFileSync(BR_NF_CALL, '1');
    const r = spawnSync('nft', ['-f', '-'], { input: `table ip ${table} { chain vmct { type filter hook forward priority 0; policy accept; ct state new counter accept; }; }`, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`nft: ${r.stderr}`);
    writeFileSync(CT_MAX, String(max));
  } catch (err) {
    undo();
    throw err;
  }
  return { undo };
}

/** An inventory that names the VM's address: the host has no neighbour entry for a VM it only bridges. */
export function inventoryFor(t: TeardownHost, vms: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-inventory-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'inventory.yaml');
  const lines = ['vms:', ...Object.entries(vms).flatMap(([name, ip]) => [`  ${name}:`, `    ips: [${ip}]`])];
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * `ebpfnet diagnose <runbook> --vm <vm>` with a 2 s duration; asserts exit 0. With `ip`, an
 * inventory names the VM's address (as a CMDB would); with null, nothing does, as on a real
 * hypervisor: ebpfnet learns it from libvirt, the guest agent or the VM's own frames.
 */
export async function diagnoseVm(t: TeardownHost, runbook: string, vm: string, ip: string | null, extra: string[] = []): Promise<RunResult> {
  const out = mkdtempSync(join(tmpdir(), 'ebpfnet-vmloss-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const inventory = ip === null ? [] : ['--inventory', inventoryFor(t, { [vm]: ip })];
  const { done } = startCli(['diagnose', runbook, '--vm', vm, ...inventory, '--input', 'duration=2s', '--out', out, '--json', ...extra]);
  const r = await done;
  assert.ok(r.status === 0, `exit ${r.status}\n${r.stderr}\n${r.stdout}`);
  const result = JSON.parse(r.stdout) as RunResult;
  // What every probe said, for the failure message of a wrong conclusion.
  const said = Object.values(await findingsOf(result.bundle)).map((f) => `${f.status}: ${f.summary}`);
  result.conclusion = result.conclusion ? { ...result.conclusion, summary: `${result.conclusion.summary}\n  ${said.join('\n  ')}` } : null;
  return result;
}

/** The run's target as run.json keeps it (with what the run learned). */
export function targetOf(bundle: string): { ips: Array<{ address: string; source: string; via?: string }>; path: Record<string, unknown>; vcpuThreads: Array<{ tid: number; source: string }>; asked?: Array<{ source: string; found: number; note: string | null }> } {
  return (JSON.parse(readFileSync(join(bundle, 'run.json'), 'utf8')) as { target: ReturnType<typeof targetOf> }).target;
}

export async function findingsOf(bundle: string): Promise<Record<string, { status: string; summary: string; data: Record<string, unknown> }>> {
  const record = JSON.parse(readFileSync(join(bundle, 'run.json'), 'utf8')) as {
    findings: Array<{ alias: string; status: string; summary: string; data: Record<string, unknown> }>;
  };
  return Object.fromEntries(record.findings.map((f) => [f.alias, f]));
}

/**
 * Starves the VM of process `pid`: every thread pinned to CPU 0 at nice 19, behind `n` busy
 * loops there, until the test ends. At nice 19 a thread weighs ~1/70 of a hog, so each of its
 * wake-ups waits behind them (at an equal weight the scheduler serves a thread that slept
 * first, and waits stay short).
 */
export async function contendCpu0(t: TeardownHost, pid: number, n: number): Promise<void> {
  await execa('taskset', ['-a', '-p', '-c', '0', String(pid)]);
  await execa('renice', ['-n', '19', '-p', ...(await readdir(`/proc/${pid}/task`))]);
  for (let i = 0; i < n; i++) {
    const hog = spawn('taskset', ['-c', '0', process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' });
    t.after(() => void hog.kill('SIGKILL'));
  }
}
