#!/usr/bin/env bash
# From the host: checks the lab from outside and prints a pass/fail table. Against the Vagrant lab
# by default (vagrant ssh); the vm test tier runs the same script against its qemu guests.
#
#   vagrant/probe.sh            (from the repository or vagrant/; needs node and a built checkout)
#
# What it checks, per node where it applies:
#   cluster     every node is Ready (meshctl node ls on the first manager)
#   2377/tcp    the control port answers from outside (TLS handshake not needed: a TCP connect)
#   firewall    a port the firewall does not open is dropped (a timeout, not a refusal)
#   overlay     a service on an overlay network; from a task on each node, every replica answers
#               over VXLAN at the addresses DNS gives for tasks.SERVICE (east-west)
#   ingress     a port published in ingress mode answers on every node, spread over replicas
#   host        a port published in host mode (global service) answers on every node with its own task
# The published-port checks need the routing mesh (`meshctl publish`); until a build has it they are
# reported as "skipped: routing mesh not available" (PROBE_PUBLISH=1 forces them, 0 skips them).
#
# Environment:
#   PROBE_NODES     "NAME=ADDRESS ..." (default: the Vagrantfile's m1 m2 m3 w1 w2)
#   PROBE_EXEC      command run as: $PROBE_EXEC NAME SHELL-COMMAND (runs as root on that node;
#                   default: vagrant ssh NAME -c "sudo bash -c ...")
#   PROBE_CLIENT    how the host runs the probe (default: node dist/test/probe/cli.js of this checkout)
#   PROBE_REPLICAS  replicas of the test service (default 6)   PROBE_PORT published port (default 8080)
#   PROBE_RESULTS   also write one "RESULT<TAB>CHECK<TAB>TARGET<TAB>DETAIL" line per row to this file
#   PROBE_KEEP=1    leave the test services and network in place
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/.." && pwd -P)
NODES=${PROBE_NODES:-"m1=192.168.56.11 m2=192.168.56.12 m3=192.168.56.13 w1=192.168.56.21 w2=192.168.56.22"}
REPLICAS=${PROBE_REPLICAS:-6}
PORT=${PROBE_PORT:-8080}
HOSTPORT=$((PORT + 1))
PUBLISH=${PROBE_PUBLISH:-auto}
CLI=${PROBE_CLIENT:-"node $REPO/dist/test/probe/cli.js"}
NET=probe-net SVC=probe-web ING=probe-ingress HST=probe-host

vagrant_exec() { (cd "$HERE" && vagrant ssh "$1" -c "sudo bash -c $(printf %q "$2")" -- -q); }
node_exec() { if [ -n "${PROBE_EXEC:-}" ]; then $PROBE_EXEC "$1" "$2"; else vagrant_exec "$1" "$2"; fi; }

names=() addrs=()
for n in $NODES; do names+=("${n%%=*}"); addrs+=("${n#*=}"); done
MGR=${names[0]}
[ -f "$REPO/dist/test/probe/cli.js" ] || [ -n "${PROBE_CLIENT:-}" ] || { echo "probe.sh: build the checkout first (npm ci && npm run build)" >&2; exit 2; }

pass=0 fail=0 skip=0 rows=()
row() { # RESULT CHECK TARGET DETAIL
  rows+=("$(printf '%-6s %-10s %-18s %s' "$1" "$2" "$3" "$4")")
  case $1 in PASS) pass=$((pass + 1));; FAIL) fail=$((fail + 1));; *) skip=$((skip + 1));; esac
  [ -n "${PROBE_RESULTS:-}" ] && printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$PROBE_RESULTS"
  echo "probe: $1 $2 $3 $4" >&2
}
# Runs the probe CLI on the host; echoes its JSON; the verdict is its exit code.
probe_json() { $CLI --format json "$@"; }
# "ok/attempts, replicas N, p50 X ms" from a probe report (stdin), for a target index.
summary() {
  node -e 'let b=""; process.stdin.on("data",(d)=>(b+=d)).on("end",()=>{ const r=JSON.parse(b); const t=r.targets[+process.argv[1]];
    const e=Object.entries(t.errors).map(([k,v])=>k+" x"+v).join(","); const l=t.latencyMs;
    process.stdout.write(t.ok+"/"+t.attempts+(t.proto==="tcp"?"":", "+Object.keys(t.replicas).length+" replicas")+(l?", p50 "+l.p50.toFixed(1)+" ms":"")+(e?", "+e:"")+(t.verdict.pass?"":" ("+t.verdict.reasons.join("; ")+")")); })' "$1"
}
targets() { local i out=""; for i in "${!names[@]}"; do out="$out ${names[$i]}=${addrs[$i]}:$1"; done; echo "$out"; }

