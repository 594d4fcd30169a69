#!/usr/bin/env bash
# Starts the distributed topology on this machine, without containers, on 127.0.0.1:
# MariaDB, Redis, RabbitMQ and OpenSearch (scripts/services), a worker, an indexer, API_PROCESSES API
# processes, and NGINX on STACK_PORT in front of them. Waits until every part answers.
#
#   scripts/stack/up.sh [STATE_DIR]      (npm run stack:up; default /tmp/chat-stack)
#
# ADMIN_TOKEN comes from the environment (required: GET /applications reveals every token). Stop it all
# with scripts/stack/down.sh STATE_DIR, which stops what this started and nothing else.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="${1:-${STACK_STATE_DIR:-/tmp/chat-stack}}"
api_processes="${API_PROCESSES:-3}"
stack_port="${STACK_PORT:-8080}"
api_base_port="${API_BASE_PORT:-3001}"
worker_port="${WORKER_PORT:-3010}"
indexer_port="${INDEXER_PORT:-3020}"
node="$root/node_modules/.bin/node"

log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "error: $*" >&2; exit 1; }
# shellcheck disable=SC1091
source "$root/scripts/stack/pids.sh"

# Checked here too (src/config.ts has the same rule), before any service is started for nothing.
admin_token="${ADMIN_TOKEN:-}"
((${#admin_token} >= 16)) || die "set ADMIN_TOKEN (at least 16 characters): it guards GET /applications"
[[ -x "$node" ]] || die "run npm install first (it installs Node 24 into node_modules)"
# OpenSearch runs as its own user, which must be able to enter the state directory.
[[ "$state" != /root* ]] || die "choose a STATE_DIR outside /root (OpenSearch's user cannot enter it)"
mkdir -p "$state"/{run,logs,nginx}
# A port another program holds would make a part look ready when it is not ours that answers: refuse,
# before anything is started. A port one of our own running processes holds is fine (up.sh again); one
# that a process of ours killed a moment ago still holds is released within seconds, hence the wait.
ports=("nginx $stack_port" "worker $worker_port" "indexer $indexer_port")
for ((i = 0; i < api_processes; i++)); do ports+=("api-$((i + 1)) $((api_base_port + i))"); done
for entry in "${ports[@]}"; do
  read -r name port <<<"$entry"
  if [[ -n "$(our_pid "$name")" ]]; then
    recorded="$(cat "$state/run/$name.port" 2>/dev/null || true)"
    [[ $recorded == "$port" ]] ||
      die "$name is running on port ${recorded:-unknown}, not $port: stop the stack first (scripts/stack/down.sh $state)"
    continue
  fi
  deadline=$((SECONDS + 5))
  while port_in_use "$port"; do
    ((SECONDS < deadline)) ||
      die "port $port (for $name) is in use by another program: stop it, or move $name with the settings in the README"
    sleep 0.2
  done
done
# From here on a failure may leave some parts running: say how to stop them.
trap 'status=$?; ((status == 0)) || log "stack:up did not finish; stop what it started with: scripts/stack/down.sh $state" >&2' EXIT
chmod 755 "$state"

bash "$root/scripts/services/install.sh"
# Debian installs nginx in /usr/sbin, which is not on every user's PATH.
nginx=$(PATH="$PATH:/usr/sbin:/sbin" command -v nginx) || die "nginx not found after scripts/services/install.sh"
bash "$root/scripts/services/start.sh" "$state/services"
# shellcheck disable=SC1091
source "$state/services/services.env"
export MYSQL_URL="$MARIADB_URL" REDIS_URL AMQP_URL SEARCH_URL="$OPENSEARCH_URL" ADMIN_TOKEN HOST=127.0.0.1
export DEPLOYMENT_NAME="${DEPLOYMENT_NAME:-chat}" LOG_LEVEL="${LOG_LEVEL:-info}"

# A process of ours: node, its own log and pid file; the pid is what down.sh stops.
launch() {
  local name=$1 role=$2 port=$3
  if [[ -n "$(our_pid "$name")" ]]; then
    log "$name already running"
    return
  fi
  PORT=$port nohup "$node" "$root/src/main.ts" "$role" >>"$state/logs/$name.log" 2>&1 &
  record_pid "$name" $!
  echo "$port" >"$state/run/$name.port"
}

await_ready() {
  local name=$1 url=$2 deadline=$((SECONDS + 90))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if [[ -z "$(our_pid "$name")" ]]; then
      tail -n 20 "$state/logs/$name.log" >&2
      die "$name exited during start-up (log: $state/logs/$name.log)"
    fi
    ((SECONDS < deadline)) || { tail -n 20 "$state/logs/$name.log" >&2; die "$name not ready in 90 s"; }
    sleep 0.2
  done
  log "$name ready ($url)"
}

# The worker first: it migrates the database and declares the queues the API processes publish to.
launch worker worker "$worker_port"
await_ready worker "http://127.0.0.1:$worker_port/readyz"
launch indexer indexer "$indexer_port"
upstreams=""
for ((i = 0; i < api_processes; i++)); do
  port=$((api_base_port + i))
  launch "api-$((i + 1))" api "$port"
  upstreams+="    server 127.0.0.1:$port;"$'\n'
done
await_ready indexer "http://127.0.0.1:$indexer_port/readyz"
for ((i = 0; i < api_processes; i++)); do
  await_ready "api-$((i + 1))" "http://127.0.0.1:$((api_base_port + i))/readyz"
done

template="$root/deploy/nginx/local.conf.template"
conf="$state/nginx/nginx.conf"
awk -v port="$stack_port" -v servers="$upstreams" '
  { gsub(/\{\{LISTEN_PORT\}\}/, port) }
  /\{\{UPSTREAM_SERVERS\}\}/ { printf "%s", servers; next }
  { print }' "$template" >"$conf"
"$nginx" -t -q -p "$state/nginx/" -c "$conf" -e stderr
nginx_pid="$(our_pid nginx)"
if [[ -n $nginx_pid ]]; then
  # Running already: load the configuration just written (API_PROCESSES may have changed).
  kill -HUP "$nginx_pid"
  log "nginx reloaded"
else
  nohup "$nginx" -p "$state/nginx/" -c "$conf" -e stderr >>"$state/logs/nginx.log" 2>&1 &
  record_pid nginx $!
  echo "$stack_port" >"$state/run/nginx.port"
fi
await_ready nginx "http://127.0.0.1:$stack_port/readyz"

cat >"$state/stack.env" <<ENV
STACK_URL=http://127.0.0.1:$stack_port
STACK_STATE_DIR=$state
MYSQL_URL=$MYSQL_URL
REDIS_URL=$REDIS_URL
AMQP_URL=$AMQP_URL
SEARCH_URL=$SEARCH_URL
DEPLOYMENT_NAME=$DEPLOYMENT_NAME
ENV
log "up: http://127.0.0.1:$stack_port (NGINX → $api_processes API processes; worker :$worker_port, indexer :$indexer_port); settings in $state/stack.env"
