#!/usr/bin/env bash
# Start private MariaDB / Redis / RabbitMQ / OpenSearch instances on
# 127.0.0.1, with all data, logs and pid files under STATE_DIR.
#
#   start.sh STATE_DIR                 # all four
#   start.sh STATE_DIR redis [...]     # only the named ones (e.g. after stop.sh/kill -9)
#
# A service that is already running is not started twice; its readiness is
# checked again. Exits non-zero (with log tails) if a service does not answer
# before its deadline; the others are left running -- call stop.sh.
# Ports etc. come from env (see README.md) and are recorded in
# STATE_DIR/services.env, which also has ready-made URLs for tests.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

init_state "${1:-}"
shift
parse_services "$@"
lock_services "${SERVICES[@]}"
save_settings

t0=$(now)
# Launch everything first, slowest first, then wait for each: on 2 cores the
# JVM and the Erlang VM boot in parallel with the fast ones instead of after.
order=()
for s in opensearch rabbitmq mariadb redis; do
  for want in "${SERVICES[@]}"; do [[ $want == "$s" ]] && order+=("$s"); done
done
for s in "${order[@]}"; do start_launch "$s"; done

failed=()
for s in redis mariadb rabbitmq opensearch; do
  for want in "${order[@]}"; do
    if [[ $want == "$s" ]]; then start_await "$s" || failed+=("$s"); fi
  done
done

if ((${#failed[@]})); then
  die "failed to start: ${failed[*]} (state in $STATE_DIR; run stop.sh $STATE_DIR to clean up)"
fi
log "started ${order[*]} in $(elapsed_since "$t0")s; connection settings in $STATE_DIR/services.env"
