#!/usr/bin/env bash
# Builds the kernel lab for one Debian release: that release's stock kernel (linux-image-amd64,
# with kprobes, fentry, openvswitch.ko, vhost_net.ko, kvm_amd.ko) and a busybox initramfs that
# mounts this machine's root read-only over virtio-9p under a tmpfs overlay, bind-mounts the
# kernel's own modules at /lib/modules/<release>, switch_roots and runs
# scripts/kernel-lab-stage2.sh there (test/lab/kernel-lab.ts boots it under QEMU).
# Writes build/kernel-lab/<suite>/{vmlinuz,initrd.img,config,modules/,release}. Fast when built:
# a stamp records the kernel package and the inputs' hashes.
#   bash scripts/build-kernel-lab.sh [bookworm|bullseye|trixie] [--force]
# bookworm (6.1) comes from this machine's apt sources; bullseye (5.10) and trixie (6.12) from
# the same mirror through a private apt list in build/kernel-lab/apt (the system's is untouched).
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."

SUITE=${1:-bookworm}
FORCE=${2:-}
case "$SUITE" in bookworm | bullseye | trixie) ;; *) echo "build-kernel-lab.sh: unknown suite $SUITE (bookworm, bullseye or trixie)" >&2; exit 2 ;; esac
OUT=build/kernel-lab/$SUITE
META=linux-image-amd64
# What mounting the root needs (modprobe adds what they depend on).
MODULES=(virtio_pci 9pnet_virtio 9p overlay)

die() { echo "build-kernel-lab.sh: $*" >&2; exit 1; }
# shellcheck source=lib/initramfs.sh
. scripts/lib/initramfs.sh
for tool in apt-get apt-cache dpkg-deb modprobe depmod cpio; do
  command -v "$tool" >/dev/null || die "needs $tool (run scripts/setup.sh)"
done
dpkg -s busybox-static >/dev/null 2>&1 || die "needs busybox-static (apt-get install busybox-static)"

APT=()
if [ "$SUITE" != bookworm ]; then
  # The mirror and keyring of the system's own sources, the other suite.
  APTDIR=$(realpath -m build/kernel-lab/apt/$SUITE)
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
  cat > "$APTDIR/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SUITE main
EOF
  APT=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=-" -o "Dir::State::Lists=$APTDIR/lists"
    -o "Dir::Cache=$APTDIR/cache" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o APT::Sandbox::User=root)
  if [ -z "$(ls "$APTDIR/lists" | grep -v partial | head -n1)" ] || [ "$FORCE" = --force ]; then
    apt-get "${APT[@]}" -q update >/dev/null || die "apt-get update of $SUITE failed"
  fi
fi

read -r KPKG KVER < <(apt-cache "${APT[@]}" show --no-all-versions "$META" 2>/dev/null \
  | sed -n 's/^Depends: \(linux-image-[^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -n1) || true
INPUTS=$(cat "$SELF" scripts/kernel-lab-stage2.sh | sha256sum | cut -c1-16)
if [ -z "${KPKG:-}" ]; then
  if [ "$FORCE" != --force ] && [ -f "$OUT/vmlinuz" ] && [ "$(cut -d' ' -f3 "$OUT/.stamp" 2>/dev/null)" = "$INPUTS" ]; then
    echo "build-kernel-lab.sh: $OUT is up to date (kernel version not checked: apt knows no $META for $SUITE)"
    exit 0
  fi
  die "apt knows no $META for $SUITE: run apt-get update first"
fi
STAMP="$KPKG $KVER $INPUTS"
if [ "$FORCE" != --force ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] && [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$STAMP" ]; then
  echo "build-kernel-lab.sh: $OUT is up to date ($KPKG $KVER)"
  exit 0
fi

mkdir -p "$OUT/cache"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DEB=$(cached_deb "$OUT/cache" "$KPKG" "$KVER" "${APT[@]}")
rm -rf "$OUT/modules"
mkdir -p "$OUT/modules"
dpkg-deb -x "$DEB" "$WORK/kernel"
# trixie's package (merged /usr) ships /usr/lib/modules: the lab keeps them at lib/modules.
if [ ! -d "$WORK/kernel/lib/modules" ] && [ -d "$WORK/kernel/usr/lib/modules" ]; then
  mkdir -p "$WORK/kernel/lib"
  mv "$WORK/kernel/usr/lib/modules" "$WORK/kernel/lib/modules"
fi
KREL=$(ls "$WORK/kernel/lib/modules")
depmod -b "$WORK/kernel" "$KREL"

ROOT="$WORK/initramfs"
mkdir -p "$ROOT"/{bin,dev,proc,sys,mnt,lib/modules,etc}
cp /bin/busybox "$ROOT/bin/busybox"
pack_modules "$WORK/kernel" "$KREL" "$ROOT" "${MODULES[@]}"
# The initramfs /init: the lab's root, then stage 2 in it. The modules directory is found on
# the 9p root at the path this build leaves it. cache=loose: the root is read-only and nothing
# changes it while a lab runs, so the lab keeps what it read (uncached, each of Node's many
# stats and opens is a round trip to QEMU, and a CLI took minutes to start).
cat > "$ROOT/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in \$(cat /etc/modules.order); do
  case \$m in *.ko.xz) xz -dc /lib/modules/\$m > /tmp.ko 2>/dev/null || unxz -c /lib/modules/\$m > /tmp.ko; insmod /tmp.ko; rm -f /tmp.ko ;; *) insmod /lib/modules/\$m ;; esac
done
mkdir -p /mnt/lower /mnt/rw /mnt/root
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose hostroot /mnt/lower || { echo "EBPFNET-LAB-FAIL 9p root"; echo o > /proc/sysrq-trigger; }
mount -t tmpfs -o size=75% tmpfs /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /mnt/root
mkdir -p /mnt/root/lib/modules/$KREL
mount --bind /mnt/lower$(realpath "$OUT")/modules/lib/modules/$KREL /mnt/root/lib/modules/$KREL
umount /proc /sys
exec switch_root /mnt/root /bin/bash $(realpath scripts/kernel-lab-stage2.sh)
EOF
chmod 755 "$ROOT/init"
(cd "$ROOT" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) > "$WORK/initrd.img"

mv "$WORK/kernel/lib" "$OUT/modules/lib"
cp "$WORK/kernel/boot/vmlinuz-$KREL" "$OUT/vmlinuz"
cp "$WORK/kernel/boot/config-$KREL" "$OUT/config"
# Where doctor and the probes look for a kernel's config when /proc/config.gz is absent.
cp "$WORK/kernel/boot/config-$KREL" "$OUT/modules/lib/modules/$KREL/config"
mv "$WORK/initrd.img" "$OUT/initrd.img"
echo "$KREL" > "$OUT/release"
echo "$STAMP" > "$OUT/.stamp"
echo "build-kernel-lab.sh: built $OUT ($KPKG $KVER, $KREL; modules in initramfs: $(tr '\n' ' ' < "$ROOT/etc/modules.order"))"
