#!/usr/bin/env bash
# The vm tier's cluster: N throw-away QEMU VMs booted from Debian's stock kernel, each running
# this machine's root filesystem (read-only 9p + tmpfs overlay; node, node_modules and the checkout
# are the host's, at the same paths), on a virtual underlay bridge. Each VM provisions itself with
# vagrant/provision/all.sh (the Vagrant lab's scripts, parametrized by MESH_* variables), then
# serves commands from the host. The "host side" is a client namespace on the bridge, outside
# every VM: probes run there.
# The guests run the host's systemd as PID 1 (test/vm/cluster/init.sh), so the provisioning scripts
# install and start the meshd unit with systemctl, exactly as on a Vagrant box.
# Written from the facts proven by ../shared/kernel-lab (PVH boot, qboot, no option ROM, 9p
# multidevs=remap), so that a fresh clone has it.
#
#   vmcluster.sh setup                     apt installs, kernel download (~70 MB), initramfs; idempotent
#   vmcluster.sh check                     exit 0 when VMs can run here, else say why
#   vmcluster.sh up DIR [-n 3] [-m MIB] [-t SECS] [--subnet 198.18.200] [--roles init,manager,worker]
#                      [-e NAME=VALUE]...  boot in the background (a watchdog kills them after -t)
#   vmcluster.sh wait DIR [SECS]           until every VM has provisioned; prints rc per VM, exit 0 if all 0
#   vmcluster.sh exec DIR NODE -- CMD...   run CMD (bash) in VM NODE (index, name or address)
#   vmcluster.sh host DIR -- CMD...        run CMD on the host side of the underlay (outside the VMs)
#   vmcluster.sh down DIR                  stop the VMs, remove the namespace (also after a crash)
#   vmcluster.sh nodes DIR                 "name address role" per VM
#
# Needs root. TCG (KVM does not work on the CI machine): budget ~5 s per boot, more with 3 VMs.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../../.." && pwd -P)
CACHE=${MESH_VMC_CACHE:-/var/cache/meshd-vmcluster}
EARLY="virtio_pci virtio_net 9pnet_virtio 9p overlay"
# Module subtrees a network lab never needs (saves ~250 MB of cache).
PRUNE="sound drivers/gpu drivers/media drivers/net/wireless drivers/infiniband drivers/staging drivers/scsi
 drivers/usb drivers/hid drivers/input drivers/iio drivers/bluetooth drivers/isdn drivers/mmc drivers/nfc
 drivers/thunderbolt net/bluetooth net/wireless net/mac80211 net/nfc"

# Boot-time jobs of the host's systemd that a throw-away guest on a shared 9p root must not run:
# tmpfiles and hwdb/ldconfig/catalog rebuilds walk and copy up large parts of the host's tree into
# the guest's tmpfs (minutes under emulation); udev coldplug, AppArmor profiles and NTP only cost time.
SYSTEMD_MASKS="systemd-tmpfiles-setup.service systemd-tmpfiles-clean.timer systemd-hwdb-update.service ldconfig.service
 systemd-journal-catalog-update.service systemd-update-done.service systemd-udev-trigger.service apparmor.service
 systemd-timesyncd.service e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer man-db.timer"

die() { echo "vmcluster: $*" >&2; exit 2; }
log() { [ "${MESH_VMC_QUIET:-0}" = 1 ] || echo "vmcluster: $*" >&2; }
need_root() { [ "$(id -u)" = 0 ] || die "needs root (netns, taps, /var/cache)"; }
kver() { cat "$CACHE/kver" 2>/dev/null || true; }
initrd_path() { echo "$CACHE/initrd-$1-$( { cat "$HERE/init.sh"; echo "$EARLY"; } | md5sum | cut -c1-12).cpio.gz"; }

# ---------------------------------------------------------------- setup
apt_install() {
  local need=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p"); done
  [ "${#need[@]}" = 0 ] && return 0
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
}

