// The VM scope of a drops session: the VM's MACs, addresses (IPv4 and IPv6) and devices
// (taps, in ebpfnet's namespace), turned into the small read-only arrays drops.bpf.c matches
// against, and recorded with the session so that a replay reports the same scope.
import { readFile, stat } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import type { GlobalValue } from '../../../engine/native/globals.js';
import { ipv6Bytes } from '../../../engine/probe/bpf-values.js';
import { ParamError } from '../../../engine/probe/params.js';
import type { Params } from '../../../engine/probe/types.js';

/** How many of each a scope may name: the sizes of drops.bpf.c's arrays (probes/drops.kernel/drops.kernel.h). */
export const SCOPE_LIMITS = { vm_macs: 8, vm_ips: 16, vm_devs: 8 } as const;

/** The scope as the session recorded it. */
export interface ScopeRecord {
  macs: string[];
  ips: string[];
  /** The devices given; the ones found are matched by ifindex in ebpfnet's namespace. */
  devs: string[];
  /** Devices of `devs` that did not exist when the session started (not matched). */
  missingDevs?: string[];
}

export interface ResolvedScope {
  /** null when no scope param was given: every drop counts. */
  record: ScopeRecord | null;
  globals: Record<string, GlobalValue>;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

function listParam(params: Params, name: keyof typeof SCOPE_LIMITS): string[] {
  const v = params[name];
  const list = Array.isArray(v) ? v : typeof v === 'string' && v !== '' ? v.split(',').map((s) => s.trim()).filter(Boolean) : [];
  const limit = SCOPE_LIMITS[name];
  if (list.length > limit) {
    throw new ParamError('drops.kernel', name, `at most ${limit} values (got ${list.length}); pass the VM's own ones only`);
  }
  return [...new Set(list)];
}

/** The 6 bytes of a MAC as drops.bpf.c compares them: a little-endian load of them in memory order. */
export function macWord(mac: string): bigint {
  const bytes = mac.split(':').map((b) => BigInt(parseInt(b, 16)));
  return bytes.reduce((word, b, i) => word | (b << BigInt(8 * i)), 0n);
}

function u32Array(values: number[], length: number): Uint8Array {
  const out = Buffer.alloc(length * 4);
  values.forEach((v, i) => out.writeUInt32LE(v >>> 0, i * 4));
  return out;
}

async function ifindexOf(dev: string): Promise<number | null> {
  try {
    return Number((await readFile(`/sys/class/net/${dev}/ifindex`, 'utf8')).trim());
  } catch {
    return null;
  }
}

/** The scope params as given, checked (one-line ParamError: a malformed value, more than the limit); null without any. */
export function scopeOf(params: Params): ScopeRecord | null {
  const macs = listParam(params, 'vm_macs').map((m) => m.toLowerCase());
  const ips = listParam(params, 'vm_ips');
  const devs = listParam(params, 'vm_devs');
  if (macs.length + ips.length + devs.length === 0) return null;
  const badMac = macs.find((m) => !MAC_RE.test(m));
  if (badMac !== undefined) throw new ParamError('drops.kernel', 'vm_macs', `expected MAC addresses like 52:54:00:12:34:56, got "${badMac}"`);
  const badIp = ips.find((ip) => !isIPv4(ip) && !isIPv6(ip));
  if (badIp !== undefined) throw new ParamError('drops.kernel', 'vm_ips', `expected IPv4 or IPv6 addresses, got "${badIp}"`);
  return { macs, ips, devs };
}

/**
 * The program's globals for `scope` (scopeOf), its devices found in this namespace. A device
 * that does not exist is left out and named in `missingDevs`; when nothing of the scope is
 * left, the session fails rather than count nothing.
 */
export async function resolveScope(scope: ScopeRecord | null): Promise<ResolvedScope> {
  if (scope === null) return { record: null, globals: { scope_on: 0 } };
  const { macs, ips, devs } = scope;
  const ip4 = ips.filter((ip) => isIPv4(ip));
  const ip6 = ips.filter((ip) => isIPv6(ip));
  const ifindexes: number[] = [];
  const missingDevs: string[] = [];
  for (const dev of devs) {
    const ifindex = await ifindexOf(dev);
    if (ifindex === null) missingDevs.push(dev);
    else ifindexes.push(ifindex);
  }
  if (macs.length + ips.length + ifindexes.length === 0) {
    throw new Error(`drops.kernel: none of the VM's devices exists in this network namespace (${missingDevs.join(', ')}) and no MAC or address was given: nothing to scope the drops by`);
  }

  const macWords = Buffer.alloc(SCOPE_LIMITS.vm_macs * 8);
  macs.forEach((m, i) => macWords.writeBigUInt64LE(macWord(m), i * 8));
  const ip4Words = u32Array(ip4.map((ip) => Buffer.from(ip.split('.').map(Number)).readUInt32LE(0)), SCOPE_LIMITS.vm_ips);
  const ip6Bytes = new Uint8Array(SCOPE_LIMITS.vm_ips * 16);
  ip6.forEach((ip, i) => ip6Bytes.set(ipv6Bytes(ip), i * 16));
  return {
    record: { macs, ips, devs, ...(missingDevs.length > 0 ? { missingDevs } : {}) },
    globals: {
      scope_on: 1,
      scope_netns: (await stat('/proc/self/ns/net')).ino,
      n_vm_devs: ifindexes.length,
      vm_ifindex: u32Array(ifindexes, SCOPE_LIMITS.vm_devs),
      n_vm_macs: macs.length,
      vm_mac: macWords,
      n_vm_ip4: ip4.length,
      vm_ip4: ip4Words,
      n_vm_ip6: ip6.length,
      vm_ip6: ip6Bytes,
    },
  };
}
