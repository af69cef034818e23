// The guest's own view of its network, from the QEMU guest agent (qemu-ga) running in
// it: guest-network-get-interfaces lists each interface with its MAC and addresses.
import { normalMac } from './addresses.js';
import { withQemuSocket } from './qemu-socket.js';

export interface GuestInterface {
  name: string;
  /** Lower case; null when the agent gives none (a tunnel, lo on some guests). */
  mac: string | null;
  addresses: Array<{ address: string; prefix: number | null; family: 'ipv4' | 'ipv6' }>;
}

/** guest-network-get-interfaces' answer (qga/qapi-schema.json: GuestNetworkInterface). */
export function parseGuestInterfaces(answer: unknown): GuestInterface[] {
  if (!Array.isArray(answer)) return [];
  return (answer as Array<Record<string, unknown>>)
    .filter((i) => i && typeof i.name === 'string')
    .map((i) => ({
      name: i.name as string,
      mac: typeof i['hardware-address'] === 'string' ? normalMac(i['hardware-address']) : null,
      addresses: (Array.isArray(i['ip-addresses']) ? (i['ip-addresses'] as Array<Record<string, unknown>>) : [])
        .filter((a) => typeof a?.['ip-address'] === 'string' && (a['ip-address-type'] === 'ipv4' || a['ip-address-type'] === 'ipv6'))
        .map((a) => ({
          address: a['ip-address'] as string,
          prefix: typeof a.prefix === 'number' ? a.prefix : null,
          family: a['ip-address-type'] as 'ipv4' | 'ipv6',
        })),
    }));
}

/** The guest's interfaces through the agent on unix socket `path`, within `timeoutMs` in all. */
export function guestAgentInterfaces(path: string, timeoutMs: number): Promise<GuestInterface[]> {
  return withQemuSocket(path, timeoutMs, async (agent) => {
    await agent.syncGuestAgent();
    return parseGuestInterfaces(await agent.execute('guest-network-get-interfaces'));
  });
}
