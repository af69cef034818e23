/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between arp.bpf.c and probes/other.arp (which decodes these layouts). */
#ifndef EBPFNET_ARP_H
#define EBPFNET_ARP_H

#define ARP_MAX_SENDERS 4096
#define ARP_MAX_ASKED 4096

/* Slots of the per-CPU `totals` array. */
enum arp_total {
	ARP_TOTAL_SEEN = 0,      /* ARP frames received that passed the filters */
	ARP_TOTAL_UNKEYED = 1,   /* counted in SEEN but not aggregated: `senders` was full */
	ARP_TOTAL_ASKED = 2,     /* ARP requests sent (what tells a reply was asked for) */
	ARP_TOTAL_SLOTS = 3,
};

/* Key of the `senders` hash map (20 bytes, no holes): who claimed which IP, where. */
struct arp_key {
	__u32 ifindex;   /* receiving device */
	__u32 netns;     /* inode of the device's network namespace */
	__u8 sip[4];     /* ARP sender IP (network order) */
	__u8 smac[6];    /* ARP sender MAC */
	__u8 pad[2];
};

/* Value of `senders` (96 bytes): each received frame lands in exactly one of the first seven
 * counts. */
struct arp_counts {
	__u64 requests;     /* op 1 asking for another IP */
	__u64 replies;      /* op 2 answering a request this namespace sent within the window */
	__u64 gratuitous;   /* sender IP == target IP (op 1 or 2): an announcement */
	__u64 probes;       /* requests from 0.0.0.0 (duplicate address detection) */
	__u64 unsolicited;  /* op 2 nobody here asked for */
	__u64 unverified;   /* op 2 without a request seen, too early in the session to tell */
	__u64 other;        /* other opcodes (RARP, InARP) */
	__u64 mac_mismatch; /* frames whose Ethernet source is not the ARP sender MAC */
	__u64 peak_per_sec; /* most gratuitous + unsolicited frames in one second */
	__u64 cur_sec;      /* the second being counted (ktime / 1e9) */
	__u64 cur_count;
	__u8 eth_src[6];    /* the last Ethernet source MAC that differed */
	__u8 pad[2];
};

/* Key of the `asked` map: a request this namespace sent for `ip`. Value: ktime ns. */
struct arp_asked_key {
	__u32 netns;
	__u8 ip[4];
};

#endif
