#!/usr/bin/env bash
# scripts/test.sh - the project's test command (CI runs exactly this):
# scripts/setup.sh, then the whole suite (`npm test`: build + node --test over
# test/**/*.test.ts) on Node 24. Exits with the test runner's status.
# The end-to-end tests start private Docker engines, so run this as root.
# The Neutron lab (scripts/neutron) is started for the tests against a real Neutron when its
# packages are installed, and stopped afterwards unless it was already running;
# KURYR_WITH_NEUTRON=0: not started (those tests skip). Then the same real-Neutron tests run a second time
# on the ML2/OVN lab (scripts/test-ovn.sh; KURYR_WITH_OVN=0 leaves that pass out).
set -Eeuo pipefail
# every failure of both passes, with its error, printed again at the very end, after the labs have stopped
# (test/reporters/failures.ts): the end of a CI log then says why each test failed, whichever pass it was in
KURYR_FAILURES_FILE=$(mktemp /tmp/kuryr-failures.XXXXXX)
export KURYR_FAILURES_FILE
STOP_LAB=() # the lab stop this run owes (it started the lab)
on_exit() {
  [ ${#STOP_LAB[@]} -eq 0 ] || "${STOP_LAB[@]}" || true
  if [ -s "$KURYR_FAILURES_FILE" ]; then
    echo "[test] the failures of this run, both passes:"
    cat "$KURYR_FAILURES_FILE"
  fi
  rm -f "$KURYR_FAILURES_FILE"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
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
    STOP_LAB=(bash scripts/neutron/stack-stop.sh)
    bash scripts/neutron/stack.sh \
      || echo "[test] WARNING: the Neutron lab did not start; the tests against a real Neutron will skip"
  fi
  # the lab's second host (test/e2e/two-hosts.test.ts); stopped at exit unless it was already up
  # (when this run stops the lab, stack-stop.sh stops the second host first)
  if bash scripts/neutron/stack.sh status >/dev/null 2>&1 && ! bash scripts/neutron/host2.sh status >/dev/null 2>&1; then
    [ ${#STOP_LAB[@]} -gt 0 ] || STOP_LAB=(bash scripts/neutron/host2.sh stop)
    bash scripts/neutron/host2.sh \
      || echo "[test] WARNING: the lab's second host did not start; the two-host tests will skip"
  fi
fi
# the nested port driver's macvlan children (test/e2e/nested-vm.test.ts); built in on some kernels
[ "$(id -u)" = 0 ] && { modprobe macvlan 2>/dev/null || true; }
echo "[test] node $(node -v): npm test"
rc=0
npm test || rc=$?
# second pass: the real-Neutron tests on the ML2/OVN lab (scripts/ovn: started here if down, stopped again
# at its exit); it needs the Linux bridge lab's MariaDB, RabbitMQ and Keystone, so it runs while that is up
if [ "${KURYR_WITH_NEUTRON:-1}" != 0 ] && [ "${KURYR_WITH_OVN:-1}" != 0 ] && [ "$(id -u)" = 0 ] \
  && bash scripts/neutron/stack.sh status >/dev/null 2>&1; then
  echo "[test] second pass on the ML2/OVN lab: scripts/test-ovn.sh"
  bash scripts/test-ovn.sh || rc=$?
elif [ "${KURYR_REQUIRE_LAB:-0}" = 1 ]; then
  echo "[test] KURYR_REQUIRE_LAB=1 but the ML2/OVN pass could not run (the Linux bridge lab is down or not root)"
  rc=1
fi
exit $rc