t0=$SECONDS
# ---- cluster
ls_out=$(node_exec "$MGR" "meshctl node ls --format json" 2>&1)
ready=$(printf '%s' "$ls_out" | node -e 'let b="";process.stdin.on("data",(d)=>(b+=d)).on("end",()=>{try{const n=JSON.parse(b);process.stdout.write(n.filter((x)=>x.status==="ready"||x.status==="Ready").map((x)=>x.hostname).sort().join(" "))}catch{}})')
want=$(printf '%s\n' "${names[@]}" | sort | tr '\n' ' ' | sed 's/ $//')
if [ "$ready" = "$want" ]; then row PASS cluster "${#names[@]} nodes" "Ready: $ready"; else row FAIL cluster "${#names[@]} nodes" "Ready: ${ready:-none} (want $want) ${ls_out:0:200}"; fi

# ---- control port and firewall, from outside
r=$(probe_json --proto tcp -n 3 --timeout 3000 $(targets 2377))
for i in "${!names[@]}"; do
  if printf '%s' "$r" | node -e 'let b="";process.stdin.on("data",(d)=>(b+=d)).on("end",()=>process.exit(JSON.parse(b).targets[+process.argv[1]].verdict.pass?0:1))' "$i"; then res=PASS; else res=FAIL; fi
  row $res 2377/tcp "${names[$i]} ${addrs[$i]}" "$(printf '%s' "$r" | summary "$i")"
done
# 2379/tcp: nothing listens there; without the firewall it would be refused at once.
r=$(probe_json --proto tcp -n 1 --timeout 1500 --min-success 0 $(targets 2379))
for i in "${!names[@]}"; do
  s=$(printf '%s' "$r" | summary "$i")
  case $s in *"timeout x1"*) row PASS firewall "${names[$i]} ${addrs[$i]}" "2379/tcp dropped ($s)";; *) row FAIL firewall "${names[$i]} ${addrs[$i]}" "2379/tcp not dropped: $s";; esac
done

