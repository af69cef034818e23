// A VM's addresses as discovery keeps them: one entry per address, from the source that
// knows it best, and the small rules that sort them (IPv4 or IPv6, link-local or not).
import { isIP } from 'node:net';
import type { AddressSource, VmAddress } from './types.js';

/**
 * Which source an address is kept under when several report it: what a person wrote, what
 * the host itself saw, what the guest says of itself, then what libvirt inferred.
 */
const SOURCE_ORDER: AddressSource[] = ['inventory', 'neighbour', 'libvirt-agent', 'guest-agent', 'libvirt-lease', 'libvirt-arp', 'frames'];

/** A MAC as ebpfnet compares them: lower case, two digits an octet (libvirt and some agents print `0:0:0:0:0:0`). */
export function normalMac(mac: string): string {
  return mac
    .toLowerCase()
    .split(':')
    .map((o) => o.padStart(2, '0'))
    .join(':');
}

/** The address in one spelling (IPv6 lower case and compressed, no zone), so that sources agree on it. */
export function canonicalAddress(address: string): string {
  const bare = address.trim().replace(/%.*$/, '');
  if (isIP(bare) !== 6) return bare;
  try {
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return bare.toLowerCase();
  }
}

export const isIpv4 = (address: string): boolean => isIP(address) === 4;
export const isIpv6 = (address: string): boolean => isIP(address) === 6;

/** fe80::/10: reachable on the link only, the same on every VM's first boot pattern (EUI-64 of the MAC). */
export function isLinkLocal6(address: string): boolean {
  return isIpv6(address) && /^fe[89ab][0-9a-f]:/i.test(canonicalAddress(address));
}

/** Addresses that say nothing about which VM it is: loopback, unspecified, multicast. */
export function isHostOnly(address: string): boolean {
  const a = canonicalAddress(address);
  if (isIpv4(a)) return /^(127\.|0\.|22[4-9]\.|2[3-5]\d\.)/.test(a);
  if (isIpv6(a)) return a === '::1' || a === '::' || /^ff/i.test(a);
  return true;
}

/** One entry per address: the first list's wins, and sources keep SOURCE_ORDER. */
export function mergeAddresses(...lists: VmAddress[][]): VmAddress[] {
  const rank = (a: VmAddress) => {
    const i = SOURCE_ORDER.indexOf(a.source);
    return i < 0 ? SOURCE_ORDER.length : i;
  };
  const all = lists.flat().map((a, i) => ({ a, i }));
  all.sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i);
  const seen = new Set<string>();
  const out: VmAddress[] = [];
  for (const { a } of all) {
    const key = canonicalAddress(a.address);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(a);
  }
  return out;
}