fetch_kernel() {
  local pkg tmp kv
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { apt-get update -qq; pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'); }
  [ -n "$pkg" ] || die "cannot resolve the package behind linux-image-amd64"
  tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX"); chmod 755 "$tmp"   # apt downloads as _apt
  ( cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" busybox-static >/dev/null ) || die "apt-get download $pkg busybox-static failed"
  dpkg-deb -x "$tmp"/linux-image-*.deb "$tmp/k"
  dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/bb"
  kv=$(ls "$tmp/k/lib/modules")
  rm -rf "${CACHE:?}/$kv"; mkdir -p "$CACHE/$kv/base/lib/modules"
  cp "$tmp/k/boot/vmlinuz-$kv" "$tmp/k/boot/config-$kv" "$CACHE/$kv/"
  cp "$(find "$tmp/bb" -path '*bin/busybox' -type f | head -n1)" "$CACHE/$kv/busybox"
  local d; for d in $PRUNE; do rm -rf "$tmp/k/lib/modules/$kv/kernel/$d"; done
  mv "$tmp/k/lib/modules/$kv" "$CACHE/$kv/base/lib/modules/$kv"
  depmod -b "$CACHE/$kv/base" "$kv"
  extract_vmlinux "$kv"
  rm -rf "$tmp"
  echo "$kv" >"$CACHE/kver"
}

# Debian's bzImage is XZ-compressed: decompressing it costs ~2.5 s per boot under TCG. The kernel
# has CONFIG_PVH, so QEMU boots the ELF vmlinux directly: extract it once.
extract_vmlinux() {
  local kv=$1 img="$CACHE/$1/vmlinuz" out="$CACHE/$1/vmlinux" off
  mv "$CACHE/$kv/vmlinuz-$kv" "$img"
  grep -q '^CONFIG_PVH=y' "$CACHE/$kv/config-$kv" || return 0
  for off in $(LC_ALL=C grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$img" | cut -d: -f1); do
    tail -c +$((off + 1)) "$img" | xz -dcq >"$out.tmp" 2>/dev/null || true
    if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then mv "$out.tmp" "$out"; return 0; fi
  done
  rm -f "$out.tmp"; log "no vmlinux found in the bzImage: booting the compressed image"
}

build_initrd() {
  local kv=$1 out d m f
  out=$(initrd_path "$kv")
  [ -f "$out" ] && return 0
  d=$(mktemp -d)
  mkdir -p "$d"/{bin,sbin,dev,proc,sys,mods,lower,mvc,newroot,rw,etc,tmp}
  cp "$CACHE/$kv/busybox" "$d/bin/busybox"
  cp "$HERE/init.sh" "$d/init"; chmod 755 "$d/init"
  : >"$d/mods/order"
  # Early modules in dependency order, as modprobe would load them; busybox insmod wants plain .ko.
  for m in $EARLY; do
    modprobe -d "$CACHE/$kv/base" -S "$kv" --show-depends "$m" | awk '$1 == "insmod" {print $2}' | while read -r f; do
      local b; b=$(basename "$f"); b=${b%.xz}; b=${b%.zst}
      grep -qx "$b" "$d/mods/order" && continue
      case "$f" in *.xz) xz -dc "$f" >"$d/mods/$b";; *.zst) zstd -qdc "$f" >"$d/mods/$b";; *) cp "$f" "$d/mods/$b";; esac
      echo "$b" >>"$d/mods/order"
    done
  done
  ( cd "$d" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1 ) >"$out.tmp"
  mv "$out.tmp" "$out"; rm -rf "$d"
  find "$CACHE" -maxdepth 1 -name "initrd-$kv-*.cpio.gz" ! -path "$out" -delete
}

cmd_setup() {
  need_root
  apt_install qemu-system-x86 kmod cpio xz-utils iproute2 util-linux
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"; flock 9
  if [ -z "$(kver)" ] || [ ! -d "$CACHE/$(kver)/base" ] || [ "${1:-}" = --force ]; then fetch_kernel; fi
  build_initrd "$(kver)"
  exec 9>&-
  log "ready: kernel $(kver) in $CACHE"
}

