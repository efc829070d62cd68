#!/usr/bin/env bash
# Runs in each vm-tier guest (mvc-agent.service starts run.sh, which vmcluster.sh writes): provisions the node
# with the same scripts as Vagrant, then serves the host's commands (vmcluster.sh exec) until the
# host asks it to stop. The exchange is files in the 9p results directory (cache=none both ways):
# the host drops exec/ID.sh, the agent leaves exec/ID.out and exec/ID.rc.
set -u
V=/run/mvc/vm$MVC_ID
t0=$(cut -d' ' -f1 /proc/uptime)
bash "$MVC_REPO/vagrant/provision/all.sh" >"$V/provision.log" 2>&1
rc=$?
echo "$t0 $(cut -d' ' -f1 /proc/uptime)" >"$V/t_provision"
echo "$rc" >"$V/provision.rc.tmp" && mv "$V/provision.rc.tmp" "$V/provision.rc"
mkdir -p "$V/exec"
# A sleep without a fork per turn (forks are slow under emulation): read with a timeout on a FIFO
# nobody writes to.
mkfifo /run/mvc-agent.idle
exec {idle}<>/run/mvc-agent.idle
while [ ! -e /run/mvc/stop ]; do
  for f in "$V"/exec/*.sh; do
    [ -e "$f" ] || continue
    b=${f%.sh}
    mv "$f" "$b.run"
    ( cd / && bash "$b.run" ) >"$b.out" 2>&1 </dev/null
    echo $? >"$b.rc.tmp" && mv "$b.rc.tmp" "$b.rc"
  done
  read -r -t 0.25 -u "$idle" _ || true
done
# Leave like a node being shut down: the daemon gets SIGTERM (its tasks die with the VM).
systemctl stop meshd.service 2>/dev/null
exit "$rc"
