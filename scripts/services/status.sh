#!/usr/bin/env bash
# Show which services of STATE_DIR are running and whether they answer.
#   status.sh STATE_DIR [service...]
# Exit status 0 only if every listed service is running and answering.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

[[ -d ${1:-} ]] || die "usage: $0 STATE_DIR [service...] (STATE_DIR must exist)"
init_state "$1"
shift
parse_services "$@"

rc=0
for s in "${SERVICES[@]}"; do
  pid="$(main_pid "$s")"
  if [[ -z $pid ]]; then
    printf '%-11s stopped\n' "$s"
    rc=1
  elif "${s}_ready"; then
    printf '%-11s running  pid %-7s 127.0.0.1:%s  answering\n' "$s" "$pid" "$(svc_port "$s")"
  else
    printf '%-11s running  pid %-7s 127.0.0.1:%s  NOT answering\n' "$s" "$pid" "$(svc_port "$s")"
    rc=1
  fi
done
exit $rc
