#!/usr/bin/env bash
# OS packages and Node.js. Skips apt when everything is there already (MESH_APT=auto), so a machine
# prepared by bin/setup (or the vm tier's guests, which run the host's own root) touches no network.
. "$(dirname "$0")/lib.sh"

# What meshd and its build need: iproute2/nftables/kmod (the data plane), g++/make/python3 (native
# addons), curl/ca-certificates/xz-utils (the Node.js download), rsync (the build copy),
# dnsutils/iputils-ping (checks from inside tasks), util-linux (nsenter/unshare for tasks).
PACKAGES=(iproute2 nftables kmod util-linux procps iputils-ping dnsutils g++ make python3 curl ca-certificates xz-utils rsync)
missing=()
for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$MESH_APT" = 0 ] && die "missing packages ${missing[*]} and MESH_APT=0"
  step "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  step "packages: all ${#PACKAGES[@]} present"
fi

have_node() { command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge "$MESH_NODE_MAJOR" ]; }
if have_node; then
  step "node $(node --version) present"
else
  [ "$MESH_APT" = 0 ] && die "node $MESH_NODE_MAJOR+ missing and MESH_APT=0"
  # Debian 12 ships Node 18; the official build, checked against its published SHA-256.
  base="https://nodejs.org/dist/latest-v${MESH_NODE_MAJOR}.x"
  step "installing Node.js ${MESH_NODE_MAJOR} from $base"
  tmp=$(mktemp -d)
  curl -fsSL "$base/SHASUMS256.txt" -o "$tmp/SHASUMS256.txt"
  file=$(awk '/linux-x64\.tar\.xz$/ {print $2; exit}' "$tmp/SHASUMS256.txt")
  [ -n "$file" ] || die "no linux-x64 build listed in $base/SHASUMS256.txt"
  curl -fsSL "$base/$file" -o "$tmp/$file"
  (cd "$tmp" && grep " $file\$" SHASUMS256.txt | sha256sum -c --quiet -) || die "checksum mismatch for $file"
  tar -xJf "$tmp/$file" -C /usr/local --strip-components=1 --exclude='*/CHANGELOG.md' --exclude='*/README.md' --exclude='*/LICENSE'
  rm -rf "$tmp"
  have_node || die "node still missing after the install"
  step "node $(node --version) installed"
fi
