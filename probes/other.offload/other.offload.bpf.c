// SPDX-License-Identifier: GPL-2.0
/* other.offload: segmentation and checksum offload of the packets handed to each driver
 * (net:net_dev_start_xmit, after the stack has segmented in software what the device cannot
 * take), aggregated in the kernel per device: GSO and non-GSO packets, GSO types, log2
 * histograms of gso_size and gso_segs, checksum states, bytes, and the abnormal packets (a GSO
 * size without a type, gso_size above the MTU, a GSO type the device does not
 * offload, a non-GSO packet longer than the MTU, a GSO packet not in CHECKSUM_PARTIAL).
 *
 * Three attach flavours of one handler (bpf/include/xmit.h), chosen at load by the probe. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "xmit.h"
#include "other.offload.h"
#include "log2.h"

/* NETIF_F_GSO_SHIFT: feature bit of SKB_GSO_TCPV4 (SKB_GSO_x << shift is the feature NETIF_F_x). */
#define GSO_FEATURE_SHIFT 16

HASH_MAP(devices, OFFLOAD_MAX_DEVICES, struct netdev_id, struct offload_value);

HASH_MAP(gso_types, OFFLOAD_MAX_TYPES, struct offload_type_key, __u64);

TOTALS_MAP(OFFLOAD_TOTAL_SLOTS);

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
		__sync_fetch_and_or(&v->unsupported_bits, unsupported);
	}
	if (p->gso_size > v->max_gso_size)
		v->max_gso_size = p->gso_size; /* racy between CPUs: a maximum may be missed, harmless */
}

static __always_inline int on_xmit(struct sk_buff *skb)
{
	static const struct offload_value zero;
	struct xmit_pkt p = {};
	struct offload_value *v;

	if (!read_xmit(skb, &p))
		return 0;
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
	/* The frame may hold the link header and an in-band VLAN tag besides the MTU. */
	if (p.len > p.mtu + p.hard_header_len + (p.tagging == XMIT_TAG_INBAND ? VLAN_HLEN_ : 0))
		__sync_fetch_and_add(&v->oversize, 1);
	if (p.len > v->max_len)
		v->max_len = p.len;
	return 0;
}

XMIT_PROGRAMS(offload_xmit, on_xmit)

char LICENSE[] SEC("license") = "GPL";
