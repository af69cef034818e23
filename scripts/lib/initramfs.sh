# Shell functions the image builders share (scripts/build-guest.sh, scripts/build-kernel-lab.sh).
# Source it after `set -euo pipefail` and a die() that prints and exits.

# pack_modules KERNEL_ROOT RELEASE INITRAMFS_ROOT MODULE...: copies the modules and what they
# depend on, in load order, into INITRAMFS_ROOT/lib/modules and lists them in
# INITRAMFS_ROOT/etc/modules.order. modprobe --show-depends prints "insmod <path>" for modules
# and "builtin <name>" for drivers compiled into the kernel (which then need nothing).
pack_modules() {
  local kroot=$1 krel=$2 root=$3
  shift 3
  mkdir -p "$root/lib/modules" "$root/etc"
  : > "$root/etc/modules.order"
  modprobe -d "$kroot" -S "$krel" --show-depends -a "$@" | while read -r kind path _; do
    case "$kind" in
      insmod)
        name=$(basename "$path")
        grep -qx "$name" "$root/etc/modules.order" && continue
        cp "$path" "$root/lib/modules/$name"
        echo "$name" >> "$root/etc/modules.order"
        ;;
      builtin) ;;
      *) die "unexpected modprobe output: $kind $path" ;;
    esac
  done
}

# cached_deb CACHE_DIR PACKAGE VERSION [APT_OPTION...]: the path of PACKAGE_VERSION's .deb in
# CACHE_DIR, downloaded when it is not there (another version is replaced): a change of the
# image's other inputs does not download again.
cached_deb() {
  local cache=$1 pkg=$2 ver=$3 deb
  shift 3
  mkdir -p "$cache"
  deb=$(find "$cache" -name "${pkg}_*.deb" | head -n1)
  if [ -z "$deb" ] || [ "$(dpkg-deb -f "$deb" Version)" != "$ver" ]; then
    rm -f "$cache/"*.deb
    # APT::Sandbox::User=root: _apt cannot write into a root-owned directory.
    (cd "$cache" && apt-get "$@" download -q -o APT::Sandbox::User=root "$pkg") >&2 || die "apt-get download $pkg failed"
    deb=$(find "$cache" -name "${pkg}_*.deb" | head -n1)
    [ -n "$deb" ] || die "apt-get download $pkg left no .deb"
  fi
  echo "$deb"
}
