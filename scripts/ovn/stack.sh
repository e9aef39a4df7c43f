#!/usr/bin/env bash
# scripts/ovn/stack.sh - a second loopback-only OpenStack Neutron (Zed, Debian 12 packages) whose ML2
# mechanism driver is OVN, next to the Linux bridge lab of scripts/neutron/stack.sh, for kuryr-ts's
# tests with vif_type=ovs. Stop it with scripts/ovn/stack-stop.sh.
#
# What it brings up (everything on 127.0.0.1 or unix sockets):
#   ovsdb-server + ovs-vswitchd  Open vSwitch, USERSPACE datapath (the kernel may have no openvswitch
#                                module): br-int is datapath_type=netdev, set by ovn-controller from
#                                external_ids:ovn-bridge-datapath-type=netdev. Default run dir
#                                /var/run/openvswitch, so a plain `ovs-vsctl` (kuryr-ts, os-vif) works.
#   OVN NB ovsdb (:6641) + SB ovsdb (:6642) + ovn-northd   (run dir /var/run/ovn)
#   ovn-controller               chassis "$(hostname)", encap geneve 127.0.0.1, bridge br-int
#   neutron-server :9698         auth_strategy noauth (AUTH=noauth|both)
#   neutron-server :9699         auth_strategy keystone (AUTH=keystone|both): the Linux bridge lab's
#                                Keystone (:5000), registered as service type `network` in region
#                                RegionOVN (the Linux bridge lab's Neutron is RegionOne)
#   Both servers: DB neutron_ovn on the Linux bridge lab's MariaDB, RabbitMQ vhost neutron-ovn (user
#   novn) on its broker; ML2 mechanism_drivers=ovn, type_drivers=local,flat,geneve (tenant geneve),
#   port_security; service plugins ovn-router, trunk. DHCP is OVN's own (DHCP_Options rows, answered
#   by ovn-controller): no DHCP agent, no L2 agent, no metadata agent.
#
# It needs the MariaDB and RabbitMQ of the Linux bridge lab (and its Keystone for AUTH=keystone|both)
# and never stops, restarts or reconfigures anything of that lab: it only adds a database, a RabbitMQ
# vhost + user, and a Keystone region + endpoints. Then it writes $LAB_DIR/kuryr-test.json in the
# format of the Linux bridge lab (test/helpers/neutron-lab.ts reads it through KURYR_NEUTRON_LAB),
# plus mechanism_driver "ovn", vif_type "ovs", bridge "br-int".
#
# Idempotent: a re-run only starts what is down (a neutron-server is restarted when its generated
# configuration changed).
#
#   stack.sh          install what is missing, start what is down, wait, write kuryr-test.json
#   stack.sh status   exit 0 when every daemon of the lab is alive and its APIs answer
#
# Environment knobs:
#   LAB_DIR=/var/lib/kuryr-ovn-lab       config, logs, pid files, OVS/OVN databases, kuryr-test.json
#   NLAB_DIR=/var/lib/kuryr-neutron-lab  the Linux bridge lab (its RabbitMQ state, its kuryr-test.json)
#   AUTH=both|keystone|noauth            default both; keystone needs the Linux bridge lab's Keystone
#   SKIP_APT=1 | APT_ONLY=1              as in scripts/neutron/stack.sh
#   NEUTRON_DEBUG=1                      debug logging in neutron-server
#   OVN_HOST=$(hostname)                 chassis name and hostname (= binding:host_id)
#   OVS_USERSPACE_TSO=1|0                other_config:userspace-tso-enable (default 1: TCP through the
#                                        userspace datapath with the default veth offloads)
#   NOAUTH_PORT=9698 KEYSTONE_NEUTRON_PORT=9699
set -Eeuo pipefail
# With pipefail, never end a test pipeline in 'grep -q': grep exits at the first
# match, the writer may get SIGPIPE (141) and the test fails although it matched.

export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin # system python, not pyenv
export LC_ALL=C.UTF-8

LAB_DIR=${LAB_DIR:-/var/lib/kuryr-ovn-lab}
NLAB_DIR=${NLAB_DIR:-/var/lib/kuryr-neutron-lab}
AUTH=${AUTH:-both}
NEUTRON_DEBUG=${NEUTRON_DEBUG:-0}

