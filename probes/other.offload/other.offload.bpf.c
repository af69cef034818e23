// SPDX-License-Identifier: GPL-2.0
/* other.offload: segmentation and checksum offload of the packets handed to each driver
 * (net:net_dev_start_xmit, after the stack has segmented in software what the device cannot
 * take), aggregated in the kernel per device: GSO and non-GSO packets, GSO types, log2
 * histograms of gso_size and gso_segs, checksum states, bytes, and the abnormal packets (a GSO
 * size without a type, gso_size above the MTU, a GSO type the device does not
 * offload, a non-GSO packet longer than the MTU, a GSO packet not in CHECKSUM_PARTIAL).
 *
 * Three attach flavours of one handler (bpf/include/xmit.h), chosen at load by the probe. A
 * non-GSO packet costs one cache line of this CPU's (`pending`, bpf/include/pending.h) while its
 * device and class stay the same; GSO packets and a way's counts go to `devices`. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "xmit.h"
#include "other.offload.h"
#include "log2.h"
#include "pending.h"

/* NETIF_F_GSO_SHIFT: feature bit of SKB_GSO_TCPV4 (SKB_GSO_x << shift is the feature NETIF_F_x). */
#define GSO_FEATURE_SHIFT 16

HASH_MAP(devices, OFFLOAD_MAX_DEVICES, struct netdev_id, struct offload_value);

HASH_MAP(gso_types, OFFLOAD_MAX_TYPES, struct offload_type_key, __u64);

TOTALS_MAP(OFFLOAD_TOTAL_SLOTS);

PENDING_MAP(pending, struct offload_pending);

static __always_inline void count_gso(struct offload_value *v, struct xmit_pkt *p)
{
	__u64 unsupported = (__u64)p->gso_type & ~(p->features >> GSO_FEATURE_SHIFT);
	__u32 size_slot = log2_slot(p->gso_size, OFFLOAD_SLOTS);
	__u32 segs_slot = log2_slot(p->gso_segs, OFFLOAD_SLOTS);
	__u32 csum = p->ip_summed & 3;
	struct offload_type_key type = { .dev = p->dev, .gso_type = p->gso_type };

	__sync_fetch_and_add(&v->gso_packets, 1);
	__sync_fetch_and_add(&v->gso_bytes, p->len);
	__sync_fetch_and_add(&v->gso_segs, p->gso_segs);
	/* Whole types, not bits: a loop over 32 bits costs the verifier seconds. */
	if (!count_key(&gso_types, &type))
		bump_slot(&totals, OFFLOAD_TOTAL_UNKEYED);
	slot_add_shared(v->size_slots, size_slot, OFFLOAD_SLOTS);
	slot_add_shared(v->segs_slots, segs_slot, OFFLOAD_SLOTS);
	slot_add_shared(v->gso_csum, csum, OFFLOAD_CSUM_STATES);
	if (!p->gso_type)
		__sync_fetch_and_add(&v->size_without_type, 1);
	if (p->gso_size > p->mtu)
		__sync_fetch_and_add(&v->size_over_mtu, 1);
	if (unsupported) {
		__sync_fetch_and_add(&v->unsupported, 1);
		/* not atomic: an atomic OR needs 5.12; racing CPUs may lose a bit until the next packet */
		v->unsupported_bits |= unsupported;
	}
	if (p->gso_size > v->max_gso_size)
		v->max_gso_size = p->gso_size; /* racy between CPUs: a maximum may be missed, harmless */
}

/* Adds `n` non-GSO packets of `w`'s device and class to its entry (or counts them unkeyed). */
static __always_inline void flush_way(const struct offload_pending *w)
{
	static const struct offload_value zero;
	__u64 n = w->packets;
	struct offload_value *v = way_entry(&devices, &w->dev, &zero, &totals, OFFLOAD_TOTAL_SEEN, OFFLOAD_TOTAL_UNKEYED, n);

	if (!v)
		return;
	__sync_fetch_and_add(&v->packets, n);
	__sync_fetch_and_add(&v->bytes, w->bytes);
	if (w->csum < OFFLOAD_CSUM_STATES)
		__sync_fetch_and_add(&v->csum[w->csum], n);
	if (w->oversize)
		__sync_fetch_and_add(&v->oversize, n);
	if (w->max_len > v->max_len)
		v->max_len = w->max_len; /* racy between CPUs: a maximum may be missed, harmless */
	v->mtu = w->mtu;
	v->features = w->features;
}

/* A non-GSO packet: counted in this CPU's way of its device when the way holds its class, else
 * the way's counts move to `devices` first. */
static __always_inline bool count_pending(const struct xmit_pkt *p, __u8 oversize)
{
	struct offload_pending *w = pending_way(&pending, p->dev.ifindex);
	__u8 csum = p->ip_summed & 3;

	if (!w)
		return false;
	if (!w->packets || !same_words(&w->dev, &p->dev, sizeof(p->dev)) || w->csum != csum || w->oversize != oversize) {
		if (w->packets)
			flush_way(w);
		w->dev = p->dev;
		w->csum = csum;
		w->oversize = oversize;
		w->packets = 0;
		w->bytes = 0;
		w->max_len = 0;
	}
	w->packets++;
	w->bytes += p->len;
	if (p->len > w->max_len)
		w->max_len = p->len;
	w->mtu = p->mtu;
	w->features = p->features;
	return true;
}

/* The frame may hold the link header and an in-band VLAN tag besides the MTU: the tag is read
 * only for a frame longer than the rest allows. */
static __always_inline bool oversize(struct sk_buff *skb, struct net_device *dev, struct xmit_pkt *p, bool direct)
{
	__u32 limit = p->mtu + p->hard_header_len;

	if (p->len <= limit)
		return false;
	if (!XMIT_FLOW_FILTERED)
		read_frame(skb, dev, p, direct);
	return p->len > limit + (p->tagging == XMIT_TAG_INBAND ? VLAN_HLEN_ : 0);
}

static __always_inline int on_xmit(struct sk_buff *skb, struct net_device *dev, bool direct)
{
	static const struct offload_value zero;
	struct xmit_pkt p = {};
	struct offload_value *v;
	bool over = false;

	if (!read_xmit(skb, dev, &p, false, direct))
		return 0;
	if (!p.gso_size) {
		over = oversize(skb, dev, &p, direct);
		if (count_pending(&p, over))
			return 0;
	}
	bump_slot(&totals, OFFLOAD_TOTAL_SEEN);
	v = lookup_or_init(&devices, &p.dev, &zero, &totals, OFFLOAD_TOTAL_UNKEYED);
	if (!v)
		return 0;
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, p.len);
	slot_add_shared(v->csum, p.ip_summed & 3, OFFLOAD_CSUM_STATES);
	v->mtu = p.mtu;
	v->features = p.features;
	if (p.gso_size) {
		count_gso(v, &p);
		return 0;
	}
	if (over)
		__sync_fetch_and_add(&v->oversize, 1);
	if (p.len > v->max_len)
		v->max_len = p.len;
	return 0;
}

XMIT_PROGRAMS(offload_xmit, on_xmit)

char LICENSE[] SEC("license") = "GPL";