# ---- a service on an overlay, probed east-west from a task on every node
cleanup() {
  [ "${PROBE_KEEP:-0}" = 1 ] && return 0
  node_exec "$MGR" "for s in $SVC $ING $HST; do meshctl service rm \$s >/dev/null 2>&1; done; meshctl network rm $NET >/dev/null 2>&1; true" >/dev/null 2>&1
}
wl="\$(command -v node) \$(dirname \$(readlink -f \$(command -v meshd)))/workload.js http --port 80"
# --detach, then polls: under load a manager may briefly fail a consistent read (an election), and
# a deploy check should ride that out as a user would, not fail on the first hiccup.
# Polled with curl on the manager's socket, not `meshctl service ps`: a Node.js start every 2 s is
# most of a slow or emulated manager's CPU, and starves the very daemon being waited for. Counts
# tasks meant to run that run (a task being stopped does not count; the API writes desiredState
# right before state).
converge() { # SERVICE WANT -> polls the service's tasks on the manager until WANT run (PROBE_WAIT s)
  node_exec "$MGR" "end=\$((SECONDS + ${PROBE_WAIT:-240})); n=0
    while [ \$SECONDS -lt \$end ]; do
      n=\$(curl -fsS --max-time 10 --unix-socket \${MESH_SOCKET:-/run/meshd/meshd.sock} http://meshd/v1/services/$1/tasks 2>/dev/null | grep -o '\"desiredState\":\"running\",\"state\":\"running\"' | wc -l)
      [ \"\$n\" -ge $2 ] && { echo \"\$n/$2 running after \$SECONDS s\"; exit 0; }
      sleep 2
    done; echo \"\$n/$2 running\"; meshctl service ps $1 2>&1 | tail -n 8; exit 1"
}
out=$(node_exec "$MGR" "meshctl network create --driver overlay $NET >/dev/null 2>&1; meshctl service rm $SVC >/dev/null 2>&1; meshctl service create --detach --name $SVC --replicas $REPLICAS --network $NET --command \"$wl\" 2>&1" 2>&1) &&
  svc_id=$(printf '%s\n' "$out" | grep -Eo '^[a-z0-9]{20,}$' | tail -n 1) && out=$(converge $SVC "$REPLICAS" 2>&1)
rc=$?
if [ $rc = 0 ]; then row PASS deploy "$SVC" "$REPLICAS replicas on $NET: $(printf '%s' "$out" | tail -n 1)"; else row FAIL deploy "$SVC" "$(printf '%s' "$out" | tail -n 4 | tr '\n' ' ')"; fi
# (Right after a deploy the endpoint records are still spreading by gossip: DNS is asked again, for
# up to 90 s, until tasks.SVC gives every replica; --wait: the overlay's FDB/neighbour entries spread
# the same way, so the probe retries until every replica answers, for up to 90 s, then reports the
# last attempt.)
# On a node: a task of the service (its process carries MESH_TASK_NAME: the service id's first 12
# characters and the slot today, or a name-prefixed one), DNS tasks.SVC from inside
# its namespace, then the probe from there against every address.
eastwest="pid=''; for p in \$(pgrep -f 'workload.js http --port 80'); do tr '\\0' '\\n' </proc/\$p/environ 2>/dev/null | grep -Eq '^MESH_TASK_NAME=(${svc_id:0:12}[a-z0-9]*|$SVC)\\.' && { pid=\$p; break; }; done
[ -n \"\$pid\" ] || { echo \"no task of $SVC on this node (workloads: \$(pgrep -af 'workload.js' | cut -c1-120 | tr '\\n' ';'))\"; exit 3; }
for w in \$(seq 1 45); do ips=\$(nsenter --net=/proc/\$pid/ns/net -- dig +short +time=3 tasks.$SVC @127.0.0.11 | grep -E '^[0-9]+(\\.[0-9]+){3}\$' | sort | tr '\\n' ' '); [ \$(echo \$ips | wc -w) -ge $REPLICAS ] && break; sleep 2; done
[ -n \"\$ips\" ] || { echo 'DNS gave no address for tasks.$SVC'; exit 4; }
nsenter --net=/proc/\$pid/ns/net -- node \$(dirname \$(readlink -f \$(command -v meshd)))/../dist/test/probe/cli.js --proto http --port 80 -n 2 --timeout 5000 --min-replicas 1 --wait 90 --format json \$ips"
if [ $rc = 0 ]; then
  tmp=$(mktemp -d)
  for i in "${!names[@]}"; do (node_exec "${names[$i]}" "$eastwest" >"$tmp/$i.out" 2>&1; echo $? >"$tmp/$i.rc") & done
  wait
  for i in "${!names[@]}"; do
    rc=$(cat "$tmp/$i.rc"); o=$(cat "$tmp/$i.out")
    if [ "$rc" = 3 ]; then row SKIP overlay "${names[$i]}" "$(printf '%s' "$o" | tail -n 1 | cut -c1-300)"; continue; fi
    d=$(printf '%s' "$o" | node -e 'let b="";process.stdin.on("data",(d)=>(b+=d)).on("end",()=>{try{const r=JSON.parse(b);const n=Object.keys(r.overall.replicas).length;process.stdout.write(n+" "+r.overall.ok+"/"+r.overall.attempts+" answered by "+n+" replicas over the overlay, p50 "+(r.overall.latencyMs?.p50??NaN).toFixed(1)+" ms")}catch{process.stdout.write("0 "+b.slice(-200).replace(/\n/g," "))}})')
    if [ "$rc" = 0 ] && [ "${d%% *}" = "$REPLICAS" ]; then row PASS overlay "${names[$i]}" "${d#* }"; else row FAIL overlay "${names[$i]}" "rc $rc: ${d#* }"; fi
  done
  rm -rf "$tmp"
fi

# ---- published ports (the routing mesh)
if [ "$PUBLISH" = auto ]; then
  # (not `meshctl publish --help`: for an unknown command that prints the general help and exits 0)
  if node_exec "$MGR" "meshctl --help" 2>/dev/null | grep -qE '^  publish( |$)'; then PUBLISH=1; else PUBLISH=0; fi
fi
if [ "$PUBLISH" = 1 ]; then
  out=$(node_exec "$MGR" "meshctl service create --detach --name $ING --replicas $REPLICAS --network $NET --publish published=$PORT,target=80,mode=ingress --command \"$wl\" 2>&1 && meshctl service create --detach --name $HST --mode global --publish published=$HOSTPORT,target=80,mode=host --command \"$wl\" 2>&1" 2>&1) &&
    out=$(converge $ING "$REPLICAS" 2>&1) && out=$(converge $HST "${#names[@]}" 2>&1) ||
    row FAIL publish "$ING $HST" "$(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
  # Every node answers for the ingress port, and the answers spread over more than one replica.
  r=$(probe_json --proto http -n 12 --timeout 3000 --min-replicas 2 --wait 60 $(targets $PORT))
  for i in "${!names[@]}"; do
    s=$(printf '%s' "$r" | summary "$i")
    case $s in *"("*) row FAIL ingress "${names[$i]} :$PORT" "$s";; *) row PASS ingress "${names[$i]} :$PORT" "$s";; esac
  done
  r=$(probe_json --proto http -n 6 --timeout 3000 --min-replicas 1 --wait 60 $(targets $HOSTPORT))
  for i in "${!names[@]}"; do
    s=$(printf '%s' "$r" | summary "$i")
    case $s in *"1 replicas"*) [[ $s == *"("* ]] && row FAIL host "${names[$i]} :$HOSTPORT" "$s" || row PASS host "${names[$i]} :$HOSTPORT" "$s";; *) row FAIL host "${names[$i]} :$HOSTPORT" "want exactly the local task: $s";; esac
  done
else
  for i in "${!names[@]}"; do
    row SKIP ingress "${names[$i]} :$PORT" "skipped: routing mesh not available"
    row SKIP host "${names[$i]} :$HOSTPORT" "skipped: routing mesh not available"
  done
fi
cleanup

echo
printf '%-6s %-10s %-18s %s\n' RESULT CHECK TARGET DETAIL
printf '%s\n' "${rows[@]}"
echo
echo "probe: $pass passed, $fail failed, $skip skipped in $((SECONDS - t0)) s"
[ "$fail" = 0 ]
