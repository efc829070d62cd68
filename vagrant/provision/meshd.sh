#!/usr/bin/env bash
# The meshd systemd unit, installed and started; waits until the daemon answers on its socket.
# Where systemd is not PID 1 (a container, a bare VM), the unit's own ExecStart line is started
# directly, so the unit file is what runs either way.
. "$(dirname "$0")/lib.sh"

UNIT=/etc/systemd/system/meshd.service
node_bin=$(command -v node)
mkdir -p "$(dirname "$UNIT")"
cat >"$UNIT" <<UNIT_EOF
[Unit]
Description=meshd: swarm-mode networking node daemon (overlays, gossip, service DNS, routing mesh)
Documentation=file://$MESH_HOME/README.md
After=network-online.target nftables.service
Wants=network-online.target

[Service]
Type=simple
ExecStart=$node_bin $MESH_HOME/bin/meshd.js --state-dir $MESH_STATE_DIR --socket $MESH_SOCKET --hostname $MESH_HOSTNAME $MESH_DAEMON_ARGS
Restart=on-failure
RestartSec=2
# Tasks outlive a restart of the daemon (it adopts them when it comes back).
KillMode=process
LimitNOFILE=1048576
TimeoutStopSec=20

[Install]
WantedBy=multi-user.target
UNIT_EOF

if [ -d /run/systemd/system ]; then
  step "systemd: enabling and (re)starting meshd.service"
  systemctl daemon-reload
  systemctl enable --quiet meshd.service
  # A running daemon keeps its state: restart only when the unit changed or it is down.
  systemctl is-active --quiet meshd.service && [ "$(systemctl show -p NeedDaemonReload --value meshd.service)" = no ] || systemctl restart meshd.service
else
  pidfile=$(dirname "$MESH_SOCKET")/meshd.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    step "meshd already running (pid $(cat "$pidfile"))"
  else
    step "no systemd here: starting the unit's ExecStart directly"
    cmd=$(sed -n 's/^ExecStart=//p' "$UNIT")
    mkdir -p "$(dirname "$MESH_SOCKET")" /var/log
    # shellcheck disable=SC2086 # the unit's command line, split like systemd splits it
    setsid $cmd >>/var/log/meshd.log 2>&1 </dev/null &
    echo $! >"$pidfile"
  fi
fi

for _ in $(seq 1 240); do
  mesh_info >/dev/null 2>&1 && { step "meshd answers on $MESH_SOCKET"; exit 0; }
  sleep 0.5
done
[ -f /var/log/meshd.log ] && tail -n 20 /var/log/meshd.log >&2
[ -d /run/systemd/system ] && journalctl -u meshd.service -n 20 --no-pager >&2
die "meshd did not answer on $MESH_SOCKET within 120 s"
