#!/usr/bin/env bash
# scripts/neutron/stack.sh - install and start a loopback-only OpenStack Neutron (Zed, Debian 12
# packages) for kuryr-ts's contract and end-to-end tests. Stop it with scripts/neutron/stack-stop.sh.
#
# What it brings up (everything bound to 127.0.0.1):
#   mariadb  :3306          started here unless one already answers on /run/mysqld/mysqld.sock
#   rabbitmq :5672          oslo.messaging transport for the agents (node kuryrlab@localhost)
#   keystone :5000          AUTH=keystone|both; uwsgi + python3-keystone, fernet tokens
#   neutron-server :9696    auth_strategy keystone (AUTH=keystone|both) or noauth (AUTH=noauth);
#                           ML2 flat,vlan,vxlan (tenant type vxlan), linuxbridge + l2population,
#                           port_security; service plugin router (+ tag, timestamp, ... by default)
#   neutron-server :9697    AUTH=both only: a second API server with auth_strategy noauth, same DB
#                           and same RabbitMQ (an "HA pair" of neutron-servers), 1 API worker
#   neutron-linuxbridge-agent   physnet1 -> veth nlab-phys0 (192.0.2.1/32, also the vxlan local_ip)
#   neutron-dhcp-agent      WITH_DHCP=1 (default); dnsmasq inside qdhcp-<network id> netns
#
# Then it writes $LAB_DIR/kuryr-test.json (read by test/helpers/neutron-lab.ts) and
# $LAB_DIR/kuryr-test.env: endpoints + the credentials of the keystone user kuryr (admin role).
#
# Idempotent: a re-run only starts what is down, and restarts a daemon only when its generated
# config changed, so `AUTH=noauth stack.sh` and then `stack.sh` switch auth modes in place.
# Every daemon is started with setsid (pgid == pid) and has a PID file in $LAB_DIR/run.
#
#   stack.sh          install what is missing, start what is down, wait for API + agents
#   stack.sh status   exit 0 when every daemon of the running stack is alive and its APIs answer
#
# Environment knobs:
#   LAB_DIR=/var/lib/kuryr-neutron-lab   config, logs, pid files, state, kuryr-test.json
#   AUTH=both|keystone|noauth      (default both: keystone on :9696 and noauth on :9697)
#   WITH_DHCP=1|0                  run neutron-dhcp-agent (default 1)
#   SKIP_APT=1                     never call apt-get (fail when a package is missing)
#   APT_ONLY=1                     only install the packages (all of them, whatever AUTH), start nothing
#   NEUTRON_DEBUG=1                debug logging in neutron
#   KURYR_USER=kuryr KURYR_PASS=kuryr-lab KURYR_PROJECT=service   the user written to kuryr-test.json
#   EXTRA_SERVICE_USERS="u:pw .."  more keystone users with role admin in project service
#   NEUTRON_PORT=9696 NOAUTH_PORT=9697 KEYSTONE_PORT=5000
set -Eeuo pipefail
# With pipefail, never end a test pipeline in 'grep -q': grep exits at the first
# match, the writer may get SIGPIPE (141) and the test fails although it matched.

export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin # system python, not pyenv
export LC_ALL=C.UTF-8

LAB_DIR=${LAB_DIR:-/var/lib/kuryr-neutron-lab}
AUTH=${AUTH:-both}
WITH_DHCP=${WITH_DHCP:-1}
NEUTRON_DEBUG=${NEUTRON_DEBUG:-0}

HOST_IP=127.0.0.1
NEUTRON_PORT=${NEUTRON_PORT:-9696}
NOAUTH_PORT=${NOAUTH_PORT:-9697}
KEYSTONE_PORT=${KEYSTONE_PORT:-5000}
DB_PASS=${DB_PASS:-nlabdb}
RABBIT_NODE=kuryrlab@localhost
RABBIT_USER=${RABBIT_USER:-kuryrlab}
RABBIT_PASS=${RABBIT_PASS:-nlabmq}
ADMIN_PASS=${ADMIN_PASS:-nlabadmin}
NEUTRON_SVC_PASS=${NEUTRON_SVC_PASS:-nlabneutron}
KURYR_USER=${KURYR_USER:-kuryr}
KURYR_PASS=${KURYR_PASS:-kuryr-lab}
KURYR_PROJECT=${KURYR_PROJECT:-service}
REGION=RegionOne
PHYS_IF=nlab-phys0 # veth used as the "physical" NIC of physnet1
PHYS_PEER=nlab-phys0p
# vxlan local_ip, a /32 on $PHYS_IF: the first of TUN_IP_CANDIDATES that nothing on the host uses
# (kept in $STATE/tun_ip). Not 192.0.2.1: these machines have eth0 192.0.2.2/24 via gateway 192.0.2.1.
TUN_IP_CANDIDATES=${TUN_IP:-198.51.100.1 203.0.113.1 100.64.254.1}