HOST_IP=127.0.0.1
NOAUTH_PORT=${NOAUTH_PORT:-9698}
KEYSTONE_NEUTRON_PORT=${KEYSTONE_NEUTRON_PORT:-9699}
KEYSTONE_PORT=${KEYSTONE_PORT:-5000}
NB_PORT=6641
SB_PORT=6642
OVN_HOST=${OVN_HOST:-$(hostname)}
DB_NAME=neutron_ovn
DB_USER=neutron_ovn
DB_PASS=${OVN_DB_PASS:-novndb}
MQ_VHOST=neutron-ovn
MQ_USER=novn
MQ_PASS=${OVN_MQ_PASS:-novnmq}
RABBIT_NODE=kuryrlab@localhost
# the Linux bridge lab's Keystone users (scripts/neutron/stack.sh defaults)
ADMIN_PASS=${ADMIN_PASS:-nlabadmin}
NEUTRON_SVC_PASS=${NEUTRON_SVC_PASS:-nlabneutron}
KURYR_USER=${KURYR_USER:-kuryr}
KURYR_PASS=${KURYR_PASS:-kuryr-lab}
KURYR_PROJECT=${KURYR_PROJECT:-service}
REGION=RegionOVN
KS_REGION=RegionOne # the Linux bridge lab's region (Keystone's identity endpoints)

ETC=$LAB_DIR/etc
RUN=$LAB_DIR/run
LOGD=$LAB_DIR/log
STATE=$LAB_DIR/state
DBD=$LAB_DIR/db
JSON=$LAB_DIR/kuryr-test.json
KS_URL=http://$HOST_IP:$KEYSTONE_PORT
NOAUTH_URL=http://$HOST_IP:$NOAUTH_PORT
KSN_URL=http://$HOST_IP:$KEYSTONE_NEUTRON_PORT
# default run dirs of the Debian packages: ovs-vsctl/ovs-appctl/ovn-nbctl work without options
OVS_RUNDIR=/var/run/openvswitch
OVN_RUNDIR=/var/run/ovn
OVS_SOCK=$OVS_RUNDIR/db.sock
NB_SOCK=$OVN_RUNDIR/ovnnb_db.sock
SB_SOCK=$OVN_RUNDIR/ovnsb_db.sock

log() { printf '[ovn-stack %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() {
  log "ERROR: $*"
  exit 1
}

# pid_alive NAME [cmdline-substring]: pid file exists and the process is alive (a zombie is not)
pid_alive() {
  local f=$RUN/$1.pid pid s
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  s=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "${s:0:1}" != Z ] || return 1
  if [ -n "${2:-}" ]; then tr '\0' ' ' <"/proc/$pid/cmdline" | grep -- "$2" >/dev/null || return 1; fi
  return 0
}

# ---------------------------------------------------------------- status
if [ "${1:-}" = status ]; then
  rc=0
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .pid)
    if pid_alive "$n"; then echo "$n: running (pid $(cat "$f"))"; else
      echo "$n: DOWN"
      rc=1
    fi
  done
  if [ -s "$JSON" ]; then
    for url in $(jq -r '[.keystone.neutron_url, .noauth.neutron_url, .keystone.auth_url] | map(select(.)) | .[]' "$JSON"); do
      if curl -sf -m 5 "$url/" >/dev/null; then echo "$url: answers"; else
        echo "$url: NOT ANSWERING"
        rc=1
      fi
    done
    if ovs-vsctl --timeout=5 br-exists br-int 2>/dev/null; then echo "br-int: present"; else
      echo "br-int: MISSING"
      rc=1
    fi
  else
    echo "$JSON: missing (OVN lab not started)"
    rc=1
  fi
  exit $rc
fi
[ $# -eq 0 ] || die "usage: $0 [status]"

[ "$(id -u)" = 0 ] || die "run as root"
case "$AUTH" in keystone | noauth | both) ;; *) die "AUTH must be both, keystone or noauth" ;; esac
T0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# ---------------------------------------------------------------- apt
# neutron-server and python3-ovsdbapp also come with the Linux bridge lab; ML2/OVN's mechanism
# driver is part of python3-neutron (neutron.plugins.ml2.drivers.ovn).
PKGS=(openvswitch-switch openvswitch-common ovn-central ovn-host ovn-common
  neutron-server python3-neutron python3-ovsdbapp python3-openvswitch python3-pymysql
  python3-keystoneclient mariadb-client iproute2 curl jq procps util-linux)

install_packages() {
  local missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && {
    log "apt: all packages present"
    return 0
  }
  [ "${SKIP_APT:-0}" = 1 ] && die "missing packages (SKIP_APT=1): ${missing[*]}"
  log "apt: installing ${missing[*]}"
  # keep package postinsts from starting services (ovs-ctl would modprobe openvswitch and start
  # the system ovsdb-server/ovs-vswitchd, ovn-ctl the system northd)
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" \
    >/tmp/kuryr-ovn-apt.log 2>&1 || {
    [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    apt-get -o DPkg::Lock::Timeout=600 update -qq || true
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" \
      >>/tmp/kuryr-ovn-apt.log 2>&1 || {
      tail -30 /tmp/kuryr-ovn-apt.log
      die "apt-get install failed (log: /tmp/kuryr-ovn-apt.log)"
    }
  }
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}
install_packages
if [ "${APT_ONLY:-0}" = 1 ]; then
  log "packages ready in $(since "$T0")s (APT_ONLY=1)"
  exit 0