cmd_check() {
  [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
  command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 missing (vmcluster.sh setup)"; return 1; }
  [ -c /dev/net/tun ] || { echo "no /dev/net/tun (taps)"; return 1; }
  local kv; kv=$(kver)
  [ -n "$kv" ] && [ -d "$CACHE/$kv/base" ] && [ -f "$(initrd_path "$kv")" ] || { echo "no kernel/initramfs in $CACHE (vmcluster.sh setup)"; return 1; }
  echo "ok: kernel $kv"
}

# ---------------------------------------------------------------- up / down
# The namespace holding the bridge, the taps and the host side: mt-prefixed, so the test runner's
# leak check sees it if it is ever left behind.
ns_of() { cat "$1/netns"; }

cmd_up() {
  need_root
  local dir=$1; shift
  local n=3 mem=${MESH_VMC_MEM:-1024} timeout=900 subnet=198.18.200 roles="" envs=()
  while [ $# -gt 0 ]; do
    case $1 in
      -n) n=$2; shift 2;; -m) mem=$2; shift 2;; -t) timeout=$2; shift 2;;
      --subnet) subnet=$2; shift 2;; --roles) roles=$2; shift 2;; -e) envs+=("$2"); shift 2;;
      *) die "up: unknown option $1";;
    esac
  done
  cmd_check >/dev/null || die "cannot run: $(cmd_check)"
  mkdir -p "$dir"; dir=$(cd "$dir" && pwd -P)
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  case "$dir" in *[,[:space:]]*) die "$dir: no commas or spaces (QEMU option syntax)";; esac
  chmod 755 "$dir"
  [ -n "$roles" ] || { roles=init; local i; for ((i = 1; i < n; i++)); do roles="$roles,$([ "$i" -lt 3 ] && [ "$n" -gt 3 ] && echo manager || echo worker)"; done; }
  IFS=, read -r -a role <<<"$roles"
  [ "${#role[@]}" = "$n" ] || die "--roles needs $n entries"
  local kv ns image; kv=$(kver)
  ns="mt$$vmc"
  echo "$ns" >"$dir/netns"
  # Host side: .1 on the bridge. No uplink, so nothing leaves this machine.
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link add br0 type bridge
  ip -n "$ns" addr add "$subnet.1/24" dev br0
  ip -n "$ns" link set br0 up
  image="$CACHE/$kv/vmlinux"; [ -s "$image" ] || image="$CACHE/$kv/vmlinuz"
  local bios=(); [ -f /usr/share/qemu/qboot.rom ] && bios=(-bios /usr/share/qemu/qboot.rom)
  # Node names as in the Vagrant lab: managers m1.., workers w1..
  local names=() m=0 w=0 i hosts=""
  for ((i = 0; i < n; i++)); do
    if [ "${role[$i]}" = worker ]; then w=$((w + 1)); names[$i]=w$w; else m=$((m + 1)); names[$i]=m$m; fi
    hosts="$hosts$subnet.$((11 + i)) ${names[$i]}"$'\n'
    echo "${names[$i]} $subnet.$((11 + i)) ${role[$i]} $i" >>"$dir/nodes"
  done
  local first_ip="$subnet.11" masks="" u
  for u in $SYSTEMD_MASKS; do masks="$masks systemd.mask=$u"; done
  for ((i = 0; i < n; i++)); do
    local v="$dir/vm$i" ip="$subnet.$((11 + i))"
    mkdir -p "$v/exec"
    printf 'MVC_KVER=%q\nMVC_MODDIR=%q\nMVC_IP=%q\nMVC_NAME=%q\n' "$kv" "$CACHE/$kv/base/lib/modules/$kv" "$ip" "${names[$i]}" >"$v/config"
    {
      echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb'
      printf 'export MVC_ID=%d MVC_REPO=%q\n' "$i" "$REPO"
      # The provisioning scripts' parameters: the same variables the Vagrantfile sets.
      printf 'export MESH_ROLE=%q MESH_ADDR=%q MESH_HOSTNAME=%q MESH_MANAGER_ADDR=%q\n' "${role[$i]}" "$ip" "${names[$i]}" "$first_ip"
      printf 'export MESH_SRC=%q MESH_HOME=%q MESH_TOKEN_DIR=/run/mvc/cluster MESH_CLUSTER_SUBNET=%q\n' "$REPO" "$REPO" "$subnet.0/24"
      local e; for e in "${envs[@]:-}"; do [ -n "$e" ] && printf 'export %q\n' "$e"; done
      printf 'printf %%s %q >>/etc/hosts\n' "$hosts"
      printf 'exec bash %q\n' "$HERE/agent.sh"
    } >"$v/run.sh"
    ip -n "$ns" tuntap add dev "tap$i" mode tap
    ip -n "$ns" link set "tap$i" master br0 up
    local qemu=(qemu-system-x86_64 -name "${names[$i]}" -nodefaults -no-user-config -no-reboot
      -machine pc -accel "${MESH_VMC_ACCEL:-tcg}" -cpu "${MESH_VMC_CPU:-max}" -smp 1 -m "$mem" "${bios[@]}"
      -display none -vga none -monitor none -serial "file:$v/console.log"
      -kernel "$image" -initrd "$(initrd_path "$kv")"
      -append "console=ttyS0 quiet loglevel=4 panic=-1 oops=panic mitigations=off clocksource=hpet mvc.id=$i systemd.unit=mvc.target systemd.show_status=0$masks"
      -fsdev "local,id=root,path=/,security_model=passthrough,readonly=on,multidevs=remap"
      -device virtio-9p-pci,fsdev=root,mount_tag=hostroot
      -fsdev "local,id=mvc,path=$dir,security_model=none" -device virtio-9p-pci,fsdev=mvc,mount_tag=mvc
      -netdev "tap,id=n0,ifname=tap$i,script=no,downscript=no"
      # distinct MACs (QEMU's default is the same for every VM); no iPXE ROM
      -device "virtio-net-pci,netdev=n0,mac=52:54:00:6d:76:$(printf %02x $((i + 1))),romfile=")
    date +%s.%N >"$v/t_launch"
    setsid ip netns exec "$ns" "${qemu[@]}" >"$v/qemu.log" 2>&1 </dev/null &
    echo $! >"$v/qemu.pid"
  done
  # The watchdog: VMs are CPU-heavy on a shared machine; whatever happens to the caller, they die.
  setsid bash "$0" watchdog "$dir" "$timeout" >/dev/null 2>&1 </dev/null &
  echo $! >"$dir/watchdog.pid"
  log "booting $n VMs (kernel $kv, $mem MiB, ${MESH_VMC_ACCEL:-tcg}) on $subnet.0/24 in netns $ns; results in $dir"
}

