#!/usr/bin/env bash
# scripts/run.sh [start|stop|status] - run kuryr-ts for real next to a Docker engine.
#
# start (default): scripts/setup.sh; start /usr/sbin/dockerd --iptables=false
#   --ip-masq=false unless a dockerd already answers on /var/run/docker.sock (a
#   dockerd not started here is reused and never stopped); build the image
#   busybox:local from busybox-static (no registry). `bin/kuryr serve` is started first, in
#   the background, and waited for until its socket answers POST /Plugin.Activate (a dockerd
#   that restarts with kuryr networks looks the driver up at once, and waits ~15 s for it).
# stop: stops only what this script started (PID files, cmdline checked first):
#   its dockerd first (so containers can still leave their kuryr networks), then kuryr.
# status: what runs, and `bin/kuryr status`.
#
# env: KURYR_SOCKET=/run/docker/plugins/kuryr.sock  KURYR_STATE_DIR=/var/lib/kuryr
#      KURYR_DRIVER_NAME=kuryr  KURYR_LOG_LEVEL=info  KURYR_RUN_DIR=/run/kuryr-ts
#      KURYR_LOG_DIR=/var/log/kuryr-ts  KURYR_SERVE_ARGS="extra serve args"
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
RUN_DIR=${KURYR_RUN_DIR:-/run/kuryr-ts}
LOG_DIR=${KURYR_LOG_DIR:-/var/log/kuryr-ts}
DRIVER=${KURYR_DRIVER_NAME:-kuryr}
SOCKET=${KURYR_SOCKET:-/run/docker/plugins/$DRIVER.sock}
STATE_DIR=${KURYR_STATE_DIR:-/var/lib/kuryr}
LOG_LEVEL=${KURYR_LOG_LEVEL:-info}
DOCKER_SOCK=/var/run/docker.sock
DOCKER=/usr/bin/docker
[ -x $DOCKER ] || DOCKER=$(command -v docker || echo /usr/bin/docker)
IMAGE=busybox:local
APPLETS="sh ash ip ping ping6 ifconfig route arp cat ls sleep echo hostname ps grep mkdir rm true false
  uname env id kill wc head tail sed awk cut tr seq date touch ln cp mv printf test nc wget nslookup netstat
  traceroute udhcpc mount umount dmesg"

