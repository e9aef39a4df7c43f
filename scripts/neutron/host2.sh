#!/usr/bin/env bash
# scripts/neutron/host2.sh - a second "host" for the Neutron lab (scripts/neutron/stack.sh), on this machine:
# a network namespace with its own neutron-linuxbridge-agent (its own `host`, state and lock directories),
# reached over veths. The two-host tests (test/e2e/two-hosts.test.ts) start their second dockerd and
# kuryr-ts inside it.
#
#   host2.sh [start]   build what is missing, start what is down, wait for the agent, write host2.json
#   host2.sh status    exit 0 when the namespace, its plumbing, the forwarders and the agent are alive
#   host2.sh stop      stop and delete everything start made (also run by stack-stop.sh)
#
# Layout (H = HOST2_MGMT, default 169.254.77; T1 = the lab's tunnel address, T2 = HOST2_TUN_IP):
#
#   host netns                                           netns nlab-host2 (host "<hostname>-host2")
#   nlab-h2m  H.1/30  <------------- veth ------------->  mgmt0  H.2/30   management: RabbitMQ, Keystone,
#     socat H.1:{5672,5000,9696,9697} -> 127.0.0.1           Neutron (and, later, Swarm between dockerds)
#   nlab-phys0 T1/32 = nlab-phys0p -+
#                                   +- bridge nlab-seg0 (the "switch" of physnet1)
#   nlab-h2p -----------------------+ <---- veth ---->  phys0  T2/32   vxlan local_ip, physnet1
#
# The lab's daemons listen on 127.0.0.1 only; the forwarders listen on H.1 only, an address of a veth
# that exists only on this machine, never on a real interface. VXLAN between the two agents goes over
# nlab-phys0 (the host agent sends its vxlan traffic out of the device that holds its local_ip) and the
# nlab-seg0 bridge. Everything host2.sh owns is under $LAB_DIR/host2 (etc, run, state, lock, log).
# Serialised with stack.sh and stack-stop.sh on $LAB_DIR/run/stack.lock.
#
# Knobs: LAB_DIR, HOST2_NAME (default <hostname>-host2), HOST2_MGMT=a.b.c (a /30 at a.b.c.0),
#        HOST2_TUN_IP (default: the lab's tunnel address + 1), PURGE=1 (stop: also delete the logs).
set -Eeuo pipefail
# With pipefail, never end a test pipeline in 'grep -q' (SIGPIPE on the writer).

export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8

LAB_DIR=${LAB_DIR:-/var/lib/kuryr-neutron-lab}
LAB_JSON=$LAB_DIR/kuryr-test.json
H2=$LAB_DIR/host2
ETC=$H2/etc
RUN=$H2/run
LOGD=$H2/log
STATE=$H2/state
JSON=$H2/host2.json
NS=nlab-host2
HOST2_NAME=${HOST2_NAME:-$(hostname)-host2}
MGMT=${HOST2_MGMT:-169.254.77}
MGMT_HOST=$MGMT.1
MGMT_NS=$MGMT.2
SEG=nlab-seg0
PHYS_IF=nlab-phys0
PHYS_PEER=nlab-phys0p
H_MGMT=nlab-h2m
H_PHYS=nlab-h2p
RABBIT_USER=${RABBIT_USER:-kuryrlab}
RABBIT_PASS=${RABBIT_PASS:-nlabmq}
AGENT=neutron-linuxbridge-agent

log() { printf '[neutron-host2 %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() {
  log "ERROR: $*"
  exit 1
}

# close_inherited_fds: closes every descriptor of this (sub)shell above 2. A daemon must not hold the stack lock
# (fd 9), nor a lock of whoever called this script (`flock /tmp/kuryr-e2e.lock host2.sh` hands its lock on as
# fd 3), for as long as it runs.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
  done
}

pid_alive() { # pid_alive NAME MATCH: the pid file's process is alive and its cmdline contains MATCH
  local f=$RUN/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -F -- "$2" >/dev/null
}

ns_exists() { [ -e "/run/netns/$NS" ]; }