cmd_watchdog() {
  local dir=$1 t=$2 end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do
    [ -e "$dir/down" ] && exit 0
    sleep 2
  done
  echo "watchdog: ${t}s are over" >"$dir/watchdog-fired"
  bash "$0" down "$dir" >/dev/null 2>&1
}

alive() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [ "${s%% *}" != Z ]; }

cmd_down() {
  local dir=$1 i p end
  [ -d "$dir" ] || return 0
  touch "$dir/stop"   # the agents exit, the guests power off
  end=$((SECONDS + ${MESH_VMC_STOP_WAIT:-10}))
  for p in "$dir"/vm*/qemu.pid; do
    [ -f "$p" ] || continue
    while alive "$(cat "$p")" && [ $SECONDS -lt $end ]; do sleep 0.2; done
    if alive "$(cat "$p")"; then kill -KILL "$(cat "$p")" 2>/dev/null || true; fi
  done
  for p in "$dir"/vm*/qemu.pid; do [ -f "$p" ] && while alive "$(cat "$p")"; do sleep 0.1; done; done
  [ -f "$dir/netns" ] && ip netns del "$(ns_of "$dir")" 2>/dev/null || true
  touch "$dir/down"
  if [ -f "$dir/watchdog.pid" ] && [ "${1:-}" != watchdog ]; then kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true; fi
  return 0
}