log() { printf '[run %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# pid_alive PIDFILE MATCH: the pid in PIDFILE runs (not a zombie) and its cmdline contains MATCH
pid_alive() {
  local f=$1 match=$2 pid state
  [ -s "$f" ] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -F -- "$match" >/dev/null
}

# stop_pid NAME MATCH TIMEOUT
stop_pid() {
  local name=$1 match=$2 timeout=$3 f=$RUN_DIR/$1.pid pid end
  if pid_alive "$f" "$match"; then
    pid=$(<"$f")
    kill -TERM "$pid" 2>/dev/null || true
    end=$((SECONDS + timeout))
    while pid_alive "$f" "$match" && [ $SECONDS -lt $end ]; do sleep 0.2; done
    if pid_alive "$f" "$match"; then
      log "$name (pid $pid) still running after ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "$name stopped (pid $pid)"
  elif [ -e "$f" ]; then
    log "$name: stale PID file removed (process gone or not ours)"
  fi
  rm -f "$f"
}

docker_ok() { $DOCKER -H "unix://$DOCKER_SOCK" version >/dev/null 2>&1; }
plugin_ok() {
  curl -sf --max-time 2 --unix-socket "$SOCKET" -X POST -H 'Content-Type: application/json' \
    -d '{}' http://localhost/Plugin.Activate >/dev/null 2>&1
}

start_dockerd() {
  if docker_ok; then
    if pid_alive "$RUN_DIR/dockerd.pid" dockerd; then
      log "dockerd already running (pid $(<"$RUN_DIR/dockerd.pid"), started by this script)"
    else
      log "reusing the dockerd that answers on $DOCKER_SOCK (not started here, never stopped here)"
    fi
    return 0
  fi
  pid_alive "$RUN_DIR/dockerd.pid" dockerd && die "our dockerd (pid $(<"$RUN_DIR/dockerd.pid")) runs but does not answer; see $LOG_DIR/dockerd.log"
  local args=(--iptables=false --ip-masq=false) end pid
  setsid /usr/sbin/dockerd "${args[@]}" >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$RUN_DIR/dockerd.pid"
  log "dockerd started (pid $pid): /usr/sbin/dockerd ${args[*]}; log $LOG_DIR/dockerd.log"
  end=$((SECONDS + 60))
  until docker_ok; do
    pid_alive "$RUN_DIR/dockerd.pid" dockerd || { tail -20 "$LOG_DIR/dockerd.log" >&2; die "dockerd exited"; }
    [ $SECONDS -lt $end ] || { tail -20 "$LOG_DIR/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
    sleep 0.3
  done
  log "dockerd $($DOCKER version -f '{{.Server.Version}}') answers on $DOCKER_SOCK"
}

ensure_image() {
  if $DOCKER image inspect "$IMAGE" >/dev/null 2>&1; then
    log "image $IMAGE present"
    return 0
  fi
  local bb root
  bb=$(readlink -f /bin/busybox)
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp"
  chmod 1777 "$root/tmp"
  cp "$bb" "$root/bin/busybox"
  for a in $APPLETS; do ln -s busybox "$root/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  tar -C "$root" -c . | $DOCKER import -c 'CMD ["sh"]' -c 'ENV PATH=/bin' - "$IMAGE" >/dev/null
  rm -rf "$root"
  log "image $IMAGE built from $bb (busybox-static)"
}

start_plugin() {
  if pid_alive "$RUN_DIR/kuryr.pid" "$ROOT/"; then
    if plugin_ok; then
      log "kuryr already running (pid $(<"$RUN_DIR/kuryr.pid")) on $SOCKET"
      return 0
    fi
    die "kuryr (pid $(<"$RUN_DIR/kuryr.pid")) runs but $SOCKET does not answer; see $LOG_DIR/kuryr.log"
  fi
  plugin_ok && die "something not started by this script already answers on $SOCKET"
  mkdir -p "$STATE_DIR" "$(dirname "$SOCKET")"
  # shellcheck disable=SC2206
  local args=(serve --socket "$SOCKET" --state-dir "$STATE_DIR" --driver-name "$DRIVER" --log-level "$LOG_LEVEL"
    ${KURYR_SERVE_ARGS:-}) pid end
  setsid "$ROOT/bin/kuryr" "${args[@]}" >>"$LOG_DIR/kuryr.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$RUN_DIR/kuryr.pid"
  log "kuryr started (pid $pid): bin/kuryr ${args[*]}; log $LOG_DIR/kuryr.log"
  end=$((SECONDS + 30))
  until plugin_ok; do
    pid_alive "$RUN_DIR/kuryr.pid" "$ROOT/" || { tail -20 "$LOG_DIR/kuryr.log" >&2; die "kuryr exited"; }
    [ $SECONDS -lt $end ] || { tail -20 "$LOG_DIR/kuryr.log" >&2; die "kuryr did not answer on $SOCKET within 30 s"; }
    sleep 0.2
  done
  log "kuryr answers POST /Plugin.Activate on $SOCKET"
}

start() {
  [ "$(id -u)" = 0 ] || die "run as root"
  bash "$ROOT/scripts/setup.sh"
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  # the plugin first: a restarting dockerd restores its kuryr networks and looks the driver up
  start_plugin
  start_dockerd
  ensure_image
  cat <<EOT

kuryr-ts is up (driver "$DRIVER", socket $SOCKET, state $STATE_DIR). Try:

  docker network create -d $DRIVER --ipam-driver $DRIVER net1
  docker run -d --net net1 --name c1 $IMAGE sleep 3600
  docker run -d --net net1 --name c2 $IMAGE sleep 3600
  docker exec c1 ping -c3 \$(docker inspect -f '{{.NetworkSettings.Networks.net1.IPAddress}}' c2)
  bin/kuryr status
  docker rm -f c1 c2 && docker network rm net1

Stop with: scripts/run.sh stop   (logs: $LOG_DIR)
EOT
}

stop() {
  stop_pid dockerd dockerd 30
  stop_pid kuryr "$ROOT/" 15
  log "done (a dockerd or plugin not started by this script is left alone)"
}

status() {
  if pid_alive "$RUN_DIR/dockerd.pid" dockerd; then echo "dockerd: pid $(<"$RUN_DIR/dockerd.pid") (started by run.sh)"
  elif docker_ok; then echo "dockerd: running (not started by run.sh)"
  else echo "dockerd: down"; fi
  if pid_alive "$RUN_DIR/kuryr.pid" "$ROOT/"; then echo "kuryr: pid $(<"$RUN_DIR/kuryr.pid"), socket $SOCKET"
  elif plugin_ok; then echo "kuryr: something not started by run.sh answers on $SOCKET"
  else echo "kuryr: down"; fi
  if docker_ok; then
    $DOCKER image inspect "$IMAGE" >/dev/null 2>&1 && echo "image $IMAGE: present" || echo "image $IMAGE: missing"
  fi
  if plugin_ok; then "$ROOT/bin/kuryr" status || true; fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