lab_field() { jq -r "$1 // empty" "$LAB_JSON" 2>/dev/null; }

# neutron_get PATH: GET against the lab's Neutron (noauth server if served, else a token of the lab's user)
neutron_call() { # neutron_call METHOD PATH
  local url
  url=$(lab_field '.noauth.neutron_url')
  if [ -n "$url" ]; then
    curl -sf -m 20 -X "$1" "$url$2"
    return
  fi
  url=$(lab_field '.keystone.neutron_url')
  local body tok
  body=$(jq -c '{auth: {identity: {methods: ["password"], password: {user: {name: .keystone.username,
    domain: {name: .keystone.user_domain_name}, password: .keystone.password}}},
    scope: {project: {name: .keystone.project_name, domain: {name: .keystone.project_domain_name}}}}}' "$LAB_JSON")
  tok=$(curl -sf -m 20 -D - -o /dev/null -H 'Content-Type: application/json' -d "$body" \
    "$(lab_field '.keystone.auth_url')/auth/tokens" | awk 'tolower($1) == "x-subject-token:" {print $2}' | tr -d '\r')
  [ -n "$tok" ] || return 1
  curl -sf -m 20 -X "$1" -H "X-Auth-Token: $tok" "$url$2"
}

# the agent is alive in Neutron and reported since its (re)start
agent_alive() {
  local t js
  [ -s "$RUN/$AGENT.pid" ] || return 1
  t=$(date -u -r "$RUN/$AGENT.pid" '+%F %T')
  js=$(neutron_call GET "/v2.0/agents?host=$HOST2_NAME&agent_type=Linux%20bridge%20agent") || return 1
  echo "$js" | jq -e --arg t "$t" '[.agents[] | select(.alive and .admin_state_up and .started_at >= $t)] | length > 0' >/dev/null
}

# tunnel_ok IP: the lab's tunnel address answers ARP on phys0 (one UDP datagram makes the namespace ask; no
# ping needed, which these machines may lack)
tunnel_ok() {
  local i state
  ip netns exec "$NS" bash -c "echo > /dev/udp/$1/9" 2>/dev/null || true
  for i in 1 2 3 4 5 6 7 8 9 10; do
    state=$(ip -n "$NS" -j neigh show "$1" dev phys0 | jq -r '.[0].state[0] // ""')
    case $state in REACHABLE | STALE | DELAY | PROBE | PERMANENT) return 0 ;; esac
    sleep 0.2
  done
  return 1
}

