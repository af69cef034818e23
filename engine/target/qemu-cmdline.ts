// Reads what a QEMU command line says about the VM: its name and its network
// cards (which tap each uses, the guest MAC, vhost). QEMU takes option values in
// two syntaxes: key=value lists (`tap,id=n0,ifname=t0`, with ",," for a comma)
// and, as libvirt writes them, JSON objects (`{"type":"tap","fd":"29","id":"hostnet0"}`).

export type OptionValues = Record<string, string>;

/** The QEMU binaries whose processes are VMs. */
export function isQemuBinary(argv0: string): boolean {
  const base = argv0.slice(argv0.lastIndexOf('/') + 1);
  return /^qemu-system-[A-Za-z0-9_]+$/.test(base) || base === 'qemu-kvm' || base === 'kvm';
}

/**
 * Parses one option value. `implied` names the key of a leading bare value
 * (`-netdev tap,...` → type=tap, `-name vm1` → guest=vm1); other bare words are
 * flags (`x` → x=on, `nox` → x=off), as QEMU reads them.
 */
export function parseOptionValue(text: string, implied: string): OptionValues {
  if (text.startsWith('{')) return parseJsonOption(text);
  const out: OptionValues = {};
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === ',' && text[i + 1] === ',') {
      current += ',';
      i++;
    } else if (c === ',') {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  parts.forEach((part, i) => {
    const eq = part.indexOf('=');
    if (eq >= 0) out[part.slice(0, eq)] = part.slice(eq + 1);
    else if (i === 0) out[implied] = part;
    else if (part.startsWith('no') && part.length > 2) out[part.slice(2)] = 'off';
    else if (part) out[part] = 'on';
  });
  return out;
}

function parseJsonOption(text: string): OptionValues {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  const out: OptionValues = {};
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return out;
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value === 'boolean') out[key] = value ? 'on' : 'off';
    else if (typeof value === 'string' || typeof value === 'number') out[key] = String(value);
  }
  return out;
}

/** Every value of the given options, in order (`-name` and `--name` are the same option). */
export function optionValues(argv: string[], option: string): string[] {
  const out: string[] = [];
  for (let i = 1; i < argv.length - 1; i++) {
    if (argv[i] === `-${option}` || argv[i] === `--${option}`) out.push(argv[++i]!);
  }
  return out;
}

/** The VM name given by `-name`: `-name vm1`, `-name guest=vm1,debug-threads=on`. */
export function qemuVmName(argv: string[]): string | null {
  const value = optionValues(argv, 'name').at(-1);
  if (value === undefined) return null;
  return parseOptionValue(value, 'guest').guest ?? null;
}

export interface QemuNic {
  /** The `-netdev` id, when the NIC uses one. */
  netdev: string | null;
  /** The tap's name, when QEMU opened it by name (`ifname=`). */
  ifname: string | null;
  /** Descriptors of the tap when it was handed over (`fd=`, `fds=`), as libvirt does. */
  fds: number[];
  vhost: boolean | null;
  queues: number | null;
  mac: string | null;
  model: string | null;
}

const onOff = (v: string | undefined): boolean | null =>
  v === undefined ? null : ['on', 'true', 'yes', '1'].includes(v.toLowerCase());

function fdList(values: OptionValues): number[] {
  const text = values.fds ?? values.fd;
  if (!text) return [];
  return text
    .split(':')
    .filter((f) => /^\d+$/.test(f))
    .map(Number);
}

function tapNic(values: OptionValues, extra: Partial<QemuNic> = {}): QemuNic {
  const queues = values.queues !== undefined && /^\d+$/.test(values.queues) ? Number(values.queues) : null;
  return {
    netdev: values.id ?? null,
    ifname: values.ifname ?? null,
    fds: fdList(values),
    vhost: onOff(values.vhost),
    queues,
    mac: null,
    model: null,
    ...extra,
  };
}

const normalMac = (mac: string | undefined): string | null => (mac ? mac.toLowerCase() : null);

/**
 * The tap-backed network cards of a QEMU command line: `-netdev tap` joined to the
 * `-device` that uses it, `-nic tap`, and the old `-net nic` + `-net tap` pairs.
 */
