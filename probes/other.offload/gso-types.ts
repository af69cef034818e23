// Names of the bits of skb_shinfo()->gso_type (SKB_GSO_TCPV4, ...), read from the running
// kernel's BTF: the anonymous enum that declares them changed between kernels (6.18 moved
// TCP_FIXEDID to bit 30 and added TCP_ACCECN), so the bits are never hard-coded here.
import { runCommand } from '../../engine/exec.js';
import type { ProbeIO } from '../../engine/probe/types.js';

const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

/** Bit number → name without the `SKB_GSO_` prefix (`0` → `TCPV4`). */
export type GsoTypeNames = Record<string, string>;

/**
 * The SKB_GSO_* enumerators of bpftool's raw BTF dump (`'SKB_GSO_TCPV4' val=1`); a bit with
 * two names (a kernel's `__SKB_GSO_TCP_FIXEDID` beside the public one) keeps the public one.
 */
export function parseGsoTypes(rawDump: string): GsoTypeNames {
  const out: GsoTypeNames = {};
  for (const m of rawDump.matchAll(/'(_*)SKB_GSO_([A-Z0-9_]+)' val=(-?\d+)/g)) {
    const value = Number(m[3]) >>> 0;
    if (value === 0 || (value & (value - 1)) !== 0) continue; // a mask, not one bit
    const bit = String(31 - Math.clz32(value));
    if (out[bit] === undefined || m[1] === '') out[bit] = m[2]!;
  }
  return out;
}

/** Records the names as the capture `gso-types` (an empty map when bpftool cannot read the BTF). */
export async function captureGsoTypes(io: ProbeIO): Promise<void> {
  await io.capture('gso-types', async () => {
    const r = await runCommand('bpftool', ['btf', 'dump', 'file', VMLINUX_BTF, 'format', 'raw'], { timeoutMs: 15_000, maxBuffer: 256 * 1024 * 1024 });
    return JSON.stringify(r.failed ? {} : parseGsoTypes(r.stdout));
  });
}

/** The names of the set bits of `mask` (`bit 21` for a bit the kernel does not name). */
export function gsoTypeList(mask: number, names: GsoTypeNames): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) if ((mask >>> bit) & 1) out.push(gsoBitName(bit, names));
  return out;
}

export function gsoBitName(bit: number, names: GsoTypeNames): string {
  return names[String(bit)] ?? `bit ${bit}`;
}
