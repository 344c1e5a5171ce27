#!/bin/bash
# Runs a benchmark command in its own session, hence its own scheduler
# autogroup, at nice -15, so builds and tests running in other sessions on a
# shared machine take less CPU from the measurement. Needs root (or
# CAP_SYS_NICE) for the negative nice; without it the command runs as is.
#
#   crates/tidepool-bench/scripts/prioritized.sh target/release/pool-overhead --json out.json
set -u
exec setsid bash -c '
  echo -15 > /proc/self/autogroup 2>/dev/null || echo "note: could not raise the autogroup priority" >&2
  # GNU nice runs the command anyway when it may not raise the priority.
  exec nice -n -15 "$@"
' prioritized "$@"
