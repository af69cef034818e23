// Devices as the filters name them: a name the kernel could give a device, and a device and its
// namespace resolved to the ifindex and namespace inode the BPF programs compare.
import { inNetns, netnsMissing, netnsOf } from '../../engine/probe/netns.js';
import type { Params, ParamSpec, ProbeIO, RawRecord } from '../../engine/probe/types.js';

const DEV_RE = /^[A-Za-z0-9_.:@-]{1,15}$/;
const EXEC_TIMEOUT_MS = 10_000;

/** Whether `name` can be a network device's (at most 15 characters, no `/` or space, not `.` or `..`). */
export function isDeviceName(name: string): boolean {
  return DEV_RE.test(name) && name !== '.' && name !== '..';
}

/** `name`, or a one-line error when it cannot be a device's name. */
export function checkDeviceName(name: string): string {
  if (!isDeviceName(name)) throw new Error(`not a device name: ${JSON.stringify(name)}`);
  return name;
}

/** The stdout of a setup command; throws saying why it failed (a missing namespace or device). */
function outputOf(rec: RawRecord, netns: string | undefined, what: string): string {
  if (rec.exitCode === 0) return rec.stdout.trim();
  throw new Error(netnsMissing(rec, netns) ?? `${what}: ${(rec.stderr.trim() || rec.error) ?? `exit code ${rec.exitCode}`}`);
}

/** The `dev` param: null when none; throws on a malformed name. */
export function devParam(params: Params): string | null {
  const dev = typeof params.dev === 'string' && params.dev !== '' ? params.dev : null;
  return dev === null ? null : checkDeviceName(dev);
}

/** The `netns` param of a probe that filters on a device and its namespace (resolveDeviceFilter). */
export const NETNS_PARAM: ParamSpec = {
  type: 'string',
  description: 'Only devices of this network namespace: an `ip netns` name or a path such as /proc/<pid>/ns/net. Default: any namespace (the one ebpfnet runs in when `dev` is given).',
};

/** A device filter resolved: the device's ifindex and its namespace's inode (0: any). */
export interface DeviceFilter {
  dev: string | null;
  ifindex: number;
  netns: string | null;
  netnsInode: number;
}

/**
 * Resolves the `dev` and `netns` params (exec records of their own, answered again by a replay).
 * A device is known by its ifindex within its namespace: with a device, the namespace is
 * always filtered too (this one's when none is given).
 */
export async function resolveDeviceFilter(params: Params, io: ProbeIO): Promise<DeviceFilter> {
  const netns = netnsOf(params);
  const dev = devParam(params);
  let ifindex = 0;
  let netnsInode = 0;
  if (netns !== undefined || dev !== null) {
    const argv = inNetns(netns, ['stat', '-L', '-c', '%i', '/proc/self/ns/net']);
    netnsInode = Number(outputOf(await io.exec('netns', argv, { timeoutMs: EXEC_TIMEOUT_MS, allowFailure: true }), netns, 'network namespace'));
  }
  if (dev !== null) {
    // Netlink, not /sys: nsenter into a namespace path keeps the host's sysfs.
    const argv = inNetns(netns, ['ip', '-j', 'link', 'show', 'dev', dev]);
    const rec = await io.exec('ifindex', argv, { timeoutMs: EXEC_TIMEOUT_MS, allowFailure: true });
    if (rec.exitCode !== 0 && netnsMissing(rec, netns) === null) throw new Error(`no device ${dev} in ${netns === undefined ? 'this network namespace' : `network namespace ${netns}`}`);
    const links = JSON.parse(outputOf(rec, netns, `device ${dev}`) || '[]') as Array<{ ifindex?: number }>;
    ifindex = links[0]?.ifindex ?? 0;
    if (ifindex <= 0) throw new Error(`device ${dev}: no ifindex in ${JSON.stringify(rec.stdout.slice(0, 200))}`);
  }
  return { dev, ifindex, netns: netns ?? null, netnsInode };
}
