// other.arp: abnormal ARP (an IP claimed by several MACs, gratuitous or unsolicited ARP storms,
// replies nobody asked for) with the offending MAC and IP, counted in the kernel per sender by
// the native driver (probes/other.arp/other.arp.bpf.c). Where it looked (the namespace's devices and inode) is
// recorded as exec records, what the BPF session saw as capture records: a replay re-parses both.
import { loadedRecord } from '../../engine/native/attach-plan.js';
import type { BpfObject } from '../../engine/native/object.js';
import { readBpfSession, runBpfSession } from '../../engine/probe/bpf-session.js';
import { ipv4Bytes, slotTotals } from '../../engine/probe/bpf-values.js';
import { inNetns, netnsMissing, netnsOf } from '../../engine/probe/netns.js';
import { overheadOf, type OverheadBudget } from '../../engine/probe/overhead.js';
import type { Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord } from '../../engine/probe/types.js';
import { loadArp, TRACEPOINTS } from './attach.js';
import { DATA } from './data.js';
import { arpFinding, KINDS, type ArpData, type AttachCapture, type DumpCapture, type Scope, type SenderEntry } from './findings.js';
import { durationParam, topParam } from '../lib/params.js';
import { tracepointRun } from '../lib/bpf-probe.js';

/** Slots of the per-CPU `totals` map (probes/other.arp/other.arp.h), named as the dump records them. */
const TOTALS = { seen: 0, unkeyed: 1, asked: 2 };
const COMMAND_TIMEOUT_MS = 15_000;
const DEFAULT_STORM_PPS = 10;

/**
 * What a session may cost: 5% of one CPU, 1M program runs/s. Both tracepoints fire for every
 * packet the host receives or sends, not only ARP: the programs look at the protocol first
 * (a few tens of ns) and parse ARP only. A host moving a million packets a second is at the
 * budget; past it the session stops early and keeps its counts.
 */
export const ARP_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 1_000_000 };

const mac = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ipOf = (b: Buffer) => [...b].join('.');
const nonEmpty = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
const where = (netns: string | undefined) => (netns === undefined ? 'the namespace ebpfnet runs in' : `network namespace ${netns}`);

/** The devices (`ip -j link show`) and namespace inode (`readlink /proc/self/ns/net`) the session watched. */
function scopeOf(records: RawRecord[]): Scope {
  const links = records.find((r) => r.op === 'exec' && r.name === 'links');
  const ns = records.find((r) => r.op === 'exec' && r.name === 'netns');
  if (!links || !ns) throw new Error('no links or netns record in the evidence');
  const devices: Record<string, string> = {};
  for (const l of JSON.parse(links.stdout || '[]') as Array<{ ifindex?: number; ifname?: string }>) {
    if (typeof l.ifindex === 'number' && typeof l.ifname === 'string') devices[String(l.ifindex)] = l.ifname;
  }
  const inode = /net:\[(\d+)\]/.exec(ns.stdout)?.[1];
  if (inode === undefined) throw new Error(`cannot tell the network namespace's inode from "${ns.stdout.trim()}"`);
  return { netnsInode: Number(inode), devices };
}

/** struct arp_key, decoded. */
interface ArpKey {
  ifindex: number;
  netns: number;
  sip: Buffer;
  smac: Buffer;
}

/** struct arp_counts, decoded: the seven kinds are its first fields. */
type ArpValue = Record<(typeof KINDS)[number], number> & { mac_mismatch: number; peak_per_sec: number; eth_src: Buffer };

function decodeEntry(k: ArpKey, v: ArpValue): SenderEntry {
  const counts = Object.fromEntries(KINDS.map((kind) => [kind, v[kind]])) as Record<(typeof KINDS)[number], number>;
  return {
    ifindex: k.ifindex,
    netns: k.netns,
    ip: ipOf(k.sip),
    mac: mac(k.smac),
    ...counts,
    macMismatch: v.mac_mismatch,
    ethSrc: v.mac_mismatch > 0 ? mac(v.eth_src) : null,
    peakPerSec: v.peak_per_sec,
  };
}

/** The maps as the `dump` capture records them (exported for tests that load a flavour by hand). */
export function readDump(o: BpfObject, windowMs: number): DumpCapture {
  const entries = o
    .map('senders')
    .readAllDecoded<ArpKey, ArpValue>()
    .map(({ key, value }) => decodeEntry(key, value))
    .sort((a, b) => a.ifindex - b.ifindex || a.netns - b.netns || a.ip.localeCompare(b.ip) || a.mac.localeCompare(b.mac));
  return { windowMs: Math.round(windowMs * 1000) / 1000, ...slotTotals(o.map('totals'), TOTALS), entries };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const netns = netnsOf(params);
  const dev = nonEmpty(params.dev);
  const ip = nonEmpty(params.ip);
  const ipBytes = ipv4Bytes(ip);
  const replyWindowMs = (params.reply_window as number | undefined) ?? 3000;

  const links = await io.exec('links', inNetns(netns, ['ip', '-j', 'link', 'show']), { timeoutMs: COMMAND_TIMEOUT_MS, allowFailure: true });
  const missing = netnsMissing(links, netns);
  if (missing) throw new Error(missing);
  if (links.error !== undefined) throw new Error(`ip -j link show failed in ${where(netns)}: ${links.stderr.trim() || links.error}`);
  const nsRec = await io.exec('netns', inNetns(netns, ['readlink', '/proc/self/ns/net']), { timeoutMs: COMMAND_TIMEOUT_MS });
  const scope = scopeOf([links, nsRec]);
  let ifindex = 0;
  if (dev !== null) {
    ifindex = Number(Object.entries(scope.devices).find(([, name]) => name === dev)?.[0] ?? 0);
    if (ifindex === 0) throw new Error(`no device ${dev} in ${where(netns)}`);
  }
  // A device is only known in its own namespace: the same ifindex may exist in others.
  const filters: AttachCapture['filters'] = { netns: netns ?? null, netnsInode: netns === undefined && dev === null ? 0 : scope.netnsInode, dev, ifindex, ip, replyWindowMs };

  const load = async () => {
    const loaded = await loadArp({
      targ_ifindex: ifindex,
      targ_netns: filters.netnsInode,
      targ_ip: ipBytes ?? new Uint8Array(4),
      reply_window_ns: BigInt(replyWindowMs) * 1_000_000n,
    });
    const record: AttachCapture = { ...loadedRecord(loaded), filters };
    return { obj: loaded.obj, record };
  };
  await runBpfSession(io, { load, window: params.duration as number, read: (o, w) => readDump(o, w.ms) });
}