# ---------------------------------------------------------------- status
status() {
  local rc=0 p
  if ns_exists; then echo "netns $NS: present"; else
    echo "netns $NS: MISSING"
    return 1
  fi
  for p in "$RUN"/*.pid; do
    [ -e "$p" ] || continue
    local n
    n=$(basename "$p" .pid)
    if kill -0 "$(cat "$p")" 2>/dev/null; then echo "$n: running (pid $(cat "$p"))"; else
      echo "$n: DOWN"
      rc=1
    fi
  done
  if [ "$(ip -j link show "$PHYS_PEER" 2>/dev/null | jq -r '.[0].master // ""')" = "$SEG" ]; then
    echo "$PHYS_PEER: in $SEG"
  else
    echo "$PHYS_PEER: NOT in $SEG (the lab was restarted? run host2.sh again)"
    rc=1
  fi
  local lab_tun
  lab_tun=$(cat "$STATE/lab_tun_ip" 2>/dev/null || true)
  if [ -n "$lab_tun" ] && tunnel_ok "$lab_tun"; then
    echo "tunnel $(cat "$STATE/tun_ip") -> $lab_tun: reachable"
  else
    echo "tunnel to the lab's agent ($lab_tun): NOT REACHABLE"
    rc=1
  fi
  if agent_alive; then echo "agent $HOST2_NAME: alive"; else
    echo "agent $HOST2_NAME: NOT ALIVE in Neutron"
    rc=1
  fi
  [ -s "$JSON" ] || {
    echo "$JSON: missing"
    rc=1
  }
  return $rc
}

# ---------------------------------------------------------------- stop
stop_pid() { # stop_pid NAME MATCH: TERM the process group of a pid file's process, KILL after 15 s
  local f=$RUN/$1.pid pid tgt
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if pid_alive "$1" "$2"; then
    tgt=$pid
    [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] && tgt=-$pid
    kill -TERM -- "$tgt" 2>/dev/null || true
    local end=$(($(date +%s) + 15))
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
    kill -KILL -- "$tgt" 2>/dev/null || true
    log "$1 stopped (pid $pid)"
  fi
  rm -f "$f" "$RUN/$1.cfghash"
}

stop() {
  rm -f "$JSON" # first: tests must stop using host 2
  # all at once: each may take a moment to go
  stop_pid "$AGENT" "$ETC/neutron.conf" &
  for f in "$RUN"/fwd-*.pid; do
    [ -e "$f" ] || continue
    stop_pid "$(basename "$f" .pid)" "bind=$MGMT_HOST" &
  done
  wait
  if ns_exists; then
    # whatever still runs in the namespace was started there for host 2 (privsep helpers, a test's dockerd)
    local pids
    pids=$(ip netns pids "$NS" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086 # a list of pids
      kill -TERM $pids 2>/dev/null || true
      sleep 2
      pids=$(ip netns pids "$NS" 2>/dev/null || true)
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    fi
    ip netns delete "$NS" && log "netns $NS deleted (with mgmt0, phys0 and their peers)"
  fi
  for dev in "$H_MGMT" "$H_PHYS"; do
    ip link show "$dev" >/dev/null 2>&1 && ip link delete "$dev" && log "$dev deleted"
  done
  if ip link show "$SEG" >/dev/null 2>&1; then
    [ "$(ip -j link show "$PHYS_PEER" 2>/dev/null | jq -r '.[0].master // ""')" = "$SEG" ] &&
      ip link set "$PHYS_PEER" nomaster
    ip link delete "$SEG" && log "bridge $SEG deleted"
  fi
  local tun
  tun=$(cat "$STATE/tun_ip" 2>/dev/null || true)
  if [ -n "$tun" ] && ip -4 route show "$tun/32" dev "$PHYS_IF" 2>/dev/null | grep . >/dev/null; then
    ip route delete "$tun/32" dev "$PHYS_IF" && log "route $tun via $PHYS_IF deleted"
  fi
  # the agent's record in Neutron (only while the lab answers; a stopped lab keeps it in its DB)
  if [ -s "$LAB_JSON" ]; then
    local ids
    ids=$(neutron_call GET "/v2.0/agents?host=$HOST2_NAME" 2>/dev/null | jq -r '.agents[]?.id' || true)
    for id in $ids; do
      neutron_call DELETE "/v2.0/agents/$id" >/dev/null 2>&1 && log "agent record $id deleted"
    done
  fi
  rm -rf "$ETC" "$RUN" "$STATE" "$H2/lock"
  if [ "${PURGE:-0}" = 1 ]; then rm -rf "$H2"; fi
  return 0
}

# ---------------------------------------------------------------- start
addr_elsewhere() { # addr_elsewhere IP DEV: IP is on some host device other than DEV
  ip -4 -j addr show to "$1/32" | jq -e --arg d "$2" '[.[] | select(.ifname != $d)] | length > 0' >/dev/null
}

start() {
  local T0 lab_tun tun
  T0=$(date +%s)
  [ -s "$LAB_JSON" ] || die "the Neutron lab is not up ($LAB_JSON missing): run stack.sh first"
  local tool
  for tool in socat jq curl "$AGENT"; do
    command -v "$tool" >/dev/null || die "$tool is missing (APT_ONLY=1 stack.sh installs it)"
  done
  ip link show "$PHYS_IF" >/dev/null 2>&1 || die "$PHYS_IF missing: run stack.sh first"
  mkdir -p "$ETC" "$RUN" "$LOGD" "$STATE" "$H2/lock"
  lab_tun=$(lab_field '.tunnel_ip')
  [ -n "$lab_tun" ] || die "$LAB_JSON names no tunnel_ip"
  tun=${HOST2_TUN_IP:-$(cat "$STATE/tun_ip" 2>/dev/null || true)}
  if [ -z "$tun" ]; then
    tun=${lab_tun%.*}.$((${lab_tun##*.} + 1))
  fi
  addr_elsewhere "$tun" "" && die "tunnel address $tun is in use on this host (set HOST2_TUN_IP)"
  echo "$tun" >"$STATE/tun_ip"
  echo "$lab_tun" >"$STATE/lab_tun_ip"
  addr_elsewhere "$MGMT_HOST" "$H_MGMT" && die "$MGMT_HOST is in use on this host (set HOST2_MGMT)"

  # -- the namespace and its links
  ns_exists || { ip netns add "$NS" && log "netns $NS created"; }
  ip -n "$NS" link set lo up
  if ! ip link show "$SEG" >/dev/null 2>&1; then
    ip link add "$SEG" type bridge stp_state 0 forward_delay 0
    log "bridge $SEG created"
  fi
  # the bridge is a switch, not a host interface: it must not answer ARP for this host's addresses
  sysctl -qw "net.ipv4.conf.$SEG.arp_ignore=8" "net.ipv6.conf.$SEG.disable_ipv6=1"
  ip link set "$SEG" up
  local master
  master=$(ip -j link show "$PHYS_PEER" | jq -r '.[0].master // ""')
  [ -z "$master" ] || [ "$master" = "$SEG" ] || die "$PHYS_PEER is already in $master"
  [ "$master" = "$SEG" ] || ip link set "$PHYS_PEER" master "$SEG"
  ip link set "$PHYS_PEER" up
  if ! ip -n "$NS" link show phys0 >/dev/null 2>&1; then
    ip link delete "$H_PHYS" 2>/dev/null || true
    ip link add "$H_PHYS" type veth peer name phys0 netns "$NS"
    log "veth $H_PHYS / $NS:phys0 created"
  fi
  ip link set "$H_PHYS" master "$SEG" up
  ip -n "$NS" link set phys0 up
  ip -n "$NS" addr replace "$tun/32" dev phys0
  ip -n "$NS" route replace "$lab_tun/32" dev phys0 src "$tun"
  ip route replace "$tun/32" dev "$PHYS_IF" src "$lab_tun"
  if ! ip -n "$NS" link show mgmt0 >/dev/null 2>&1; then
    ip link delete "$H_MGMT" 2>/dev/null || true
    ip link add "$H_MGMT" type veth peer name mgmt0 netns "$NS"
    log "veth $H_MGMT / $NS:mgmt0 created"
  fi
  ip addr replace "$MGMT_HOST/30" dev "$H_MGMT"
  ip link set "$H_MGMT" up
  ip -n "$NS" addr replace "$MGMT_NS/30" dev mgmt0
  ip -n "$NS" link set mgmt0 up

  # -- forwarders: the lab's 127.0.0.1 services, on the management address only
  local ports=(5672) p
  [ -n "$(lab_field '.keystone.neutron_url')" ] && ports+=(5000 9696)
  [ -n "$(lab_field '.noauth.neutron_url')" ] && ports+=(9697)
  for p in "${ports[@]}"; do
    if ! pid_alive "fwd-$p" "bind=$MGMT_HOST"; then
      (
        close_inherited_fds
        exec setsid socat "TCP-LISTEN:$p,bind=$MGMT_HOST,reuseaddr,fork" "TCP:127.0.0.1:$p" \
          >>"$LOGD/fwd-$p.log" 2>&1 </dev/null
      ) &
      echo $! >"$RUN/fwd-$p.pid"
      log "forwarder $MGMT_HOST:$p -> 127.0.0.1:$p started (pid $!)"
    fi
  done

  # -- the L2 agent of host 2
  cat >"$ETC/neutron.conf" <<EOF
[DEFAULT]
host = $HOST2_NAME
use_stderr = false
transport_url = rabbit://$RABBIT_USER:$RABBIT_PASS@$MGMT_HOST:5672/
state_path = $STATE
[agent]
root_helper =
report_interval = 10
[oslo_concurrency]
lock_path = $H2/lock
[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 60
EOF
  cat >"$ETC/linuxbridge_agent.ini" <<EOF
[linux_bridge]
physical_interface_mappings = physnet1:phys0
[vxlan]
enable_vxlan = true
local_ip = $tun
l2_population = true
[agent]
polling_interval = 1
[securitygroup]
enable_security_group = true
firewall_driver = noop
EOF
  local h
  h=$(cat "$ETC/neutron.conf" "$ETC/linuxbridge_agent.ini" | sha256sum | cut -c1-16)
  if pid_alive "$AGENT" "$ETC/neutron.conf" && [ "$(cat "$RUN/$AGENT.cfghash" 2>/dev/null)" != "$h" ]; then
    log "$AGENT: configuration changed, restarting"
    stop_pid "$AGENT" "$ETC/neutron.conf"
  fi
  echo "$h" >"$RUN/$AGENT.cfghash"
  if pid_alive "$AGENT" "$ETC/neutron.conf"; then
    log "$AGENT already running (pid $(cat "$RUN/$AGENT.pid"))"
  else
    # ip netns exec: the agent sees the namespace's own /sys/class/net
    (
      close_inherited_fds
      exec setsid ip netns exec "$NS" "$AGENT" --config-file "$ETC/neutron.conf" \
        --config-file "$ETC/linuxbridge_agent.ini" --log-file "$LOGD/$AGENT.log" \
        >>"$LOGD/$AGENT.out" 2>&1 </dev/null
    ) &
    echo $! >"$RUN/$AGENT.pid"
    log "$AGENT started in $NS as host $HOST2_NAME (pid $!)"
  fi
  local end=$(($(date +%s) + 120))
  until agent_alive; do
    pid_alive "$AGENT" "$ETC/neutron.conf" || {
      tail -n 20 "$LOGD/$AGENT.log" "$LOGD/$AGENT.out" 2>/dev/null || true
      die "$AGENT died"
    }
    [ "$(date +%s)" -lt $end ] || die "timeout waiting for $AGENT of $HOST2_NAME to report"
    sleep 0.5
  done
  log "$AGENT of $HOST2_NAME alive"

  # -- what the tests read, written last
  local ks_url=null na_url=null
  [ -n "$(lab_field '.keystone.neutron_url')" ] && ks_url="\"http://$MGMT_HOST:9696\""
  [ -n "$(lab_field '.noauth.neutron_url')" ] && na_url="\"http://$MGMT_HOST:9697\""
  jq -n --arg ns "$NS" --arg host "$HOST2_NAME" --arg mh "$MGMT_HOST" --arg mn "$MGMT_NS" --arg tun "$tun" \
    --arg ltun "$lab_tun" --argjson ks "$ks_url" --argjson na "$na_url" --arg at "$(date -u '+%FT%TZ')" \
    '{netns: $ns, host: $host, host_address: $mh, address: $mn, tunnel_ip: $tun, lab_tunnel_ip: $ltun,
      neutron_url: $ks, noauth_neutron_url: $na,
      auth_url: (if $ks then "http://\($mh):5000/v3" else null end),
      transport_url_host: "\($mh):5672", written_at: $at}' >"$JSON.tmp"
  chmod 0644 "$JSON.tmp"
  mv -f "$JSON.tmp" "$JSON"
  log "host 2 up in $(($(date +%s) - T0))s: netns $NS, host $HOST2_NAME, $MGMT_NS (mgmt), $tun (tunnel); $JSON"
}

cmd=${1:-start}
case "$cmd" in
status)
  status
  exit $?
  ;;
start | stop) ;;
*) die "usage: $0 [start|status|stop]" ;;
esac
[ "$(id -u)" = 0 ] || die "run as root"
mkdir -p "$LAB_DIR/run"
exec 9>"$LAB_DIR/run/stack.lock"
flock -w 900 9 || die "another stack.sh/stack-stop.sh/host2.sh holds $LAB_DIR/run/stack.lock"
if [ "$cmd" = stop ]; then
  stop
  log "host 2 stopped"
else
  start
fi
