#!/usr/bin/env bash
# scripts/test.sh - the project's test command (CI runs exactly this):
# scripts/setup.sh, then the whole suite (`npm test`: build + node --test over
# test/**/*.test.ts) on Node 24. Exits with the test runner's status.
# The end-to-end tests start private Docker engines, so run this as root.
# The Neutron lab (scripts/neutron) is started for the tests against a real Neutron when its
# packages are installed, and stopped afterwards unless it was already running;
# KURYR_WITH_NEUTRON=0: not started (those tests skip).
set -Eeuo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"
if [ "${KURYR_WITH_NEUTRON:-1}" != 0 ]; then KURYR_WITH_LABS=1 bash scripts/setup.sh; else bash scripts/setup.sh; fi
# shellcheck source=scripts/env.sh
. scripts/env.sh
if [ "${KURYR_WITH_NEUTRON:-1}" != 0 ] && [ "$(id -u)" = 0 ] \
  && SKIP_APT=1 APT_ONLY=1 bash scripts/neutron/stack.sh >/dev/null 2>&1; then
  if bash scripts/neutron/stack.sh status >/dev/null 2>&1; then
    echo "[test] Neutron lab already running: using it and leaving it running"
  else
    trap 'bash scripts/neutron/stack-stop.sh || true' EXIT
    trap 'exit 130' INT TERM
    bash scripts/neutron/stack.sh \
      || echo "[test] WARNING: the Neutron lab did not start; the tests against a real Neutron will skip"
  fi
fi
echo "[test] node $(node -v): npm test"
rc=0
npm test || rc=$?
exit $rc
