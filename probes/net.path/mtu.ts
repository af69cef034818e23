// net.path's MTU rules: where a device of the VM's path is smaller than the packets that must
// cross it (a finding), and where MTUs merely differ (information).
//
// What the kernel checks, and so what can be true: a Linux bridge and a veth drop a frame
// bigger than the MTU of the device it is handed to (is_skb_forwardable in
// br_dev_queue_push_xmit and __dev_forward_skb; OVS's datapath does the same in
// ovs_vport_send), GSO packets excepted. A Linux bridge device does not check frames it
// receives from its ports (measured: 1428-byte packets crossed a bridge device of MTU 1000 to
// the host), and a router fragments or answers "too big" rather than drop silently (the
// fragment counters show that). So a 9000-byte uplink beside 1500-byte taps is not a fault:
// only packets bigger than a device they must cross are.

/** How `dev` is joined to `peer`. */
export type MtuRelation =
  /** The other end of a veth. */
  | 'veth-peer'
  /** A port and its Linux bridge. */
  | 'bridge'
  /** Two ports of one bridge (differences only). */
  | 'bridge-port'
  /** A VLAN-like device and the device below it. */
  | 'lower'
  /** A port of another switch (Open vSwitch: its master is `ovs-system`, or none on the userspace datapath). */
  | 'switch'
  /** A routed device: the packets reach it from the host's IP stack, not from one device. */
  | 'route';

/** Two devices joined on the path whose MTUs differ: information, not a fault. */
export interface MtuDifference {
  dev: string;
  mtu: number;
  peer: string;
  peerMtu: number;
  relation: 'veth-peer' | 'bridge' | 'bridge-port' | 'lower';
  peerNetns?: string;
}

/**
 * A device smaller than the packets that must cross it. Two kinds:
 *
 * - measured (`packetBytes` and `direction` present): `dev` is the device too small for the
 *   largest packet seen going that way; `peer` the device the packets reach it from (its bridge,
 *   the veth end or the upper device they come through), null when none is one device.
 * - routed (no `packetBytes`): `dev` is a routed device of the path (no switch owns it) and
 *   `peer` the device joined to it (its veth peer, the device below it). The bigger of the two
 *   is sent packets up to its MTU by a host's IP stack, which the smaller one drops.
 */
export interface MtuMismatch {
  dev: string;
  mtu: number;
  /** The largest L3 packet that must cross `dev` (measured kind only). */
  packetBytes?: number;
  direction?: 'to-vm' | 'from-vm';
  relation: MtuRelation;
  peer: string | null;
  peerMtu: number | null;
  /** `dev` lives in another namespace (a veth end). */
  devNetns?: string;
  /** `peer` lives in another namespace. */
  peerNetns?: string;
}

/** What the MTU rules need to know of one device (probe.ts's PathDevice). */
export interface MtuDevice {
  dev: string;
  mtu: number;
  kind: string | null;
  master: string | null;
  peer: string | null;
  peerMtu: number | null;
  peerNetns: string | null;
  /** Whether the veth's other end is a port of a switch (null: not known). */
  peerEnslaved: boolean | null;
  /** The device below a VLAN-like device, with its MTU. */
  lower: { dev: string; mtu: number } | null;
  ports: string[];
}

export interface MtuInput {
  /** The devices looked at, then the VM's taps and uplinks (those that exist). */
  watched: string[];
  taps: string[];
  uplinks: string[];
  /** Largest L3 packet toward / from the VM; null or 0 when not measured. */
  packetsToVm: number | null;
  packetsFromVm: number | null;
  devices: MtuDevice[];
}

const pairKey = (a: string, b: string) => [a, b].sort().join('|');