# ---------------------------------------------------------------- talk to the VMs
vm_index() {
  local dir=$1 want=$2 name ip role i
  while read -r name ip role i; do
    if [ "$want" = "$name" ] || [ "$want" = "$ip" ] || [ "$want" = "$i" ]; then echo "$i"; return 0; fi
  done <"$dir/nodes"
  die "no VM \"$want\" (see $dir/nodes)"
}

cmd_wait() {
  local dir=$1 t=${2:-600} end i n rc=0 pid
  end=$((SECONDS + t)); n=$(wc -l <"$dir/nodes")
  for ((i = 0; i < n; i++)); do
    pid=$(cat "$dir/vm$i/qemu.pid")
    while [ ! -f "$dir/vm$i/provision.rc" ]; do
      if ! alive "$pid" || [ $SECONDS -ge $end ]; then
        echo "vm$i: $(alive "$pid" && echo "not provisioned within ${t}s" || echo "VM died") (console tail below)"
        tail -n 15 "$dir/vm$i/console.log" 2>/dev/null | sed "s/^/  vm$i console: /"
        tail -n 15 "$dir/vm$i/provision.log" 2>/dev/null | sed "s/^/  vm$i provision: /"
        tail -n 15 "$dir/vm$i/output.log" 2>/dev/null | sed "s/^/  vm$i output: /"
        return 1
      fi
      sleep 0.5
    done
    echo "vm$i: provision rc $(cat "$dir/vm$i/provision.rc")"
    [ "$(cat "$dir/vm$i/provision.rc")" = 0 ] || { rc=1; tail -n 30 "$dir/vm$i/provision.log" | sed "s/^/  vm$i provision: /"; }
  done
  return $rc
}

cmd_exec() {
  local dir=$1 node=$2; shift 2; [ "${1:-}" = -- ] && shift
  local i id v t end
  i=$(vm_index "$dir" "$node"); v="$dir/vm$i/exec"
  id="$(date +%s%N)-$$"
  printf '%s\n' "$*" >"$v/.$id.tmp" && mv "$v/.$id.tmp" "$v/$id.sh"
  t=${MESH_VMC_EXEC_TIMEOUT:-300}; end=$((SECONDS + t))
  while [ ! -f "$v/$id.rc" ]; do
    alive "$(cat "$dir/vm$i/qemu.pid")" || { cat "$v/$id.out" 2>/dev/null; die "exec on vm$i: the VM is gone"; }
    [ $SECONDS -lt $end ] || { cat "$v/$id.out" 2>/dev/null; die "exec on vm$i: no result within ${t}s"; }
    sleep 0.1
  done
  cat "$v/$id.out"
  return "$(cat "$v/$id.rc")"
}

cmd_host() {
  local dir=$1; shift; [ "${1:-}" = -- ] && shift
  ip netns exec "$(ns_of "$dir")" bash -c "$*"
}

main() {
  local sub=${1:-}; [ $# -gt 0 ] && shift
  case $sub in
    setup) cmd_setup "$@";;
    check) cmd_check;;
    up) [ $# -ge 1 ] || die "up DIR"; cmd_up "$@";;
    wait) cmd_wait "$@";;
    exec) cmd_exec "$@";;
    host) cmd_host "$@";;
    down) cmd_down "$@";;
    watchdog) cmd_watchdog "$@";;
    nodes) cat "$1/nodes";;
    *) sed -n '2,22p' "$0"; exit 2;;
  esac
}
main "$@"
