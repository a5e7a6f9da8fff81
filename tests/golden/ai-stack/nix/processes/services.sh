#!/usr/bin/env bash
# The services of "ai-stack" as native processes under process-compose.
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
#
#   nix run .#services                 start them all (process-compose's TUI; -t=false: none)
#   nix run .#services -- attach       the TUI of a running stack
#   nix run .#services -- process list
#   nix run .#services -- down         stop them all
#   nix run .#services -- process start NAME   start a service behind `profiles:` (off by default)
# (From `nix develop` with process-compose on PATH: bash nix/processes/services.sh ...)
#
# State (data, logs, the control socket) lives in STACKGEN_DATA_DIR, by default the spec's
# data_dir: one folder per service. Processes start in the current folder (your project).
set -euo pipefail
STACKGEN_TREE=${STACKGEN_TREE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ -z "${STACKGEN_DATA_DIR:-}" ]; then
  STACKGEN_DATA_DIR=${XDG_DATA_HOME:-$HOME/.local/share}/stackgen/ai-stack
fi
export STACKGEN_TREE STACKGEN_DATA_DIR
# Every Unix socket of the stack must fit sun_path (108 bytes on Linux, 104 on macOS,
# its NUL included): a longer path would only fail later, cryptically, in the server binding it.
socket_max=107
if [ "$(uname -s)" = Darwin ]; then socket_max=103; fi
sockets=(process-compose.sock postgres/run/.s.PGSQL.5432)
for socket in "${sockets[@]}"; do
  socket_bytes=$(printf %s "$STACKGEN_DATA_DIR/$socket" | wc -c)
  if [ "$socket_bytes" -gt "$socket_max" ]; then
    echo "services.sh: the state folder $STACKGEN_DATA_DIR is too long: the Unix socket" \
      "$STACKGEN_DATA_DIR/$socket would be $socket_bytes bytes, and a socket path holds at most $socket_max." \
      "Use a shorter folder: STACKGEN_DATA_DIR=/short/path, or data_dir: in stack.yaml" >&2
    exit 1
  fi
done
mkdir -p "$STACKGEN_DATA_DIR/logs"
chmod 0700 "$STACKGEN_DATA_DIR"
# The control socket, not a TCP port: nothing else on the machine can steer the stack, and
# process-compose's default port 8080 would clash with llama.cpp's.
socket=$STACKGEN_DATA_DIR/process-compose.sock

if [ "$#" -eq 0 ]; then
  set -- up
fi
if [ "$1" = up ]; then
  shift
  # --disable-dotenv: a project's .env must not change what the rendered file means.
  exec process-compose up -f "$STACKGEN_TREE/process-compose.yaml" --disable-dotenv --ordered-shutdown \
    -L "$STACKGEN_DATA_DIR/logs/process-compose.log" -U -u "$socket" "$@"
fi
client=(-L "$STACKGEN_DATA_DIR/logs/process-compose-client.log" -U -u "$socket")
if [ "$1" = down ]; then
  if ! command -v process-compose >/dev/null 2>&1; then
    echo "services.sh: process-compose is not on PATH: use nix run .#services -- down, or run this from nix develop" >&2
    exit 127
  fi
  # process-compose can exit before it has answered `down` (the client then fails with
  # "... project/stop: EOF"): once its control socket is gone or no longer answers, the stack
  # is down. A socket this user cannot write to says nothing about that: the failure stands.
  if process-compose "$@" "${client[@]}"; then exit 0; else status=$?; fi
  if [ -S "$socket" ] && { [ ! -w "$socket" ] || process-compose process list "${client[@]}" >/dev/null 2>&1; }; then
    exit "$status"
  fi
  echo "services.sh: the stack is down" >&2
  exit 0
fi
exec process-compose "$@" "${client[@]}"