ETC=$LAB_DIR/etc
RUN=$LAB_DIR/run
LOGD=$LAB_DIR/log
STATE=$LAB_DIR/state
JSON=$LAB_DIR/kuryr-test.json
KS_URL=http://$HOST_IP:$KEYSTONE_PORT
NEUTRON_URL=http://$HOST_IP:$NEUTRON_PORT
NOAUTH_URL=http://$HOST_IP:$NOAUTH_PORT

log() { printf '[neutron-stack %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() {
  log "ERROR: $*"
  exit 1
}

# pid_alive NAME [cmdline-substring]: pid file exists and process is alive
pid_alive() {
  local f=$RUN/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
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
  else
    echo "$JSON: missing (stack not started)"
    rc=1
  fi
  exit $rc
fi
[ $# -eq 0 ] || die "usage: $0 [status]"

[ "$(id -u)" = 0 ] || die "run as root"
case "$AUTH" in keystone | noauth | both) ;; *) die "AUTH must be both, keystone or noauth" ;; esac

T0=$(date +%s)

# ---------------------------------------------------------------- apt
# Always the packages of both auth modes, so that APT_ONLY=1 prepares any later AUTH.
PKGS=(mariadb-server mariadb-client python3-pymysql rabbitmq-server
  neutron-server neutron-linuxbridge-agent neutron-dhcp-agent
  python3-neutronclient python3-openstackclient
  python3-keystone uwsgi uwsgi-plugin-python3
  sudo iproute2 iptables ebtables ipset conntrack dnsmasq-base
  curl jq util-linux procps kmod socat) # socat: host2.sh's forwarders

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
  # keep package postinsts from starting services on their own
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # wait for a concurrent apt/dpkg (e.g. scripts/setup.sh) instead of failing on its lock
  apt-get -o DPkg::Lock::Timeout=600 update -qq || true
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" \
    >/tmp/kuryr-neutron-apt.log 2>&1 || {
    [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    tail -30 /tmp/kuryr-neutron-apt.log
    die "apt-get install failed (log: /tmp/kuryr-neutron-apt.log)"
  }
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}
install_packages
if [ "${APT_ONLY:-0}" = 1 ]; then
  log "packages ready in $(($(date +%s) - T0))s (APT_ONLY=1)"
  exit 0
fi

mkdir -p "$ETC" "$RUN" "$LOGD" "$STATE" "$LAB_DIR/lock"
# one stack.sh / stack-stop.sh at a time (e.g. two scripts/test.sh runs)
exec 9>"$RUN/stack.lock"
flock -w 900 9 || die "another stack.sh/stack-stop.sh holds $RUN/stack.lock"
# A stack described otherwise (other AUTH or WITH_DHCP) must not be used by tests until this run has
# brought it up; an identical one stays usable during an idempotent re-run (the file is rewritten at the end).
want_desc="$AUTH/$([ "$WITH_DHCP" = 1 ] && echo true || echo false)"
if [ "$(jq -r '"\(.modes)/\(.dhcp_agent)"' "$JSON" 2>/dev/null)" != "$want_desc" ]; then
  rm -f "$JSON" "$LAB_DIR/kuryr-test.env"
fi
# and a run that fails leaves no description behind
trap 'rc=$?; if [ $rc != 0 ]; then rm -f "$JSON" "$LAB_DIR/kuryr-test.env"; fi' EXIT

# ---------------------------------------------------------------- helpers
# close_inherited_fds: closes every descriptor of this (sub)shell above 2
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
  done
}

# start_daemon NAME USER MATCH CMD... : start in its own session (pgid == pid)
start_daemon() {
  local name=$1 user=$2 match=$3
  shift 3
  if pid_alive "$name" "$match"; then
    log "$name already running (pid $(cat "$RUN/$name.pid"))"
    return 0
  fi
  local pre=()
  [ "$user" != root ] && pre=(setpriv --reuid="$user" --regid="$user" --init-groups)
  # Only 0-2 are passed on: a daemon must not inherit, and so hold for as long as it runs, the stack lock
  # (fd 9) or a lock of whoever called stack.sh (`flock /tmp/kuryr-e2e.lock stack.sh` hands its lock on
  # as fd 3, and the whole lab then held the tests' lock for good).
  (
    close_inherited_fds
    exec setsid "${pre[@]}" "$@" >>"$LOGD/$name.out" 2>&1 </dev/null
  ) &
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
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$f" "$RUN/$1.cfghash"
  log "$1 stopped (pid $pid)"
}

# restart_on_change NAME MATCH FILE... : if NAME runs with other config files
# than those now written, stop it (the caller then starts it again)
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
    sleep 0.5
  done
  log "$what: ok"
}

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
ADMIN_TOKEN=
admin_token() { # cached for this run (keystone tokens live 1 h)
  [ -n "$ADMIN_TOKEN" ] || ADMIN_TOKEN=$(ks_token admin "$ADMIN_PASS" admin) || return 1
}

