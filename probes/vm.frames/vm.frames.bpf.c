// SPDX-License-Identifier: GPL-2.0
/* vm.frames: one VM's own frames through its switch, whatever the switch is (Linux bridge,
 * OVS kernel or userspace datapath): what its taps received from its MACs (sent) and what
 * the switch's other ports transmitted of it (forwarded); what those ports received for its
 * MACs (entered) and what its taps transmitted to it (delivered). The differences are what
 * the switch lost. Frames from the VM also tell the addresses it uses and the largest packets
 * on its path.
 *
 * The switch's own port to the host (a Linux bridge's device, an OVS internal port) works the
 * other way round: what the host receives on it left the switch (forwarded), what the host
 * transmits on it enters the switch (entered).
 *
 * Every packet of the host runs one of the two handlers; both look at the device's ifindex
 * first and leave at once unless it is one of the VM's taps or its switch's ports.
 *
 * The window closes in two steps: the probe writes the time into `phase`, after which entries
 * are no longer counted but deliveries of what entered before still are, for a grace; frames
 * that enter during the grace are remembered by a fingerprint of their L3 bytes in `tail`, so
 * that their deliveries are left out.
 *
 * Three attach flavours of the same two handlers, one chosen at load by the probe: raw_tp
 * (with a cached minimal BTF), tp_btf, and the classic tracepoints. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "netdev.h"
#include "vm.frames.h"

#define NDISC_NEIGHBOUR_SOLICITATION_ 135
#define FINGERPRINT_BYTES 64

/* Filters, set before load: the VM's taps, the host's ports, the other ports (none: any
 * device but the taps and the host's ports), its MACs and the namespace the ifindexes belong to. */
const volatile __u32 tap_ifindex[VMF_MAX_TAPS] = {};
const volatile __u32 n_taps = 0;
const volatile __u32 host_ifindex[VMF_MAX_HOST_PORTS] = {};
const volatile __u32 n_host_ports = 0;
const volatile __u32 port_ifindex[VMF_MAX_PORTS] = {};
const volatile __u32 n_ports = 0;
const volatile __u8 vm_macs[VMF_MAX_MACS][6] = {};
const volatile __u32 n_macs = 0;
const volatile __u32 targ_netns = 0;

HASH_MAP(pairs, VMF_MAX_PAIRS, struct vmf_pair_key, struct vmf_count);

HASH_MAP(learned, VMF_MAX_ADDRS, struct vmf_addr_key, struct vmf_addr_val);

/* Frames that entered during the grace, by fingerprint: how many, and when the first did. */
LRU_HASH_MAP(tail, VMF_MAX_TAIL, __u64, struct vmf_tail);

/* How many of those each device has let out (a frame may leave by several ports). */
LRU_HASH_MAP(tail_out, VMF_MAX_TAIL, struct vmf_tail_out_key, __u32);

ARRAY_MAP(phase, 1, struct vmf_phase);

PERCPU_ARRAY_MAP(maxima, VMF_MAXIMA, __u64);

TOTALS_MAP(VMF_TOTAL_SLOTS);

enum role { ROLE_NONE = 0, ROLE_TAP = 1, ROLE_PORT = 2, ROLE_HOST = 3 };
enum cast { CAST_UNICAST = 0, CAST_MULTICAST = 1, CAST_BROADCAST = 2 };
enum way { WAY_TO_VM = 1, WAY_FROM_VM = 2 };

/* One frame as the handlers see it. */
struct frame {
	__u8 dst[6];
	__u8 src[6];
	__u16 proto;          /* EtherType after one VLAN tag, host order */
	__u16 l2hdr;          /* Ethernet header bytes (18 with an in-band VLAN tag) */
	__u32 ifindex;
	__u32 len;            /* frame bytes, Ethernet header included */
	unsigned char *l3;    /* where the L3 header starts */
	struct sk_buff *skb;
};

/* What a frame weighs: GSO packets count their segments. */
struct weight {
	__u64 packets;
	__u64 bytes;  /* on the wire: the headers repeat per segment */
	__u32 l3max;  /* its largest packet's L3 length (a segment's, under GSO) */
};

