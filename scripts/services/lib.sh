# shellcheck shell=bash
# Shared code for install.sh / start.sh / stop.sh / status.sh. Sourced, not run.
#
# Process model (why it looks like this):
# - Every daemon runs in the foreground of its own session (setsid), with
#   stdin/stdout/stderr on files. A test runner that spawns start.sh through a
#   pipe therefore never hangs waiting for the pipe to close, and a Ctrl-C in
#   the runner's terminal does not reach the daemons.
# - The launched pid is the daemon's own pid (setsid/env/setpriv and the
#   vendor start scripts all exec), written to STATE_DIR/run/<service>.pid so a
#   test can kill -9 it directly; run/<service>.start records the process start
#   time, so a recycled pid is never mistaken for ours.
# - Every daemon gets a clean environment (env -i) plus one marker variable,
#   CHAT_SVC_TAG=<state dir>:<service>. Children inherit it (RabbitMQ's epmd
#   and erl_child_setup...). After the main process is gone, stop.sh sweeps
#   leftovers by that exact marker -- never by process name, so it does not
#   touch what the distro, a developer or another STATE_DIR started.

# ------------------------------------------------------------------ utilities
log() { printf '[services %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
now() { date +%s.%N; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Seconds since $1 (float) are below $2 (integer)?
before_deadline() { awk -v a="$1" -v b="$(now)" -v t="$2" 'BEGIN { exit !(b - a < t) }'; }

# Something accepts TCP connections on 127.0.0.1:$1?
port_listening() { timeout 1 bash -c ": >/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# ------------------------------------------------------------------- settings
: "${OPENSEARCH_VERSION:=2.19.3}"
: "${OPENSEARCH_USER:=opensearch}"
: "${CHAT_SVC_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/chat-backend}"

ALL_SERVICES=(mariadb redis rabbitmq opensearch)

# Settings that start.sh records in STATE_DIR/services.env. Precedence when
# a later start.sh/stop.sh runs on the same STATE_DIR: explicit env var >
# recorded value > default. So "start.sh DIR redis" after a kill reuses the
# ports of the first start even if the caller's env no longer has them.
SETTINGS=(
  MARIADB_PORT MARIADB_DATABASE MARIADB_USER MARIADB_PASSWORD MARIADB_BUFFER_POOL
  REDIS_PORT REDIS_APPENDFSYNC
  RABBITMQ_PORT RABBITMQ_DIST_PORT RABBITMQ_EPMD_PORT RABBITMQ_NODENAME
  OPENSEARCH_PORT OPENSEARCH_TRANSPORT_PORT OPENSEARCH_HEAP
)

set_defaults() {
  : "${MARIADB_PORT:=3307}"
  : "${MARIADB_DATABASE:=chat}"
  : "${MARIADB_USER:=chat}"
  : "${MARIADB_PASSWORD:=chat}"
  : "${MARIADB_BUFFER_POOL:=256M}"
  : "${REDIS_PORT:=6380}"
  : "${REDIS_APPENDFSYNC:=everysec}"
  : "${RABBITMQ_PORT:=5673}"
  # Erlang distribution listener and the epmd port: both away from the
  # defaults (25672, 4369) so a system RabbitMQ/epmd can coexist, and below
  # Linux's ephemeral range (32768-60999): a fixed listener there fails at
  # random (nodistribution) when an outgoing connection holds its port.
  : "${RABBITMQ_DIST_PORT:=$((RABBITMQ_PORT - 1000))}"
  # Derived from the AMQP port (5673 -> 4370), so a second STATE_DIR that
  # only sets RABBITMQ_PORT gets its own epmd too: stop.sh kills the epmd its
  # broker started, which must not be one another broker registered with.
  : "${RABBITMQ_EPMD_PORT:=$((RABBITMQ_PORT - 1303))}"
  : "${RABBITMQ_NODENAME:=chat-$RABBITMQ_PORT@localhost}"
  : "${OPENSEARCH_PORT:=9201}"
  : "${OPENSEARCH_TRANSPORT_PORT:=$((OPENSEARCH_PORT + 100))}"
  : "${OPENSEARCH_HEAP:=512m}"
  # Readiness deadlines (seconds) and graceful-stop timeouts before SIGKILL.
  : "${MARIADB_START_TIMEOUT:=60}" "${REDIS_START_TIMEOUT:=30}"
  : "${RABBITMQ_START_TIMEOUT:=90}" "${OPENSEARCH_START_TIMEOUT:=180}"
  : "${MARIADB_STOP_TIMEOUT:=30}" "${REDIS_STOP_TIMEOUT:=15}"
  : "${RABBITMQ_STOP_TIMEOUT:=30}" "${OPENSEARCH_STOP_TIMEOUT:=30}"
}

# init_state DIR: resolve STATE_DIR to an absolute path (the marker must be
# exact), create the layout, load recorded settings.
init_state() {
  [[ -n ${1:-} ]] || die "usage: $0 STATE_DIR [service...]"
  mkdir -p "$1"
  STATE_DIR="$(cd "$1" && pwd -P)"
  RUN_DIR="$STATE_DIR/run"
  LOG_DIR="$STATE_DIR/logs"
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  # 755 so the opensearch user can traverse into its own subdirectory.
  chmod 755 "$STATE_DIR" "$RUN_DIR" "$LOG_DIR"

  local var
  declare -A from_env=()
  for var in "${SETTINGS[@]}"; do
    if [[ -n ${!var+x} ]]; then from_env[$var]=${!var}; fi
  done
  if [[ -f $STATE_DIR/services.env ]]; then
    # shellcheck disable=SC1091
    source "$STATE_DIR/services.env"
  fi
  for var in "${!from_env[@]}"; do printf -v "$var" '%s' "${from_env[$var]}"; done
  set_defaults
}

save_settings() {
  local var tmp
  tmp="$(mktemp "$STATE_DIR/.services.env.XXXXXX")"
  {
    echo "# written by scripts/services/start.sh; KEY=VALUE, safe to source"
    for var in "${SETTINGS[@]}"; do printf '%s=%q\n' "$var" "${!var}"; done
    printf 'MARIADB_URL=%q\n' "mysql://$MARIADB_USER:$MARIADB_PASSWORD@127.0.0.1:$MARIADB_PORT/$MARIADB_DATABASE"
    printf 'REDIS_URL=%q\n' "redis://127.0.0.1:$REDIS_PORT"
    printf 'AMQP_URL=%q\n' "amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT"
    printf 'OPENSEARCH_URL=%q\n' "http://127.0.0.1:$OPENSEARCH_PORT"
  } >"$tmp"
  chmod 644 "$tmp"
  mv "$tmp" "$STATE_DIR/services.env"
}

# Expand the service arguments: none means all; reject unknown names.
parse_services() {
  SERVICES=()
  local s
  for s in "$@"; do
    case $s in
      mariadb | redis | rabbitmq | opensearch) SERVICES+=("$s") ;;
      all) SERVICES+=("${ALL_SERVICES[@]}") ;;
      *) die "unknown service '$s' (known: ${ALL_SERVICES[*]})" ;;
    esac
  done
  if ((${#SERVICES[@]} == 0)); then SERVICES=("${ALL_SERVICES[@]}"); fi
}

# ------------------------------------------------------------ process helpers
tag_of() { printf 'CHAT_SVC_TAG=%s:%s' "$STATE_DIR" "$1"; }
pidfile_of() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }

# State letter of a process (R, S, D, Z...), empty when it does not exist.
pid_state() {
  local stat rest
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  rest=${stat##*) }
  echo "${rest%% *}"
}

# Running: exists and is not a zombie. Zombies matter here: on this VM pid 1
# does not reap orphans, so every daemon that exits stays <defunct> (holding
# nothing but its pid) and "kill -0" still succeeds on it.
pid_alive() {
  local s
  s="$(pid_state "$1")"
  [[ -n $s && $s != Z ]]
}

# Completely gone. Not the same as "not running": after kill -9 the leader of
# a multi-threaded process (a JVM) turns Z first while its other threads are
# still exiting -- and those still hold the listening sockets for a moment.
pid_gone() {
  local s tasks
  s="$(pid_state "$1")"
  [[ -z $s ]] && return 0
  [[ $s == Z ]] || return 1
  tasks=(/proc/"$1"/task/*)
  ((${#tasks[@]} <= 1))
}

# wait_gone PID SECONDS
wait_gone() {
  local t0
  t0=$(now)
  while ! pid_gone "$1" && before_deadline "$t0" "$2"; do sleep 0.05; done
  pid_gone "$1"
}

proc_starttime() {
  local stat rest f
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  rest=${stat##*) }
  read -ra f <<<"$rest"
  echo "${f[19]}" # field 22 of /proc/PID/stat: start time in clock ticks since boot
}

# Pid of the running main process of SERVICE, or nothing. The pid file holds
# only the pid (so "kill -9 $(cat run/redis.pid)" is safe); run/<svc>.start
# holds its start time, which makes the check immune to pid reuse. (An
# environ marker check does not work for the main process: Redis overwrites
# its environ area with its process title.)
recorded_pid() { # the pid from the pid file if that process (any state) is still ours
  local pid start
  pid="$(cat "$(pidfile_of "$1")" 2>/dev/null || true)"
  start="$(cat "$RUN_DIR/$1.start" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ && -n $start ]] || return 0
  if [[ "$(proc_starttime "$pid")" == "$start" ]]; then echo "$pid"; fi
}
main_pid() {
  local pid
  pid="$(recorded_pid "$1")"
  if [[ -n $pid ]] && pid_alive "$pid"; then echo "$pid"; fi
}

# All live processes carrying SERVICE's marker (main process and children).
# One grep over all environ files keeps this at a few ms.
tagged_pids() {
  local f pid
  while IFS= read -r f; do
    pid=${f#/proc/}
    pid=${pid%/environ}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    if pid_alive "$pid"; then echo "$pid"; fi
  done < <(grep -lzFx -- "$(tag_of "$1")" /proc/[0-9]*/environ 2>/dev/null || true)
}

# lock_services SERVICE...: per-service locks, so concurrent start.sh/stop.sh
# calls on one STATE_DIR serialise per service (a test may restart Redis
# while another restarts RabbitMQ). Taken in a fixed order: no deadlock.
# Released when the script exits. launch() closes the fds in the daemon.
LOCK_FDS=()
lock_services() {
  local s fd
  for s in "${ALL_SERVICES[@]}"; do
    if [[ " $* " == *" $s "* ]]; then
      exec {fd}>"$RUN_DIR/$s.lock"
      if ! flock -w 300 "$fd"; then die "$s: could not get $RUN_DIR/$s.lock within 300s"; fi
      LOCK_FDS+=("$fd")
    fi
  done
}

# launch SERVICE [VAR=value...] -- CMD...: start CMD detached with a clean
# environment plus the given variables, record its pid.
launch() {
  local svc=$1
  shift
  local envs=()
  while [[ $1 != -- ]]; do
    envs+=("$1")
    shift
  done
  shift
  # The subshell drops our lock fds, then execs: $! stays the daemon's pid.
  (
    for fd in "${LOCK_FDS[@]}"; do exec {fd}>&-; done
    exec setsid env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 "$(tag_of "$svc")" "${envs[@]}" "$@" \
      >>"$LOG_DIR/$svc.log" 2>&1 </dev/null
  ) &
  local pid=$!
  proc_starttime "$pid" >"$RUN_DIR/$svc.start"
  echo "$pid" >"$(pidfile_of "$svc")"
}

# Print the tail of the given log files (for failure messages).
show_logs() {
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}

# stop_service SERVICE MODE(term|kill): stop the main process (SIGTERM, wait
# up to <SVC>_STOP_TIMEOUT, then SIGKILL; or SIGKILL straight away), then
# sweep up any other process carrying the service's marker.
stop_service() {
  local svc=$1 mode=$2 pid timeout var t0
  var="${svc^^}_STOP_TIMEOUT"
  timeout=${!var}
  t0=$(now)
  pid="$(main_pid "$svc")"
  if [[ -n $pid ]]; then
    if [[ $mode == kill ]]; then
      # The daemon leads its own process group (setsid): kill the group, so
      # helpers like erl_child_setup die in the same instant, as in a crash.
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    else
      kill -TERM "$pid" 2>/dev/null || true
      if ! wait_gone "$pid" "$timeout"; then
        log "$svc: pid $pid still alive after ${timeout}s, sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    wait_gone "$pid" 30 || log "$svc: WARNING: pid $pid did not go away after SIGKILL (state $(pid_state "$pid"))"
  fi
  # Leftovers: epmd / erl_child_setup for RabbitMQ, a rewrite child for Redis,
  # anything else that inherited the marker. They get a short grace period.
  local left
  left="$(tagged_pids "$svc")"
  if [[ -n $left ]]; then
    # shellcheck disable=SC2086
    kill -TERM $left 2>/dev/null || true
    for _ in $(seq 20); do
      left="$(tagged_pids "$svc")"
      [[ -z $left ]] && break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    if [[ -n $left ]]; then kill -KILL $left 2>/dev/null || true; fi
  fi
  rm -f "$(pidfile_of "$svc")" "$RUN_DIR/$svc.start"
  if [[ -n $pid ]]; then
    log "$svc: stopped pid $pid (${mode}) in $(elapsed_since "$t0")s"
  else
    log "$svc: not running"
  fi
}

# ================================================================== MariaDB
mariadb_dir() { echo "$STATE_DIR/mariadb"; }

mariadb_cnf() {
  local d
  d="$(mariadb_dir)"
  # Only our file is read (--defaults-file): /etc/mysql is ignored, so
  # nothing from the distro config (port 3306, log paths) leaks in.
  cat >"$d/my.cnf" <<EOF
[mysqld]
$([[ $EUID -eq 0 ]] && echo "user = root")
datadir = $d/data
tmpdir = $d/tmp
socket = $d/mysqld.sock
pid-file = $d/mysqld.pid
port = $MARIADB_PORT
bind-address = 127.0.0.1
log-error = $LOG_DIR/mariadb.log
skip-name-resolve
skip-log-bin
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
innodb_buffer_pool_size = $MARIADB_BUFFER_POOL
innodb_log_file_size = 64M
max_connections = 500

[client]
socket = $d/mysqld.sock
port = $MARIADB_PORT
default-character-set = utf8mb4
EOF
}

mariadb_client() { mariadb --defaults-file="$(mariadb_dir)/my.cnf" -u "$(id -un)" "$@"; }

mariadb_launch() {
  local d
  d="$(mariadb_dir)"
  mkdir -p "$d/data" "$d/tmp"
  mariadb_cnf
  if [[ ! -d $d/data/mysql ]]; then
    # First start: create the system tables. root@localhost (and the OS user
    # when not root) authenticate over the unix socket, no password.
    log "mariadb: initialising datadir $d/data"
    if ! mariadb-install-db --defaults-file="$d/my.cnf" --skip-test-db \
      --auth-root-authentication-method=socket >>"$LOG_DIR/mariadb.log" 2>&1; then
      show_logs "$LOG_DIR/mariadb.log"
      die "mariadb: mariadb-install-db failed"
    fi
  fi
  launch mariadb -- mariadbd --defaults-file="$d/my.cnf"
}

mariadb_ready() {
  # Server alive on the socket, then make sure database and user exist
  # (idempotent, a few ms, so it runs on every start), then the real check:
  # the app user over TCP.
  mariadb-admin --defaults-file="$(mariadb_dir)/my.cnf" -u "$(id -un)" --connect-timeout=2 ping >/dev/null 2>&1 || return 1
  mariadb_client -e "
    CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
    CREATE USER IF NOT EXISTS '$MARIADB_USER'@'127.0.0.1' IDENTIFIED BY '$MARIADB_PASSWORD';
    CREATE USER IF NOT EXISTS '$MARIADB_USER'@'localhost' IDENTIFIED BY '$MARIADB_PASSWORD';
    ALTER USER '$MARIADB_USER'@'127.0.0.1' IDENTIFIED BY '$MARIADB_PASSWORD';
    ALTER USER '$MARIADB_USER'@'localhost' IDENTIFIED BY '$MARIADB_PASSWORD';
    GRANT ALL PRIVILEGES ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'127.0.0.1', '$MARIADB_USER'@'localhost';
    GRANT ALL PRIVILEGES ON \`${MARIADB_DATABASE//_/\\_}\\_%\`.* TO '$MARIADB_USER'@'127.0.0.1', '$MARIADB_USER'@'localhost';
  " >/dev/null 2>&1 || return 1
  [[ "$(mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MARIADB_PORT" --connect-timeout=2 \
    -u "$MARIADB_USER" -p"$MARIADB_PASSWORD" -N -B -e 'SELECT 1' "$MARIADB_DATABASE" 2>/dev/null)" == 1 ]]
}

mariadb_logs() { echo "$LOG_DIR/mariadb.log"; }
mariadb_wipe() { rm -rf "$(mariadb_dir)/data" "$(mariadb_dir)/tmp"; }

# ==================================================================== Redis
redis_dir() { echo "$STATE_DIR/redis"; }

redis_launch() {
  local d
  d="$(redis_dir)"
  mkdir -p "$d/data"
  # AOF is the persistence we test (crash/restart); RDB snapshots are off so a
  # restart's data is exactly what the AOF says and no fork runs in between.
  cat >"$d/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize no
supervised no
pidfile $d/redis.pid
logfile ""
dir $d/data
appendonly yes
appendfsync $REDIS_APPENDFSYNC
save ""
EOF
  launch redis -- redis-server "$d/redis.conf"
}

redis_ready() {
  # PING answers -LOADING while the AOF is replayed; only PONG counts.
  [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

redis_logs() { echo "$LOG_DIR/redis.log"; }
redis_wipe() { rm -rf "$(redis_dir)/data"; }

# ================================================================= RabbitMQ
rabbitmq_dir() { echo "$STATE_DIR/rabbitmq"; }
RABBITMQ_BIN=/usr/lib/rabbitmq/bin # the real scripts; /usr/sbin/* su to user rabbitmq

# Environment shared by the server and the CLI tools. HOME holds the Erlang
# cookie (created on first boot), so the CLI can authenticate to our node;
# RABBITMQ_CONF_ENV_FILE points away from /etc/rabbitmq/rabbitmq-env.conf.
rabbitmq_env() {
  local d
  d="$(rabbitmq_dir)"
  printf '%s\n' \
    "HOME=$d/home" \
    "RABBITMQ_NODENAME=$RABBITMQ_NODENAME" \
    "RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf" \
    "ERL_EPMD_PORT=$RABBITMQ_EPMD_PORT" \
    "ERL_EPMD_ADDRESS=127.0.0.1"
}

rabbitmq_launch() {
  local d
  d="$(rabbitmq_dir)"
  mkdir -p "$d/home" "$d/mnesia" "$LOG_DIR/rabbitmq"
  : >"$d/rabbitmq-env.conf"
  # No plugins at all (management would open 15672).
  echo '[].' >"$d/enabled_plugins"
  cat >"$d/rabbitmq.conf" <<EOF
# guest/guest is only allowed from loopback (the default) -- fine here.
loopback_users.guest = true
log.console = false
log.file.level = info
# Small test machines: do not block publishers on a disk-space alarm.
disk_free_limit.absolute = 50MB
EOF
  # detached=1: rabbitmq-server 3.10 otherwise stays a /bin/sh parent that
  # runs the VM as a child (to turn SIGTERM into a clean stop). Then the pid
  # file would name the shell and "kill -9 <pid>" would leave the broker
  # running. The script tests the unexported shell variable $detached (meant
  # for its own -detached handling) and, when set, execs the VM directly, as
  # it does under systemd. The VM handles SIGTERM as a clean shutdown itself.
  local envs
  mapfile -t envs < <(rabbitmq_env)
  launch rabbitmq "${envs[@]}" \
    "RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf" \
    "RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config" \
    "RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins" \
    "RABBITMQ_MNESIA_BASE=$d/mnesia" \
    "RABBITMQ_LOG_BASE=$LOG_DIR/rabbitmq" \
    "RABBITMQ_PID_FILE=$d/rabbitmq.pid" \
    "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1" \
    "RABBITMQ_NODE_PORT=$RABBITMQ_PORT" \
    "RABBITMQ_DIST_PORT=$RABBITMQ_DIST_PORT" \
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}" \
    "ERL_CRASH_DUMP=$LOG_DIR/rabbitmq/erl_crash.dump" \
    detached=1 \
    -- "$RABBITMQ_BIN/rabbitmq-server"
}

# Run a RabbitMQ CLI tool against our node. It carries the service marker so
# an epmd it might spawn is cleaned up by stop.sh too.
rabbitmq_cli() {
  local tool=$1 envs
  shift
  mapfile -t envs < <(rabbitmq_env)
  # -start_epmd false: if the broker is down, the CLI must fail, not leave a
  # fresh epmd daemon behind (which would also hold the caller's stdout pipe
  # open, hanging a test runner that reads it).
  env -i PATH="$PATH" LANG=C.UTF-8 "$(tag_of rabbitmq)" "${envs[@]}" \
    RABBITMQ_CTL_ERL_ARGS="-start_epmd false" \
    "$RABBITMQ_BIN/$tool" -n "$RABBITMQ_NODENAME" "$@"
}

# AMQP 0-9-1 handshake: send the protocol header, the broker must answer with
# a Connection.Start method frame (frame type 1, channel 0). Proves the
# listener is up and the broker speaks AMQP, in ~10 ms, without a client lib.
amqp_handshake() {
  local first
  first="$(timeout 3 bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$1"' || exit 1
    printf "AMQP\x00\x00\x09\x01" >&3
    head -c 3 <&3 | od -An -tx1' 2>/dev/null)" || return 1
  [[ "${first//[[:space:]]/}" == "010000" ]]
}

rabbitmq_ready() {
  amqp_handshake "$RABBITMQ_PORT" || return 1
  # Once per start: the node itself reports it has fully booted.
  rabbitmq_cli rabbitmq-diagnostics -q check_running >/dev/null 2>&1
}

rabbitmq_logs() { echo "$LOG_DIR/rabbitmq.log" "$LOG_DIR/rabbitmq/$RABBITMQ_NODENAME.log"; }
rabbitmq_wipe() { rm -rf "$(rabbitmq_dir)/mnesia"; }

# =============================================================== OpenSearch
opensearch_dir() { echo "$STATE_DIR/opensearch"; }

# Command prefix that runs the rest as the OpenSearch user (it refuses to run
# as root). setpriv execs (unlike runuser/su, which fork and wait), so the pid
# we record is the JVM's pid.
os_user_prefix() {
  if [[ $EUID -eq 0 ]]; then
    printf '%s\n' setpriv --reuid="$OPENSEARCH_USER" --regid="$OPENSEARCH_USER" --init-groups --
  fi
}
as_os_user() {
  local pre
  mapfile -t pre < <(os_user_prefix)
  "${pre[@]}" "$@"
}

opensearch_home() {
  if [[ -n ${OPENSEARCH_HOME:-} ]]; then
    echo "$OPENSEARCH_HOME"
  elif [[ -x $CHAT_SVC_CACHE_DIR/opensearch-current/bin/opensearch ]]; then
    readlink -f "$CHAT_SVC_CACHE_DIR/opensearch-current"
  else
    die "opensearch: no install found in $CHAT_SVC_CACHE_DIR (run install.sh, or set OPENSEARCH_HOME)"
  fi
}

opensearch_launch() {
  local d home java_home pre
  d="$(opensearch_dir)"
  home="$(opensearch_home)"
  mkdir -p "$d/data" "$d/logs" "$d/tmp"

  if [[ $EUID -eq 0 ]]; then
    id -u "$OPENSEARCH_USER" >/dev/null 2>&1 || die "opensearch: user $OPENSEARCH_USER missing (run install.sh)"
    chown -R "$OPENSEARCH_USER:$OPENSEARCH_USER" "$d/data" "$d/logs" "$d/tmp"
    chmod 755 "$d"
    # Fails when a parent of STATE_DIR is not traversable (e.g. under /root).
    as_os_user test -w "$d/data" ||
      die "opensearch: user $OPENSEARCH_USER cannot write $d/data; use a STATE_DIR whose parents are world-traversable (e.g. under /tmp)"
    # The default cache is under /root, which is mode 700: the opensearch user
    # cannot even reach the install there. Mirror it into the state dir with
    # hard links (instant, no extra disk; a plain copy across filesystems).
    if ! as_os_user test -r "$home/bin/opensearch" 2>/dev/null; then
      local mirror
      mirror="$d/dist-$(basename "$home")"
      if [[ ! -x $mirror/bin/opensearch ]]; then
        rm -rf "$mirror.tmp"
        cp -al "$home" "$mirror.tmp" 2>/dev/null || cp -a "$home" "$mirror.tmp"
        mv "$mirror.tmp" "$mirror"
      fi
      home=$mirror
    fi
  fi

  # Private config dir: OpenSearch writes its keystore there, and the stock
  # jvm.options puts gc.log / heap dumps / hs_err files relative to the home
  # dir (bin/opensearch cd's there), which the opensearch user cannot write.
  if [[ ! -f $d/config/jvm.options ]]; then
    rm -rf "$d/config"
    cp -r "$home/config" "$d/config"
    sed -i \
      -e "s#file=logs/gc.log#file=$d/logs/gc.log#" \
      -e "s#-XX:HeapDumpPath=data#-XX:HeapDumpPath=$d/tmp#" \
      -e "s#-XX:ErrorFile=logs/#-XX:ErrorFile=$d/logs/#" \
      "$d/config/jvm.options"
  fi
  if [[ $EUID -eq 0 ]]; then
    chown -R "$OPENSEARCH_USER:$OPENSEARCH_USER" "$d/config"
  fi

  java_home="${OPENSEARCH_JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}"
  mapfile -t pre < <(os_user_prefix)
  launch opensearch \
    "HOME=$d/tmp" \
    "OPENSEARCH_JAVA_HOME=$java_home" \
    "OPENSEARCH_PATH_CONF=$d/config" \
    "OPENSEARCH_TMPDIR=$d/tmp" \
    "OPENSEARCH_JAVA_OPTS=-Xms$OPENSEARCH_HEAP -Xmx$OPENSEARCH_HEAP" \
    -- "${pre[@]}" "$home/bin/opensearch" \
    -Ecluster.name=chat-svc \
    -Enode.name=chat-svc-0 \
    -Ediscovery.type=single-node \
    -Enetwork.host=127.0.0.1 \
    -Ehttp.host=127.0.0.1 \
    -Ehttp.port="$OPENSEARCH_PORT" \
    -Etransport.port="$OPENSEARCH_TRANSPORT_PORT" \
    -Epath.data="$d/data" \
    -Epath.logs="$d/logs" \
    -Ecluster.routing.allocation.disk.threshold_enabled=false
}

opensearch_ready() {
  curl -fsS -m 5 -o /dev/null \
    "http://127.0.0.1:$OPENSEARCH_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null
}

opensearch_logs() { echo "$LOG_DIR/opensearch.log" "$(opensearch_dir)/logs/chat-svc.log"; }
opensearch_wipe() { rm -rf "$(opensearch_dir)/data"; }

# Python with the pika AMQP client (smoke.sh / selftest.sh only): a venv in
# the cache dir, filled from PyPI on first use.
pika_python() {
  local venv="$CHAT_SVC_CACHE_DIR/venv"
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import pika' 2>/dev/null; then
    log "installing pika into $venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q 'pika>=1.3,<2' >&2
  fi
  echo "$venv/bin/python"
}

# ============================================================ start / await
# svc_port SERVICE: the client port (used to refuse starting on a busy port).
svc_port() {
  case $1 in
    mariadb) echo "$MARIADB_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
    rabbitmq) echo "$RABBITMQ_PORT" ;;
    opensearch) echo "$OPENSEARCH_PORT" ;;
  esac
}

# start_launch SERVICE: launch unless already running. Sets LAUNCHED_AT[svc].
declare -A LAUNCHED_AT=() LAUNCHED_HERE=()
start_launch() {
  local svc=$1 pid port
  # Killed a moment ago (e.g. kill -9 by a test)? Let it finish dying first.
  pid="$(recorded_pid "$svc")"
  if [[ -n $pid ]] && ! pid_alive "$pid"; then wait_gone "$pid" 10 || true; fi
  pid="$(main_pid "$svc")"
  LAUNCHED_AT[$svc]=$(now)
  if [[ -n $pid ]]; then
    log "$svc: already running (pid $pid), checking it answers"
    return 0
  fi
  port="$(svc_port "$svc")"
  # A process killed a moment ago (kill -9 by a test) may still be closing its
  # sockets: give the port a few seconds before calling it taken.
  local t_port
  t_port=$(now)
  while port_listening "$port" && before_deadline "$t_port" 5; do sleep 0.2; done
  if port_listening "$port"; then
    die "$svc: port 127.0.0.1:$port is already in use by another process (not ours: no live pid in $(pidfile_of "$svc")). Set ${svc^^}_PORT to another port."
  fi
  "${svc}_launch"
  LAUNCHED_HERE[$svc]=1
}

# start_await SERVICE: poll the readiness check until the deadline; fail fast
# if the process died. On failure print the log tails and return 1.
start_await() {
  local svc=$1 var timeout pid t0
  var="${svc^^}_START_TIMEOUT"
  timeout=${!var}
  t0=${LAUNCHED_AT[$svc]}
  while :; do
    pid="$(main_pid "$svc")"
    if [[ -z $pid && -z ${LAUNCHED_HERE[$svc]:-} ]]; then
      # It was "already running" but has exited since: typically a test did
      # kill -9 and called start.sh at once, before the signal had landed.
      log "$svc: the running instance exited meanwhile, starting a new one"
      start_launch "$svc"
      continue
    fi
    if [[ -z $pid ]]; then
      log "ERROR: $svc: process exited during startup"
      # shellcheck disable=SC2046
      show_logs $("${svc}_logs")
      return 1
    fi
    if "${svc}_ready"; then
      # For an instance we did not launch, make sure it is not one that was
      # just sent kill -9 and answered on its way out.
      if [[ -z ${LAUNCHED_HERE[$svc]:-} ]]; then
        sleep 0.1
        [[ -n "$(main_pid "$svc")" ]] || continue
      fi
      log "$svc: ready on 127.0.0.1:$(svc_port "$svc") (pid $pid) after $(elapsed_since "$t0")s"
      return 0
    fi
    if ! before_deadline "$t0" "$timeout"; then
      log "ERROR: $svc: not answering on 127.0.0.1:$(svc_port "$svc") within ${timeout}s (pid $pid still running)"
      # shellcheck disable=SC2046
      show_logs $("${svc}_logs")
      return 1
    fi
    sleep 0.2
  done
}
