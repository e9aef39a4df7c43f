#!/usr/bin/env bash
# scripts/neutron/stack-stop.sh - stop what scripts/neutron/stack.sh started, and nothing else (first the
# second host of host2.sh, when one was started: it needs the lab).
#
# Every daemon was started by stack.sh with setsid, so its PID (from $LAB_DIR/run/NAME.pid) is
# also its process-group id; the group is signalled (this also reaches neutron's api/rpc/periodic
# workers and the privsep helpers). A PID is signalled only while its cmdline still matches.
# dnsmasq instances are spawned (and daemonised) by neutron-dhcp-agent; they are stopped by the
# PID files the agent keeps under $LAB_DIR/state/dhcp. epmd is stopped only if stack.sh saw
# rabbitmq spawn it. A mariadb that stack.sh found already running is left alone.
#
#   CLEAN=1 (default) also delete the host plumbing of the lab's Neutron, and only that:
#             qdhcp-<id> netns and brq<id[:11]> bridges of networks this lab knows (its DB, the
#             dhcp agent's state dir and log), vxlan devices with the lab's local_ip, bridges that
#             hold one of those or nlab-phys0(.vlan), the tap/vxlan ports of those bridges, and
#             the nlab-phys0 veth. Bridges, taps and netns of anything else (e.g. kuryr-ts's
#             embedded backend, which also names its bridges brq<net[:11]>) are never touched.
#   CLEAN=0   leave the devices (as neutron itself does when it stops).
#   PURGE=1   additionally drop the neutron/keystone databases, the rabbitmq state and
#             $LAB_DIR (the next stack.sh is a fresh install of the lab).
set -Euo pipefail
# With pipefail, never end a test pipeline in 'grep -q': grep exits at the first
# match, the writer may get SIGPIPE (141) and the test fails although it matched.
export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8
LAB_DIR=${LAB_DIR:-/var/lib/kuryr-neutron-lab}
RUN=$LAB_DIR/run
LOGD=$LAB_DIR/log
CLEAN=${CLEAN:-1}
PURGE=${PURGE:-0}
[ "$PURGE" = 1 ] && CLEAN=1
PHYS_IF=nlab-phys0
# the vxlan local_ip stack.sh chose (a /32 on nlab-phys0), or any it may have chosen
TUN_IPS=$(cat "$LAB_DIR/state/tun_ip" 2>/dev/null || echo "${TUN_IP:-198.51.100.1 203.0.113.1 100.64.254.1}")
SQL_SOCK=/run/mysqld/mysqld.sock

log() { printf '[neutron-stack-stop %(%H:%M:%S)T] %s\n' -1 "$*"; }
[ "$(id -u)" = 0 ] || {
  log "ERROR: run as root"
  exit 1
}
T0=$(date +%s)

# The second host (host2.sh) needs the lab: it goes first (it takes the stack lock itself).
if [ -d "$LAB_DIR/host2" ]; then
  LAB_DIR=$LAB_DIR bash "$(dirname "$(readlink -f "$0")")/host2.sh" stop || log "WARNING: host2.sh stop failed"
fi
if [ -d "$RUN" ]; then
  exec 9>"$RUN/stack.lock"
  flock -w 300 9 || log "WARNING: $RUN/stack.lock still held after 300 s (a stack.sh running?); stopping anyway"
fi
# first: tests must stop using the stack
rm -f "$LAB_DIR/kuryr-test.json" "$LAB_DIR/kuryr-test.env"

# stop_one NAME MATCH TIMEOUT_S
stop_one() {
  local name=$1 match=$2 t=$3 f=$RUN/$1.pid pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if ! kill -0 "$pid" 2>/dev/null; then
    log "$name: not running (stale pid $pid)"
    rm -f "$f" "$RUN/$name.cfghash"
    return 0
  fi
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -- "$match" >/dev/null; then
    log "$name: pid $pid is not '$match' any more; leaving it alone"
    rm -f "$f" "$RUN/$name.cfghash"
    return 0
  fi
  # signal the whole process group only if the pid leads its own group
  local tgt=$pid
  [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] && tgt=-$pid
  kill -TERM -- "$tgt" 2>/dev/null || true
  local end=$(($(date +%s) + t))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still alive after ${t}s, SIGKILL"
    kill -KILL -- "$tgt" 2>/dev/null || true
  fi
  # stragglers of the group (e.g. privsep helpers)
  if [ "$tgt" = "-$pid" ] && pgrep -g "$pid" >/dev/null 2>&1; then
    sleep 1
    kill -KILL -- "$tgt" 2>/dev/null || true
  fi
  rm -f "$f" "$RUN/$name.cfghash"
  log "$name stopped (pid $pid)"
}