struct eth_vlan {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
	__be16 tci;
	__be16 inner;
};

/* Whether `ifindex` is among the first `n` entries of the array `list`. A macro, so that the
 * loop is unrolled where the array's length is known. */
#define LISTED(list, n, ifindex)                                                        \
	({                                                                              \
		bool in_list_ = false;                                                  \
		_Pragma("unroll") for (int i_ = 0; i_ < (int)(sizeof(list) / sizeof((list)[0])); i_++) \
		{                                                                       \
			if (i_ >= (n))                                                  \
				break;                                                  \
			if ((list)[i_] == (ifindex)) {                                  \
				in_list_ = true;                                        \
				break;                                                  \
			}                                                               \
		}                                                                       \
		in_list_;                                                               \
	})

/* The device's role; the first thing both handlers look at, so it stays cheap. */
static __always_inline enum role role_of(__u32 ifindex)
{
	if (LISTED(tap_ifindex, n_taps, ifindex))
		return ROLE_TAP;
	if (LISTED(host_ifindex, n_host_ports, ifindex))
		return ROLE_HOST;
	if (!n_ports || LISTED(port_ifindex, n_ports, ifindex))
		return ROLE_PORT;
	return ROLE_NONE;
}

static __always_inline bool is_vm_mac(const __u8 *m)
{
#pragma unroll
	for (int i = 0; i < VMF_MAX_MACS; i++) {
		if (i >= n_macs)
			break;
		if (m[0] == vm_macs[i][0] && m[1] == vm_macs[i][1] && m[2] == vm_macs[i][2] && m[3] == vm_macs[i][3] && m[4] == vm_macs[i][4] &&
		    m[5] == vm_macs[i][5])
			return true;
	}
	return false;
}

static __always_inline enum cast cast_of(const __u8 *dst)
{
	if ((dst[0] & dst[1] & dst[2] & dst[3] & dst[4] & dst[5]) == 0xff)
		return CAST_BROADCAST;
	return dst[0] & 1 ? CAST_MULTICAST : CAST_UNICAST;
}

/* Checked only once the frame matched: the ifindex is of the watched namespace, and the
 * device carries Ethernet (a tap in tun mode does not). */
static __always_inline bool dev_in_scope(struct net_device *dev)
{
	if (targ_netns && BPF_CORE_READ(dev, nd_net.net, ns.inum) != targ_netns)
		return false;
	return BPF_CORE_READ(dev, type) == ARPHRD_ETHER_;
}

/* The Ethernet header at `eth` into `f`; the L3 header follows it. */
static __always_inline bool read_eth(struct frame *f, unsigned char *eth)
{
	struct eth_vlan h;

	if (bpf_probe_read_kernel(&h, sizeof(h), eth))
		return false;
	__builtin_memcpy(f->dst, h.dst, 6);
	__builtin_memcpy(f->src, h.src, 6);
	f->proto = bpf_ntohs(h.proto);
	f->l2hdr = ETH_HLEN_;
	if (f->proto == ETH_P_8021Q_ || f->proto == ETH_P_8021AD_) {
		f->proto = bpf_ntohs(h.inner);
		f->l2hdr += VLAN_HLEN_;
	}
	f->l3 = eth + f->l2hdr;
	return true;
}

static __always_inline void add_total(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&totals, &slot);

	if (v)
		*v += n;
}

static __always_inline void add_count(__u32 slot, const struct weight *w)
{
	add_total(slot, w->packets);
	add_total(slot + 1, w->bytes);
}

static __always_inline void raise(__u32 slot, __u64 value)
{
	__u64 *v = bpf_map_lookup_elem(&maxima, &slot);

	if (v && value > *v)
		*v = value;
}

/* When the probe closed the window (ktime ns), 0 while it is open. */
static __always_inline __u64 closed_at(void)
{
	__u32 zero = 0;
	struct vmf_phase *p = bpf_map_lookup_elem(&phase, &zero);

	return p ? p->closed_at : 0;
}