/** Every pair that differs where a frame crosses, as the path's devices are joined. */
export function mtuDifferences(watched: string[], devices: MtuDevice[]): MtuDifference[] {
  const out: MtuDifference[] = [];
  const seen = new Set<string>();
  const add = (m: MtuDifference) => {
    const key = pairKey(m.dev, m.peer);
    if (m.mtu === m.peerMtu || seen.has(key)) return;
    seen.add(key);
    out.push(m);
  };
  const byName = new Map(devices.map((d) => [d.dev, d]));
  for (const name of watched) {
    const d = byName.get(name);
    if (!d) continue;
    if (d.peer !== null && d.peerMtu !== null) add({ dev: d.dev, mtu: d.mtu, peer: d.peer, peerMtu: d.peerMtu, relation: 'veth-peer', ...(d.peerNetns ? { peerNetns: d.peerNetns } : {}) });
    const master = d.master !== null ? byName.get(d.master) : undefined;
    if (master && master.kind === 'bridge') {
      add({ dev: d.dev, mtu: d.mtu, peer: master.dev, peerMtu: master.mtu, relation: 'bridge' });
      for (const p of master.ports) {
        const port = byName.get(p);
        if (port && port.dev !== d.dev) add({ dev: d.dev, mtu: d.mtu, peer: port.dev, peerMtu: port.mtu, relation: 'bridge-port' });
      }
    }
    if (d.kind === 'bridge') {
      for (const p of d.ports) {
        const port = byName.get(p);
        if (port) add({ dev: port.dev, mtu: port.mtu, peer: d.dev, peerMtu: d.mtu, relation: 'bridge' });
      }
    }
    if (d.lower && d.mtu > d.lower.mtu) add({ dev: d.dev, mtu: d.mtu, peer: d.lower.dev, peerMtu: d.lower.mtu, relation: 'lower' });
  }
  return out;
}

/** How packets reach a tap or an uplink: from its bridge, its switch, or the host's routing. */
function reachedFrom(d: MtuDevice, byName: Map<string, MtuDevice>): Pick<MtuMismatch, 'relation' | 'peer' | 'peerMtu'> {
  if (d.master === null) return { relation: 'route', peer: null, peerMtu: null };
  const master = byName.get(d.master);
  return { relation: master?.kind === 'bridge' ? 'bridge' : 'switch', peer: d.master, peerMtu: master?.mtu ?? null };
}

/** The devices too small for what must cross them; see MtuMismatch. */
export function mtuMismatches(input: MtuInput): MtuMismatch[] {
  const out: MtuMismatch[] = [];
  const claimed = new Set<string>();
  const byName = new Map(input.devices.map((d) => [d.dev, d]));
  const push = (m: MtuMismatch, pair: string) => {
    if (claimed.has(pair)) return;
    claimed.add(pair);
    out.push(m);
  };

  // Measured: a tap (and its veth's other end) carries the packets to the VM; an uplink, its
  // veth's other end and the device below it carry the packets from the VM.
  const carry = (name: string, bytes: number | null, direction: 'to-vm' | 'from-vm') => {
    const d = byName.get(name);
    if (!d || bytes === null || bytes <= 0) return;
    const sized = { packetBytes: bytes, direction };
    if (d.mtu < bytes) push({ dev: d.dev, mtu: d.mtu, ...sized, ...reachedFrom(d, byName) }, `${d.dev}|${direction}`);
    if (d.kind === 'veth' && d.peer !== null && d.peerMtu !== null && d.peerMtu < bytes) {
      push({ dev: d.peer, mtu: d.peerMtu, ...sized, relation: 'veth-peer', peer: d.dev, peerMtu: d.mtu, ...(d.peerNetns ? { devNetns: d.peerNetns } : {}) }, pairKey(d.dev, d.peer));
    }
    if (direction === 'from-vm' && d.lower && d.lower.mtu < bytes) {
      push({ dev: d.lower.dev, mtu: d.lower.mtu, ...sized, relation: 'lower', peer: d.dev, peerMtu: d.mtu }, pairKey(d.dev, d.lower.dev));
    }
  };
  for (const tap of input.taps) {
    carry(tap, input.packetsToVm, 'to-vm');
    // A veth standing in for a tap checks what its other end hands it, too (a tun does not).
    const d = byName.get(tap);
    const bytes = input.packetsFromVm;
    if (d?.kind === 'veth' && d.peer !== null && bytes !== null && bytes > 0 && d.mtu < bytes) {
      push({ dev: d.dev, mtu: d.mtu, packetBytes: bytes, direction: 'from-vm', relation: 'veth-peer', peer: d.peer, peerMtu: d.peerMtu, ...(d.peerNetns ? { peerNetns: d.peerNetns } : {}) }, `${d.dev}|from-vm`);
    }
  }
  for (const up of input.uplinks) if (byName.get(up)?.kind !== 'bridge') carry(up, input.packetsFromVm, 'from-vm');

  // Routed: a device no switch owns sends what the host's stack gives it, up to its own MTU;
  // the veth end or the lower device it hands that to must take as much.
  for (const name of input.watched) {
    const d = byName.get(name);
    if (!d || d.master !== null) continue;
    if (d.kind === 'veth' && d.peer !== null && d.peerMtu !== null && d.peerMtu !== d.mtu) {
      // The bigger end sends more than the smaller takes: a fault when that end is routed too
      // (what a switch port sends depends on the packets, which are the measured kind's).
      const biggerRouted = d.mtu > d.peerMtu || d.peerEnslaved === false;
      if (biggerRouted) push({ dev: d.dev, mtu: d.mtu, peer: d.peer, peerMtu: d.peerMtu, relation: 'veth-peer', ...(d.peerNetns ? { peerNetns: d.peerNetns } : {}) }, pairKey(d.dev, d.peer));
    }
    if (d.lower && d.mtu > d.lower.mtu) push({ dev: d.dev, mtu: d.mtu, peer: d.lower.dev, peerMtu: d.lower.mtu, relation: 'lower' }, pairKey(d.dev, d.lower.dev));
  }
  return out;
}

