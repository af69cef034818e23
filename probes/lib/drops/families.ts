// Families of drop reasons, so a runbook weighs where the VM's drops come from (the tap, a
// firewall, a qdisc, OVS, the L3 path, a socket) without listing every reason of every
// kernel. Reasons are matched by name pattern, drawn from the names 6.18 lists; a later
// kernel's new reason of a known kind falls in place (a new QDISC_*, NEIGH_*, TCP_*...).
export type DropFamily = 'tun' | 'netfilter' | 'qdisc' | 'ovs' | 'l3' | 'socket' | 'other';

/** In order: the first family whose pattern matches the reason name wins; `other` otherwise. */
export const FAMILY_PATTERNS: ReadonlyArray<readonly [Exclude<DropFamily, 'other'>, RegExp]> = [
  // OVS reasons (subsystem openvswitch: OVS_DROP_*, or OPENVSWITCH_<n> when unnamed).
  ['ovs', /^(OVS_|OPENVSWITCH_)/],
  // The tap: its ring toward the VM full, its filters, a device not ready, bad headers from the guest.
  ['tun', /^(FULL_RING|TAP_FILTER|TAP_TXFILTER|DEV_READY|DEV_HDR|SKB_UCOPY_FAULT|SKB_GSO_SEG|SKB_CSUM|HDR_TRUNC)$/],
  ['netfilter', /^(NETFILTER_|NF_|NFT_|IPTABLES_|EBTABLES_)/],
  // Queueing disciplines and tc (TC_* is tc; TCP_* is the socket family's).
  ['qdisc', /^(QDISC_|TC_|CAKE_|FQ_|DUALPI2_|CODEL_|PIE_|RED_|SFQ_|HTB_)/],
  // The L3 path: routing, MTU, neighbour (ARP/ND), fragments, rp_filter.
  ['l3', /NOROUTE|^IP_INADDRERRORS$|^IP_LOCAL_SOURCE$|^IP_INVALID_(SOURCE|DEST)$|^IP_LOCALNET$|RPFILTER|^PKT_TOO_BIG$|^NEIGH_|NDISC|FRAG/],
  // The receiving socket and transport: no socket, full buffers, TCP state, L4 checksums.
  ['socket', /^(NO_SOCKET$|SOCKET_|TCP_|UDP_|ICMP_CSUM$|UNIX_|PROTO_MEM$|PACKET_SOCK_|SK_|XSK_)/],
];

/** The family of a reason, by name; a subsystem's reasons by their subsystem first. */
export function reasonFamily(name: string, subsystem = 'core'): DropFamily {
  if (subsystem === 'openvswitch') return 'ovs';
  return FAMILY_PATTERNS.find(([, re]) => re.test(name))?.[0] ?? 'other';
}

export interface Dominant {
  count: number;
  /** Share of the total (0..1). */
  share: number;
}

/** The key with the largest count (ties: the first by name) and its share of `total`; null when nothing counted. */
export function dominantOf(counts: Record<string, number>, total: number): (Dominant & { key: string }) | null {
  const best = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
  if (!best || total <= 0) return null;
  return { key: best[0], count: best[1], share: Math.round((best[1] / total) * 10000) / 10000 };
}
