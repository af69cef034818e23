// Kernels before 5.17 give kfree_skb no drop reason. There the reason a later kernel gives at
// the same place is inferred from where the packet was freed: the dropping function, or the
// first caller above a generic freeing helper (a qdisc's drops are freed by kfree_skb_list).
// Only places whose drops have one reason on later kernels are named (nf_hook_slow frees only
// NF_DROP verdicts; a qdisc's enqueue drops are QDISC_DROP; an AF_PACKET socket's, its own full
// buffer); tun_net_xmit is FULL_RING, its common drop (a tap with no reader and its filters drop
// there too); a frame for another host's MAC freed by IP's receive is OTHERHOST (the program
// flags the frame's pkt_type); the rest is NOT_SPECIFIED, as a later kernel says of a drop it
// gives no reason.

/**
 * `nf_hook_slow+0x98 [mod]` → `nf_hook_slow`; the parts GCC splits off a function are the
 * function (`tun_net_xmit.cold`, where its unlikely drop path lies; `.part.0`, `.isra.0`).
 */
export function functionOf(sym: string): string {
  return sym.replace(/\+0x[0-9a-f]+.*$/, '').replace(/(\.(cold|part|isra|constprop)(\.\d+)?)+$/, '');
}

/**
 * The freeing helpers that call kfree_skb itself (they are the kprobe's caller), at most
 * KFREE_SKB_HELPER_SLOTS (DROPS_HELPERS in drops.kernel.bpf.c): the BPF program takes a whole
 * stack of the drops they free, whose next frame is the place.
 */
export const KFREE_SKB_HELPERS = ['kfree_skb_list', '__dev_kfree_skb_any'] as const;
export const KFREE_SKB_HELPER_SLOTS = 4;

/** Functions that only free what their caller dropped: the caller is the place. */
const FREEING_HELPERS = new RegExp(`^(${[...KFREE_SKB_HELPERS, 'kfree_skb', '__kfree_skb', 'kfree_skb_reason', 'kfree_skb_list_reason', 'dev_kfree_skb_any_reason', 'consume_skb'].join('|')})$`);

/** The function (or caller) of a drop → the reason later kernels give there. */
export const LOCATION_REASONS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^nf_hook_slow$/, 'NETFILTER_DROP'],
  [/^tun_net_xmit$/, 'FULL_RING'],
  [/^(__dev_xmit_skb|__dev_queue_xmit|__qdisc_run|sch_direct_xmit|__qdisc_drop|qdisc_drop)$/, 'QDISC_DROP'],
  // An AF_PACKET socket (a userspace switch's port) frees with kfree_skb only what it counts as
  // its own drop (a full buffer): PACKET_SOCK_ERROR later; the rest it consumes.
  [/^(packet_rcv|tpacket_rcv)$/, 'PACKET_SOCK_ERROR'],
];

/** IP's receive functions: they drop a frame for another host's MAC first, before any other check. */
const IP_RECEIVE = /^(ip_rcv|ip_rcv_core|ipv6_rcv|ip6_rcv_core)$/;

/**
 * The reason a later kernel gives a drop at `frames` (the dropping function first, then its
 * callers), else NOT_SPECIFIED. `otherHost`: the frame was for another host's MAC (pkt_type),
 * which IP's receive drops as OTHERHOST.
 */
export function reasonAt(frames: readonly string[], otherHost = false): string {
  const place = frames.map(functionOf).find((f) => !FREEING_HELPERS.test(f));
  if (place && otherHost && IP_RECEIVE.test(place)) return 'OTHERHOST';
  return (place && LOCATION_REASONS.find(([re]) => re.test(place))?.[1]) ?? 'NOT_SPECIFIED';
}
