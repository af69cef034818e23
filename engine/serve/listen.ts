// HOST:PORT for the server's socket, IPv6 in brackets ("[::1]:9465").
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
  /** As written back in messages and default report links. */
  display: string;
  loopback: boolean;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** The address, or a message saying what was expected. */
export function parseListen(text: string): ListenAddress | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return `expected HOST:PORT (like 127.0.0.1:9465, or [::1]:9465), got "${text}"`;
  const host = (m[1] ?? m[2])!;
  const port = Number(m[3]);
  if (port > 65_535) return `port ${port} is out of range (0-65535)`;
  if (m[1] !== undefined && isIP(host) !== 6) return `"${host}" in brackets is not an IPv6 address`;
  if (isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) return `"${host}" is not an address or host name`;
  const loopback = LOOPBACK.has(host) || host.startsWith('127.');
  return { host, port, display: isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`, loopback };
}
