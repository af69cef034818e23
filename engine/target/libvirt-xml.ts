// The few facts ebpfnet needs from a libvirt domain's XML (`virsh dumpxml`): the
// uuid and each <interface>: its tap (<target dev>), guest MAC, model, source
// bridge or network, virtualport and vhost driver. libvirt writes this XML
// itself, regularly (elements one per line, attributes quoted): reading those
// elements needs no general XML parser.

export interface DomainInterface {
  /** `<interface type=...>`: bridge, network, direct, ethernet, vhostuser, ... */
  type: string;
  /** The host device (`<target dev=...>`): the tap libvirt created, set while the domain runs. */
  target: string | null;
  mac: string | null;
  model: string | null;
  sourceBridge: string | null;
  sourceNetwork: string | null;
  /** `<virtualport type=...>`: openvswitch, or null. */
  virtualport: string | null;
  /** `<driver name=...>`: vhost or qemu, null when unset (libvirt then uses vhost when it can). */
  driver: string | null;
  queues: number | null;
}

export interface DomainXml {
  uuid: string | null;
  interfaces: DomainInterface[];
  /**
   * The guest agent's channel (`<channel>` whose target is org.qemu.guest_agent.0), with
   * libvirt's view of it in the live XML (`connected`, `disconnected`); absent when the domain has none.
   */
  guestAgent?: { state: string | null };
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };

export function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith('#x')) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith('#')) return String.fromCodePoint(Number(name.slice(1)));
    return ENTITIES[name] ?? whole;
  });
}

/** The attributes of the first `<tag ...>` in `xml`, or null when there is none. */
export function firstElement(xml: string, tag: string): Record<string, string> | null {
  const m = new RegExp(`<${tag}(\\s[^>]*?)?/?>`).exec(xml);
  if (!m) return null;
  const attrs: Record<string, string> = {};
  const attr = /([A-Za-z_:][\w:.-]*)\s*=\s*(?:'([^']*)'|"([^"]*)")/g;
  for (const a of (m[1] ?? '').matchAll(attr)) attrs[a[1]!] = unescapeXml(a[2] ?? a[3] ?? '');
  return attrs;
}

/** The parts of `xml` between `<tag ...>` and `</tag>` (not nested), openings included. */
function elements(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}[\\s>][\\s\\S]*?</${tag}>`, 'g'))].map((m) => m[0]);
}

/**
 * An element's own part, without the children named in `skip` (a <driver> holds
 * <host> and <guest>, an <interface> may hold a <source> inside a <backend>).
 */
function without(xml: string, skip: string[]): string {
  return skip.reduce((text, tag) => text.replace(new RegExp(`<${tag}[\\s>][\\s\\S]*?</${tag}>`, 'g'), ''), xml);
}

function parseInterface(xml: string): DomainInterface {
  const own = without(xml, ['backend', 'filterref', 'bandwidth', 'tune', 'coalesce']);
  const head = firstElement(own, 'interface') ?? {};
  const source = firstElement(own, 'source') ?? {};
  const driver = firstElement(own, 'driver') ?? {};
  const queues = driver.queues !== undefined && /^\d+$/.test(driver.queues) ? Number(driver.queues) : null;
  return {
    type: head.type ?? 'unknown',
    target: firstElement(own, 'target')?.dev ?? null,
    mac: firstElement(own, 'mac')?.address?.toLowerCase() ?? null,
    model: firstElement(own, 'model')?.type ?? null,
    sourceBridge: source.bridge ?? null,
    sourceNetwork: source.network ?? null,
    virtualport: firstElement(own, 'virtualport')?.type ?? null,
    driver: driver.name ?? null,
    queues,
  };
}

function guestAgentChannel(xml: string): { state: string | null } | null {
  for (const channel of elements(xml, 'channel')) {
    const target = firstElement(channel, 'target');
    if (target?.name === 'org.qemu.guest_agent.0') return { state: target.state ?? null };
  }
  return null;
}

export function parseDomainXml(xml: string): DomainXml {
  const uuid = /<uuid>\s*([^<\s]+)\s*<\/uuid>/.exec(xml)?.[1] ?? null;
  const agent = guestAgentChannel(xml);
  return { uuid, interfaces: elements(xml, 'interface').map(parseInterface), ...(agent ? { guestAgent: agent } : {}) };
}

/**
 * The vCPU threads in the status file libvirt keeps for a running domain
 * (/run/libvirt/qemu/<name>.xml): `<domstatus pid=...>` then `<vcpus><vcpu id='0' pid='…'/>`,
 * before the `<domain>` it wraps (whose own <vcpus> lists hotplug settings, no pids).
 */
export function parseStatusVcpus(xml: string): { pid: number | null; vcpus: Array<{ index: number; tid: number }> } {
  const head = xml.split(/<domain[\s>]/)[0] ?? '';
  const status = firstElement(head, 'domstatus');
  const pid = status?.pid !== undefined && /^\d+$/.test(status.pid) ? Number(status.pid) : null;
  const block = /<vcpus>([\s\S]*?)<\/vcpus>/.exec(head)?.[1] ?? '';
  const vcpus: Array<{ index: number; tid: number }> = [];
  for (const m of block.matchAll(/<vcpu\s[^>]*>/g)) {
    const attrs = firstElement(m[0], 'vcpu') ?? {};
    if (attrs.id !== undefined && /^\d+$/.test(attrs.id) && attrs.pid !== undefined && /^\d+$/.test(attrs.pid)) {
      vcpus.push({ index: Number(attrs.id), tid: Number(attrs.pid) });
    }
  }
  return { pid, vcpus: vcpus.sort((a, b) => a.index - b.index) };
}
