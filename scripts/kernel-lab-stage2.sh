#!/bin/bash
# Stage 2 of the kernel lab (scripts/build-kernel-lab.sh): PID 1 in this machine's root, seen
# read-only through a tmpfs overlay, under another kernel. Mounts what a host has, runs the
# command of the kernel command line (ebpfnet.cmd=<base64>, in ebpfnet.cwd=<base64>) with its
# output on the second serial port, prints `EBPFNET-LAB-EXIT <code>` there and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# /tmp stays this machine's (through the overlay: writes stay in the lab): a checkout may live there.
# /run does not: a daemon's pid files and sockets there are this machine's, not the lab's.
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/cache 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
# Where Debian keeps its kernel's config (bpftool and doctor read it there); the overlay keeps this machine's /boot as it is.
[ -e "/lib/modules/$(uname -r)/config" ] && cp "/lib/modules/$(uname -r)/config" "/boot/config-$(uname -r)"
# A host's udev makes /dev/net/tun at boot (tun loads when it is opened); without udev, load it.
modprobe tun 2>/dev/null
ip link set lo up
hostname ebpfnet-kernel-lab

OUT=/dev/ttyS1
stty -F "$OUT" raw -echo 2>/dev/null
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | head -n1 | base64 -d; }
CMD=$(arg ebpfnet.cmd)
CWD=$(arg ebpfnet.cwd)
cd "${CWD:-/}" || { echo "EBPFNET-LAB-START $(uname -r)" > "$OUT"; echo "kernel lab: no directory ${CWD}" > "$OUT"; echo "EBPFNET-LAB-EXIT 125" > "$OUT"; echo o > /proc/sysrq-trigger; sleep 10; }
echo "EBPFNET-LAB-START $(uname -r)" > "$OUT"
# Through a pipe, as CI's output is: on the serial terminal Node's test runner would colour its
# output and set FORCE_COLOR for every child (a number console.log prints then carries colour codes).
bash -c "$CMD" 2>&1 < /dev/null | cat > "$OUT"
code=${PIPESTATUS[0]}
echo "EBPFNET-LAB-EXIT $code" > "$OUT"
sync
echo o > /proc/sysrq-trigger
sleep 10
