/*
 * noise: what an idle real guest keeps sending, at a pace the lab can count. Every period
 * (default 500 ms) it sends one frame of each kind, in this order:
 *   arp   ARP who-has <arp-target> to ff:ff:ff:ff:ff:ff, from the NIC's MAC and IPv4 address
 *   mdns4 mDNS query (PTR _ebpfnet-noise._udp.local) to 224.0.0.251:5353, TTL 255
 *   mdns6 the same query to [ff02::fb]:5353, hop limit 255
 *   ns    ICMPv6 neighbour solicitation for fe80::ebbf:dead (which no node has) to its
 *         solicited-node group ff02::1:ffbf:dead, hop limit 255
 *   mld   MLDv2 report to ff02::16 (hop limit 1, router alert): "listening to ff02::1:3"
 * Nobody joined 224.0.0.251 or ff02::fb, nobody has the ARP or ND target. The IPv6 kinds need
 * IPv6 on the NIC (the guest then boots without ipv6.disable=1). A send that fails (an address
 * still tentative) is skipped; the pace stays. Runs in the background once its sockets exist.
 *   noise <dev> <arp-target> [period-ms]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_TARGET "fe80::ebbf:dead"
#define NS_GROUP "ff02::1:ffbf:dead"
#define MLD_GROUP "ff02::1:3"

static const char *dev;
static int ifindex;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void setopt(int fd, int level, int name, const void *val, socklen_t len, const char *what)
{
	if (setsockopt(fd, level, name, val, len) < 0)
		die(what);
}

/* A DNS query for one PTR record, as mDNS queriers (avahi, Bonjour) send them. */
static size_t mdns_query(unsigned char *buf)
{
	static const char name[] = "\x0e_ebpfnet-noise\x04_udp\x05local";
	size_t n = 12;

	memset(buf, 0, 12);
	buf[5] = 1; /* one question */
	memcpy(buf + n, name, sizeof(name)); /* with its terminating zero label */
	n += sizeof(name);
	buf[n++] = 0, buf[n++] = 12; /* PTR */
	buf[n++] = 0, buf[n++] = 1;  /* IN */
	return n;
}

static int mcast4_socket(void)
{
	struct ip_mreqn mreq = { .imr_ifindex = ifindex };
	int ttl = 255, loop = 0;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		die("noise: socket udp4");
	setopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof(mreq), "noise: IP_MULTICAST_IF");
	setopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl), "noise: IP_MULTICAST_TTL");
	setopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop), "noise: IP_MULTICAST_LOOP");
	return fd;
}

/* An IPv6 socket sending to link-scope multicast on the NIC; -1 without IPv6. */
static int mcast6_socket(int type, int proto, int hops)
{
	int loop = 0;
	int fd = socket(AF_INET6, type, proto);

	if (fd < 0)
		return -1;
	setopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex), "noise: IPV6_MULTICAST_IF");
	setopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops), "noise: IPV6_MULTICAST_HOPS");
	setopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof(loop), "noise: IPV6_MULTICAST_LOOP");
	return fd;
}

static struct sockaddr_in6 to6(const char *addr, int port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_scope_id = ifindex };

	inet_pton(AF_INET6, addr, &sa.sin6_addr);
	return sa;
}

static void send_arp(int fd, int ioctl_fd, struct in_addr target)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP), .sll_ifindex = ifindex, .sll_halen = 6 };
	unsigned char pkt[28];
	struct arphdr *h = (struct arphdr *)pkt;
	struct in_addr self;

	strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
	if (ioctl(ioctl_fd, SIOCGIFHWADDR, &ifr) < 0)
		return;
	memcpy(pkt + 8, ifr.ifr_hwaddr.sa_data, 6);
	ifr.ifr_addr.sa_family = AF_INET;
	if (ioctl(ioctl_fd, SIOCGIFADDR, &ifr) < 0)
		return;
	self = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
	h->ar_hrd = htons(ARPHRD_ETHER);
	h->ar_pro = htons(ETH_P_IP);
	h->ar_hln = 6;
	h->ar_pln = 4;
	h->ar_op = htons(ARPOP_REQUEST);
	memcpy(pkt + 14, &self, 4);
	memset(pkt + 18, 0, 6);
	memcpy(pkt + 24, &target, 4);
	memset(to.sll_addr, 0xff, 6);
	sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to));
}