fi

mkdir -p "$ETC" "$RUN" "$LOGD" "$STATE" "$DBD" "$LAB_DIR/lock"
install -d -m 755 "$OVS_RUNDIR" "$OVN_RUNDIR"
# one stack.sh / stack-stop.sh at a time
exec 9>"$RUN/stack.lock"
flock -w 600 9 || die "another stack.sh/stack-stop.sh holds $RUN/stack.lock"
# a stack described otherwise (other AUTH) must not be used until this run has brought it up
if [ "$(jq -r '.modes' "$JSON" 2>/dev/null)" != "$AUTH" ]; then rm -f "$JSON"; fi
# and a run that fails leaves no description behind
trap 'rc=$?; if [ $rc != 0 ]; then rm -f "$JSON"; fi' EXIT

# ---------------------------------------------------------------- helpers
# start_daemon NAME MATCH CMD... : start in its own session (pgid == pid), as root
start_daemon() {
  local name=$1 match=$2
  shift 2
  if pid_alive "$name" "$match"; then
    log "$name already running (pid $(cat "$RUN/$name.pid"))"
    return 0
  fi
  # 9>&-: the daemon must not inherit (and so hold for ever) the stack lock
  setsid "$@" >>"$LOGD/$name.out" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
  log "$name started (pid $!)"
}

# stop_daemon NAME : TERM its process group (pgid == pid), KILL after 20s
stop_daemon() {
  local f=$RUN/$1.pid pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  kill -TERM -- "-$pid" 2>/dev/null || true
  local end=$(($(date +%s) + 20))
  # a zombie counts as gone (an init that reaps slowly leaves it; kill -0 succeeds on zombies)
  while pid_alive "$1" && [ "$(date +%s)" -lt $end ]; do sleep 0.1; done
  if pid_alive "$1"; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  rm -f "$f" "$RUN/$1.cfghash"
  log "$1 stopped (pid $pid)"
}

# restart_on_change NAME MATCH FILE... : if NAME runs with other config files than those now
# written, stop it (the caller then starts it again)
restart_on_change() {
  local name=$1 match=$2
  shift 2
  local h
  h=$(cat "$@" | sha256sum | cut -c1-16)
  if pid_alive "$name" "$match" && [ "$(cat "$RUN/$name.cfghash" 2>/dev/null)" != "$h" ]; then
    log "$name: configuration changed, restarting"
    stop_daemon "$name"
  fi
  echo "$h" >"$RUN/$name.cfghash"
}

wait_for() { # [GUARD=pidname] wait_for SECONDS DESCRIPTION CMD...
  local t=$1 what=$2
  shift 2
  local end=$(($(date +%s) + t))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge $end ] && die "timeout waiting for $what"
    if [ -n "${GUARD:-}" ] && ! pid_alive "$GUARD"; then
      tail -n 15 "$LOGD/$GUARD.log" "$LOGD/$GUARD.out" 2>/dev/null || true
      die "$GUARD died while waiting for $what"
    fi
    sleep 0.3
  done
  log "$what: ok"
}

# foreign_socket NAME SOCKET CHECK-CMD... : a unix socket somebody else answers on (we never take
# over daemons we did not start); a stale socket of a dead daemon is removed
foreign_socket() {
  local name=$1 sock=$2
  shift 2
  pid_alive "$name" && return 1
  [ -S "$sock" ] || return 1
  "$@" >/dev/null 2>&1 || {
    rm -f "$sock"
    return 1
  }
  return 0
}
# foreign_daemon NAME TARGET: a daemon we did not start answers on the default control socket
foreign_daemon() { ! pid_alive "$1" && "${2%%-*}-appctl" -t "$2" version >/dev/null 2>&1; }

ensure_db() { # ensure_db FILE SCHEMA : create or upgrade an ovsdb database file
  if [ ! -s "$1" ]; then
    ovsdb-tool create "$1" "$2"
    log "created $(basename "$1")"
  elif [ "$(ovsdb-tool needs-conversion "$1" "$2")" = yes ]; then
    ovsdb-tool convert "$1" "$2"
    log "converted $(basename "$1") to the installed schema"
  fi
}

# ---------------------------------------------------------------- the Linux bridge lab's MariaDB + RabbitMQ
SQL_SOCK=/run/mysqld/mysqld.sock
db_ping() { mariadb-admin --socket=$SQL_SOCK ping >/dev/null 2>&1; }
mq_ping() { (exec 3<>/dev/tcp/$HOST_IP/5672) 2>/dev/null; }
db_ping && mq_ping || die "MariaDB ($SQL_SOCK) or RabbitMQ (:5672) of the Linux bridge lab is not answering: start it with scripts/neutron/stack.sh"
rabbit_env=(HOME=/var/lib/rabbitmq
  "RABBITMQ_NODENAME=$RABBIT_NODE"
  "RABBITMQ_NODE_IP_ADDRESS=$HOST_IP" RABBITMQ_NODE_PORT=5672
  RABBITMQ_DIST_PORT=25672 "ERL_EPMD_ADDRESS=$HOST_IP"
  "RABBITMQ_LOG_BASE=$NLAB_DIR/rabbitmq/log"
  "RABBITMQ_MNESIA_BASE=$NLAB_DIR/rabbitmq/mnesia"
  "RABBITMQ_ENABLED_PLUGINS_FILE=$NLAB_DIR/rabbitmq/enabled_plugins"
  "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}")
