#!/usr/bin/env bash
# scripts/ovn/stack-stop.sh - stop what scripts/ovn/stack.sh started, and nothing else.
#
# Every daemon was started by stack.sh with setsid, so its PID (from $LAB_DIR/run/NAME.pid) is also
# its process-group id; the group is signalled (this also reaches neutron-server's api/rpc/maintenance
# workers). A PID is signalled only while its cmdline still matches. The Linux bridge lab (MariaDB,
# RabbitMQ, Keystone, its neutron-servers and agents) is never touched.
#
#   CLEAN=1 (default) also delete br-int from the OVS database before ovs-vswitchd stops: its ports
#             (veths plugged by kuryr-ts or by hand) leave OVS; the Linux veths themselves stay.
#   CLEAN=0   leave br-int and its ports in the OVS database (a restart finds them again).
#   PURGE=1   additionally drop the neutron_ovn database and its user, the RabbitMQ vhost neutron-ovn
#             and user novn (when the broker answers), the Keystone region RegionOVN's endpoints (when
#             Keystone answers), and $LAB_DIR (OVS conf.db, OVN NB/SB databases, logs): the next start
#             is fresh.
set -Euo pipefail
# With pipefail, never end a test pipeline in 'grep -q' (see scripts/neutron/stack.sh).
export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8
LAB_DIR=${LAB_DIR:-/var/lib/kuryr-ovn-lab}
NLAB_DIR=${NLAB_DIR:-/var/lib/kuryr-neutron-lab}
RUN=$LAB_DIR/run
CLEAN=${CLEAN:-1}
PURGE=${PURGE:-0}
[ "$PURGE" = 1 ] && CLEAN=1
OVS_RUNDIR=/var/run/openvswitch
OVN_RUNDIR=/var/run/ovn
ADMIN_PASS=${ADMIN_PASS:-nlabadmin}
KS_URL=http://127.0.0.1:${KEYSTONE_PORT:-5000}

log() { printf '[ovn-stack-stop %(%H:%M:%S)T] %s\n' -1 "$*"; }
[ "$(id -u)" = 0 ] || {
  log "ERROR: run as root"
  exit 1
}
T0=$(date +%s.%N)

if [ -d "$RUN" ]; then
  exec 9>"$RUN/stack.lock"
  flock -w 300 9 || log "WARNING: $RUN/stack.lock still held after 300 s (a stack.sh running?); stopping anyway"
fi
# first: tests must stop using the lab
rm -f "$LAB_DIR/kuryr-test.json"

# running PID: alive and not a zombie (an init that reaps slowly leaves zombies; kill -0 succeeds on them)
running() {
  local s
  s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "${s:0:1}" != Z ]
}

