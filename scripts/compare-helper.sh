#!/usr/bin/env bash
# Runs `conntrack -E -o id` and the event helper side by side on the same loopback traffic in a namespace of our own
# and checks that they print the same bytes; keeps both outputs in fixtures/helper/.
# Needs root, conntrack, nftables, iproute2, node and a built helper (npm run build). Traffic: 127.0.0.1 and ::1 only.
# Usage: sudo scripts/compare-helper.sh [helper path]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
helper=${1:-$root/dist/native/conntrack-events}
out="$root/fixtures/helper"
ns="ect-native-compare-$$"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$out"
ip netns add "$ns"
inns() { ip netns exec "$ns" "$@"; }
inns ip link set lo up
inns sysctl -qw net.netfilter.nf_conntrack_events=1 net.netfilter.nf_conntrack_acct=1
inns nft -f - <<'NFT'
table inet compare {
  chain out { type filter hook output priority filter; ct state new counter; tcp dport 9502 ct mark set 42; }
}
NFT
ip netns exec "$ns" conntrack -E -o id >"$out/events.conntrack.txt" 2>"$out/events.conntrack.stderr" &
conntrack_pid=$!
pids+=($conntrack_pid)
ip netns exec "$ns" "$helper" --buffer-size 4194304 >"$out/events.helper.txt" 2>"$out/events.helper.stderr" &
helper_pid=$!
pids+=($helper_pid)
sleep 0.5
traffic="$root/test/kernel/traffic.mjs"
ip netns exec "$ns" node "$traffic" serve 127.0.0.1:9501 127.0.0.1:9502 ::1:9503 >/dev/null &
pids+=($!)
sleep 0.5
inns node "$traffic" burst 127.0.0.1 9501 5 1 >/dev/null 2>&1
inns node "$traffic" burst 127.0.0.1 9502 2 1 >/dev/null 2>&1
inns node "$traffic" burst ::1 9503 5 1 >/dev/null 2>&1
# DESTROY events (with accounting) and a request from user space ([USERSPACE] portid=...).
inns conntrack -I -p tcp -s 127.0.0.5 -d 127.0.0.6 --sport 1 --dport 2 --state ESTABLISHED -t 600 \
  -u SEEN_REPLY,ASSURED >/dev/null 2>&1
inns conntrack -F >/dev/null 2>&1
sleep 1
kill -TERM "$conntrack_pid" "$helper_pid"
wait "$conntrack_pid" "$helper_pid" || true
# progname= is looked up after the event arrives: a conntrack -I/-F that has already exited has none, in either.
strip() { sed -E 's/ progname=[^ ]*$//; s/ portid=[0-9]+$//' "$1"; }
if diff <(strip "$out/events.conntrack.txt") <(strip "$out/events.helper.txt") >/dev/null; then
  echo "identical: $(wc -l <"$out/events.helper.txt") lines ($(grep -c '^\[DESTROY\]' "$out/events.helper.txt") DESTROY)"
  cmp -s "$out/events.conntrack.txt" "$out/events.helper.txt" || echo "(byte-identical but for portid/progname lookups)"
else
  echo "DIFFERENT:"
  diff "$out/events.conntrack.txt" "$out/events.helper.txt" || true
  exit 1
fi
