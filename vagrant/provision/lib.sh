# Shared by the provisioning scripts (sourced). Every step is parametrized by MESH_* variables so the
# Vagrant lab and the vm test tier run the very same scripts; defaults are the Vagrant lab's.
#
#   MESH_SRC            the checkout to install from                    (/vagrant, the synced folder)
#   MESH_HOME           where meshd is built and run from               (/opt/meshd; = MESH_SRC builds in place)
#   MESH_APT            auto: install missing packages; 0: never touch apt (fail if something is missing)
#   MESH_NODE_MAJOR     the Node.js major version to install when node is older or missing (20)
#   MESH_BUILD          auto: build when dist/ is missing or older than the sources; 1: always; 0: never
#   MESH_ADDR           this node's underlay address (advertised to the others)      (required)
#   MESH_HOSTNAME       node name in `meshctl node ls`                  (the host name)
#   MESH_ROLE           init (the first manager) | manager | worker    (required by cluster.sh)
#   MESH_MANAGER_ADDR   the first manager's address                     (joiners use it)
#   MESH_TOKEN_DIR      where init leaves the join tokens for the others (/vagrant/vagrant/.cluster)
#   MESH_JOIN_TIMEOUT   seconds a joiner waits for tokens and a successful join (900)
#   MESH_STATE_DIR      meshd's state directory                         (/var/lib/meshd)
#   MESH_SOCKET         meshd's local API socket                        (/run/meshd/meshd.sock)
#   MESH_DAEMON_ARGS    extra meshd flags (e.g. --election-ms 3000 on slow, emulated machines)
#   MESH_DISPATCHER_HEARTBEAT  the new cluster's node heartbeat period, e.g. 5s (meshd's default 1s;
#                       a node is down after 3 missed: longer on slow or heavily shared hosts)
#   MESH_FW             1: install the nftables host firewall; 0: leave the firewall alone (1)
#   MESH_CLUSTER_SUBNET when set, 2377/tcp, 7946/tcp+udp and 4789/udp accept only this source subnet
#   MESH_FW_TCP, MESH_FW_UDP  other ports to open (published ports), nft syntax
set -Eeuo pipefail

: "${MESH_SRC:=/vagrant}"
: "${MESH_HOME:=/opt/meshd}"
: "${MESH_APT:=auto}"
: "${MESH_NODE_MAJOR:=20}"
: "${MESH_BUILD:=auto}"
: "${MESH_HOSTNAME:=$(hostname)}"
: "${MESH_TOKEN_DIR:=/vagrant/vagrant/.cluster}"
: "${MESH_JOIN_TIMEOUT:=900}"
: "${MESH_STATE_DIR:=/var/lib/meshd}"
: "${MESH_SOCKET:=/run/meshd/meshd.sock}"
: "${MESH_DAEMON_ARGS:=}"
: "${MESH_FW:=1}"
: "${MESH_CLUSTER_SUBNET:=}"
: "${MESH_FW_TCP:=80, 443, 8000-8999, 30000-32767}"
: "${MESH_FW_UDP:=8000-8999, 30000-32767}"
export MESH_SRC MESH_HOME MESH_APT MESH_NODE_MAJOR MESH_BUILD MESH_HOSTNAME MESH_TOKEN_DIR MESH_JOIN_TIMEOUT \
  MESH_STATE_DIR MESH_SOCKET MESH_DAEMON_ARGS MESH_FW MESH_CLUSTER_SUBNET MESH_FW_TCP MESH_FW_UDP
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

step() { echo "[$(date +%T)] ${MESH_HOSTNAME}: $*"; }
die() { echo "provision (${MESH_HOSTNAME}): error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"

# meshctl against this node's daemon, whatever is on PATH.
meshctl_local() { node "$MESH_HOME/bin/meshctl.js" -H "unix://$MESH_SOCKET" "$@"; }

# GET /v1/info on the local socket: the daemon's identity and cluster membership, as JSON. curl, not
# node: a poll loop should not pay a JavaScript start-up per try (seconds on a slow or emulated box).
mesh_info() { curl -fsS --max-time 3 --unix-socket "$MESH_SOCKET" http://meshd/v1/info; }