rabbitctl() {
  env "${rabbit_env[@]}" setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
    /usr/lib/rabbitmq/bin/rabbitmqctl -q -n $RABBIT_NODE "$@"
}
WANT_KS=0
[ "$AUTH" != noauth ] && WANT_KS=1
if [ $WANT_KS = 1 ] && ! curl -sf -m 5 "$KS_URL/v3/" >/dev/null; then
  die "AUTH=$AUTH needs the Keystone of the Linux bridge lab ($KS_URL), which does not answer (use AUTH=noauth, or start it with AUTH=both)"
fi

# ---------------------------------------------------------------- Open vSwitch (userspace datapath)
OVS_DB=$DBD/conf.db
# (not `ovs-vsctl show`: on a fresh DB without the Open_vSwitch row it waits out its --timeout)
ovs_ok() { [ -S $OVS_SOCK ] && ovsdb-client --timeout=3 list-dbs unix:$OVS_SOCK | grep -x Open_vSwitch; }
foreign_socket ovsdb-server "$OVS_SOCK" ovs_ok && die "an ovsdb-server we did not start answers on $OVS_SOCK"
if ! pid_alive ovsdb-server "$OVS_DB"; then
  ensure_db "$OVS_DB" /usr/share/openvswitch/vswitch.ovsschema
  start_daemon ovsdb-server "$OVS_DB" \
    ovsdb-server "$OVS_DB" --remote=punix:$OVS_SOCK \
    --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
    --pidfile=$OVS_RUNDIR/ovsdb-server.pid --unixctl=$OVS_RUNDIR/ovsdb-server.ctl \
    --no-chdir --log-file="$LOGD/ovsdb-server.log" -vconsole:off
  GUARD=ovsdb-server wait_for 30 "ovsdb-server ($OVS_SOCK)" ovs_ok
else
  log "ovsdb-server already running (pid $(cat "$RUN/ovsdb-server.pid"))"
fi
# system-id, hostname and the ovn-controller settings (live: ovn-controller follows them).
# ovn-bridge-datapath-type=netdev: ovn-controller creates/keeps br-int on the userspace datapath
# (no openvswitch kernel module needed).
ovs-vsctl --no-wait init
ovs-vsctl --no-wait set Open_vSwitch . \
  external-ids:system-id="$OVN_HOST" external-ids:hostname="$OVN_HOST" \
  external-ids:ovn-remote="tcp:$HOST_IP:$SB_PORT" external-ids:ovn-encap-type=geneve \
  external-ids:ovn-encap-ip=$HOST_IP external-ids:ovn-bridge=br-int \
  external-ids:ovn-bridge-datapath-type=netdev
foreign_daemon ovs-vswitchd ovs-vswitchd && die "an ovs-vswitchd we did not start is running ($OVS_RUNDIR)"
# Userspace TSO: without it, TCP between veths with the default offloads (tx checksum, TSO) fails on
# the netdev datapath (partial checksums forwarded as they are); ICMP works either way. Read by
# ovs-vswitchd only at start-up.
TSO=true
[ "${OVS_USERSPACE_TSO:-1}" = 1 ] || TSO=false
ovs-vsctl --no-wait set Open_vSwitch . other_config:userspace-tso-enable=$TSO
if pid_alive ovs-vswitchd "ovs-vswitchd unix:$OVS_SOCK" && [ "$(cat "$RUN/ovs-vswitchd.tso" 2>/dev/null)" != $TSO ]; then
  log "ovs-vswitchd: userspace-tso-enable changed to $TSO, restarting"
  stop_daemon ovs-vswitchd
fi
start_daemon ovs-vswitchd "ovs-vswitchd unix:$OVS_SOCK" \
  ovs-vswitchd unix:$OVS_SOCK --pidfile=$OVS_RUNDIR/ovs-vswitchd.pid \
  --no-chdir --log-file="$LOGD/ovs-vswitchd.log" -vconsole:off
echo $TSO >"$RUN/ovs-vswitchd.tso"
GUARD=ovs-vswitchd wait_for 30 "ovs-vswitchd" ovs-appctl -t ovs-vswitchd version
# br-int as ovn-controller makes it (it would create it too), on the userspace datapath from the start
ovs-vsctl --timeout=20 --may-exist add-br br-int \
  -- set Bridge br-int datapath_type=netdev fail_mode=secure other_config:disable-in-band=true
