# shellcheck shell=bash
# Pid files of the stack's own processes (sourced by up.sh and down.sh). Each run/NAME.pid has a
# run/NAME.start beside it: the process's start time, so a pid the kernel has since given to another
# process is never taken for ours (and never signalled). The caller sets $state, the state directory.
# shellcheck disable=SC2154

# Start time of PID in clock ticks since boot (field 22 of /proc/PID/stat); nothing when it is gone.
starttime_of() {
  local stat rest f
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  rest=${stat##*) }
  read -ra f <<<"$rest"
  echo "${f[19]}"
}

# Records PID as NAME's process.
record_pid() {
  starttime_of "$2" >"$state/run/$1.start"
  echo "$2" >"$state/run/$1.pid"
}

# The pid of NAME's process while it is still the one recorded and not a zombie; nothing otherwise.
# A pid file from before start times were recorded (no .start beside it) is trusted only when the process
# is one of ours by its command line, so a stack started by an older up.sh can still be stopped.
our_pid() {
  local pid start stat rest cmdline
  pid="$(cat "$state/run/$1.pid" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  if [[ -f "$state/run/$1.start" ]]; then
    start="$(cat "$state/run/$1.start")"
    [[ -n $start && "$(starttime_of "$pid")" == "$start" ]] || return 0
  else
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ $cmdline == *src/main.ts* || $cmdline == *"$state/nginx"* ]] || return 0
  fi
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 0
  rest=${stat##*) }
  [[ ${rest%% *} != Z ]] && echo "$pid"
  return 0
}

# Whether something accepts connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
