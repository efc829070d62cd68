#!/usr/bin/env bash
# The host firewall (nftables): default-deny input, with the cluster's ports open: 2377/tcp (Raft
# and the API, mutual TLS), 7946/tcp+udp (gossip), 4789/udp (VXLAN), plus ssh and the published
# port ranges. VXLAN is unauthenticated, so with MESH_CLUSTER_SUBNET the cluster ports accept only
# the cluster's own subnet. Its own table: meshd's tables (egress NAT, routing mesh) are untouched,
# and ingress traffic that is forwarded to the ingress sandbox does not cross this input chain.
. "$(dirname "$0")/lib.sh"
[ "$MESH_FW" = 1 ] || { step "firewall: left alone (MESH_FW=$MESH_FW)"; exit 0; }

src=""
[ -n "$MESH_CLUSTER_SUBNET" ] && src="ip saddr $MESH_CLUSTER_SUBNET "
mkdir -p /etc/meshd
cat >/etc/meshd/firewall.nft <<NFT
# written by vagrant/provision/firewall.sh; loaded by /etc/nftables.conf at boot
table inet meshd_host {}
delete table inet meshd_host
table inet meshd_host {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    ct state invalid drop
    iifname "lo" accept
    meta l4proto { icmp, ipv6-icmp } accept
    udp sport 67 udp dport 68 accept comment "dhcp (the NAT interface of a Vagrant box)"
    tcp dport 22 accept comment "ssh"
    ${src}tcp dport 2377 accept comment "meshd: raft and the API (mutual TLS)"
    ${src}meta l4proto { tcp, udp } th dport 7946 accept comment "meshd: gossip"
    ${src}udp dport 4789 accept comment "meshd: vxlan"
    tcp dport { $MESH_FW_TCP } accept comment "published ports"
    udp dport { $MESH_FW_UDP } accept comment "published ports"
  }
}
NFT
nft -c -f /etc/meshd/firewall.nft || die "the firewall does not parse"
nft -f /etc/meshd/firewall.nft
step "firewall: nftables table inet meshd_host loaded (policy drop; cluster ports${MESH_CLUSTER_SUBNET:+ from $MESH_CLUSTER_SUBNET} open)"
# At boot: Debian's nftables.service loads /etc/nftables.conf; include ours from it.
if [ -f /etc/nftables.conf ] && ! grep -q '/etc/meshd/firewall.nft' /etc/nftables.conf; then
  echo 'include "/etc/meshd/firewall.nft"' >>/etc/nftables.conf
fi
if [ -d /run/systemd/system ]; then systemctl enable --quiet nftables.service; fi
