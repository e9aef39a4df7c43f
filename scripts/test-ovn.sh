#!/usr/bin/env bash
# scripts/test-ovn.sh - the second pass of the tests against a real Neutron, on the ML2/OVN lab
# (scripts/ovn): the same test files as on the Linux bridge lab, with KURYR_NEUTRON_LAB pointing at the
# OVN lab's kuryr-test.json. Run after the first pass (scripts/test.sh), as root, with the Linux bridge
# lab's MariaDB/RabbitMQ (and Keystone, for the keystone-mode cases) up.
#
# The OVN lab is started when it is down and stopped again at exit (left running when it was up
# already). A lab that fails to start makes the tests skip with the reason, as on the first pass.
#
#   scripts/test-ovn.sh            build, then the real-Neutron test files below
#   scripts/test-ovn.sh FILE...    build, then only these files
#   KURYR_WITH_OVN=0               do nothing (exit 0)
set -Eeuo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/env.sh
. scripts/env.sh
[ "${KURYR_WITH_OVN:-1}" = 0 ] && exit 0

FILES=(
  test/contract/neutron-http.test.ts
  test/e2e/neutron-lab.test.ts
  test/e2e/neutron-docker.test.ts
  test/e2e/neutron-faults.test.ts
  test/e2e/neutron-concurrency.test.ts
  test/e2e/neutron-tagless.test.ts
  test/e2e/orchestrator.test.ts
  test/e2e/ovn-host.test.ts
  test/binding/vif-ovs.test.ts
  test/e2e/vlan-trunk.test.ts
)
[ $# -gt 0 ] && FILES=("$@")

OVN_JSON=${KURYR_OVN_LAB:-/var/lib/kuryr-ovn-lab/kuryr-test.json}
# the OVN packages (8-11 s of apt when missing; scripts/setup.sh does not install them)
if [ "$(id -u)" = 0 ] && APT_ONLY=1 bash scripts/ovn/stack.sh >/dev/null 2>&1; then
  if bash scripts/ovn/stack.sh status >/dev/null 2>&1; then
    echo "[test-ovn] OVN lab already running: using it and leaving it running"
  else
    trap 'bash scripts/ovn/stack-stop.sh || true' EXIT
    trap 'exit 130' INT TERM
    # keystone mode needs the Linux bridge lab's Keystone: without it, noauth only
    auth=both
    curl -sf -m 5 http://127.0.0.1:5000/v3/ >/dev/null || auth=noauth
    AUTH=$auth bash scripts/ovn/stack.sh ||
      echo "[test-ovn] WARNING: the OVN lab did not start; the tests against it will skip"
  fi
fi
echo "[test-ovn] node $(node -v): ${#FILES[@]} files against the OVN lab ($OVN_JSON)"
npm run build >/dev/null
rc=0
KURYR_NEUTRON_LAB=$OVN_JSON node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./test/reporters/skips.ts --test-reporter-destination=stdout \
  --test-reporter=./test/reporters/failures.ts --test-reporter-destination=stdout "${FILES[@]}" || rc=$?
exit $rc
