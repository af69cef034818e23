// Values the native probes pass to their BPF programs and read back from their maps: IPv4
// filter addresses, counts by key, kernel addresses, and the names of the devices the
// programs report by ifindex.
import { readFile, readdir } from 'node:fs/promises';
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import type { BpfMap } from '../native/map.js';

/** An IPv4 filter address as the programs compare it (network byte order); null when none is given. */
export function ipv4Bytes(ip: unknown): Uint8Array | null {
  if (ip === undefined || ip === null || ip === '') return null;
  if (typeof ip !== 'string' || !isIPv4(ip)) throw new Error(`${String(ip)}: only IPv4 addresses can be filtered`);
  return Uint8Array.from(ip.split('.').map(Number));
}

/** An IPv6 address's 16 bytes in network order (as programs compare it); throws on anything else. */
export function ipv6Bytes(ip: string): Uint8Array {
  if (!isIPv6(ip)) throw new Error(`${ip}: not an IPv6 address`);
  // A trailing dotted quad (::ffff:192.0.2.1) is two groups.
  const text = ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a: string, b: string, c: string, d: string) =>
    `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`);
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
}

/** An address as a program keyed it (4 or 16 bytes, network order) in its usual text; IPv6 compressed by inet_ntop. */
export function addressText(bytes: Buffer, family: 4 | 6): string {
  if (family === 4) return [...bytes.subarray(0, 4)].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** A kernel address as the records keep it: `0xffffffff81a2b3c4`. */
export function hex(n: bigint | number): string {
  return `0x${n.toString(16)}`;
}

/** The entries of a hash map that counts by key (value: one u64), each key decoded by its BTF type (`K`) and mapped by `key`. */
export function countsOf<K, R extends object>(map: BpfMap, key: (k: K) => R): Array<R & { count: number }> {
  return map.readAllDecoded<K, number>().map((e) => ({ ...key(e.key), count: e.value }));
}

/** The devices of the namespace this process runs in: ifindex → name (throws without /sys/class/net). */
export async function rootDevices(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir('/sys/class/net')).sort()) {
    try {
      out[(await readFile(`/sys/class/net/${name}/ifindex`, 'utf8')).trim()] = name;
    } catch {
      /* not a device, or gone */
    }
  }
  return out;
}

/** Counters of a per-CPU array map (a `totals` map: slot → u64), summed over CPUs, by name. */
export function slotTotals<K extends string>(map: BpfMap, slots: Record<K, number>): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const [name, slot] of Object.entries(slots) as Array<[K, number]>) {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(slot);
    out[name] = Number(map.sumU64(key));
  }
  return out;
}
