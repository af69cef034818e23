// Who may talk to the server: a bearer token or basic credentials on every request, and,
// for Grafana, optionally an HMAC-SHA256 signature of the body. Comparisons are constant-time
// over digests, so neither the length nor a prefix of a secret leaks through timing.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ServeConfig } from './config.js';

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Whether the Authorization header carries one of the configured credentials. */
export function authorized(header: string | undefined, auth: ServeConfig['auth']): boolean {
  if (!header) return false;
  const space = header.indexOf(' ');
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer' && auth.token !== undefined) return sameSecret(value, auth.token);
  if (scheme === 'basic' && auth.basic) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    // Both compared, always: which half was wrong must not show in the time taken.
    const user = sameSecret(decoded.slice(0, colon), auth.basic.username);
    const password = sameSecret(decoded.slice(colon + 1), auth.basic.password);
    return user && password;
  }
  return false;
}

/** What a 401 tells the client it may use. */
export function challenge(auth: ServeConfig['auth']): string {
  return [auth.token !== undefined ? 'Bearer realm="ebpfnet"' : '', auth.basic ? 'Basic realm="ebpfnet"' : ''].filter(Boolean).join(', ');
}

/** Grafana signs hex(HMAC-SHA256(secret, [timestamp ":"] body)); undefined when the signature holds, else why not. */
export function grafanaSignatureProblem(
  body: Buffer,
  headers: Record<string, string | string[] | undefined>,
  hmac: NonNullable<ServeConfig['grafanaHmac']>,
  now: number,
): string | undefined {
  const header = (name: string) => {
    const v = headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  const signature = header(hmac.header)?.trim();
  if (!signature) return `missing the ${hmac.header} header (the Grafana contact point's HMAC signature)`;
  let signed: Buffer = body;
  if (hmac.timestampHeader) {
    const timestamp = header(hmac.timestampHeader)?.trim();
    if (!timestamp || !/^\d+$/.test(timestamp)) return `missing or malformed ${hmac.timestampHeader} header (Unix seconds)`;
    // Grafana sends seconds; a signature older than max_age is a replay.
    if (Math.abs(now - Number(timestamp) * 1000) > hmac.maxAgeMs) return `${hmac.timestampHeader} is outside the allowed age`;
    signed = Buffer.concat([Buffer.from(`${timestamp}:`), body]);
  }
  const expected = createHmac('sha256', hmac.secret).update(signed).digest('hex');
  return sameSecret(signature.toLowerCase(), expected) ? undefined : `the ${hmac.header} signature does not match the body`;
}