/* Segments, wire bytes and largest L3 packet of a frame. GSO packets from a guest
 * (SKB_GSO_DODGY) carry no segment count yet: it is computed as the stack will
 * (qdisc_pkt_len_init), from the payload after the L3 and L4 headers. skb_shinfo() is at
 * head + end (end is an offset on 64-bit). The SKB_GSO_* bits are an anonymous enum (no CO-RE
 * relocation): the ones used here have kept their values since 4.18. */
static __always_inline void weigh(const struct frame *f, struct weight *w)
{
	struct sk_buff *skb = f->skb;
	struct skb_shared_info *sh = (void *)(BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, end));
	__u32 l3len = f->len > f->l2hdr ? f->len - f->l2hdr : 0;
	__u16 size = BPF_CORE_READ(sh, gso_size);
	__u32 type, hdr = 0, segs;
	__u8 b;

	w->packets = 1;
	w->bytes = f->len;
	w->l3max = l3len;
	if (!size)
		return;
	type = BPF_CORE_READ(sh, gso_type);
	segs = BPF_CORE_READ(sh, gso_segs);
	if (f->proto == ETH_P_IP_) {
		if (bpf_probe_read_kernel(&b, 1, f->l3))
			return;
		hdr = (b & 0xf) * 4;
	} else if (f->proto == ETH_P_IPV6_) {
		hdr = 40;
	}
	if (hdr) {
		if (type & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6)) {
			if (!bpf_probe_read_kernel(&b, 1, f->l3 + (hdr & 0x3f) + 12))
				hdr += (b >> 4) * 4;
		} else if (type & SKB_GSO_UDP_L4) {
			hdr += 8;
		}
	}
	if (!segs || (type & SKB_GSO_DODGY))
		segs = hdr && l3len > hdr ? (l3len - hdr + size - 1) / size : 1;
	if (!segs)
		segs = 1;
	w->packets = segs;
	w->bytes = f->len + (__u64)(segs - 1) * (f->l2hdr + hdr);
	if (hdr && hdr + size < l3len)
		w->l3max = hdr + size;
}

/* Frames to or from the VM, by device and MAC pair. */
static __always_inline void count_pair(const struct frame *f, __u8 dir, const struct weight *w)
{
	struct vmf_pair_key k = { .ifindex = f->ifindex, .dir = dir };
	struct vmf_count init = {}, *v;

	__builtin_memcpy(k.src, f->src, 6);
	__builtin_memcpy(k.dst, f->dst, 6);
	v = bpf_map_lookup_elem(&pairs, &k);
	if (!v) {
		bpf_map_update_elem(&pairs, &k, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&pairs, &k);
	}
	if (!v) {
		add_count(dir == VMF_ENTERED ? VMF_UNKEYED_ENTERED_PKTS : VMF_UNKEYED_FORWARDED_PKTS, w);
		return;
	}
	__sync_fetch_and_add(&v->packets, w->packets);
	__sync_fetch_and_add(&v->bytes, w->bytes);
}

/* A frame's identity across the switch: its first L3 bytes (what a switch leaves alone: the
 * TTL and IPv4 header checksum are masked, a router in the switch changes them), its length
 * and direction. Only computed during the grace. */
