/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between vlan-udp.bpf.c and probes/other.vlan-udp/probe.ts (which decodes these layouts). */
#ifndef EBPFNET_VLAN_UDP_H
#define EBPFNET_VLAN_UDP_H

#include "netdev.h"
#include "pending.h"

#define VLAN_UDP_MAX_FLOWS 8192
/* The key's `vlan` of an untagged packet (VLAN ids are 12 bits). */
#define VLAN_UDP_UNTAGGED 0xFFFF

/* Slots of the per-CPU `totals` array. */
enum vlan_udp_total {
	VLAN_UDP_TOTAL_SEEN = 0,    /* UDP packets that passed the filters, but those still in `pending` */
	VLAN_UDP_TOTAL_UNKEYED = 1, /* counted but not kept per flow: `flows` was full */
	VLAN_UDP_TOTAL_SLOTS = 2,
};

/* Key of the `flows` hash map: one UDP flow on one device and VLAN; 64 bytes, no holes. */
struct vlan_udp_key {
	struct netdev_id dev;
	__u8 saddr[16];  /* network order; IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;     /* host order */
	__u16 dport;
	__u16 vlan;      /* VLAN id, VLAN_UDP_UNTAGGED when none */
	__u8 family;     /* 4 or 6 */
	__u8 pad;
};

/* Value of the `flows` map; 48 bytes. */
struct vlan_udp_value {
	__u64 packets;
	__u64 bytes;      /* skb->len: the frame (an in-band tag included) */
	__u64 first_ns;   /* bpf_ktime_get_ns of the first and last packet */
	__u64 last_ns;
	__u64 hw_tagged;  /* the tag was in skb->vlan_tci (inserted by the device) */
	__u64 inband;     /* the tag was in the frame (802.1Q/802.1ad header) */
};

/* A CPU's way (bpf/include/pending.h) of packets not in `flows` yet: one flow's, all tagged the
 * same way; 128 bytes, two cache lines. */
struct vlan_udp_pending {
	struct vlan_udp_key key;
	__u64 packets;   /* 0: the way is empty */
	__u64 bytes;
	__u64 first_ns;
	__u64 last_ns;
	__u8 tagging;    /* enum xmit_tagging */
	__u8 pad[31];
};

#endif
