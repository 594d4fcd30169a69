#!/usr/bin/env bash
# Stops what scripts/stack/up.sh started in STATE_DIR (its pid files), and nothing else.
#   scripts/stack/down.sh [STATE_DIR]      (npm run stack:down; default /tmp/chat-stack)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="${1:-${STACK_STATE_DIR:-/tmp/chat-stack}}"
log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
# shellcheck disable=SC1091
source "$root/scripts/stack/pids.sh"

# Stops NAME's process if it is still the one up.sh recorded: a pid reused by another program is left alone.
stop_pid() {
  local name=$1 signal=$2
  local pid
  pid="$(our_pid "$name")"
  if [[ -n $pid ]]; then
    kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 15 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "$name stopped"
  fi
  rm -f "$state/run/$name.pid" "$state/run/$name.start" "$state/run/$name.port"
}

[[ -d "$state/run" ]] || { log "nothing to stop in $state"; exit 0; }
# NGINX first (no new requests), then the API processes (they drain their requests), then the worker and
# indexer (they drain what they consume), then the services.
stop_pid nginx QUIT
for file in "$state"/run/api-*.pid; do [[ -e "$file" ]] && stop_pid "$(basename "$file" .pid)" TERM; done
stop_pid worker TERM
stop_pid indexer TERM
bash "$root/scripts/services/stop.sh" "$state/services"
log "down"
