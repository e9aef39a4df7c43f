#!/usr/bin/env bash
# scripts/test.sh - the project's test command (CI runs exactly this):
# scripts/setup.sh, then the whole suite (`npm test`: build + node --test over
# test/**/*.test.ts) on Node 24. Exits with the test runner's status.
# The end-to-end tests start private Docker engines, so run this as root.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh
echo "[test] node $(node -v): npm test"
exec npm test
