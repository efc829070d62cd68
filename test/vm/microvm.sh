#!/usr/bin/env bash
# The vm test tier's machine: one throw-away QEMU VM running Debian's stock kernel (which has what
# this machine's may lack, IPVS first) and one command in a chroot of *this* machine's root
# filesystem (read-only 9p + tmpfs overlay), so node, node_modules, the checkout, nft and ipvsadm
# are the host's, with no image to build. Output and exit code come back to the host.
# Written from the facts proven by ../shared/kernel-lab (PVH-less, single VM, no network).
#
#   test/vm/microvm.sh setup            apt installs, kernel download (~70 MB) and initramfs, once
#   test/vm/microvm.sh check            exit 0 when a VM can run here, else say why
#   test/vm/microvm.sh run [-t SECS] [-e NAME=VALUE]... [-C DIR] -- COMMAND...
#
# Needs root. TCG (no KVM): ~3-5 s to boot; budget a minute per `node` test file under emulation.
set -euo pipefail

CACHE=${MESH_VM_CACHE:-/var/cache/meshd-vm}
# the initrd is rebuilt whenever this script (which holds its init) changes
REV=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
MEM=${MESH_VM_MEM:-1024}
EARLY="virtio_pci 9pnet_virtio 9p overlay"

die() { echo "microvm: $*" >&2; exit 2; }
log() { [ "${MESH_VM_QUIET:-0}" = 1 ] || echo "microvm: $*" >&2; }

kver() { [ -f "$CACHE/kver" ] && cat "$CACHE/kver"; }

