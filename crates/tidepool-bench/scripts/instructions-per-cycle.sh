#!/bin/bash
# Client-side instructions per get -> prepared query -> drop cycle, counted
# by callgrind for each pool: exact and repeatable whatever else the machine
# is doing, where throughput on two shared cores swings by 10%. Each pool
# runs N1 and N2 cycles and the table shows (I(N2) - I(N1)) / (N2 - N1), so
# start-up, connecting and preparing cancel out. Counts only the client
# process (the server's work is not in it).
#
#   cargo build --release -p tidepool-bench --bin cycle-cost
#   crates/tidepool-bench/scripts/instructions-per-cycle.sh
#   POOLS="tidepool deadpool" WORKLOAD=point-select crates/tidepool-bench/scripts/instructions-per-cycle.sh
#
# A pool name ending in -untracked (tidepool-untracked,
# tidepool-deadpool-way-untracked) runs that pool with tidepool-postgres'
# session-state dirty bits off (--no-session-tracking): the anchor for them.
set -euo pipefail
bin=${BIN:-target/release/cycle-cost}
pools=${POOLS:-direct tidepool tidepool-notest deadpool bb8-notest sqlx-notest}
workload=${WORKLOAD:-select1}
n1=${N1:-1000}
n2=${N2:-3000}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
[ -x "$bin" ] || { echo "$bin is missing: cargo build --release -p tidepool-bench --bin cycle-cost" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

count() { # pool cycles -> instructions
  local pool=${1%-untracked} extra=()
  [ "$pool" != "$1" ] && extra=(--no-session-tracking)
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" --pool "$pool" "${extra[@]}" --cycles "$2" --workload "$workload" \
    2>"$tmp/err" >/dev/null || { cat "$tmp/err" >&2; exit 1; }
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/err"
}

echo "Instructions per cycle ($workload, $n1 and $n2 cycles, one task, callgrind):"
echo
echo "| pool | instructions per cycle | ÷ deadpool |"
echo "|---|---:|---:|"
declare -A per
for p in $pools deadpool; do
  [ -n "${per[$p]:-}" ] && continue
  a=$(count "$p" "$n1")
  b=$(count "$p" "$n2")
  per[$p]=$(( (b - a) / (n2 - n1) ))
done
for p in $pools; do
  awk -v p="$p" -v x="${per[$p]}" -v d="${per[deadpool]}" 'BEGIN { printf "| %s | %d | %.3f |\n", p, x, x / d }'
done
