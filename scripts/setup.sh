#!/usr/bin/env bash
# Installs everything ebpfnet needs on a Debian 12 host (as root), then builds it.
# Safe to run again: apt and npm skip what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

# Tools the probes and tests drive:
#   iproute2 (ip, tc), iputils-ping, ethtool: counters and the test topologies
#   bpftool, bpftrace: feature detection (doctor) and bpftrace-driven probes
#   util-linux (setpriv): tests that run a command as an unprivileged user
#   nftables: tests inject netfilter drops; conntrack: net.conntrack reads conntrack events (conntrack -E)
#   tmux: terminal-driven tests; wrk: the webhook load benchmark (test/bench/webhooks.ts)
#   arping (Habets'): other.arp's tests send gratuitous and unsolicited ARP (-U, -P, -S)
#   clang, llvm: compile the probes' *.bpf.c (clang -target bpf); libbpf-dev, libelf-dev, zlib1g-dev,
#   pkg-config, make, g++, python3: build the native addon (node-gyp) against libbpf
#   qemu-system-x86, openvswitch-switch: the lab's VMs (TCG) and the OVS bridge (netdev datapath)
#   busybox-static, cpio, kmod, gcc, libc6-dev: scripts/build-guest.sh builds the lab guest's
#   initramfs (busybox, the cloud kernel's modules, the UDP echo and noise helpers)
#   qemu-guest-agent: build-guest.sh packs Debian's qemu-ga into the lab guest (VMs with an agent);
#   test/target runs it in a namespace to test discovery's agent client
#   tcpdump: lab tests count the frames a guest sends on its tap without BPF of ours
#   libvirt-daemon-system, libvirt-clients: VMs defined the way production hosts do (libvirt)
#   chromium: prints the PDF report (driven by puppeteer-core, which never downloads a browser);
#   fonts-liberation2, fonts-dejavu-core: the report's fonts (Liberation Sans has the metrics
#   Graphviz lays the decision graph out with); poppler-utils: the report tests read PDFs
PACKAGES=(iproute2 iputils-ping ethtool conntrack bpftool bpftrace util-linux tmux wrk arping ca-certificates
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make g++ python3 nftables
  qemu-system-x86 openvswitch-switch busybox-static cpio kmod gcc libc6-dev qemu-guest-agent tcpdump
  libvirt-daemon-system libvirt-clients
  chromium fonts-liberation2 fonts-dejavu-core poppler-utils)

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"

# The lab's VM guest (build/guest/vmlinuz, initrd.img) from Debian's cloud kernel; quick when built.
bash scripts/build-guest.sh
# The kernel lab (build/kernel-lab/bookworm): Debian 12's stock kernel, where kprobes, fentry and
# the modules this host may lack exist, for the tests that run under it (test/lab/kernel-lab.ts).
bash scripts/build-kernel-lab.sh bookworm
# The kernel matrix's other kernels: Debian 11's 5.10 (no drop reasons) and 13's 6.12.
bash scripts/build-kernel-lab.sh bullseye
bash scripts/build-kernel-lab.sh trixie

command -v node >/dev/null || { echo "setup.sh: Node.js >= 20 is required" >&2; exit 1; }

npm ci --no-audit --no-fund
npm run build
