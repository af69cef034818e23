/*
 * udp-echo: the lab guest's UDP services (busybox's nc has no UDP in Debian's build).
 * Port 7 echoes every datagram back to its sender; port 9 discards it (the guest's
 * Udp InDatagrams counter still counts it, so tests can see what arrived).
 * Dual-stack: one IPv6 socket per port takes IPv4 too (as v4-mapped addresses); a guest
 * booted without IPv6 gets IPv4 sockets instead.
 * Forks into the background once both sockets are bound, so that the guest's /init
 * knows the ports are open when this command returns.
 *   udp-echo [echo-port [discard-port]]
 */
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int bind_udp(int port)
{
	struct sockaddr_in6 addr6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in addr4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int v6only = 0;
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);

	if (fd >= 0) {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) == 0 &&
		    bind(fd, (struct sockaddr *)&addr6, sizeof(addr6)) == 0)
			return fd;
		perror("udp-echo: bind [::]");
		exit(1);
	}
	/* ipv6.disable=1: no AF_INET6 at all. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr4, sizeof(addr4)) < 0) {
		perror("udp-echo: bind");
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	int echo_port = argc > 1 ? atoi(argv[1]) : 7;
	int discard_port = argc > 2 ? atoi(argv[2]) : 9;
	struct pollfd fds[2] = {
		{ .fd = bind_udp(echo_port), .events = POLLIN },
		{ .fd = bind_udp(discard_port), .events = POLLIN },
	};
	static char buf[65536];
	pid_t pid = fork();

	if (pid < 0) {
		perror("udp-echo: fork");
		return 1;
	}
	if (pid > 0)
		return 0;
	for (;;) {
		if (poll(fds, 2, -1) < 0)
			continue;
		for (int i = 0; i < 2; i++) {
			struct sockaddr_storage from;
			socklen_t len = sizeof(from);
			ssize_t n;

			if (!(fds[i].revents & POLLIN))
				continue;
			n = recvfrom(fds[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
			if (n >= 0 && i == 0)
				sendto(fds[i].fd, buf, n, 0, (struct sockaddr *)&from, len);
		}
	}
}