ip link set br-int up 2>/dev/null || true
log "br-int: datapath_type=$(ovs-vsctl get Bridge br-int datapath_type)"

# ---------------------------------------------------------------- OVN central: NB, SB, northd
NB_DB=$DBD/ovnnb_db.db
SB_DB=$DBD/ovnsb_db.db
nb_ok() { [ -S $NB_SOCK ] && ovn-nbctl --db=unix:$NB_SOCK --timeout=3 show; }
sb_ok() { [ -S $SB_SOCK ] && ovn-sbctl --db=unix:$SB_SOCK --timeout=3 show; }
foreign_socket ovsdb-nb "$NB_SOCK" nb_ok && die "an OVN NB ovsdb-server we did not start answers on $NB_SOCK"
foreign_socket ovsdb-sb "$SB_SOCK" sb_ok && die "an OVN SB ovsdb-server we did not start answers on $SB_SOCK"
if ! pid_alive ovsdb-nb "$NB_DB"; then
  ensure_db "$NB_DB" /usr/share/ovn/ovn-nb.ovsschema
  start_daemon ovsdb-nb "$NB_DB" \
    ovsdb-server "$NB_DB" --remote=punix:$NB_SOCK --remote=ptcp:$NB_PORT:$HOST_IP \
    --remote=db:OVN_Northbound,NB_Global,connections \
    --pidfile=$OVN_RUNDIR/ovnnb_db.pid --unixctl=$OVN_RUNDIR/ovnnb_db.ctl \
    --no-chdir --log-file="$LOGD/ovsdb-nb.log" -vconsole:off
fi
if ! pid_alive ovsdb-sb "$SB_DB"; then
  ensure_db "$SB_DB" /usr/share/ovn/ovn-sb.ovsschema
  start_daemon ovsdb-sb "$SB_DB" \
    ovsdb-server "$SB_DB" --remote=punix:$SB_SOCK --remote=ptcp:$SB_PORT:$HOST_IP \
    --remote=db:OVN_Southbound,SB_Global,connections \
    --pidfile=$OVN_RUNDIR/ovnsb_db.pid --unixctl=$OVN_RUNDIR/ovnsb_db.ctl \
    --no-chdir --log-file="$LOGD/ovsdb-sb.log" -vconsole:off
fi
GUARD=ovsdb-nb wait_for 30 "OVN NB ovsdb (tcp:$HOST_IP:$NB_PORT)" sh -c "[ -S $NB_SOCK ] && ovn-nbctl --db=tcp:$HOST_IP:$NB_PORT --timeout=3 show"
GUARD=ovsdb-sb wait_for 30 "OVN SB ovsdb (tcp:$HOST_IP:$SB_PORT)" sh -c "[ -S $SB_SOCK ] && ovn-sbctl --db=tcp:$HOST_IP:$SB_PORT --timeout=3 show"
ovn-nbctl --db=unix:$NB_SOCK --no-wait init
ovn-sbctl --db=unix:$SB_SOCK init
foreign_daemon ovn-northd ovn-northd && die "an ovn-northd we did not start is running ($OVN_RUNDIR)"
start_daemon ovn-northd "ovn-northd" \
  ovn-northd --ovnnb-db=unix:$NB_SOCK --ovnsb-db=unix:$SB_SOCK \
  --pidfile=$OVN_RUNDIR/ovn-northd.pid --no-chdir --log-file="$LOGD/ovn-northd.log" -vconsole:off
GUARD=ovn-northd wait_for 30 "ovn-northd active" sh -c "ovn-appctl -t ovn-northd status | grep active >/dev/null"

# ---------------------------------------------------------------- ovn-controller (this chassis)
foreign_daemon ovn-controller ovn-controller && die "an ovn-controller we did not start is running ($OVN_RUNDIR)"
start_daemon ovn-controller "ovn-controller unix:$OVS_SOCK" \
  ovn-controller unix:$OVS_SOCK --pidfile=$OVN_RUNDIR/ovn-controller.pid \
  --no-chdir --log-file="$LOGD/ovn-controller.log" -vconsole:off
chassis_ok() { # the chassis is registered and ovn-controller is connected to SB
  ovn-sbctl --db=unix:$SB_SOCK --timeout=3 --bare --columns=hostname find Chassis name="$OVN_HOST" | grep -x "$OVN_HOST" >/dev/null &&
    ovn-appctl -t ovn-controller connection-status | grep -x connected >/dev/null
}
GUARD=ovn-controller wait_for 60 "chassis $OVN_HOST in OVN SB" chassis_ok
# a real round trip: NB change -> northd -> SB -> ovn-controller -> Chassis_Private.nb_cfg. The OVN
# agent's `alive` compares nb_cfg values, both 0 on a fresh DB: an early "alive" proves nothing.
GUARD=ovn-controller wait_for 60 "ovn-controller caught up (ovn-nbctl --wait=hv sync)" \
  ovn-nbctl --db=unix:$NB_SOCK --timeout=10 --wait=hv sync

