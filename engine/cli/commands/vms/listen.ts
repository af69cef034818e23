// `ebpfnet vms --listen`: the addresses VMs use, learned from their own frames over a short
// window (the vm.frames probe on their taps), for the VMs whose address libvirt, a guest agent,
// the neighbour table or an inventory did not give: on a hypervisor whose host has no address
// on the VMs' bridge there is often no other way.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeRegistry } from '../../../../probes/index.js';
import { runProbe } from '../../../probe/runtime.js';
import type { Finding } from '../../../probe/types.js';
import { learnAddresses, type LearnedAddress, type VmFacts } from '../../../target/index.js';

/** vm.frames' limits per session (probes/vm.frames/vm.frames.h): VMs are listened to in groups that fit. */
const MAX_TAPS = 8;
const MAX_MACS = 8;

interface Listened {
  devs: string[];
  macs: string[];
}

function listenable(vm: VmFacts): Listened {
  const taps = vm.taps.filter((t) => t.present && t.guestMac);
  return { devs: taps.map((t) => t.name), macs: [...new Set(taps.map((t) => t.guestMac!.toLowerCase()))] };
}

/** VMs packed into sessions of at most MAX_TAPS taps and MAX_MACS MACs (a VM bigger than that alone, cut to fit). */
function groups(vms: VmFacts[]): Listened[] {
  const out: Listened[] = [];
  for (const vm of vms) {
    const l = listenable(vm);
    if (l.devs.length === 0) continue;
    const last = out.at(-1);
    if (last && last.devs.length + l.devs.length <= MAX_TAPS && last.macs.length + l.macs.length <= MAX_MACS) {
      last.devs.push(...l.devs);
      last.macs.push(...l.macs);
    } else out.push({ devs: l.devs.slice(0, MAX_TAPS), macs: l.macs.slice(0, MAX_MACS) });
  }
  return out;
}

/**
 * Each VM's facts with the addresses its frames carried during `ms` added (`source: 'frames'`)
 * and an `asked` entry saying what listening found. Not root, or nothing to listen on: the
 * facts as they were, with the reason.
 */
export async function listenForAddresses(vms: VmFacts[], ms: number): Promise<VmFacts[]> {
  if (ms <= 0 || vms.length === 0) return vms;
  const asked = (vm: VmFacts, found: number, note: string | null, took: number): VmFacts => ({
    ...vm,
    asked: [...(vm.asked ?? []), { source: 'frames', found, ms: Math.round(took), note }],
  });
  if (process.geteuid?.() !== 0) return vms.map((vm) => asked(vm, 0, 'not listened to its frames: needs root', 0));
  const def = probeRegistry().get('vm.frames');
  if (!def) throw new Error('the vm.frames probe is not registered');
  const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-vms-listen-'));
  const started = performance.now();
  try {
    const sessions = groups(vms);
    const findings: Finding[] = await Promise.all(
      sessions.map((g, i) =>
        runProbe(def, { step: 'vms', alias: `listen-${i}`, probe: 'vm.frames', params: { devs: g.devs, macs: g.macs, duration: ms } }, {
          rawDir: join(dir, String(i)),
          bundleRoot: dir,
          signal: AbortSignal.timeout(ms + 30_000),
        }),
      ),
    );
    const took = performance.now() - started;
    const byMac = new Map<string, LearnedAddress[]>();
    const failed = new Map<string, string>();
    findings.forEach((f, i) => {
      if (f.status !== 'ok') for (const mac of sessions[i]!.macs) failed.set(mac, f.reason ?? f.summary);
      for (const l of (f.data.learnedAddresses ?? []) as Array<{ address: string; mac: string; via: string[] }>) {
        const list = byMac.get(l.mac) ?? [];
        list.push({ address: l.address, mac: l.mac, via: l.via.join(',') });
        byMac.set(l.mac, list);
      }
    });
    return vms.map((vm) => {
      const { macs } = listenable(vm);
      if (macs.length === 0) return vm;
      const failure = macs.map((m) => failed.get(m)).find((r) => r !== undefined);
      const learned = macs.flatMap((m) => byMac.get(m) ?? []);
      const next = learnAddresses(vm, learned) ?? vm;
      const note = failure ? `listening to its frames failed: ${failure}` : learned.length === 0 ? `no address in its frames within ${ms} ms` : null;
      return asked(next, learned.length, note, took);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