export function qemuNics(argv: string[]): QemuNic[] {
  const nics: QemuNic[] = [];
  const netdevs = new Map<string, OptionValues>();
  for (const v of optionValues(argv, 'netdev')) {
    const values = parseOptionValue(v, 'type');
    if (values.id) netdevs.set(values.id, values);
  }
  const used = new Set<string>();
  for (const v of optionValues(argv, 'device')) {
    const device = parseOptionValue(v, 'driver');
    const netdev = device.netdev !== undefined ? netdevs.get(device.netdev) : undefined;
    if (!netdev || netdev.type !== 'tap') continue;
    used.add(device.netdev!);
    nics.push(tapNic(netdev, { mac: normalMac(device.mac), model: device.driver ?? null }));
  }
  // A tap netdev no device uses yet (a hotplug half done) still holds a tap.
  for (const [id, netdev] of netdevs) if (!used.has(id) && netdev.type === 'tap') nics.push(tapNic(netdev));
  for (const v of optionValues(argv, 'nic')) {
    const nic = parseOptionValue(v, 'type');
    if (nic.type === 'tap') nics.push(tapNic(nic, { netdev: nic.id ?? null, mac: normalMac(nic.mac), model: nic.model ?? null }));
  }
  // Legacy -net: the n-th "nic" pairs with the n-th "tap".
  const legacy = optionValues(argv, 'net').map((v) => parseOptionValue(v, 'type'));
  const cards = legacy.filter((n) => n.type === 'nic');
  legacy
    .filter((n) => n.type === 'tap')
    .forEach((tap, i) => nics.push(tapNic(tap, { netdev: null, mac: normalMac(cards[i]?.macaddr), model: cards[i]?.model ?? null })));
  return nics;
}

/** A unix socket QEMU serves for a chardev (`server=on`), or why it cannot be used. */
export interface ChardevSocket {
  /** The chardev id ('' for a -qmp shorthand). */
  id: string;
  /** The socket file; null when QEMU was handed a descriptor (libvirt's `fd=`) or it is not a unix socket. */
  path: string | null;
  /** Whether QEMU listens (server=on); otherwise QEMU is the client of someone else's socket. */
  server: boolean;
}

function chardevSocket(id: string, values: OptionValues): ChardevSocket {
  return { id, path: values.path ?? null, server: onOff(values.server) === true };
}

/** The `-chardev socket,...` of a command line, by id. */
export function qemuSocketChardevs(argv: string[]): Map<string, ChardevSocket> {
  const out = new Map<string, ChardevSocket>();
  for (const v of optionValues(argv, 'chardev')) {
    const values = parseOptionValue(v, 'backend');
    if (values.backend === 'socket' && values.id) out.set(values.id, chardevSocket(values.id, values));
  }
  return out;
}

/**
 * The QMP monitors of a command line: `-qmp unix:PATH,server=on,...` (and `-qmp-pretty`),
 * and `-mon chardev=ID,mode=control` on a `-chardev socket,id=ID,path=PATH`. (`-monitor`
 * and `-mon` without mode=control are the human monitor, not QMP.)
 */
export function qemuQmpSockets(argv: string[]): ChardevSocket[] {
  const out: ChardevSocket[] = [];
  const qmpOptions = new Set(['-qmp', '--qmp', '-qmp-pretty', '--qmp-pretty']);
  for (let i = 1; i < argv.length - 1; i++) {
    if (!qmpOptions.has(argv[i]!)) continue;
    const values = parseOptionValue(argv[++i]!, 'spec');
    const spec = values.spec ?? '';
    if (spec.startsWith('unix:')) out.push({ id: '', path: spec.slice('unix:'.length), server: onOff(values.server) === true });
  }
  const chardevs = qemuSocketChardevs(argv);
  for (const v of optionValues(argv, 'mon')) {
    const values = parseOptionValue(v, 'chardev');
    const chardev = values.chardev !== undefined ? chardevs.get(values.chardev) : undefined;
    if (chardev && values.mode === 'control') out.push(chardev);
  }
  return out;
}

/** The virtio-serial port name the QEMU guest agent listens on inside the guest. */
export const GUEST_AGENT_PORT = 'org.qemu.guest_agent.0';

/**
 * The chardev behind the guest agent's port: `-device virtserialport,chardev=ID,name=
 * org.qemu.guest_agent.0` (either syntax) on a `-chardev socket,id=ID,...`. Null when the
 * VM has no agent port.
 */
export function qemuGuestAgentSocket(argv: string[]): ChardevSocket | null {
  const chardevs = qemuSocketChardevs(argv);
  for (const v of optionValues(argv, 'device')) {
    const device = parseOptionValue(v, 'driver');
    if (device.driver !== 'virtserialport' || device.name !== GUEST_AGENT_PORT || device.chardev === undefined) continue;
    // A port on a chardev that is not a socket (a pty, a file) is no agent ebpfnet can reach.
    return chardevs.get(device.chardev) ?? { id: device.chardev, path: null, server: false };
  }
  return null;
}