# ---------------------------------------------------------------- keystone registration (AUTH=keystone|both)
# The same `network` service as the Linux bridge lab's Neutron, with endpoints in region RegionOVN:
# kuryr-ts picks them with region_name = RegionOVN. The service user `neutron` (validating tokens)
# and the user kuryr are the Linux bridge lab's.
# ks_token USER PASSWORD PROJECT : prints a project-scoped token; sets KS_CATALOG (JSON)
ks_token() {
  local body hdrs tok
  body=$(jq -nc --arg u "$1" --arg p "$2" --arg pr "$3" '{auth: {
    identity: {methods: ["password"], password: {user: {name: $u, domain: {name: "Default"}, password: $p}}},
    scope: {project: {name: $pr, domain: {name: "Default"}}}}}')
  hdrs=$(mktemp)
  KS_CATALOG=$(curl -sf -m 20 -D "$hdrs" -H 'Content-Type: application/json' -d "$body" "$KS_URL/v3/auth/tokens") || {
    rm -f "$hdrs"
    return 1
  }
  tok=$(tr -d '\r' <"$hdrs" | awk 'tolower($1) == "x-subject-token:" {print $2}')
  rm -f "$hdrs"
  [ -n "$tok" ] && echo "$tok"
}
ks_registered() { # the kuryr user's token has our three endpoints in region RegionOVN
  ks_token "$KURYR_USER" "$KURYR_PASS" "$KURYR_PROJECT" >/dev/null || return 1
  echo "$KS_CATALOG" | jq -e --arg u "$KSN_URL" --arg r "$REGION" \
    '[.token.catalog[] | select(.type == "network") | .endpoints[] | select(.url == $u and .region_id == $r)] | length >= 3' >/dev/null
}
if [ $WANT_KS = 1 ] && ! ks_registered; then
  log "keystone: region $REGION, network endpoints $KSN_URL"
  KS_URL=$KS_URL ADMIN_PASS=$ADMIN_PASS REGION=$REGION URL=$KSN_URL \
    /usr/bin/python3 - <<'PY' >>"$LOGD/keystone-register.log" 2>&1 || die "keystone registration failed, see $LOGD/keystone-register.log"
import os
from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

e = os.environ
ks = client.Client(session=session.Session(auth=v3.Password(
    auth_url=e["KS_URL"] + "/v3", username="admin", password=e["ADMIN_PASS"],
    project_name="admin", user_domain_id="default", project_domain_id="default")))
region = e["REGION"]
if region not in [r.id for r in ks.regions.list()]:
    ks.regions.create(id=region, description="kuryr-ts OVN lab")
svcs = ks.services.list(type="network")
svc = svcs[0] if svcs else ks.services.create("neutron", type="network")
for iface in ("public", "internal", "admin"):
    eps = [ep for ep in ks.endpoints.list(service=svc, interface=iface) if ep.region_id == region]
    if not eps:
        ks.endpoints.create(svc, e["URL"], interface=iface, region=region)
    elif eps[0].url != e["URL"]:
        ks.endpoints.update(eps[0], url=e["URL"])
print("network endpoints", region, e["URL"])
PY
  ks_registered || die "keystone registration did not take: no $REGION network endpoint in the $KURYR_USER token's catalog"
  log "keystone: $REGION registered"
fi