# neutron_get PATH : GET against the neutron API this run serves, with the right auth
neutron_get() {
  if [ "$AUTH" = noauth ]; then
    curl -sf -m 20 "$NEUTRON_URL$1"
  else
    admin_token || return 1
    curl -sf -m 20 -H "X-Auth-Token: $ADMIN_TOKEN" "$NEUTRON_URL$1"
  fi
}

# ---------------------------------------------------------------- kernel / links
for m in bridge vxlan veth br_netfilter 8021q; do modprobe "$m" 2>/dev/null || true; done
if ! ip link show "$PHYS_IF" >/dev/null 2>&1; then
  # no "dummy" driver on some kernels: a veth pair with both ends local works
  ip link add "$PHYS_IF" type veth peer name "$PHYS_PEER"
fi
ip link set "$PHYS_PEER" up 2>/dev/null || true
ip link set "$PHYS_IF" up
# tun_ip_free IP: no device but $PHYS_IF (or the flat bridge holding it, to which the agent moves
# its address) has IP or a subnet containing it, and no route uses it as gateway
tun_ip_free() {
  local master
  master=$(ip -j link show "$PHYS_IF" | jq -r '.[0].master // ""')
  ip -4 -j route show table all | jq -e --arg ip "$1" --arg me "$PHYS_IF" --arg br "$master" '
    def n: split(".") | map(tonumber) | .[0] * 16777216 + .[1] * 65536 + .[2] * 256 + .[3];
    ($ip | n) as $x
    | [.[] | select(.gateway == $ip or (.dst != "default" and (.dst | test("^[0-9.]+(/[0-9]+)?$"))
        and .dev != $me and .dev != $br and ((.dst | split("/")) as $d | (($d[1] // "32") | tonumber) as $len
          | pow(2; 32 - $len) as $size | (($x / $size) | floor) == ((($d[0] | n) / $size) | floor))))]
    | length == 0' >/dev/null
}
TUN_IP=
for ip in $(cat "$STATE/tun_ip" 2>/dev/null) $TUN_IP_CANDIDATES; do
  if tun_ip_free "$ip"; then
    TUN_IP=$ip
    break
  fi
  log "tunnel address $ip is in use on this host, not taking it"
done
[ -n "$TUN_IP" ] || die "no free tunnel address among: $TUN_IP_CANDIDATES (set TUN_IP=a.b.c.d)"
echo "$TUN_IP" >"$STATE/tun_ip"
# drop an address of ours that is no longer wanted, then add (or keep) the one that is
for dev in "$PHYS_IF" $(ip -j link show "$PHYS_IF" | jq -r '.[0].master // empty'); do
  for a in $(ip -4 -j addr show dev "$dev" | jq -r '.[0].addr_info[]? | select(.scope == "global") | .local'); do
    [ "$a" = "$TUN_IP" ] || { ip addr del "$a/32" dev "$dev" 2>/dev/null && log "removed old tunnel address $a from $dev"; } || true
  done
done
if [ -z "$(ip -4 -j addr show to "$TUN_IP/32" | jq -r '.[].ifname')" ]; then
  ip addr replace "$TUN_IP/32" dev "$PHYS_IF"
fi
# VLAN networks need 802.1q in the kernel (absent on some, e.g. this project's CI VMs). Without it
# the vlan type driver is left out: a VLAN port would make the linuxbridge agent loop fail for all.
TYPE_DRIVERS=flat,vxlan
if ip link add link "$PHYS_IF" name nlab-vlantest type vlan id 4094 2>/dev/null; then
  ip link delete nlab-vlantest
  TYPE_DRIVERS=flat,vlan,vxlan
else
  log "no 802.1q support in this kernel: network type vlan disabled"
fi

# ---------------------------------------------------------------- mariadb
SQL_SOCK=/run/mysqld/mysqld.sock
db_ping() { mariadb-admin --socket=$SQL_SOCK ping >/dev/null 2>&1; }
if db_ping; then
  log "mariadb already answering on $SQL_SOCK"
else
  install -d -o mysql -g mysql -m 755 /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    log "initialising mariadb datadir"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$LOGD/mariadb-install.log" 2>&1
  fi
  : >"$LOGD/mariadb.log"
  chown mysql:mysql "$LOGD/mariadb.log"
  start_daemon mariadb root mariadbd /usr/sbin/mariadbd --user=mysql \
    --bind-address=$HOST_IP --port=3306 --socket=$SQL_SOCK \
    --pid-file=/run/mysqld/mysqld.pid --log-error="$LOGD/mariadb.log" \
    --max-connections=500
  GUARD=mariadb wait_for 60 "mariadb" db_ping
fi
sql() { mariadb --socket=$SQL_SOCK -uroot -e "$1"; }
for db in neutron keystone; do
  sql "CREATE DATABASE IF NOT EXISTS $db CHARACTER SET utf8mb4;
       CREATE USER IF NOT EXISTS '$db'@'localhost' IDENTIFIED BY '$DB_PASS';
       CREATE USER IF NOT EXISTS '$db'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
       ALTER USER '$db'@'localhost' IDENTIFIED BY '$DB_PASS';
       ALTER USER '$db'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
       GRANT ALL PRIVILEGES ON $db.* TO '$db'@'localhost';
       GRANT ALL PRIVILEGES ON $db.* TO '$db'@'127.0.0.1';
       FLUSH PRIVILEGES;"
done
log "mariadb databases ready"

# ---------------------------------------------------------------- rabbitmq
rabbit_env=(HOME=/var/lib/rabbitmq
  "RABBITMQ_NODENAME=$RABBIT_NODE"
  "RABBITMQ_NODE_IP_ADDRESS=$HOST_IP" RABBITMQ_NODE_PORT=5672
  RABBITMQ_DIST_PORT=25672 "ERL_EPMD_ADDRESS=$HOST_IP"
  "RABBITMQ_LOG_BASE=$LAB_DIR/rabbitmq/log"
  "RABBITMQ_MNESIA_BASE=$LAB_DIR/rabbitmq/mnesia"
  "RABBITMQ_ENABLED_PLUGINS_FILE=$LAB_DIR/rabbitmq/enabled_plugins"
  "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}")
rabbitctl() {
  env "${rabbit_env[@]}" setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
    /usr/lib/rabbitmq/bin/rabbitmqctl -n $RABBIT_NODE "$@"
}
install -d -o rabbitmq -g rabbitmq "$LAB_DIR/rabbitmq" "$LAB_DIR/rabbitmq/log" "$LAB_DIR/rabbitmq/mnesia"
[ -e "$LAB_DIR/rabbitmq/enabled_plugins" ] || {
  echo '[].' >"$LAB_DIR/rabbitmq/enabled_plugins"
  chown rabbitmq: "$LAB_DIR/rabbitmq/enabled_plugins"
}
if ! pid_alive rabbitmq rabbitmq-server; then
  epmd_before=$(ss -Htlnp 'sport = :4369' 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
  (cd /var/lib/rabbitmq && start_daemon rabbitmq root rabbitmq-server env "${rabbit_env[@]}" \
    setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server)
  GUARD=rabbitmq wait_for 90 "rabbitmq" rabbitctl await_startup
  epmd_now=$(ss -Htlnp 'sport = :4369' 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
  if [ -z "$epmd_before" ] && [ -n "$epmd_now" ]; then echo "$epmd_now" >"$RUN/epmd.pid"; fi
else
  log "rabbitmq already running (pid $(cat "$RUN/rabbitmq.pid"))"
fi
# the user lives in the mnesia dir under $LAB_DIR: skip the slow rabbitmqctl calls (~1 s each)
# when this user/password was already set up there
RABBIT_HASH=$(printf '%s:%s' "$RABBIT_USER" "$RABBIT_PASS" | sha256sum | cut -c1-16)
if [ "$(cat "$LAB_DIR/rabbitmq/kuryr-user" 2>/dev/null)" != "$RABBIT_HASH" ]; then
  rabbitctl list_users -q 2>/dev/null | grep "^$RABBIT_USER\b" >/dev/null || rabbitctl add_user "$RABBIT_USER" "$RABBIT_PASS" >/dev/null
  rabbitctl change_password "$RABBIT_USER" "$RABBIT_PASS" >/dev/null
  rabbitctl set_permissions -p / "$RABBIT_USER" '.*' '.*' '.*' >/dev/null
  echo "$RABBIT_HASH" >"$LAB_DIR/rabbitmq/kuryr-user"
fi
TRANSPORT_URL="rabbit://$RABBIT_USER:$RABBIT_PASS@$HOST_IP:5672/"
log "rabbitmq user $RABBIT_USER ready"

# ---------------------------------------------------------------- keystone
if [ "$AUTH" != noauth ]; then
  install -d "$LAB_DIR/keystone/fernet-keys" "$LAB_DIR/keystone/credential-keys"
  cat >"$ETC/keystone.conf" <<EOF
[DEFAULT]
log_file = $LOGD/keystone.log
use_stderr = false
[database]
connection = mysql+pymysql://keystone:$DB_PASS@$HOST_IP/keystone
[token]
provider = fernet
[fernet_tokens]
key_repository = $LAB_DIR/keystone/fernet-keys
[fernet_receipts]
key_repository = $LAB_DIR/keystone/fernet-keys
[credential]
key_repository = $LAB_DIR/keystone/credential-keys
[cache]
enabled = false
[identity]
# bcrypt cost 4 instead of 12: each password token request of the tests is ~0.3 s faster
password_hash_rounds = 4
EOF
  ksm() { keystone-manage --config-file "$ETC/keystone.conf" "$@" >>"$LOGD/keystone-manage.log" 2>&1; }
  if [ ! -e "$STATE/keystone.bootstrapped" ]; then
    log "keystone: db_sync / fernet_setup / credential_setup / bootstrap"
    ksm db_sync || die "keystone-manage db_sync failed, see $LOGD/keystone-manage.log"
    [ -e "$LAB_DIR/keystone/fernet-keys/0" ] || ksm fernet_setup --keystone-user root --keystone-group root
    [ -e "$LAB_DIR/keystone/credential-keys/0" ] || ksm credential_setup --keystone-user root --keystone-group root
    ksm bootstrap --bootstrap-password "$ADMIN_PASS" \
      --bootstrap-admin-url "$KS_URL/v3/" --bootstrap-internal-url "$KS_URL/v3/" \
      --bootstrap-public-url "$KS_URL/v3/" --bootstrap-region-id "$REGION" ||
      die "keystone-manage bootstrap failed, see $LOGD/keystone-manage.log"
    touch "$STATE/keystone.bootstrapped"
  fi
  restart_on_change keystone keystone-wsgi-public "$ETC/keystone.conf"
  start_daemon keystone root keystone-wsgi-public \
    env OS_KEYSTONE_CONFIG_FILES="$ETC/keystone.conf" \
    uwsgi --plugins python3 --http-socket "$HOST_IP:$KEYSTONE_PORT" \
    --wsgi-file /usr/bin/keystone-wsgi-public --master --processes 2 --threads 4 \
    --die-on-term --need-app --lazy-apps --buffer-size 65535 \
    --add-header 'Connection: close' --logto "$LOGD/keystone-uwsgi.log"
  GUARD=keystone wait_for 60 "keystone $KS_URL/v3" curl -sf "$KS_URL/v3/"
fi

# ---------------------------------------------------------------- credentials files
cat >"$LAB_DIR/admin-openrc" <<EOF
# source me: admin credentials for the lab (AUTH=keystone|both)
export OS_AUTH_URL=$KS_URL/v3
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=admin
export OS_PASSWORD=$ADMIN_PASS
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=$REGION
EOF
NOAUTH_SERVER_URL=$NOAUTH_URL
[ "$AUTH" = noauth ] && NOAUTH_SERVER_URL=$NEUTRON_URL
cat >"$LAB_DIR/noauth-openrc" <<EOF
# source me: talk to the noauth neutron-server (AUTH=noauth|both) without keystone
export OS_AUTH_TYPE=none
export OS_ENDPOINT=$NOAUTH_SERVER_URL
export OS_NETWORK_ENDPOINT_OVERRIDE=$NOAUTH_SERVER_URL
unset OS_AUTH_URL OS_USERNAME OS_PASSWORD OS_PROJECT_NAME OS_CLOUD
EOF
mkdir -p "$LAB_DIR/openstack"
cat >"$LAB_DIR/openstack/clouds.yaml" <<EOF
clouds:
  lab-admin:
    auth:
      auth_url: $KS_URL/v3
      username: admin
      password: $ADMIN_PASS
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: $REGION
    identity_api_version: 3
  lab-kuryr:
    auth:
      auth_url: $KS_URL/v3
      username: $KURYR_USER
      password: $KURYR_PASS
      project_name: $KURYR_PROJECT
      user_domain_name: Default
      project_domain_name: Default
    region_name: $REGION
    identity_api_version: 3
  lab-noauth:
    auth_type: none
    auth:
      endpoint: $NOAUTH_SERVER_URL
    network_endpoint_override: $NOAUTH_SERVER_URL
EOF

# Registration (service project, users, network service + endpoints) in one python process
# instead of ~12 openstack CLI calls of ~5 s each. Re-done when its inputs change.
REG_USERS="neutron:$NEUTRON_SVC_PASS:service $KURYR_USER:$KURYR_PASS:$KURYR_PROJECT"
for u in ${EXTRA_SERVICE_USERS:-}; do REG_USERS+=" $u:service"; done
REG_HASH=$(printf '%s|%s' "$REG_USERS" "$NEUTRON_URL" | sha256sum | cut -c1-16)
ks_registered() { # the marker matches, and the kuryr user's token has the network endpoint in its catalog
  [ "$(cat "$STATE/keystone.registered" 2>/dev/null)" = "$REG_HASH" ] || return 1
  ks_token "$KURYR_USER" "$KURYR_PASS" "$KURYR_PROJECT" >/dev/null || return 1
  echo "$KS_CATALOG" | jq -e --arg u "$NEUTRON_URL" \
    '[.token.catalog[] | select(.type == "network") | .endpoints[] | select(.url == $u)] | length >= 3' >/dev/null
}
if [ "$AUTH" != noauth ] && ! ks_registered; then
  log "keystone: projects, users (neutron, $KURYR_USER), network service + endpoints"
  KS_URL=$KS_URL ADMIN_PASS=$ADMIN_PASS REGION=$REGION NEUTRON_URL=$NEUTRON_URL REG_USERS=$REG_USERS \
    /usr/bin/python3 - <<'PY' >>"$LOGD/keystone-register.log" 2>&1 || die "keystone registration failed, see $LOGD/keystone-register.log"
import os
from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

e = os.environ
ks = client.Client(session=session.Session(auth=v3.Password(
    auth_url=e["KS_URL"] + "/v3", username="admin", password=e["ADMIN_PASS"],
    project_name="admin", user_domain_id="default", project_domain_id="default")))
first = lambda xs: xs[0] if xs else None
roles = {r.name: r for r in ks.roles.list()}
for name in ("service", "member"):
    if name not in roles:
        roles[name] = ks.roles.create(name)
projects = {}
# REG_USERS="name:password:project ..." - each gets roles admin, service (and member) in its project
for spec in e["REG_USERS"].split():
    name, rest = spec.split(":", 1)
    pw, pname = rest.rsplit(":", 1)
    if pname not in projects:
        projects[pname] = first(ks.projects.list(name=pname, domain="default")) or \
            ks.projects.create(pname, "default", description="kuryr-ts neutron lab")
    u = first(ks.users.list(name=name, domain="default"))
    u = ks.users.update(u, password=pw) if u else ks.users.create(name, domain="default", password=pw)
    for role in ("admin", "service", "member"):
        ks.roles.grant(roles[role], user=u, project=projects[pname])
    print("user", name, "project", pname)
svc = first(ks.services.list(type="network")) or ks.services.create("neutron", type="network")
for iface in ("public", "internal", "admin"):
    # this region's only: the OVN lab (scripts/ovn) adds endpoints of the same service in RegionOVN
    eps = [ep for ep in ks.endpoints.list(service=svc, interface=iface) if ep.region_id == e["REGION"]]
    if not eps:
        ks.endpoints.create(svc, e["NEUTRON_URL"], interface=iface, region=e["REGION"])
    elif eps[0].url != e["NEUTRON_URL"]:
        ks.endpoints.update(eps[0], url=e["NEUTRON_URL"])
print("network endpoints", e["NEUTRON_URL"])
PY
  echo "$REG_HASH" >"$STATE/keystone.registered"
  ks_registered || die "keystone registration did not take: no network endpoint in the $KURYR_USER token's catalog"
  log "keystone: neutron registered, user $KURYR_USER ready"
fi

# ---------------------------------------------------------------- neutron config
PRIMARY_AUTH=keystone
[ "$AUTH" = noauth ] && PRIMARY_AUTH=noauth
DEBUG_BOOL=false
[ "$NEUTRON_DEBUG" = 1 ] && DEBUG_BOOL=true
cat >"$ETC/neutron.conf" <<EOF
[DEFAULT]
debug = $DEBUG_BOOL
use_stderr = false
bind_host = $HOST_IP
core_plugin = ml2
# 'tag' (standard-attr-tag), timestamp, revisions, network_ip_availability,
# auto_allocate and flavors are always added by neutron as default service plugins
service_plugins = router
# bind_port and auth_strategy are in neutron-api.conf / neutron-noauth.conf, so that switching
# auth modes restarts only the API servers, not the agents (they read this file too)
transport_url = $TRANSPORT_URL
state_path = $STATE
api_workers = 2
rpc_workers = 1
rpc_state_report_workers = 1
allow_overlapping_ips = true
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
dhcp_agents_per_network = 1
interface_driver = linuxbridge
[agent]
# agents run as root: no rootwrap (Debian ships only the privsep filter);
# oslo.privsep still spawns its helper through sudo
root_helper =
report_interval = 10
[database]
connection = mysql+pymysql://neutron:$DB_PASS@$HOST_IP/neutron
max_pool_size = 20
max_overflow = 40
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
region_name = $REGION
[nova]
auth_type = none
[experimental]
# Zed marks the linuxbridge mechanism driver/agent experimental
linuxbridge = true
EOF

cat >"$ETC/neutron-api.conf" <<EOF
[DEFAULT]
bind_port = $NEUTRON_PORT
auth_strategy = $PRIMARY_AUTH
EOF

# AUTH=both: the second API server reads neutron.conf + ml2_conf.ini + this overlay
cat >"$ETC/neutron-noauth.conf" <<EOF
[DEFAULT]
bind_port = $NOAUTH_PORT
auth_strategy = noauth
api_workers = 1
# Zed runs at least 1 RPC worker: it consumes agent RPC (q-plugin, q-reports-plugin) as a
# competing consumer next to the first server, as in an active/active pair of servers
rpc_workers = 1
rpc_state_report_workers = 0
EOF

cat >"$ETC/ml2_conf.ini" <<EOF
[ml2]
type_drivers = $TYPE_DRIVERS
tenant_network_types = vxlan
mechanism_drivers = linuxbridge,l2population
extension_drivers = port_security
[ml2_type_flat]
flat_networks = physnet1
[ml2_type_vlan]
network_vlan_ranges = physnet1:100:199
[ml2_type_vxlan]
vni_ranges = 1:10000
[securitygroup]
enable_security_group = true
enable_ipset = true
EOF

cat >"$ETC/linuxbridge_agent.ini" <<EOF
[linux_bridge]
physical_interface_mappings = physnet1:$PHYS_IF
[vxlan]
enable_vxlan = true
local_ip = $TUN_IP
l2_population = true
[agent]
polling_interval = 1
[securitygroup]
# the security-group API is fully enabled on the server; the agent does not
# program iptables on this host (noop driver)
enable_security_group = true
firewall_driver = noop
EOF

cat >"$ETC/dhcp_agent.ini" <<EOF
[DEFAULT]
interface_driver = linuxbridge
dhcp_driver = neutron.agent.linux.dhcp.Dnsmasq
enable_isolated_metadata = false
force_metadata = false
EOF

# ---------------------------------------------------------------- neutron db + servers
NCONF=(--config-file "$ETC/neutron.conf" --config-file "$ETC/ml2_conf.ini")
restart_on_change neutron-server neutron-server.log "$ETC/neutron.conf" "$ETC/ml2_conf.ini" "$ETC/neutron-api.conf"
restart_on_change neutron-server-noauth neutron-server-noauth.log "$ETC/neutron.conf" "$ETC/ml2_conf.ini" "$ETC/neutron-noauth.conf"
restart_on_change neutron-linuxbridge-agent neutron-linuxbridge-agent "$ETC/neutron.conf" "$ETC/linuxbridge_agent.ini"
restart_on_change neutron-dhcp-agent neutron-dhcp-agent "$ETC/neutron.conf" "$ETC/dhcp_agent.ini"
if ! pid_alive neutron-server neutron-server.log && ! pid_alive neutron-server-noauth neutron-server-noauth.log; then
  log "neutron-db-manage upgrade heads"
  neutron-db-manage "${NCONF[@]}" upgrade heads >"$LOGD/neutron-db-manage.log" 2>&1 ||
    {
      tail -20 "$LOGD/neutron-db-manage.log"
      die "neutron-db-manage failed"
    }
fi
start_daemon neutron-server root neutron-server.log \
  neutron-server "${NCONF[@]}" --config-file "$ETC/neutron-api.conf" --log-file "$LOGD/neutron-server.log"
if [ "$AUTH" = both ]; then
  start_daemon neutron-server-noauth root neutron-server-noauth.log \
    neutron-server "${NCONF[@]}" --config-file "$ETC/neutron-noauth.conf" --log-file "$LOGD/neutron-server-noauth.log"
elif pid_alive neutron-server-noauth neutron-server-noauth.log; then
  stop_daemon neutron-server-noauth
fi

api_ok() { # the API answers and, with keystone, accepts a token
  curl -sf -m 10 "$NEUTRON_URL/" >/dev/null || return 1
  neutron_get /v2.0/extensions/subnet_allocation >/dev/null
}
GUARD=neutron-server wait_for 180 "neutron-server API $NEUTRON_URL (auth_strategy=$PRIMARY_AUTH)" api_ok
if [ "$AUTH" = both ]; then
  GUARD=neutron-server-noauth wait_for 180 "neutron-server API $NOAUTH_URL (auth_strategy=noauth)" \
    curl -sf -m 10 "$NOAUTH_URL/v2.0/extensions/subnet_allocation"
fi

# ---------------------------------------------------------------- agents
start_daemon neutron-linuxbridge-agent root neutron-linuxbridge-agent \
  neutron-linuxbridge-agent --config-file "$ETC/neutron.conf" \
  --config-file "$ETC/linuxbridge_agent.ini" --log-file "$LOGD/neutron-linuxbridge-agent.log"
# The agent wedges for good when an update of a just unplugged port meets ebtables-nft: ebtables-janitor.sh
# removes the MAC chains of taps that are gone so that its loop goes on.
start_daemon ebtables-janitor root ebtables-janitor.sh \
  bash "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/ebtables-janitor.sh"
if [ "$WITH_DHCP" != 1 ]; then
  if pid_alive neutron-dhcp-agent neutron-dhcp-agent; then stop_daemon neutron-dhcp-agent; fi
else
  start_daemon neutron-dhcp-agent root neutron-dhcp-agent \
    neutron-dhcp-agent --config-file "$ETC/neutron.conf" \
    --config-file "$ETC/dhcp_agent.ini" --log-file "$LOGD/neutron-dhcp-agent.log"
fi

HOST_NAME=$(hostname)
agents_alive() { # every agent we run is alive and has reported since its (re)start
  local js t
  js=$(neutron_get "/v2.0/agents?host=$HOST_NAME") || return 1
  check() { # check AGENT_TYPE PIDNAME
    t=$(date -u -r "$RUN/$2.pid" '+%F %T')
    echo "$js" | jq -e --arg ty "$1" --arg t "$t" \
      '[.agents[] | select(.agent_type == $ty and .alive and .admin_state_up and .started_at >= $t)] | length > 0' >/dev/null
  }
  check "Linux bridge agent" neutron-linuxbridge-agent || return 1
  if [ "$WITH_DHCP" = 1 ]; then check "DHCP agent" neutron-dhcp-agent || return 1; fi
}
wait_for 120 "neutron agents alive" agents_alive

# ---------------------------------------------------------------- kuryr-test.json
# What the tests read (test/helpers/neutron-lab.ts). The top-level fields describe the server on
# $NEUTRON_PORT; "keystone" and "noauth" describe each auth mode that is being served.
ks_json=null
noauth_json=null
if [ "$AUTH" != noauth ]; then
  ks_json=$(jq -n --arg auth_url "$KS_URL/v3" --arg u "$KURYR_USER" --arg p "$KURYR_PASS" \
    --arg pr "$KURYR_PROJECT" --arg r "$REGION" --arg n "$NEUTRON_URL" \
    '{auth_url: $auth_url, username: $u, password: $p, project_name: $pr, user_domain_name: "Default",
      project_domain_name: "Default", region_name: $r, neutron_url: $n}')
fi
[ "$AUTH" != keystone ] && noauth_json=$(jq -n --arg n "$NOAUTH_SERVER_URL" '{neutron_url: $n}')
jq -n --arg auth "$AUTH" --arg primary "$PRIMARY_AUTH" --arg n "$NEUTRON_URL" --argjson ks "$ks_json" \
  --argjson na "$noauth_json" --arg host "$HOST_NAME" --argjson dhcp "$([ "$WITH_DHCP" = 1 ] && echo true || echo false)" \
  --arg lab "$LAB_DIR" --arg at "$(date -u '+%FT%TZ')" --arg types "$TYPE_DRIVERS" --arg tun "$TUN_IP" \
  '{auth: $primary, neutron_url: $n} + (if $ks then $ks | del(.neutron_url) else {} end)
   + {modes: $auth, keystone: $ks, noauth: $na, host: $host, physical_network: "physnet1",
      network_types: ($types | split(",")), tenant_network_type: "vxlan", tunnel_ip: $tun,
      dhcp_agent: $dhcp, lab_dir: $lab, written_at: $at}' >"$JSON.tmp"
{
  echo "# source me: kuryr-ts neutron lab endpoints (written by scripts/neutron/stack.sh)"
  echo "KURYR_LAB_AUTH=$AUTH"
  echo "KURYR_LAB_NEUTRON_URL=$NEUTRON_URL"
  if [ "$AUTH" != noauth ]; then
    echo "KURYR_LAB_AUTH_URL=$KS_URL/v3"
    echo "KURYR_LAB_USERNAME=$KURYR_USER"
    echo "KURYR_LAB_PASSWORD=$KURYR_PASS"
    echo "KURYR_LAB_PROJECT_NAME=$KURYR_PROJECT"
  fi
  [ "$AUTH" != keystone ] && echo "KURYR_LAB_NOAUTH_NEUTRON_URL=$NOAUTH_SERVER_URL"
  echo "KURYR_LAB_JSON=$JSON"
} >"$LAB_DIR/kuryr-test.env.tmp"
chmod 0644 "$JSON.tmp" "$LAB_DIR/kuryr-test.env.tmp"
mv -f "$LAB_DIR/kuryr-test.env.tmp" "$LAB_DIR/kuryr-test.env"
mv -f "$JSON.tmp" "$JSON" # last: its presence means "the stack is up"

T1=$(date +%s)
log "stack up in $((T1 - T0))s"
cat <<EOF

  Neutron API : $NEUTRON_URL   (auth_strategy=$PRIMARY_AUTH)
$([ "$AUTH" = both ] && echo "  Neutron API : $NOAUTH_URL   (auth_strategy=noauth, same DB and RPC)")
$([ "$AUTH" != noauth ] && echo "  Keystone    : $KS_URL/v3   (admin / $ADMIN_PASS; $KURYR_USER / $KURYR_PASS in project $KURYR_PROJECT)")
  MariaDB     : $HOST_IP:3306 / $SQL_SOCK      RabbitMQ: $TRANSPORT_URL
  config      : $ETC      logs: $LOGD      pids: $RUN
  tests read  : $JSON   (and $LAB_DIR/kuryr-test.env)
  credentials : source $LAB_DIR/admin-openrc | $LAB_DIR/noauth-openrc
                OS_CLIENT_CONFIG_FILE=$LAB_DIR/openstack/clouds.yaml (clouds lab-admin, lab-kuryr, lab-noauth)
EOF