static __always_inline __u64 fingerprint(const struct frame *f, enum way way)
{
	__u64 w[FINGERPRINT_BYTES / 8] = {};
	__u8 *b = (__u8 *)w;
	__u32 l3len = f->len > f->l2hdr ? f->len - f->l2hdr : 0;
	__u32 n = l3len < FINGERPRINT_BYTES ? l3len : FINGERPRINT_BYTES;
	__u64 h = 0xcbf29ce484222325ULL ^ ((__u64)way << 32) ^ l3len ^ ((__u64)f->proto << 40);

	if (n > FINGERPRINT_BYTES)
		n = FINGERPRINT_BYTES;
	if (bpf_probe_read_kernel(w, n, f->l3))
		return 0;
	if (f->proto == ETH_P_IP_) {
		b[8] = 0;
		b[10] = 0;
		b[11] = 0;
	} else if (f->proto == ETH_P_IPV6_) {
		b[7] = 0;
	}
#pragma unroll
	for (int i = 0; i < FINGERPRINT_BYTES / 8; i++) {
		h = (h ^ w[i]) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h | 1;
}

/* A frame that entered during the grace: its delivery is not to be counted. Identical frames
 * (same first bytes) share a fingerprint: they are counted, and left out as many times. */
static __always_inline void remember_tail(const struct frame *f, enum way way)
{
	__u64 fp = fingerprint(f, way);
	struct vmf_tail init = { .first_ns = bpf_ktime_get_ns(), .entered = 1 }, *t;

	if (!fp) {
		add_total(VMF_TAIL_UNKEYED, 1);
		return;
	}
	t = bpf_map_lookup_elem(&tail, &fp);
	if (t)
		__sync_fetch_and_add(&t->entered, 1);
	else if (bpf_map_update_elem(&tail, &fp, &init, BPF_ANY))
		add_total(VMF_TAIL_UNKEYED, 1);
}

/* During the grace: whether a frame leaving by `f->ifindex` entered before the window closed
 * (counted) or during the grace (left out, as many times per device as such frames entered).
 * Records how late and how slow. */
static __always_inline bool entered_in_window(const struct frame *f, enum way way, __u64 closed)
{
	__u64 fp = fingerprint(f, way), now = bpf_ktime_get_ns();
	struct vmf_tail_out_key k = { .fp = fp, .ifindex = f->ifindex };
	struct vmf_tail *t = fp ? bpf_map_lookup_elem(&tail, &fp) : NULL;
	__u32 one = 1, *out;

	if (t) {
		out = bpf_map_lookup_elem(&tail_out, &k);
		if (!out || *out < t->entered) {
			if (out)
				*out += 1;
			else
				bpf_map_update_elem(&tail_out, &k, &one, BPF_ANY);
			if (now > t->first_ns)
				raise(VMF_MAX_TRANSIT, now - t->first_ns);
			return false;
		}
	}
	if (now > closed)
		raise(VMF_MAX_LATE, now - closed);
	return true;
}

/* An IPv6 header and the start of an ICMPv6 neighbour solicitation. */
struct ipv6_nd {
	__u8 vtc;
	__u8 flow[3];
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 icmp_type;
	__u8 icmp_code;
	__be16 icmp_csum;
	__be32 reserved;
	__u8 target[16];
};

static __always_inline void learn(const __u8 *mac, const __u8 *addr, __u8 family, __u32 via, __u64 packets)
{
	struct vmf_addr_key k = { .family = family };
	struct vmf_addr_val init = { .packets = packets, .via = via }, *v;

	if (family == 4)
		__builtin_memcpy(k.addr, addr, 4);
	else
		__builtin_memcpy(k.addr, addr, 16);
	__builtin_memcpy(k.mac, mac, 6);
	v = bpf_map_lookup_elem(&learned, &k);
	if (!v) {
		if (!bpf_map_update_elem(&learned, &k, &init, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&learned, &k);
		if (!v) {
			add_total(VMF_LEARN_UNKEYED, 1);
			return;
		}
	}
	__sync_fetch_and_add(&v->packets, packets);
	/* Bits are only ever set: a race between CPUs may miss one, the next frame sets it. */
	if (!(v->via & via))
		v->via |= via;
}

static __always_inline bool zero16(const __u8 *a)
{
	__u64 x, y;

	__builtin_memcpy(&x, a, 8);
	__builtin_memcpy(&y, a + 8, 8);
	return (x | y) == 0;
}

/* The addresses a frame from the VM claims: the ARP sender, the IPv4 or IPv6 source, or the
 * target of a duplicate address detection (a neighbour solicitation from ::). */
static __always_inline void learn_from(const struct frame *f, __u64 packets)
{
	if (f->proto == ETH_P_ARP_) {
		struct arp_ipv4 a;
		__u32 spa;

		if (bpf_probe_read_kernel(&a, sizeof(a), f->l3))
			return;
		__builtin_memcpy(&spa, a.spa, 4);
		if (a.htype == bpf_htons(1) && a.ptype == bpf_htons(ETH_P_IP_) && a.hlen == 6 && a.plen == 4 &&
		    (a.op == bpf_htons(1) || a.op == bpf_htons(2)) && spa)
			learn(f->src, a.spa, 4, VMF_VIA_ARP, packets);
	} else if (f->proto == ETH_P_IP_) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), f->l3) || ip.version != 4 || !ip.saddr)
			return;
		learn(f->src, (__u8 *)&ip.saddr, 4, VMF_VIA_IPV4, packets);
	} else if (f->proto == ETH_P_IPV6_) {
		struct ipv6_nd p;

		if (bpf_probe_read_kernel(&p, sizeof(p), f->l3) || (p.vtc >> 4) != 6)
			return;
		if (!zero16(p.saddr))
			learn(f->src, p.saddr, 6, VMF_VIA_IPV6, packets);
		else if (p.nexthdr == IPPROTO_ICMPV6_ && p.icmp_type == NDISC_NEIGHBOUR_SOLICITATION_ && bpf_ntohs(p.payload_len) >= 24 && !zero16(p.target))
			learn(f->src, p.target, 6, VMF_VIA_ND, packets);
	}
}

