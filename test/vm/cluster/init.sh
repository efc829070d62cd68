#!/bin/busybox sh
# PID 1 of a vm-tier guest (test/vm/cluster/vmcluster.sh builds it into the initramfs). Debian's
# stock kernel boots this; it mounts this machine's root read-only over 9p under a tmpfs overlay
# and hands it to that root's systemd, which runs the harness's per-VM script (mvc-agent.service)
# and powers off at the end.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
say() { echo "mvc-init: $*" >/dev/console; }
off() { sync; umount /newroot/run/mvc 2>/dev/null; umount /mvc 2>/dev/null; poweroff -f; sleep 5; echo o >/proc/sysrq-trigger; }
ID=0
for w in $(cat /proc/cmdline); do case "$w" in mvc.id=*) ID=${w#mvc.id=};; esac; done
while read -r m; do insmod "/mods/$m" 2>/dev/null || say "insmod $m failed"; done </mods/order
mkdir -p /lower /mvc /newroot /rw
# The shared results directory: no cache, so the host and the guest see each other's writes at once.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none mvc /mvc || { say "no mvc share"; off; }
V=/mvc/vm$ID
. "$V/config" || { say "no $V/config"; off; }
# The host root, read-only; cache=loose: node and node_modules load much faster (pitfall: files the
# host changes during a run may look stale; exchange data through /run/mvc instead).
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostroot /lower || { echo "no host root" >"$V/init-error"; off; }
mount -t tmpfs -o mode=0755,size=60% mvcrw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work,index=off,metacopy=off,redirect_dir=off,xino=off mvcroot /newroot \
  || { echo "no overlayfs over 9p" >"$V/init-error"; off; }
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
# devtmpfs has no /dev/fd (udev makes it on a real system): bash process substitution needs it.
ln -sfn /proc/self/fd /newroot/dev/fd; ln -sfn /proc/self/fd/0 /newroot/dev/stdin
ln -sfn /proc/self/fd/1 /newroot/dev/stdout; ln -sfn /proc/self/fd/2 /newroot/dev/stderr
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /newroot/sys/fs/bpf 2>/dev/null
# /run of the guest is its own (the host's /run holds other engineers' netns files); /tmp stays on
# the overlay, so a checkout under /tmp remains visible.
mount -t tmpfs -o mode=0755 run /newroot/run
mkdir -p /newroot/run/mvc /newroot/run/lock /newroot/run/netns
mount --bind /mvc /newroot/run/mvc
# Kernel modules: the cache's tree, at the path the kernel release expects, inside the new root (systemd's modprobe finds them there).
mkdir -p "/newroot/lib/modules/$MVC_KVER"
mount --bind "/lower$MVC_MODDIR" "/newroot/lib/modules/$MVC_KVER" || say "cannot bind the module tree"
# Underlay: lo first (a namespace without lo up has no local table), then eth0.
ip link set lo up
ip link set eth0 up
ip addr add "$MVC_IP/24" dev eth0
hostname "$MVC_NAME"
echo "$MVC_NAME" >/newroot/etc/hostname
# The guest boots the host's own systemd, as a Vagrant box boots, so the provisioning scripts take
# their systemd path (the meshd unit enabled and started by systemctl). Only the harness's units
# run: mvc.target (systemd.unit= on the kernel command line) wants the agent, which provisions,
# serves the host's commands and powers off. The host's fstab is not this guest's.
: >/newroot/etc/fstab
# The host may itself be a container: its marker would make systemd act as a container's init
# (kernel command line ignored, the host's default target).
rm -f /newroot/.dockerenv /newroot/run/.containerenv
tr -d '-' </proc/sys/kernel/random/uuid >/newroot/etc/machine-id   # one per guest, not the host's
U=/newroot/run/systemd/system
mkdir -p "$U"
printf '%s\n' '[Unit]' 'Description=vm-tier guest' 'Requires=mvc-agent.service' 'After=mvc-agent.service' 'AllowIsolate=yes' >"$U/mvc.target"
R=/run/mvc/vm$ID
printf '%s\n' '[Unit]' 'Description=vm-tier agent: provision with vagrant/provision, then serve the host' 'After=basic.target' \
  '[Service]' 'Type=simple' \
  "ExecStart=/bin/bash -c 'bash $R/run.sh >$R/output.log 2>&1 </dev/null; echo \$\$? >$R/rc.tmp && mv $R/rc.tmp $R/rc; sync; systemctl poweroff --force --force'" \
  >"$U/mvc-agent.service"
cat /proc/uptime >"$V/t_ready"
exec switch_root /newroot /lib/systemd/systemd
echo "switch_root to systemd failed" >"$V/init-error"
off
