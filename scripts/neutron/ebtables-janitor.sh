#!/usr/bin/env bash
# scripts/neutron/ebtables-janitor.sh - keeps the lab's neutron-linuxbridge-agent (Zed) from wedging for good.
#
# On an update of a port it has plugged, the agent's arp_protect first deletes the port's old
# `-i tapX --among-src MAC -j RETURN` rule. With ebtables-nft (1.8.9, the only ebtables this kernel has:
# no legacy ebtables `nat` table) that delete can fail with exit 4 once the tap is gone, and the agent retries
# exit 4 with exponential backoff and no stop: its device loop then hangs, no new port goes ACTIVE, and every
# later test on the lab fails. Any update of a recently unplugged port can trigger it (a tag change is one).
#
# The remedy, applied here every 2 s: a `neutronMAC-tapX` chain whose tap no longer exists (seen so on two
# passes in a row, so the agent's own clean-up goes first) is unhooked from PREROUTING, flushed and deleted;
# the agent's retry then fails differently (not retried) and its loop goes on. Only chains of devices that
# are gone are touched. stack.sh starts it as one of the lab's daemons; stack-stop.sh stops it.
set -uo pipefail
declare -A dead_before=()
while true; do
  declare -A dead_now=()
  chains=$(ebtables -t nat --concurrent -L 2>/dev/null | sed -n 's/^Bridge chain: \(neutronMAC-tap[^,]*\),.*/\1/p')
  for chain in $chains; do
    dev=${chain#neutronMAC-}
    ip link show dev "$dev" >/dev/null 2>&1 && continue
    dead_now[$chain]=1
    [ -n "${dead_before[$chain]:-}" ] || continue
    ebtables -t nat --concurrent -D PREROUTING -i "$dev" -j "$chain" >/dev/null 2>&1
    ebtables -t nat --concurrent -F "$chain" >/dev/null 2>&1
    ebtables -t nat --concurrent -X "$chain" >/dev/null 2>&1 &&
      printf '%(%F %T)T removed %s (its device is gone)\n' -1 "$chain"
  done
  dead_before=()
  for c in "${!dead_now[@]}"; do dead_before[$c]=1; done
  unset dead_now
  sleep 2
done
