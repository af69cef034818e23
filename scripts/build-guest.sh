#!/usr/bin/env bash
# Builds the lab's VM guest from Debian packages only: the cloud kernel and a busybox
# initramfs whose /init (test/lab/guest/init) configures the NIC from the kernel command
# line and serves ping, UDP and TCP echo, with Debian's QEMU guest agent (qemu-ga) and the
# lab's noise maker (test/lab/guest/noise.c). Writes build/guest/vmlinuz and
# build/guest/initrd.img; test/lab/vm.ts boots them under QEMU.
# Fast when already built: a stamp records the kernel package and the inputs' hashes.
#   bash scripts/build-guest.sh [--force]
# Needs: apt-get (lists updated), dpkg-deb, modprobe and depmod (kmod), busybox-static,
# qemu-guest-agent, cpio, ldd and a C compiler (libc6-dev).
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."

OUT=build/guest
SRC=test/lab/guest
# The metapackage depends on the versioned kernel (linux-image-<abi>-cloud-amd64).
META=linux-image-cloud-amd64
# Top-level drivers the guest needs; modprobe adds what they depend on. virtio_console
# serves the guest agent's virtio-serial port.
MODULES=(virtio_pci virtio_net virtio_console)
QGA=/usr/sbin/qemu-ga

die() { echo "build-guest.sh: $*" >&2; exit 1; }
# shellcheck source=lib/initramfs.sh
. scripts/lib/initramfs.sh

for tool in apt-get apt-cache dpkg-deb modprobe depmod cpio cc ldd; do
  command -v "$tool" >/dev/null || die "needs $tool (run scripts/setup.sh)"
done
BUSYBOX=/bin/busybox
dpkg -s busybox-static >/dev/null 2>&1 || die "needs busybox-static (apt-get install busybox-static)"
[ -x "$QGA" ] || die "needs $QGA (apt-get install qemu-guest-agent)"

# One apt-cache call (each rebuilds apt's cache here, ~1 s): the candidate's Depends line,
# "Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)", names the package and version.
read -r KPKG KVER < <(apt-cache show --no-all-versions "$META" 2>/dev/null \
  | sed -n 's/^Depends: \(linux-image-[^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -n1) || true
INPUTS=$(cat "$SELF" "$SRC/init" "$SRC/udp-echo.c" "$SRC/noise.c" "$QGA" | sha256sum | cut -c1-16)
if [ -z "${KPKG:-}" ] || [ -z "${KVER:-}" ]; then
  # No package lists (apt-get update not run): a guest built from these inputs still does.
  if [ "${1:-}" != "--force" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] \
    && [ "$(cut -d' ' -f3 "$OUT/.stamp" 2>/dev/null)" = "$INPUTS" ]; then
    echo "build-guest.sh: $OUT is up to date (kernel version not checked: apt-cache knows no $META)"
    exit 0
  fi
  die "apt-cache knows no $META: run apt-get update first"
fi

STAMP="$KPKG $KVER $INPUTS"
if [ "${1:-}" != "--force" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] \
  && [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$STAMP" ]; then
  echo "build-guest.sh: $OUT is up to date ($KPKG $KVER)"
  exit 0
fi

mkdir -p "$OUT/cache"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

DEB=$(cached_deb "$OUT/cache" "$KPKG" "$KVER")
dpkg-deb -x "$DEB" "$WORK/kernel"
KREL=$(ls "$WORK/kernel/lib/modules")
# The package ships no modules.dep (the postinst makes it): make one for modprobe below.
depmod -b "$WORK/kernel" "$KREL"

ROOT="$WORK/initramfs"
mkdir -p "$ROOT"/{bin,dev,proc,sys,tmp,run,etc,lib/modules}
cp "$BUSYBOX" "$ROOT/bin/busybox"
cp "$SRC/init" "$ROOT/init"
chmod 755 "$ROOT/init"

# A program with the shared libraries it loads, at the paths ldd resolves them to, and the
# loader. The host's libraries are Debian's, like qemu-ga: they fit it.
pack_program() {
  cp "$1" "$ROOT/bin/$(basename "$1")"
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
    [ -e "$ROOT$lib" ] && continue
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
  done
}
# Linked against the libc that qemu-ga brings anyway: a few kB each instead of static copies.
for prog in udp-echo noise; do
  cc -Os -s -Wall -Wextra -o "$WORK/$prog" "$SRC/$prog.c"
  pack_program "$WORK/$prog"
done
pack_program "$QGA"

pack_modules "$WORK/kernel" "$KREL" "$ROOT" "${MODULES[@]}"
echo "build-guest.sh: modules: $(tr '\n' ' ' < "$ROOT/etc/modules.order")"

# Uncompressed: under TCG the kernel's gunzip costs more than QEMU copying 8 MB (test/lab/README.md).
(cd "$ROOT" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) > "$WORK/initrd.img"
cp "$WORK/kernel/boot/vmlinuz-$KREL" "$WORK/vmlinuz"
# Replace the outputs only once both are complete, then the stamp.
mv "$WORK/vmlinuz" "$OUT/vmlinuz"
mv "$WORK/initrd.img" "$OUT/initrd.img"
echo "$STAMP" > "$OUT/.stamp"
echo "build-guest.sh: built $OUT/vmlinuz and $OUT/initrd.img from $KPKG $KVER"
