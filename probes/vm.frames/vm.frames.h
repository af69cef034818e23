/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between vm-frames.bpf.c and probes/vm.frames (which decodes these layouts). */
#ifndef EBPFNET_VM_FRAMES_H
#define EBPFNET_VM_FRAMES_H

#define VMF_MAX_TAPS 8     /* the VM's taps */
#define VMF_MAX_PORTS 64   /* the other ports of its switch */
#define VMF_MAX_HOST_PORTS 32 /* the host's own ports of its switch: a Linux bridge's device, OVS internal ports */
#define VMF_MAX_MACS 8     /* the VM's guest MACs */
#define VMF_MAX_PAIRS 8192 /* (device, direction, source MAC, destination MAC) counted */
#define VMF_MAX_ADDRS 64   /* addresses learned from the VM's frames */
#define VMF_MAX_TAIL 16384 /* frames that entered during the grace, remembered for it */

/* Slots of the per-CPU `totals` array (u64 each). */
enum vmf_total {
	/* From the VM: frames its taps received with one of its MACs as source, by destination. */
	VMF_SENT_UC_PKTS = 0, VMF_SENT_UC_BYTES, VMF_SENT_MC_PKTS, VMF_SENT_MC_BYTES, VMF_SENT_BC_PKTS, VMF_SENT_BC_BYTES,
	/* To the VM: frames its taps transmitted: to one of its MACs, multicast, broadcast, and
	 * unicast to a MAC that is not the VM's (flooded by a switch that did not know it). */
	VMF_DELIV_UC_PKTS, VMF_DELIV_UC_BYTES, VMF_DELIV_MC_PKTS, VMF_DELIV_MC_BYTES, VMF_DELIV_BC_PKTS, VMF_DELIV_BC_BYTES,
	VMF_DELIV_OTHER_PKTS, VMF_DELIV_OTHER_BYTES,
	/* Entered / forwarded frames not kept per pair: the `pairs` map was full. */
	VMF_UNKEYED_ENTERED_PKTS, VMF_UNKEYED_ENTERED_BYTES, VMF_UNKEYED_FORWARDED_PKTS, VMF_UNKEYED_FORWARDED_BYTES,
	/* The grace (after the probe closed the window): deliveries and forwards of frames that
	 * entered before it (counted), of frames that entered during it (not counted), and the
	 * entries it no longer counts. Unicast only. */
	VMF_LATE_DELIVERED, VMF_LATE_FORWARDED, VMF_SKIPPED_DELIVERED, VMF_SKIPPED_FORWARDED, VMF_AFTER_ENTERED, VMF_AFTER_SENT,
	/* Frames of the VM whose address was not kept: the `learned` map was full. */
	VMF_LEARN_UNKEYED,
	/* Grace entries not remembered (the tail map refused them). */
	VMF_TAIL_UNKEYED,
	/* Frames the VM's taps received from a MAC that is not one of `macs`. */
	VMF_FOREIGN_SENT,
	VMF_TOTAL_SLOTS,
};

/* Slots of the per-CPU `maxima` array (u64 each), the largest value seen on one CPU. */
enum vmf_maximum {
	VMF_MAX_TO_VM = 0,   /* (L3 bytes << 32) | ifindex of the largest packet entering toward the VM */
	VMF_MAX_FROM_VM = 1, /* the same for packets from the VM, on its taps */
	VMF_MAX_TRANSIT = 2, /* ns: slowest crossing of a frame that entered during the grace (from the first of its fingerprint) */
	VMF_MAX_LATE = 3,    /* ns after the window closed: the last delivery it counted */
	VMF_MAXIMA = 4,
};

enum vmf_dir { VMF_ENTERED = 0, VMF_FORWARDED = 1 };

/* Key of the `pairs` hash map (20 bytes, no holes): frames to the VM entering the switch
 * (dir ENTERED: received on a port, or transmitted on a host port by the host) and frames from
 * it leaving (dir FORWARDED: transmitted on a port, or received by the host on a host port),
 * per device and MAC pair. */
struct vmf_pair_key {
	__u32 ifindex;
	__u8 dir;
	__u8 pad;
	__u8 src[6];
	__u8 dst[6];
	__u8 pad2[2];
};

/* Value of `pairs`. GSO packets count their segments; bytes are on the wire (Ethernet
 * header included, repeated per segment). */
struct vmf_count {
	__u64 packets;
	__u64 bytes;
};

enum vmf_via { VMF_VIA_ARP = 1, VMF_VIA_IPV4 = 2, VMF_VIA_IPV6 = 4, VMF_VIA_ND = 8 };

/* Key of the `learned` hash map (24 bytes): an address the VM used, from one of its MACs. */
struct vmf_addr_key {
	__u8 addr[16]; /* network order; IPv4 in the first 4 bytes */
	__u8 mac[6];
	__u8 family;   /* 4 or 6 */
	__u8 pad;
};

struct vmf_addr_val {
	__u64 packets;
	__u32 via; /* enum vmf_via bits */
	__u32 pad;
};

/* Value of `tail`: frames that entered during the grace with one fingerprint. */
struct vmf_tail {
	__u64 first_ns; /* when the first of them entered (ktime) */
	__u32 entered;
	__u32 pad;
};

/* Key of `tail_out` (16 bytes): of the frames of one fingerprint, those one device let out. */
struct vmf_tail_out_key {
	__u64 fp;
	__u32 ifindex;
	__u32 pad;
};

/* Value of the one-slot `phase` array: 0 while the window is open, else when the probe
 * closed it (CLOCK_MONOTONIC ns). */
struct vmf_phase {
	__u64 closed_at;
};

#endif
