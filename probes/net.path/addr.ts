// The VM's addresses as net.path compares them with what `ip` prints: IPv6 in inet_ntop's
// form (`2001:DB8::0001` is printed `2001:db8::1`), a zone (`fe80::1%tap0`) apart.
import { isIP, SocketAddress } from 'node:net';

export interface PathAddress {
  /** As `ip` prints it. */
  ip: string;
  family: 4 | 6;
  /** The device of a scoped IPv6 address (`fe80::1%tap0` → `tap0`). */
  zone: string | null;
  /** fe80::/10: the same prefix is on every link, so a route lookup needs a device. */
  linkLocal: boolean;
}

/** Parses one address; null when it is not one. */
export function pathAddress(text: string): PathAddress | null {
  const family = isIP(text);
  if (family === 4) return { ip: text, family: 4, zone: null, linkLocal: false };
  if (family !== 6) return null;
  const [bare, zone] = text.split('%') as [string, string | undefined];
  const ip = new SocketAddress({ address: bare, family: 'ipv6' }).address;
  return { ip, family: 6, zone: zone || null, linkLocal: /^fe[89ab][0-9a-f]:/.test(ip) };
}