setup() {
  [ "$(id -u)" = 0 ] || die "setup needs root (apt, $CACHE)"
  local need=() p
  for p in qemu-system-x86 busybox-static kmod cpio ipvsadm conntrack; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
  fi
  if [ -n "$(kver)" ] && [ -f "$CACHE/initrd-$(kver)-$REV.cpio.gz" ] && [ "${1:-}" != --force ]; then log "ready (kernel $(kver))"; return; fi
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"; flock 9
  local pkg tmp
  # The ABI package linux-image-amd64 points at today (old ones leave the mirror).
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { apt-get update -qq; pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'); }
  [ -n "$pkg" ] || die "cannot resolve the package behind linux-image-amd64"
  tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX"); chmod 755 "$tmp" # apt downloads as _apt
  ( cd "$tmp" && apt-get download -qq "$pkg" >/dev/null ) || die "apt-get download $pkg failed"
  dpkg-deb -x "$tmp"/*.deb "$tmp/root"
  local kv; kv=$(ls "$tmp/root/lib/modules")
  rm -rf "$CACHE/$kv"; mkdir -p "$CACHE/$kv"
  cp "$tmp/root/boot/vmlinuz-$kv" "$CACHE/$kv/vmlinuz"
  # Only what a network lab can use: drop GPU, sound, wireless and other bulky drivers.
  rm -rf "$tmp/root/lib/modules/$kv/kernel/drivers/"{gpu,media,net/wireless,sound,infiniband,staging,iio,hid,usb,bluetooth,input} "$tmp/root/lib/modules/$kv/kernel/sound"
  # depmod -b wants BASE/lib/modules/KVER.
  mkdir -p "$CACHE/$kv/base/lib/modules"
  mv "$tmp/root/lib/modules/$kv" "$CACHE/$kv/base/lib/modules/$kv"
  depmod -b "$CACHE/$kv/base" "$kv"
  rm -rf "$tmp"
  initramfs "$kv"
  echo "$kv" >"$CACHE/kver"
  log "ready (kernel $kv)"
}

initramfs() {
  local kv=$1 d m
  d=$(mktemp -d)
  mkdir -p "$d"/{bin,sbin,proc,sys,dev,lower,upper,newroot,res,mods}
  cp "$(command -v busybox)" "$d/bin/busybox"
  for a in sh mount umount mkdir insmod chroot poweroff cat echo sleep ln sync; do ln -s busybox "$d/bin/$a"; done
  # Early modules in dependency order, as modprobe would load them.
  : >"$d/mods/order"
  for m in $EARLY; do
    modprobe -d "$CACHE/$kv/base" -S "$kv" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}' | while read -r f; do
      b=$(basename "$f")
      grep -qx "$b" "$d/mods/order" || { cp "$f" "$d/mods/$b"; echo "$b" >>"$d/mods/order"; }
    done
  done
  # request_module() runs /sbin/modprobe in PID 1's root (this initramfs): hand it to the chroot.
  printf '#!/bin/sh\nexec /bin/chroot /newroot /sbin/modprobe "$@"\n' >"$d/sbin/modprobe"; chmod +x "$d/sbin/modprobe"
  cat >"$d/init" <<EOF
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
while read -r m; do insmod /mods/\$m 2>/dev/null; done </mods/order
echo /sbin/modprobe >/proc/sys/kernel/modprobe
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose hostroot /lower || { echo "microvm: no host root" >/dev/console; poweroff -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none res /res
mount -t tmpfs -o size=60% tmpfs /upper; mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot
mount -t proc proc /newroot/proc; mount -t sysfs sys /newroot/sys; mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm; mount -t devpts devpts /newroot/dev/pts; mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run  # /tmp stays on the overlay: a tmpfs there would hide a checkout under /tmp
mkdir -p /newroot/lib/modules/$kv /newroot/run/res; mount --bind /lower$CACHE/$kv/base/lib/modules/$kv /newroot/lib/modules/$kv
mount --bind /res /newroot/run/res
chroot /newroot /bin/bash /run/res/cmd.sh >/res/output.log 2>&1
echo \$? >/res/rc
sync; umount /newroot/run/res; umount /res; poweroff -f
EOF
  chmod +x "$d/init"
  ( cd "$d" && find . | cpio -o -H newc 2>/dev/null | gzip -1 ) >"$CACHE/initrd-$kv-$REV.cpio.gz"
  rm -rf "$d"
}

check() {
  [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
  command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 missing (test/vm/microvm.sh setup)"; return 1; }
  [ -n "$(kver)" ] && [ -f "$CACHE/initrd-$(kver)-$REV.cpio.gz" ] || { echo "no kernel in $CACHE (test/vm/microvm.sh setup)"; return 1; }
  echo "ok: kernel $(kver)"
}

run() {
  local timeout=300 cwd=$PWD envs=()
  while [ $# -gt 0 ]; do
    case $1 in
      -t) timeout=$2; shift 2 ;;
      -e) envs+=("$2"); shift 2 ;;
      -C) cwd=$2; shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || die "run: no command"
  check >/dev/null || die "cannot run: $(check)"
  local kv out rc e
  kv=$(kver)
  out=$(mktemp -d /tmp/meshd-vm.XXXXXX)
  {
    echo 'set -o pipefail; export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root'
    # Without lo up a namespace has no local table: IPVS refuses every destination as not unicast.
    echo 'ip link set lo up'
    for e in "${envs[@]}"; do printf 'export %q\n' "$e"; done
    printf 'cd %q || exit 97\n' "$cwd"
    echo "$*"
  } >"$out/cmd.sh"
  log "booting kernel $kv (tcg, ${MEM} MiB), results in $out"
  local t0=$SECONDS
  timeout --foreground -k 5 "$timeout" qemu-system-x86_64 -accel tcg -cpu max -m "$MEM" -smp 1 -nodefaults -no-reboot \
    -display none -serial "file:$out/console.log" \
    -kernel "$CACHE/$kv/vmlinuz" -initrd "$CACHE/initrd-$kv-$REV.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 oops=panic" \
    -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap" -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -fsdev "local,id=res,path=$out,security_model=none" -device virtio-9p-pci,fsdev=res,mount_tag=res || true
  cat "$out/output.log" 2>/dev/null || true
  if [ -f "$out/rc" ]; then rc=$(cat "$out/rc"); else
    echo "microvm: the VM ended without a result (timeout ${timeout}s, or a kernel panic); console tail:" >&2
    tail -n 20 "$out/console.log" >&2 || true
    rc=125
  fi
  log "exit $rc after $((SECONDS - t0)) s"
  [ "${MESH_VM_KEEP:-0}" = 1 ] || rm -rf "$out"
  return "$rc"
}

case ${1:-} in
  setup) shift; setup "$@" ;;
  check) check ;;
  run) shift; run "$@" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
