#!/usr/bin/env bash
# Starts or stops a moto server (AWS emulator) on loopback.
#   moto.sh start PORT PIDFILE   start in the background, wait until it answers, write its pid
#   moto.sh stop PIDFILE         stop the server started with that pid file
# Expects .venv to hold moto (bash infra/venv.sh test). The log goes to .local/moto-PORT.log.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  echo "usage: $0 start PORT PIDFILE | stop PIDFILE" >&2
  exit 2
}

answers() {
  curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/moto-api/"
}

is_moto() {
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q moto_server
}

start() {
  local port="$1" pidfile="$2"
  [[ "$port" =~ ^[0-9]+$ ]] || usage
  local server="$repo_root/.venv/bin/moto_server"
  if [[ ! -x "$server" ]]; then
    echo "moto is not installed: run 'bash infra/venv.sh test' first" >&2
    exit 1
  fi
  if answers "$port"; then
    echo "port $port on 127.0.0.1 already answers; stop that server or choose another port" >&2
    exit 1
  fi

  mkdir -p "$repo_root/.local" "$(dirname "$pidfile")"
  local log="$repo_root/.local/moto-$port.log"
  # A session of its own, so that a Ctrl-C meant for the caller's foreground job does not
  # reach the server; the caller stops it through the pid file.
  setsid "$server" -H 127.0.0.1 -p "$port" </dev/null >"$log" 2>&1 &
  local pid=$!
  echo "$pid" >"$pidfile"

  local deadline=$((SECONDS + 30))
  until answers "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "moto exited during start-up; last lines of $log:" >&2
      tail -n 20 "$log" >&2 || true
      rm -f "$pidfile"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "moto did not answer on port $port within 30 s; last lines of $log:" >&2
      tail -n 20 "$log" >&2 || true
      stop "$pidfile"
      exit 1
    fi
    sleep 0.2
  done
}

stop() {
  local pidfile="$1"
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid="$(cat "$pidfile")"
  # The pid is checked against the command line, so that a stale pid file never leads to
  # signalling an unrelated process that reused the number.
  if [[ "$pid" =~ ^[0-9]+$ ]] && is_moto "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start)
    [[ $# -eq 3 ]] || usage
    start "$2" "$3"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    stop "$2"
    ;;
  *) usage ;;
esac
