#!/usr/bin/env bash
# End-to-end check of the service scripts on this machine:
#   fresh start of all four -> smoke.sh -> write one durable record to each ->
#   for each service: graceful restart, then kill -9 + restart, each time
#   checking the record survived -> Redis restart with --wipe loses its data ->
#   stop.sh -> no process of ours left, ports closed.
# Prints the time of every step and a closing "N passed, N failed".
#
#   selftest.sh [STATE_DIR]     (default /tmp/svc-selftest; wiped first)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

dir="${1:-/tmp/svc-selftest}"
"$here/stop.sh" "$dir" --wipe >/dev/null 2>&1 || true
init_state "$dir"

passed=0 failed=0
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then
    echo "PASS $what"
    passed=$((passed + 1))
  else
    echo "FAIL $what"
    failed=$((failed + 1))
  fi
}
timed() { # timed LABEL COMMAND...: run, print wall time
  local label=$1 t0 rc=0
  shift
  t0=$(now)
  "$@" >>"$LOG_DIR/selftest.log" 2>&1 || rc=$?
  printf 'TIME %-48s %6ss%s\n' "$label" "$(elapsed_since "$t0")" "$([[ $rc -ne 0 ]] && echo "  (exit $rc, see $LOG_DIR/selftest.log)")"
  return $rc
}
step() { # step LABEL COMMAND... (timed, and counted as a check)
  local label=$1
  shift
  check "$label" timed "$label" "$@"
}

# ---------------------------------------------------------- durable records
my() {
  mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MARIADB_PORT" -u "$MARIADB_USER" \
    -p"$MARIADB_PASSWORD" --default-character-set=utf8mb4 -N -B "$MARIADB_DATABASE" -e "$1"
}
rc() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
os() { curl -sS -m 30 -H 'Content-Type: application/json' "$@"; }
PY=""
amqp() { # amqp put|count: one persistent message into durable queue "selftest"
  "$PY" - "$RABBITMQ_PORT" "$1" <<'EOF'
import sys, pika
conn = pika.BlockingConnection(pika.ConnectionParameters(
    host="127.0.0.1", port=int(sys.argv[1]), credentials=pika.PlainCredentials("guest", "guest")))
ch = conn.channel()
if sys.argv[2] == "put":
    ch.confirm_delivery()  # broker confirms only once the message is on disk
    ch.queue_declare(queue="selftest", durable=True)
    ch.basic_publish(exchange="", routing_key="selftest", body=b"survives",
                     properties=pika.BasicProperties(delivery_mode=2))
else:
    print(ch.queue_declare(queue="selftest", durable=True, passive=True).method.message_count)
conn.close()
EOF
}

write_records() {
  my "CREATE TABLE persist (v VARCHAR(50)) DEFAULT CHARSET=utf8mb4; INSERT INTO persist VALUES ('kept 🚀');" &&
    rc set persist:key 42 >/dev/null &&
    amqp put &&
    os -X PUT "http://127.0.0.1:$OPENSEARCH_PORT/persist/_doc/1?refresh=true" -d '{"body":"kept"}' >/dev/null &&
    sleep 1.2 # > appendfsync everysec, so the Redis key is on disk before any kill -9
}
record_ok() {
  case $1 in
    mariadb) [[ "$(my 'SELECT v FROM persist' 2>/dev/null)" == 'kept 🚀' ]] ;;
    redis) [[ "$(rc get persist:key 2>/dev/null)" == 42 ]] ;;
    rabbitmq) [[ "$(amqp count 2>/dev/null)" == 1 ]] ;;
    opensearch) [[ "$(os "http://127.0.0.1:$OPENSEARCH_PORT/persist/_doc/1" 2>/dev/null | jq -r ._source.body)" == kept ]] ;;
  esac
}
kill9() { kill -9 "$(cat "$RUN_DIR/$1.pid")"; }

# ------------------------------------------------------------------- run it
echo "state dir: $STATE_DIR"
step "start.sh (all four, fresh)" "$here/start.sh" "$STATE_DIR"
check "smoke.sh" "$here/smoke.sh" "$STATE_DIR"
PY="$(pika_python)"
check "write one durable record to each service" write_records

for s in mariadb redis rabbitmq opensearch; do
  step "$s: stop.sh $s" "$here/stop.sh" "$STATE_DIR" "$s"
  step "$s: start.sh $s (after clean stop)" "$here/start.sh" "$STATE_DIR" "$s"
  check "$s: record survived clean restart" record_ok "$s"
  check "$s: kill -9 main pid" kill9 "$s"
  step "$s: start.sh $s (after kill -9)" "$here/start.sh" "$STATE_DIR" "$s"
  check "$s: record survived kill -9" record_ok "$s"
done

step "redis: stop.sh redis --kill --wipe" "$here/stop.sh" "$STATE_DIR" redis --kill --wipe
step "redis: start.sh redis (after wipe)" "$here/start.sh" "$STATE_DIR" redis
check "redis: data gone after --wipe" test "$(rc dbsize)" = 0

step "stop.sh (all)" "$here/stop.sh" "$STATE_DIR"
nothing_left() {
  local s left=""
  for s in "${ALL_SERVICES[@]}"; do left+="$(tagged_pids "$s")"; done
  [[ -z $left ]] || { ps -o pid,user,cmd -p "${left//$'\n'/,}" >&2; return 1; }
}
ports_closed() {
  local p
  for p in "$MARIADB_PORT" "$REDIS_PORT" "$RABBITMQ_PORT" "$RABBITMQ_DIST_PORT" \
    "$RABBITMQ_EPMD_PORT" "$OPENSEARCH_PORT" "$OPENSEARCH_TRANSPORT_PORT"; do
    if port_listening "$p"; then
      echo "port $p still open" >&2
      return 1
    fi
  done
}
check "no process of ours left (marker scan of /proc)" nothing_left
check "all ports closed" ports_closed

echo "$passed passed, $failed failed"
((failed == 0))