export function relationWord(r: MtuRelation): string {
  switch (r) {
    case 'veth-peer':
      return 'veth peer';
    case 'bridge':
      return 'bridge';
    case 'bridge-port':
      return 'fellow bridge port';
    case 'lower':
      return 'lower device';
    case 'switch':
      return 'switch';
    case 'route':
      return 'route';
  }
}

/** One line for the problems list; routed entries keep the wording runbooks and tests know. */
export function mismatchText(m: MtuMismatch): string {
  const where = (name: string | null, ns: string | undefined) => `${name}${ns ? ` (netns ${ns})` : ''}`;
  if (m.packetBytes === undefined) {
    return `MTU mismatch: ${m.dev} has ${m.mtu}, its ${relationWord(m.relation)} ${where(m.peer, m.peerNetns)} has ${m.peerMtu}`;
  }
  const dir = m.direction === 'to-vm' ? 'to' : 'from';
  let from = '';
  if (m.relation === 'lower') from = `, under ${m.peer} (MTU ${m.peerMtu})`;
  else if (m.relation === 'veth-peer') from = `, the veth peer of ${m.peer} (MTU ${m.peerMtu})`;
  else if (m.peer !== null) from = `, a port of ${relationWord(m.relation)} ${m.peer}${m.peerMtu !== null ? ` (MTU ${m.peerMtu})` : ''}`;
  return `MTU mismatch: ${where(m.dev, m.devNetns)} has ${m.mtu}, smaller than the ${m.packetBytes}-byte packets ${dir} the VM that must cross it${from}`;
}

/** What the MTU check could not do, and why differences are not findings. */
export function mtuNotes(
  given: { taps: string[]; uplinks: string[] },
  check: { taps: string[]; uplinks: string[]; packetsToVm: number | null; packetsFromVm: number | null },
  devices: MtuDevice[],
  differences: MtuDifference[],
  mismatches: MtuMismatch[],
): string[] {
  const notes: string[] = [];
  for (const t of given.taps.filter((x) => !check.taps.includes(x))) notes.push(`tap ${t} is not a device here: its MTU is not checked`);
  for (const u of given.uplinks.filter((x) => !check.uplinks.includes(x))) notes.push(`uplink ${u} is not a device here (an OVS patch or tunnel port has none): its MTU is not checked`);
  for (const u of check.uplinks.filter((x) => devices.find((d) => d.dev === x)?.kind === 'bridge')) {
    notes.push(`uplink ${u} is a Linux bridge device, which does not drop frames bigger than its MTU that come from its ports: not checked (the device the host routes the VM's packets by is the one that must carry them)`);
  }
  if (check.taps.length > 0 && check.packetsToVm === null) notes.push("packets_to_vm not given (or nothing seen): the taps' MTUs are not checked against the packets to the VM");
  if (check.uplinks.length > 0 && check.packetsFromVm === null) notes.push("packets_from_vm not given (or nothing seen): the uplinks' MTUs are not checked against the packets from the VM");
  const claimed = new Set(mismatches.map((m) => (m.peer === null ? m.dev : pairKey(m.dev, m.peer))));
  const unclaimed = differences.filter((d) => !claimed.has(pairKey(d.dev, d.peer)));
  if (unclaimed.length > 0) {
    notes.push(`${unclaimed.length} MTU ${unclaimed.length === 1 ? 'difference' : 'differences'} on the path (mtuDifferences) ${unclaimed.length === 1 ? 'is' : 'are'} not a fault by itself: a device is named only when packets bigger than its MTU must cross it`);
  }
  return notes;
}