# dnsmasq daemons spawned by the dhcp agent (their pid files are in the lab state dir)
stop_dnsmasq() {
  local pf pid
  for pf in "$LAB_DIR"/state/dhcp/*/pid; do
    [ -s "$pf" ] || continue
    pid=$(cat "$pf")
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep "dnsmasq.*$LAB_DIR" >/dev/null; then
      kill -TERM "$pid" && log "dnsmasq stopped (pid $pid)"
    fi
  done
}

# Networks of this lab, for CLEAN: collected before the DB goes away.
UUID_RE='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
OWNED_NETS=
if [ "$CLEAN" = 1 ]; then
  OWNED_NETS=$(
    {
      mariadb --socket=$SQL_SOCK -uroot -N -e 'SELECT id FROM neutron.networks' 2>/dev/null || true
      ls "$LAB_DIR/state/dhcp" 2>/dev/null || true
      grep -ohE "$UUID_RE" "$LOGD/neutron-dhcp-agent.log" 2>/dev/null || true
    } | grep -xE "$UUID_RE" | sort -u
  )
fi

stop_one neutron-dhcp-agent neutron-dhcp-agent 15
stop_dnsmasq
stop_one neutron-linuxbridge-agent neutron-linuxbridge-agent 15
stop_one ebtables-janitor ebtables-janitor.sh 5
stop_one neutron-server-noauth neutron-server-noauth.log 20
stop_one neutron-server neutron-server.log 20
stop_one keystone uwsgi 15
stop_one rabbitmq rabbitmq-server 30
# epmd: only if rabbitmq start found none and recorded the one it spawned
if [ -s "$RUN/epmd.pid" ]; then
  pid=$(cat "$RUN/epmd.pid")
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep epmd >/dev/null; then
    kill -TERM "$pid" && log "epmd stopped (pid $pid)"
  fi
  rm -f "$RUN/epmd.pid"
fi

if [ "$PURGE" = 1 ] && mariadb-admin --socket=$SQL_SOCK ping >/dev/null 2>&1; then # the DBs are ours even if mariadb is not
  mariadb --socket=$SQL_SOCK -uroot -e "DROP DATABASE IF EXISTS neutron; DROP DATABASE IF EXISTS keystone;
    DROP USER IF EXISTS 'neutron'@'localhost'; DROP USER IF EXISTS 'neutron'@'127.0.0.1';
    DROP USER IF EXISTS 'keystone'@'localhost'; DROP USER IF EXISTS 'keystone'@'127.0.0.1';" &&
    log "dropped neutron/keystone databases"
elif [ "$PURGE" = 1 ]; then
  log "WARNING: mariadb is not running: databases neutron/keystone not dropped (the next stack.sh reuses them)"
fi
stop_one mariadb mariadbd 60

if [ "$CLEAN" = 1 ]; then
  owned_net() { # owned_net ID_OR_PREFIX : a network of this lab has this id (or id prefix)
    [ -n "$1" ] && printf '%s\n' "$OWNED_NETS" | awk -v p="$1" 'index($0, p) == 1 {f = 1} END {exit !f}'
  }
  for ns in $(ip netns list 2>/dev/null | awk '/^qdhcp-/{print $1}'); do
    if owned_net "${ns#qdhcp-}"; then ip netns delete "$ns" && log "netns $ns deleted"; fi
  done
  links=$(ip -j -d link show 2>/dev/null || echo '[]')
  # vxlan devices of the linuxbridge agent (the lab's local_ip) and the bridges holding them
  # or holding nlab-phys0 / nlab-phys0.<vlan>
  # shellcheck disable=SC2086 # TUN_IPS is a list
  ips=$(printf '%s\n' $TUN_IPS | jq -R . | jq -sc .)
  ours_masters=$(echo "$links" | jq -r --argjson ips "$ips" --arg p "$PHYS_IF" '.[]
    | select((.linkinfo.info_kind == "vxlan" and (.linkinfo.info_data.local as $l | $ips | index($l)))
             or .ifname == $p or (.ifname | startswith($p + ".")))
    | .master // empty' | sort -u)
  for br in $(echo "$links" | jq -r '.[] | select(.linkinfo.info_kind == "bridge") | .ifname | select(startswith("brq"))'); do
    if ! printf '%s\n' "$ours_masters" | grep -xF -- "$br" >/dev/null && ! owned_net "${br#brq}"; then
      continue
    fi
    for port in $(ip -o link show master "$br" | awk -F': ' '{print $2}' | cut -d@ -f1); do
      case "$port" in tap* | vxlan-*) ip link delete "$port" 2>/dev/null || true ;; esac
    done
    ip link delete "$br" && log "bridge $br deleted"
  done
  for vx in $(echo "$links" | jq -r --argjson ips "$ips" '.[]
      | select(.linkinfo.info_kind == "vxlan" and (.linkinfo.info_data.local as $l | $ips | index($l))) | .ifname'); do
    ip link show "$vx" >/dev/null 2>&1 && ip link delete "$vx" && log "$vx deleted"
  done
  ip link show $PHYS_IF >/dev/null 2>&1 && ip link delete $PHYS_IF && log "veth $PHYS_IF deleted"
fi

if [ "$PURGE" = 1 ]; then
  rm -rf "$LAB_DIR" && log "removed $LAB_DIR"
fi
log "done in $(($(date +%s) - T0))s"