# ---------------------------------------------------------------- neutron config
DEBUG_BOOL=false
[ "$NEUTRON_DEBUG" = 1 ] && DEBUG_BOOL=true
TRANSPORT_URL="rabbit://$MQ_USER:$MQ_PASS@$HOST_IP:5672/$MQ_VHOST"
cat >"$ETC/neutron.conf" <<EOF
[DEFAULT]
debug = $DEBUG_BOOL
use_stderr = false
bind_host = $HOST_IP
core_plugin = ml2
# ovn-router = L3 in OVN (no l3 agent); trunk has an OVN driver. tag (standard-attr-tag), timestamp,
# revisions, network_ip_availability, auto_allocate and flavors are added by neutron by default
service_plugins = ovn-router,trunk
# bind_port and auth_strategy are in neutron-noauth.conf / neutron-keystone.conf
# own vhost on the Linux bridge lab's broker: its agents never see these messages
transport_url = $TRANSPORT_URL
state_path = $STATE
host = $OVN_HOST
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
allow_overlapping_ips = true
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
# no DHCP agent: OVN answers DHCP itself (native DHCP, DHCP_Options in the NB DB)
dhcp_agent_notification = false
[agent]
root_helper =
[database]
connection = mysql+pymysql://$DB_USER:$DB_PASS@$HOST_IP/$DB_NAME
max_pool_size = 10
max_overflow = 20
[oslo_concurrency]
lock_path = $LAB_DIR/lock
[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 60
[keystone_authtoken]
www_authenticate_uri = $KS_URL
auth_url = $KS_URL
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = neutron
password = $NEUTRON_SVC_PASS
# Keystone's own endpoints are in the Linux bridge lab's region
region_name = $KS_REGION
[nova]
auth_type = none
EOF

cat >"$ETC/ml2_conf.ini" <<EOF
[ml2]
type_drivers = local,flat,geneve
tenant_network_types = geneve
mechanism_drivers = ovn
extension_drivers = port_security
overlay_ip_version = 4
[ml2_type_flat]
flat_networks = physnet1
[ml2_type_geneve]
vni_ranges = 1:65536
max_header_size = 38
[securitygroup]
enable_security_group = true
[ovn]
ovn_nb_connection = tcp:$HOST_IP:$NB_PORT
ovn_sb_connection = tcp:$HOST_IP:$SB_PORT
ovn_l3_scheduler = leastloaded
ovn_metadata_enabled = false
enable_distributed_floating_ip = false
# NB DB and neutron DB are both lab state: repair drift at start-up
neutron_sync_mode = repair
EOF

cat >"$ETC/neutron-noauth.conf" <<EOF
[DEFAULT]
bind_port = $NOAUTH_PORT
auth_strategy = noauth
EOF
cat >"$ETC/neutron-keystone.conf" <<EOF
[DEFAULT]
bind_port = $KEYSTONE_NEUTRON_PORT
auth_strategy = keystone
EOF

NCONF=(--config-file "$ETC/neutron.conf" --config-file "$ETC/ml2_conf.ini")
restart_on_change neutron-server "$LOGD/neutron-server.log" "$ETC/neutron.conf" "$ETC/ml2_conf.ini" "$ETC/neutron-noauth.conf"
restart_on_change neutron-server-keystone "$LOGD/neutron-server-keystone.log" "$ETC/neutron.conf" "$ETC/ml2_conf.ini" "$ETC/neutron-keystone.conf"
if ! pid_alive neutron-server "$LOGD/neutron-server.log" && ! pid_alive neutron-server-keystone "$LOGD/neutron-server-keystone.log"; then
  # ---- MariaDB database + user (the Linux bridge lab's server, another database)
  mariadb --socket=$SQL_SOCK -uroot -e "
    CREATE DATABASE IF NOT EXISTS $DB_NAME CHARACTER SET utf8mb4;
    CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
    CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
    GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
    FLUSH PRIVILEGES;" || die "could not create database $DB_NAME"
  # ---- RabbitMQ vhost + user (added to the broker; its user and vhost / are untouched)
  if ! rabbitctl list_permissions -p "$MQ_VHOST" 2>/dev/null | grep "^$MQ_USER\b" >/dev/null; then
    rabbitctl list_vhosts 2>/dev/null | grep -x "$MQ_VHOST" >/dev/null || rabbitctl add_vhost "$MQ_VHOST" >/dev/null
    rabbitctl list_users 2>/dev/null | grep "^$MQ_USER\b" >/dev/null || rabbitctl add_user "$MQ_USER" "$MQ_PASS" >/dev/null
    rabbitctl set_permissions -p "$MQ_VHOST" "$MQ_USER" '.*' '.*' '.*' >/dev/null
    log "rabbitmq: vhost $MQ_VHOST, user $MQ_USER ready"
  fi
  # ---- schema: only when the installed neutron differs from the last migration
  nver=$(dpkg-query -W -f='${Version}' python3-neutron)
  have=$(mariadb --socket=$SQL_SOCK -uroot -N -e "SELECT COUNT(*) FROM $DB_NAME.alembic_version" 2>/dev/null || echo 0)
  if [ "$(cat "$STATE/db-migrated" 2>/dev/null)" != "$nver" ] || [ "${have:-0}" = 0 ]; then
    log "neutron-db-manage upgrade heads ($DB_NAME)"
    t=$(date +%s.%N)
    neutron-db-manage "${NCONF[@]}" upgrade heads >"$LOGD/neutron-db-manage.log" 2>&1 ||
      {
        tail -20 "$LOGD/neutron-db-manage.log"
        die "neutron-db-manage failed"
      }
    echo "$nver" >"$STATE/db-migrated"
    log "neutron-db-manage done in $(since "$t")s"
  fi
fi
if [ "$AUTH" != keystone ]; then
  start_daemon neutron-server "$LOGD/neutron-server.log" \
    neutron-server "${NCONF[@]}" --config-file "$ETC/neutron-noauth.conf" --log-file "$LOGD/neutron-server.log"
elif pid_alive neutron-server "$LOGD/neutron-server.log"; then
  stop_daemon neutron-server
fi
if [ $WANT_KS = 1 ]; then
  start_daemon neutron-server-keystone "$LOGD/neutron-server-keystone.log" \
    neutron-server "${NCONF[@]}" --config-file "$ETC/neutron-keystone.conf" --log-file "$LOGD/neutron-server-keystone.log"
elif pid_alive neutron-server-keystone "$LOGD/neutron-server-keystone.log"; then
  stop_daemon neutron-server-keystone
fi

ovn_agent_alive() { # URL [TOKEN]: the server lists an alive OVN Controller agent for this host
  local h=()
  [ -n "${2:-}" ] && h=(-H "X-Auth-Token: $2")
  curl -sf -m 10 "${h[@]}" "$1/v2.0/agents?host=$OVN_HOST" | jq -e \
    '[.agents[] | select(.agent_type == "OVN Controller agent" and .alive)] | length > 0' >/dev/null
}
if [ "$AUTH" != keystone ]; then
  GUARD=neutron-server wait_for 180 "neutron-server API $NOAUTH_URL (noauth)" curl -sf -m 5 "$NOAUTH_URL/v2.0/extensions/subnet_allocation"
  GUARD=neutron-server wait_for 120 "OVN Controller agent $OVN_HOST alive ($NOAUTH_URL)" ovn_agent_alive "$NOAUTH_URL"
fi
if [ $WANT_KS = 1 ]; then
  ADMIN_TOKEN=$(ks_token admin "$ADMIN_PASS" admin) || die "no admin token from $KS_URL"
  GUARD=neutron-server-keystone wait_for 180 "neutron-server API $KSN_URL (keystone)" \
    curl -sf -m 5 -H "X-Auth-Token: $ADMIN_TOKEN" "$KSN_URL/v2.0/extensions/subnet_allocation"
  GUARD=neutron-server-keystone wait_for 120 "OVN Controller agent $OVN_HOST alive ($KSN_URL)" ovn_agent_alive "$KSN_URL" "$ADMIN_TOKEN"
fi

# ---------------------------------------------------------------- kuryr-test.json
# The format of scripts/neutron/stack.sh (read by test/helpers/neutron-lab.ts), plus what tells the
# tests this lab apart: mechanism_driver, vif_type, bridge, tenant network MTU.
ks_json=null
noauth_json=null
if [ $WANT_KS = 1 ]; then
  ks_json=$(jq -n --arg auth_url "$KS_URL/v3" --arg u "$KURYR_USER" --arg p "$KURYR_PASS" \
    --arg pr "$KURYR_PROJECT" --arg r "$REGION" --arg n "$KSN_URL" \
    '{auth_url: $auth_url, username: $u, password: $p, project_name: $pr, user_domain_name: "Default",
      project_domain_name: "Default", region_name: $r, neutron_url: $n}')
fi
[ "$AUTH" != keystone ] && noauth_json=$(jq -n --arg n "$NOAUTH_URL" '{neutron_url: $n}')
PRIMARY_AUTH=keystone
PRIMARY_URL=$KSN_URL
[ "$AUTH" = noauth ] && PRIMARY_AUTH=noauth && PRIMARY_URL=$NOAUTH_URL
jq -n --arg auth "$AUTH" --arg primary "$PRIMARY_AUTH" --arg n "$PRIMARY_URL" --argjson ks "$ks_json" \
  --argjson na "$noauth_json" --arg host "$OVN_HOST" --arg lab "$LAB_DIR" --arg at "$(date -u '+%FT%TZ')" \
  '{auth: $primary, neutron_url: $n} + (if $ks then $ks | del(.neutron_url) else {} end)
   + {modes: $auth, keystone: $ks, noauth: $na, host: $host, physical_network: "physnet1",
      network_types: ["geneve"], tenant_network_type: "geneve", tenant_network_mtu: 1442,
      dhcp_agent: false, mechanism_driver: "ovn", vif_type: "ovs", bridge: "br-int",
      datapath_type: "netdev", lab_dir: $lab, written_at: $at}' >"$JSON.tmp"
chmod 0644 "$JSON.tmp"
mv -f "$JSON.tmp" "$JSON" # last: its presence means "the stack is up"

log "OVN lab up in $(since "$T0")s"
cat <<EOF

$([ "$AUTH" != keystone ] && echo "  Neutron API : $NOAUTH_URL   (auth_strategy=noauth; no token)")
$([ $WANT_KS = 1 ] && echo "  Neutron API : $KSN_URL   (auth_strategy=keystone; Keystone $KS_URL/v3, region $REGION)")
  OVN NB / SB : tcp:$HOST_IP:$NB_PORT / tcp:$HOST_IP:$SB_PORT   ($NB_SOCK, $SB_SOCK)
  OVS         : unix:$OVS_SOCK   bridge br-int (datapath_type=netdev), chassis $OVN_HOST
  config      : $ETC      logs: $LOGD      pids: $RUN
  tests read  : $JSON   (KURYR_NEUTRON_LAB=$JSON)
EOF
