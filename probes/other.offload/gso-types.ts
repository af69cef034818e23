// Names of the bits of skb_shinfo()->gso_type (SKB_GSO_TCPV4, ...), read from the running
// kernel's BTF: the anonymous enum that declares them changed between kernels (6.18 moved
// TCP_FIXEDID to bit 30 and added TCP_ACCECN), so the bits are never hard-coded here. The BTF
// is walked by engine/host/btf.ts.
import { btfEnumerators, readVmlinuxBtf } from '../../engine/host/btf.js';
import type { ProbeIO } from '../../engine/probe/types.js';

/** Bit number → name without the `SKB_GSO_` prefix (`0` → `TCPV4`). */
export type GsoTypeNames = Record<string, string>;

/** SKB_GSO_* enumerators → bit names; a bit with two names (`__SKB_GSO_TCP_FIXEDID` beside the public one) keeps the public one; a private one keeps its underscores. */
export function gsoTypeNames(enumerators: Array<[string, number]>): GsoTypeNames {
  const out: GsoTypeNames = {};
  for (const [full, raw] of enumerators) {
    const m = /^(_*)SKB_GSO_([A-Z0-9_]+)$/.exec(full);
    const value = raw >>> 0;
    if (!m || value === 0 || (value & (value - 1)) !== 0) continue; // a mask, not one bit
    const bit = String(31 - Math.clz32(value));
    if (out[bit] === undefined || m[1] === '') out[bit] = `${m[1]}${m[2]}`;
  }
  return out;
}

/** Records the names as the capture `gso-types` (an empty map when the BTF cannot be read). */
export async function captureGsoTypes(io: ProbeIO): Promise<void> {
  await io.capture('gso-types', async () => {
    const btf = await readVmlinuxBtf();
    return JSON.stringify(btf ? gsoTypeNames(btfEnumerators(btf, /SKB_GSO_/)) : {});
  });
}

/** The names of the set bits of `mask` (`bit 21` for a bit the kernel does not name). */
export function gsoTypeList(mask: number, names: GsoTypeNames): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) if ((mask >>> bit) & 1) out.push(gsoBitName(bit, names));
  return out;
}

function gsoBitName(bit: number, names: GsoTypeNames): string {
  return names[String(bit)] ?? `bit ${bit}`;
}
