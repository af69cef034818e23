// Frames on a lab device, counted without BPF of ours: tcpdump (no filter) writes a pcap,
// which is read here and each frame sorted into what a noise guest sends (vm.ts NOISE).
//
//   const cap = await startCapture(vm.tap, 'in');   // 'in': what the guest sends
//   ...; const frames = await cap.stop();
//   frames.filter((f) => noiseKind(f.data, vm) === 'arp').length
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressText } from '../../engine/probe/bpf-values.js';
import { NOISE } from './vm.js';

export interface Frame {
  /** Capture time, ms since the epoch (the kernel's timestamp). */
  tsMs: number;
  data: Buffer;
}

/**
 * tcpdump on `dev`, frames in one direction (for a tap, 'in' is what the guest sent), until
 * stop(), which returns them. Resolves once tcpdump listens.
 */
export async function startCapture(dev: string, direction: 'in' | 'out' | 'inout'): Promise<{ stop(): Promise<Frame[]> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ebpfnet-capture-'));
  const file = join(dir, 'frames.pcap');
  // -U: each frame written at once, so that SIGTERM loses none.
  const child = spawn('tcpdump', ['-n', '-U', '-i', dev, '-Q', direction, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
  child.once('error', () => undefined);
  const listening = await new Promise<boolean>((resolve) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (/listening on/.test(stderr)) resolve(true);
    });
    void closed.then(() => resolve(false));
  });
  if (!listening) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`tcpdump on ${dev} did not start (apt-get install tcpdump): ${stderr.trim()}`);
  }
  return {
    async stop() {
      child.kill('SIGTERM');
      await closed;
      try {
        return readPcap(await readFile(file));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** The frames of a classic pcap file (either byte order, micro- or nanosecond stamps). */
export function readPcap(buf: Buffer): Frame[] {
  if (buf.length < 24) throw new Error('pcap: shorter than its header');
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('pcap: bad magic');
  const nano = (le ? magic : buf.readUInt32BE(0)) === 0xa1b23c4d;
  const u32 = (at: number) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const frames: Frame[] = [];
  for (let at = 24; at + 16 <= buf.length; ) {
    const caplen = u32(at + 8);
    const tsMs = u32(at) * 1000 + u32(at + 4) / (nano ? 1e6 : 1e3);
    if (at + 16 + caplen > buf.length) break; // a frame cut off by the stop
    frames.push({ tsMs, data: buf.subarray(at + 16, at + 16 + caplen) });
    at += 16 + caplen;
  }
  return frames;
}

export type NoiseKind = 'arp' | 'mdns4' | 'mdns6' | 'ns' | 'mld';
export const NOISE_KINDS: readonly NoiseKind[] = ['arp', 'mdns4', 'mdns6', 'ns', 'mld'];

/**
 * Which of the noise guest's frames this is (sent from `vm.mac`), or null for anything else
 * (the guest kernel's own router solicitations, MLD reports and DAD among them).
 */
export function noiseKind(f: Buffer, vm: { mac: string; noiseArpTarget?: string }): NoiseKind | null {
  if (f.length < 14 || macText(f.subarray(6, 12)) !== vm.mac) return null;
  const type = f.readUInt16BE(12);
  if (type === 0x0806) {
    return f.length >= 42 && f.readUInt16BE(20) === 1 && addressText(f.subarray(38, 42), 4) === vm.noiseArpTarget ? 'arp' : null;
  }
  if (type === 0x0800 && f.length >= 14 + 20 + 4) {
    const ihl = (f[14]! & 0x0f) * 4;
    const udpDport = f.readUInt16BE(14 + ihl + 2);
    return f[23] === 17 && addressText(f.subarray(30, 34), 4) === NOISE.mdns4.group && udpDport === NOISE.mdns4.port ? 'mdns4' : null;
  }
  if (type !== 0x86dd || f.length < 54) return null;
  const dst = addressText(f.subarray(38, 54), 6);
  let next = f[20]!;
  let at = 54;
  if (next === 0 && f.length >= at + 8) {
    // hop-by-hop options (MLD's router alert)
    next = f[at]!;
    at += (f[at + 1]! + 1) * 8;
  }
  if (next === 17 && f.length >= at + 4) return dst === NOISE.mdns6.group && f.readUInt16BE(at + 2) === NOISE.mdns6.port ? 'mdns6' : null;
  if (next !== 58 || f.length < at + 8) return null;
  const icmpType = f[at]!;
  if (icmpType === 135 && f.length >= at + 24) {
    return dst === NOISE.ns.group && addressText(f.subarray(at + 8, at + 24), 6) === NOISE.ns.target ? 'ns' : null;
  }
  if (icmpType === 143 && f.length >= at + 28) {
    // Ours has one record, for NOISE.mld.group; the kernel's name its own groups.
    return dst === NOISE.mld.to && f.readUInt16BE(at + 6) === 1 && addressText(f.subarray(at + 12, at + 28), 6) === NOISE.mld.group ? 'mld' : null;
  }
  return null;
}

function macText(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

