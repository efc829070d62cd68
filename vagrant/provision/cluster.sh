#!/usr/bin/env bash
# Forms the cluster as a user would: the first manager runs `swarm init` and leaves the join tokens
# in MESH_TOKEN_DIR (the synced folder); the others wait for them and `swarm join`. Idempotent: a
# node already in a cluster is left as it is (a re-provisioned first manager refreshes the tokens).
. "$(dirname "$0")/lib.sh"
: "${MESH_ADDR:?MESH_ADDR (the underlay address of this node) is required}"
: "${MESH_ROLE:?MESH_ROLE (init, manager or worker) is required}"

# (JSON.stringify writes no spaces and puts the cluster id first: a sed is enough)
cluster_id() { mesh_info 2>/dev/null | sed -n 's/.*"cluster":{"id":"\([^"]*\)".*/\1/p'; }
# Tokens are secrets: readable by root only, written whole (rename) so a reader never sees half.
put() { umask 077; printf '%s\n' "$2" >"$MESH_TOKEN_DIR/.$1.tmp" && mv "$MESH_TOKEN_DIR/.$1.tmp" "$MESH_TOKEN_DIR/$1"; }

mkdir -p "$MESH_TOKEN_DIR"
id=$(cluster_id)
case "$MESH_ROLE" in
  init)
    if [ -n "$id" ]; then
      step "already in cluster $id"
    else
      # Tokens of an earlier cluster would only make the joiners fail: drop them first.
      rm -f "$MESH_TOKEN_DIR"/manager.token "$MESH_TOKEN_DIR"/worker.token "$MESH_TOKEN_DIR"/manager.addr
      hb=(); [ -n "${MESH_DISPATCHER_HEARTBEAT:-}" ] && hb=(--dispatcher-heartbeat "$MESH_DISPATCHER_HEARTBEAT")
      step "swarm init --advertise-addr $MESH_ADDR ${hb[*]}"
      meshctl_local swarm init --advertise-addr "$MESH_ADDR" "${hb[@]}"
    fi
    put manager.token "$(meshctl_local swarm join-token manager -q)"
    put worker.token "$(meshctl_local swarm join-token worker -q)"
    put manager.addr "$MESH_ADDR:2377"
    step "join tokens written to $MESH_TOKEN_DIR"
    ;;
  manager | worker)
    if [ -n "$id" ]; then step "already in cluster $id"; exit 0; fi
    end=$((SECONDS + MESH_JOIN_TIMEOUT))
    step "waiting for the $MESH_ROLE token in $MESH_TOKEN_DIR"
    until [ -s "$MESH_TOKEN_DIR/$MESH_ROLE.token" ] && [ -s "$MESH_TOKEN_DIR/manager.addr" ]; do
      [ $SECONDS -lt $end ] || die "no $MESH_ROLE token in $MESH_TOKEN_DIR after ${MESH_JOIN_TIMEOUT}s (is the first manager provisioned?)"
      sleep 1
    done
    # Retried: managers joining at once are added one at a time, and a stale token (a first
    # manager being re-provisioned) is replaced shortly.
    delay=1
    until out=$(meshctl_local swarm join --token "$(cat "$MESH_TOKEN_DIR/$MESH_ROLE.token")" --advertise-addr "$MESH_ADDR" "${MESH_MANAGER_ADDR:-$(cat "$MESH_TOKEN_DIR/manager.addr")}" 2>&1); do
      [ -n "$(cluster_id)" ] && break   # the join went through though its answer was lost
      [ $SECONDS -lt $end ] || die "join failed for ${MESH_JOIN_TIMEOUT}s: $out"
      step "join not yet: $out (retrying in ${delay}s)"
      sleep "$delay"; delay=$((delay < 8 ? delay * 2 : 8))
    done
    step "${out:-joined}"
    ;;
  *) die "MESH_ROLE must be init, manager or worker, not \"$MESH_ROLE\"" ;;
esac