static void send_ns(int fd, int ioctl_fd)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in6 to = to6(NS_GROUP, 0);
	unsigned char pkt[32] = { ND_NEIGHBOR_SOLICIT };

	strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
	if (ioctl(ioctl_fd, SIOCGIFHWADDR, &ifr) < 0)
		return;
	inet_pton(AF_INET6, NS_TARGET, pkt + 8);
	pkt[24] = ND_OPT_SOURCE_LINKADDR;
	pkt[25] = 1; /* 8 octets */
	memcpy(pkt + 26, ifr.ifr_hwaddr.sa_data, 6);
	/* The kernel fills in the ICMPv6 checksum of raw ICMPv6 sockets. */
	sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to));
}

static void send_mld(int fd)
{
	struct sockaddr_in6 to = to6("ff02::16", 0);
	unsigned char pkt[28] = { 143 }; /* MLDv2 listener report */

	pkt[7] = 1;  /* one record */
	pkt[8] = 2;  /* MODE_IS_EXCLUDE with no sources: listening to the group */
	inet_pton(AF_INET6, MLD_GROUP, pkt + 12);
	sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to));
}

int main(int argc, char **argv)
{
	/* Hop-by-hop header with the router alert option (value 0: MLD) and a PadN. */
	static const unsigned char hbh[8] = { 0, 0, 5, 2, 0, 0, 1, 0 };
	struct sockaddr_in mdns4 = { .sin_family = AF_INET, .sin_port = htons(5353) };
	struct sockaddr_in6 mdns6;
	struct in_addr arp_target;
	struct timespec next;
	unsigned char query[64];
	size_t qlen = mdns_query(query);
	long period_ms;
	int arp_fd, ioctl_fd, m4, m6, ns, mld;
	pid_t pid;

	if (argc < 3 || inet_pton(AF_INET, argv[2], &arp_target) != 1) {
		fprintf(stderr, "usage: noise <dev> <arp-target-ipv4> [period-ms]\n");
		return 2;
	}
	dev = argv[1];
	period_ms = argc > 3 ? atol(argv[3]) : 500;
	ifindex = if_nametoindex(dev);
	if (!ifindex || period_ms <= 0) {
		fprintf(stderr, "noise: no device %s or a bad period\n", dev);
		return 2;
	}
	inet_pton(AF_INET, "224.0.0.251", &mdns4.sin_addr);
	mdns6 = to6("ff02::fb", 5353);
	arp_fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_ARP));
	ioctl_fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (arp_fd < 0 || ioctl_fd < 0)
		die("noise: socket");
	m4 = mcast4_socket();
	m6 = mcast6_socket(SOCK_DGRAM, 0, 255);
	ns = mcast6_socket(SOCK_RAW, IPPROTO_ICMPV6, 255);
	mld = mcast6_socket(SOCK_RAW, IPPROTO_ICMPV6, 1);
	if (mld >= 0)
		setopt(mld, IPPROTO_IPV6, IPV6_HOPOPTS, hbh, sizeof(hbh), "noise: IPV6_HOPOPTS");

	pid = fork();
	if (pid < 0)
		die("noise: fork");
	if (pid > 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		send_arp(arp_fd, ioctl_fd, arp_target);
		sendto(m4, query, qlen, 0, (struct sockaddr *)&mdns4, sizeof(mdns4));
		if (m6 >= 0)
			sendto(m6, query, qlen, 0, (struct sockaddr *)&mdns6, sizeof(mdns6));
		if (ns >= 0)
			send_ns(ns, ioctl_fd);
		if (mld >= 0)
			send_mld(mld);
		/* Absolute deadlines: a slow send (TCG) does not stretch the period. */
		next.tv_nsec += period_ms % 1000 * 1000000L;
		next.tv_sec += period_ms / 1000 + next.tv_nsec / 1000000000L;
		next.tv_nsec %= 1000000000L;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
}