/* Received on a tap from one of the VM's MACs: it sent this. */
static __always_inline void vm_sent(struct frame *f)
{
	struct weight w;
	enum cast cast = cast_of(f->dst);

	if (closed_at()) {
		remember_tail(f, WAY_FROM_VM);
		if (cast == CAST_UNICAST)
			add_total(VMF_AFTER_SENT, 1);
		return;
	}
	weigh(f, &w);
	learn_from(f, w.packets);
	raise(VMF_MAX_FROM_VM, ((__u64)w.l3max << 32) | f->ifindex);
	add_count(cast == CAST_BROADCAST ? VMF_SENT_BC_PKTS : cast == CAST_MULTICAST ? VMF_SENT_MC_PKTS : VMF_SENT_UC_PKTS, &w);
}

/* Received on a port, or transmitted by the host on its port, for one of the VM's MACs: it
 * entered the switch toward the VM. */
static __always_inline void vm_entering(struct frame *f)
{
	struct weight w;

	if (closed_at()) {
		remember_tail(f, WAY_TO_VM);
		add_total(VMF_AFTER_ENTERED, 1);
		return;
	}
	weigh(f, &w);
	raise(VMF_MAX_TO_VM, ((__u64)w.l3max << 32) | f->ifindex);
	count_pair(f, VMF_ENTERED, &w);
}

/* Transmitted on a tap: delivered to the VM (or flooded to it). */
static __always_inline void vm_delivered(struct frame *f)
{
	enum cast cast = cast_of(f->dst);
	__u64 closed = closed_at();
	struct weight w;

	if (cast == CAST_UNICAST && is_vm_mac(f->dst)) {
		if (closed) {
			if (!entered_in_window(f, WAY_TO_VM, closed)) {
				add_total(VMF_SKIPPED_DELIVERED, 1);
				return;
			}
			add_total(VMF_LATE_DELIVERED, 1);
		}
		weigh(f, &w);
		add_count(VMF_DELIV_UC_PKTS, &w);
		return;
	}
	/* Nothing enters for these: counted in the window only. */
	if (closed)
		return;
	weigh(f, &w);
	add_count(cast == CAST_BROADCAST ? VMF_DELIV_BC_PKTS : cast == CAST_MULTICAST ? VMF_DELIV_MC_PKTS : VMF_DELIV_OTHER_PKTS, &w);
}

/* A frame from one of the VM's MACs transmitted on a port, or received by the host on its port:
 * the switch forwarded it. A frame may show on several ports (flooded, or through stacked
 * devices such as a VLAN on a bond): the probe counts each MAC pair once, on the port that saw
 * most. */
static __always_inline void vm_forwarded(struct frame *f)
{
	__u64 closed = closed_at();
	bool unicast = cast_of(f->dst) == CAST_UNICAST;
	struct weight w;

	if (closed) {
		if (!entered_in_window(f, WAY_FROM_VM, closed)) {
			if (unicast)
				add_total(VMF_SKIPPED_FORWARDED, 1);
			return;
		}
		if (unicast)
			add_total(VMF_LATE_FORWARDED, 1);
	}
	weigh(f, &w);
	count_pair(f, VMF_FORWARDED, &w);
}

