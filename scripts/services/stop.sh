#!/usr/bin/env bash
# Stop what start.sh started in STATE_DIR -- found through the pid files and
# the per-process marker, never by process name, so system instances or other
# STATE_DIRs are untouched.
#
#   stop.sh STATE_DIR [service...] [--kill] [--wipe]
#     --kill   SIGKILL instead of a graceful SIGTERM (simulate a crash)
#     --wipe   delete the service's data after stopping (next start is fresh)
# Services are stopped in parallel. Missing STATE_DIR or nothing running: ok.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

[[ -n ${1:-} ]] || die "usage: $0 STATE_DIR [service...] [--kill] [--wipe]"
if [[ ! -d $1 ]]; then
  log "no state dir $1, nothing to stop"
  exit 0
fi
init_state "$1"
shift

mode='term' wipe=0 names=()
for a in "$@"; do
  case $a in
    --kill) mode='kill' ;;
    --wipe) wipe=1 ;;
    -*) die "unknown option $a" ;;
    *) names+=("$a") ;;
  esac
done
parse_services "${names[@]}"

t0=$(now)
pids=()
for s in "${SERVICES[@]}"; do
  (
    lock_services "$s"
    stop_service "$s" "$mode"
    if ((wipe)); then
      "${s}_wipe"
      log "$s: data wiped"
    fi
  ) &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
log "stop done in $(elapsed_since "$t0")s"
exit $rc