# stop_one NAME MATCH TIMEOUT_S [RUNTIME-PIDFILE]
stop_one() {
  local name=$1 match=$2 t=$3 rpf=${4:-} f=$RUN/$1.pid pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if ! running "$pid"; then
    log "$name: not running (stale pid $pid)"
    rm -f "$f" "$RUN/$name.cfghash"
    return 0
  fi
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -- "$match" >/dev/null; then
    log "$name: pid $pid is not '$match' any more; leaving it alone"
    rm -f "$f" "$RUN/$name.cfghash"
    return 0
  fi
  local tgt=$pid
  [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] && tgt=-$pid
  kill -TERM -- "$tgt" 2>/dev/null || true
  local end=$(($(date +%s) + t))
  while running "$pid" && [ "$(date +%s)" -lt $end ]; do sleep 0.1; done
  if running "$pid"; then
    log "$name: still alive after ${t}s, SIGKILL"
    kill -KILL -- "$tgt" 2>/dev/null || true
  fi
  # stragglers of the group (workers); zombies waiting for init do not count
  if [ "$tgt" = "-$pid" ]; then
    local i=0
    while pgrep -g "$pid" -r R,S,D,T >/dev/null 2>&1 && [ $i -lt 50 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    if pgrep -g "$pid" -r R,S,D,T >/dev/null 2>&1; then kill -KILL -- "$tgt" 2>/dev/null || true; fi
  fi
  rm -f "$f" "$RUN/$name.cfghash"
  # the daemon's own pid file in the default run dir (ovs-appctl/ovn-appctl find daemons by it)
  if [ -n "$rpf" ] && [ "$(cat "$rpf" 2>/dev/null)" = "$pid" ]; then rm -f "$rpf"; fi
  log "$name stopped (pid $pid)"
}

stop_one neutron-server "$LAB_DIR/log/neutron-server.log" 20
stop_one neutron-server-keystone "$LAB_DIR/log/neutron-server-keystone.log" 20
stop_one ovn-controller "ovn-controller" 15 $OVN_RUNDIR/ovn-controller.pid
stop_one ovn-northd "ovn-northd" 15 $OVN_RUNDIR/ovn-northd.pid
stop_one ovsdb-sb "$LAB_DIR/db/ovnsb_db.db" 15 $OVN_RUNDIR/ovnsb_db.pid
stop_one ovsdb-nb "$LAB_DIR/db/ovnnb_db.db" 15 $OVN_RUNDIR/ovnnb_db.pid
if [ "$CLEAN" = 1 ] && [ -s "$RUN/ovsdb-server.pid" ] && running "$(cat "$RUN/ovsdb-server.pid")"; then
  ovs-vsctl --timeout=10 --if-exists del-br br-int && log "br-int deleted"
fi
stop_one ovs-vswitchd "ovs-vswitchd" 20 $OVS_RUNDIR/ovs-vswitchd.pid
stop_one ovsdb-server "$LAB_DIR/db/conf.db" 15 $OVS_RUNDIR/ovsdb-server.pid

if [ "$PURGE" = 1 ]; then
  if mariadb-admin --socket=/run/mysqld/mysqld.sock ping >/dev/null 2>&1; then
    mariadb --socket=/run/mysqld/mysqld.sock -uroot -e "DROP DATABASE IF EXISTS neutron_ovn;
      DROP USER IF EXISTS 'neutron_ovn'@'localhost'; DROP USER IF EXISTS 'neutron_ovn'@'127.0.0.1';" &&
      log "dropped database neutron_ovn"
  fi
  if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    rq() {
      env HOME=/var/lib/rabbitmq RABBITMQ_NODENAME=kuryrlab@localhost ERL_EPMD_ADDRESS=127.0.0.1 \
        "RABBITMQ_MNESIA_BASE=$NLAB_DIR/rabbitmq/mnesia" "RABBITMQ_LOG_BASE=$NLAB_DIR/rabbitmq/log" \
        setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
        /usr/lib/rabbitmq/bin/rabbitmqctl -q -n kuryrlab@localhost "$@"
    }
    if rq list_vhosts 2>/dev/null | grep -x neutron-ovn >/dev/null; then rq delete_vhost neutron-ovn >/dev/null && log "rabbitmq vhost neutron-ovn deleted"; fi
    if rq list_users 2>/dev/null | grep '^novn\b' >/dev/null; then rq delete_user novn >/dev/null && log "rabbitmq user novn deleted"; fi
  fi
  if curl -sf -m 5 "$KS_URL/v3/" >/dev/null; then
    KS_URL=$KS_URL ADMIN_PASS=$ADMIN_PASS /usr/bin/python3 - <<'PY' 2>/dev/null && log "keystone: RegionOVN endpoints deleted"
import os
from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client
e = os.environ
ks = client.Client(session=session.Session(auth=v3.Password(
    auth_url=e["KS_URL"] + "/v3", username="admin", password=e["ADMIN_PASS"],
    project_name="admin", user_domain_id="default", project_domain_id="default")))
for ep in ks.endpoints.list():
    if ep.region_id == "RegionOVN":
        ks.endpoints.delete(ep)
PY
  fi
  rm -rf "$LAB_DIR" && log "removed $LAB_DIR"
fi
log "done in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
