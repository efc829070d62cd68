#!/usr/bin/env bash
# Provisions one node of the lab, in order. The Vagrantfile runs this on every VM and the vm test
# tier runs it in every qemu guest, with the same MESH_* parameters (see lib.sh).
set -Eeuo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for s in packages build firewall meshd cluster; do
  bash "$here/$s.sh"
done
echo "provision: ${MESH_HOSTNAME:-$(hostname)} done"