/* At netif_receive_skb the Ethernet header is pulled: the frame is the data and what precedes it since the MAC header. */
static __always_inline void rx_len(struct frame *f, struct sk_buff *skb, unsigned char *eth)
{
	f->len = BPF_CORE_READ(skb, len) + (__u32)(BPF_CORE_READ(skb, data) - eth);
}

/* The role of the device `f` passes (its ifindex into `f`); ROLE_NONE when there is none. */
static __always_inline enum role frame_role(struct net_device *dev, struct frame *f)
{
	if (!dev)
		return ROLE_NONE;
	f->ifindex = BPF_CORE_READ(dev, ifindex);
	return role_of(f->ifindex);
}

static __always_inline int on_receive(struct sk_buff *skb)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	struct frame f = { .skb = skb };
	enum role role;
	unsigned char *head;
	__u16 mh;

	role = frame_role(dev, &f);
	if (role == ROLE_NONE)
		return 0;
	head = BPF_CORE_READ(skb, head);
	mh = BPF_CORE_READ(skb, mac_header);
	if (mh == MAC_HEADER_UNSET || !read_eth(&f, head + mh))
		return 0;
	if (role == ROLE_TAP) {
		if (!dev_in_scope(dev))
			return 0;
		if (!is_vm_mac(f.src)) {
			/* The VM sending from a MAC it was not given (nested guests, spoofing). */
			if (!closed_at())
				add_total(VMF_FOREIGN_SENT, 1);
			return 0;
		}
		rx_len(&f, skb, head + mh);
		vm_sent(&f);
		return 0;
	}
	if (role == ROLE_PORT && is_vm_mac(f.dst)) {
		if (!dev_in_scope(dev))
			return 0;
		rx_len(&f, skb, head + mh);
		vm_entering(&f);
	} else if (is_vm_mac(f.src)) {
		/* A frame of the VM handed up to the host: on its port (the bridge's own device, for
		 * its address there or a broadcast's local copy; an OVS internal port), or on a port
		 * not known as the host's (the receive path of an OVS internal port left in `ports`). */
		if (!dev_in_scope(dev))
			return 0;
		rx_len(&f, skb, head + mh);
		vm_forwarded(&f);
	}
	return 0;
}

/* At the driver's xmit the data starts with the Ethernet header. */
static __always_inline int on_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct frame f = { .skb = skb };
	enum role role;

	role = frame_role(dev, &f);
	if (role == ROLE_NONE)
		return 0;
	if (!read_eth(&f, BPF_CORE_READ(skb, data)))
		return 0;
	/* A port lets the VM's frames out; the host's port lets the host's frames in. */
	if (role == ROLE_PORT && !is_vm_mac(f.src))
		return 0;
	if (role == ROLE_HOST && !is_vm_mac(f.dst))
		return 0;
	if (!dev_in_scope(dev))
		return 0;
	f.len = BPF_CORE_READ(skb, len);
	if (role == ROLE_TAP)
		vm_delivered(&f);
	else if (role == ROLE_HOST)
		vm_entering(&f);
	else
		vm_forwarded(&f);
	return 0;
}

/* tp_btf (loaded by default) and raw_tp ("?"): probe-read access only, which raw_tp requires. */
BTF_HANDLERS(frames_receive, netif_receive_skb, on_receive(skb), struct sk_buff *skb)
BTF_HANDLERS(frames_xmit, net_dev_start_xmit, on_xmit((struct sk_buff *)skb, (struct net_device *)dev), const struct sk_buff *skb,
		    const struct net_device *dev)

SEC("?tracepoint/net/netif_receive_skb")
int frames_receive_tracepoint(struct trace_event_raw_net_dev_template *args)
{
	return on_receive((struct sk_buff *)args->skbaddr);
}

SEC("?tracepoint/net/net_dev_start_xmit")
int frames_xmit_tracepoint(struct trace_event_raw_net_dev_start_xmit *args)
{
	struct sk_buff *skb = (struct sk_buff *)args->skbaddr;

	return on_xmit(skb, BPF_CORE_READ(skb, dev));
}

char LICENSE[] SEC("license") = "GPL";
