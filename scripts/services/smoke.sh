#!/usr/bin/env bash
# "cond && pass || fail" is fine here: pass only echoes and cannot fail.
# shellcheck disable=SC2015
# Prove that the services started by start.sh really work, the way the app
# will use them:
#   mariadb     utf8mb4 table, insert + read back an emoji as user chat over TCP
#   redis       INCR
#   rabbitmq    node ping via the CLI, AMQP publish + consume of one message (pika)
#   opensearch  index with a `wildcard` field, 3 docs, case-insensitive
#               wildcard query filtered by chat_id
#
#   smoke.sh STATE_DIR [service...]
#
# Prints one PASS/FAIL line per check and a closing "N passed, N failed".
# The AMQP check needs the Python package pika; it is installed on first use
# into a venv in $CHAT_SVC_CACHE_DIR/venv (PyPI).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

[[ -d ${1:-} ]] || die "usage: $0 STATE_DIR [service...] (STATE_DIR must exist)"
init_state "$1"
shift
parse_services "$@"

passed=0 failed=0
pass() {
  echo "PASS $*"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL $*"
  failed=$((failed + 1))
}

smoke_mariadb() {
  local out
  sql() {
    mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MARIADB_PORT" \
      -u "$MARIADB_USER" -p"$MARIADB_PASSWORD" --default-character-set=utf8mb4 \
      -N -B "$MARIADB_DATABASE" -e "$1"
  }
  # 4-byte characters are the point: utf8 (utf8mb3) would reject them.
  out="$(sql "
    DROP TABLE IF EXISTS smoke_emoji;
    CREATE TABLE smoke_emoji (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(100) NOT NULL)
      DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
    INSERT INTO smoke_emoji (body) VALUES ('hi 👋🏽 from Instabug 🚀');
    SELECT CONCAT(body, '|', CHAR_LENGTH(body), '|', HEX(SUBSTRING(body, 4, 1))) FROM smoke_emoji;
    DROP TABLE smoke_emoji;" 2>&1)" || true
  # 👋 is U+1F44B = F0 9F 91 8B in UTF-8; the string is 21 characters (🏽 counts as one).
  if [[ $out == 'hi 👋🏽 from Instabug 🚀|21|F09F918B' ]]; then
    pass "mariadb: utf8mb4 emoji round trip ($out)"
  else
    fail "mariadb: got: $out"
  fi
  out="$(sql "SELECT @@character_set_server, @@collation_server" 2>&1 | tr '\t' ' ')" || true
  [[ $out == "utf8mb4 utf8mb4_unicode_ci" ]] && pass "mariadb: server charset $out" || fail "mariadb: server charset: $out"
}

smoke_redis() {
  local cli=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT") out
  "${cli[@]}" del smoke:counter >/dev/null
  "${cli[@]}" incr smoke:counter >/dev/null
  out="$("${cli[@]}" incr smoke:counter)"
  "${cli[@]}" del smoke:counter >/dev/null
  [[ $out == 2 ]] && pass "redis: INCR twice -> $out" || fail "redis: INCR gave '$out'"
  out="$("${cli[@]}" config get appendonly | tail -n1)"
  [[ $out == yes ]] && pass "redis: appendonly $out" || fail "redis: appendonly '$out'"
}

smoke_rabbitmq() {
  local out py
  if out="$(rabbitmq_cli rabbitmq-diagnostics -q ping 2>&1)"; then
    pass "rabbitmq: rabbitmq-diagnostics -n $RABBITMQ_NODENAME ping ($out)"
  else
    fail "rabbitmq: diagnostics ping: $out"
  fi
  py="$(pika_python)"
  out="$("$py" - "$RABBITMQ_PORT" <<'EOF' 2>&1
import sys, time, pika
params = pika.ConnectionParameters(host="127.0.0.1", port=int(sys.argv[1]),
                                   credentials=pika.PlainCredentials("guest", "guest"))
conn = pika.BlockingConnection(params)
ch = conn.channel()
q = "smoke-%d" % int(time.time() * 1000)
ch.queue_declare(queue=q, durable=False, auto_delete=False)
body = "hello 🐇".encode()
ch.basic_publish(exchange="", routing_key=q, body=body)
got = None
deadline = time.time() + 5
while got is None and time.time() < deadline:
    method, props, data = ch.basic_get(queue=q, auto_ack=True)
    if method is not None:
        got = data
    else:
        time.sleep(0.05)
ch.queue_delete(queue=q)
conn.close()
print(got.decode() if got else "NOTHING")
EOF
)" || true
  [[ $out == "hello 🐇" ]] && pass "rabbitmq: AMQP publish+consume one message ($out)" || fail "rabbitmq: AMQP: $out"
}

smoke_opensearch() {
  local url="http://127.0.0.1:$OPENSEARCH_PORT" idx=smoke-wildcard out
  local c=(curl -sS -m 30 -H 'Content-Type: application/json')
  "${c[@]}" -X DELETE "$url/$idx?ignore_unavailable=true" >/dev/null
  out="$("${c[@]}" -X PUT "$url/$idx" -d '{
    "settings": {"number_of_shards": 1, "number_of_replicas": 0},
    "mappings": {"properties": {"body": {"type": "wildcard"}, "chat_id": {"type": "long"}}}}')"
  [[ $out == *'"acknowledged":true'* ]] && pass "opensearch: index with wildcard mapping created" || fail "opensearch: create index: $out"
  "${c[@]}" -X PUT "$url/$idx/_doc/1" -d '{"chat_id": 1, "body": "Welcome to Instabug support"}' >/dev/null
  "${c[@]}" -X PUT "$url/$idx/_doc/2" -d '{"chat_id": 1, "body": "nothing to see here"}' >/dev/null
  "${c[@]}" -X PUT "$url/$idx/_doc/3?refresh=true" -d '{"chat_id": 2, "body": "INSTABUG in another chat"}' >/dev/null
  local q
  for pat in '*stab*' '*STAB*'; do
    q='{"query": {"bool": {
          "filter": [{"term": {"chat_id": 1}}],
          "must": [{"wildcard": {"body": {"value": "'"$pat"'", "case_insensitive": true}}}]}}}'
    out="$("${c[@]}" -X POST "$url/$idx/_search?filter_path=hits.total.value,hits.hits._id,hits.hits._source.body" -d "$q")"
    if [[ $(jq -r '.hits.total.value' <<<"$out") == 1 && $(jq -r '.hits.hits[0]._id' <<<"$out") == 1 ]]; then
      pass "opensearch: wildcard $pat case_insensitive, chat_id=1 -> $(jq -c '[.hits.hits[]._source.body]' <<<"$out")"
    else
      fail "opensearch: wildcard $pat: $out"
    fi
  done
  # Without the chat filter both chats' Instabug docs match (proves the
  # filter, not the pattern, excluded doc 3).
  q='{"query": {"wildcard": {"body": {"value": "*stab*", "case_insensitive": true}}}}'
  out="$("${c[@]}" -X POST "$url/$idx/_search?filter_path=hits.total.value" -d "$q")"
  [[ $(jq -r '.hits.total.value' <<<"$out") == 2 ]] && pass "opensearch: unfiltered wildcard matches both chats" || fail "opensearch: unfiltered: $out"
  "${c[@]}" -X DELETE "$url/$idx" >/dev/null
}

for s in "${SERVICES[@]}"; do "smoke_$s"; done
echo "$passed passed, $failed failed"
((failed == 0))