function parse(records: RawRecord[], params: Params): ProbeResult<ArpData> {
  const { attach: att, dump } = readBpfSession<AttachCapture, DumpCapture>(records);
  return arpFinding(att, scopeOf(records), dump, overheadOf(records), {
    stormPerSec: (params.storm_pps as number | undefined) ?? DEFAULT_STORM_PPS,
    top: Math.max(1, (params.top as number | undefined) ?? 20),
  });
}

export const otherArp: ProbeDefinition<ArpData> = {
  id: 'other.arp',
  title: 'Abnormal ARP: IP conflicts, gratuitous storms, unsolicited replies',
  description: `Classifies every ARP frame the watched devices receive (\`net:netif_receive_skb\`) and counts it in the kernel per receiving device, sender IP and sender MAC, for \`duration\`: requests, replies that answer a request, **gratuitous** ARP (sender IP = target IP: an announcement, as a VM sends after migration or an address change), **probes** (requests from 0.0.0.0: duplicate address detection), **unsolicited** replies (a reply for an IP this namespace sent no request for within \`reply_window\`; the requests it sends are seen at \`net:net_dev_start_xmit\`), and frames whose Ethernet source is not the ARP sender MAC. From those counts it reports:

- **IP conflicts**: one IP claimed by more than one MAC (two VMs configured with the same address, a VIP held by two nodes): each MAC with its frames and the devices it was seen on;
- **storms**: a MAC sending gratuitous or unsolicited ARP at \`storm_pps\` per second or more (peak in one second, or on average over the window);
- **unsolicited replies** and **MAC mismatches** (ARP spoofing, or a proxy rewriting frames), with the offending IP and MAC;
- totals per device, and a table of offenders.

Use it when a VM loses connectivity intermittently, its neighbours' ARP caches flap, or traffic goes to the wrong host. Give \`netns\` and \`dev\` to watch one device (a tap or a bridge of the host, or a device inside a namespace), \`ip\` to keep only ARP whose sender or target is that address. A frame is counted at each device that receives it: a broadcast entering a bridge through a port counts at the port and again at the bridge; filter by \`dev\` for single counts. Replies in the first \`reply_window\` of the session without a request seen are counted as \`unverified\`, not unsolicited (the request may predate the probe). Loads tp_btf programs, whose skb fields are plain loads (falls back to raw_tp with a cached minimal BTF, then the classic tracepoints). Every packet received or sent runs one program, which returns after a protocol check unless it is ARP; past the overhead budget (5% of a CPU, 1M runs/s) the session stops early and keeps its counts.

Replaces the seed's \`other/trace-abnormal-arp.bt\`, which printed every ARP frame from one hard-coded IP on one hard-coded device (kprobes \`__netif_receive_skb\`, \`tun_net_xmit\`); here device and IP are parameters and the kernel aggregates.`,
  normal: `On a healthy segment ARP is a trickle: each host asks for a neighbour every few minutes (requests and as many replies), a few gratuitous ARPs when a VM boots, migrates or changes address (QEMU announces 5 times over about a second), a probe or two from DHCP clients. Each IP is claimed by exactly one MAC, replies answer requests, and the Ethernet source equals the ARP sender. Any IP with two MACs is critical (duplicate address, or a failover that did not complete); \`storm_pps\` (10) gratuitous or unsolicited frames a second from one MAC is critical; unsolicited replies or MAC mismatches are a warning (ARP spoofing, or a misbehaving proxy ARP).`,
  replaces: ['other/trace-abnormal-arp.bt'],
  params: {
    duration: durationParam('How long to watch ARP.', { default: '10s', max: 3_600_000 }),
    netns: { type: 'string', description: 'Watch devices of this network namespace only: an `ip netns` name or a path such as /proc/<pid>/ns/net. Default: every namespace (device names are those of the namespace ebpfnet runs in).' },
    dev: { type: 'string', description: 'Watch only the ARP this device receives (of `netns`, else of the namespace ebpfnet runs in).', cliOption: 'dev' },
    ip: { type: 'ip', description: 'Only ARP whose sender or target IP is this IPv4 address (the seed filtered by sender IP).' },
    storm_pps: { type: 'integer', default: DEFAULT_STORM_PPS, min: 1, max: 1_000_000, description: 'Gratuitous + unsolicited ARP frames per second from one MAC (peak in one second, or mean over the window) at or above which it is a storm.' },
    reply_window: { type: 'duration', default: '3s', min: 10, max: 60_000, description: 'A reply within this long of a request for its sender IP answers it; later, or with no request, it is unsolicited.' },
    top: topParam('How many senders to list.', { default: 20, max: 10_000 }),
  },
  ...tracepointRun(TRACEPOINTS.map((tp) => `net:${tp}`), ARP_BUDGET, { more: [{ kind: 'binary', name: 'ip', package: 'iproute2' }] }),
  data: DATA,
  collect,
  parse,
};
