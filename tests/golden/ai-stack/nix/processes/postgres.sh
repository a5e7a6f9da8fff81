#!/usr/bin/env bash
# One PostgreSQL instance of "ai-stack" under process-compose (process-compose.yaml runs it).
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
#
# usage: postgres.sh STATE HOST PORT INIT_SQL PASSWORD_FILE [postgres arguments...]
# The first start initializes a cluster in a scratch folder (initdb, then the init SQL: the
# databases, their owner roles, the extensions, the roles' password read from PASSWORD_FILE by
# psql) and renames it to STATE/data only once that has all succeeded: a start that is cut short
# leaves no half-made cluster behind, and every later start finds STATE/data and keeps it.
set -euo pipefail
state=$1 host=$2 port=$3 init_sql=$4 password_file=$5
shift 5
data=$state/data
run=$state/run # the server's socket: only this user can reach it (trust for the superuser)
mkdir -p "$state" "$run"
chmod 0700 "$state" "$run"

if [ ! -s "$data/PG_VERSION" ]; then
  fresh=$state/data.initializing
  rm -rf "$fresh"
  # Over TCP a password is needed once the spec gives one (the roles get it below).
  host_auth=trust
  if [ -n "$password_file" ]; then host_auth=scram-sha-256; fi
  initdb -D "$fresh" -U postgres --auth-local=trust --auth-host="$host_auth" --encoding=UTF8 --no-instructions >"$state/initdb.log"
  if [ -n "$init_sql" ]; then
    # Socket only while it is initialized: no client can connect before the roles exist.
    postgres -D "$fresh" -k "$run" -p "$port" -c listen_addresses= "$@" &
    server=$!
    tries=0
    until pg_isready -q -h "$run" -p "$port"; do
      tries=$((tries + 1))
      if [ "$tries" -gt 300 ] || ! kill -0 "$server" 2>/dev/null; then
        echo "postgres.sh: the new cluster did not start" >&2
        exit 1
      fi
      sleep 0.1
    done
    psql -X -q -v ON_ERROR_STOP=1 -h "$run" -p "$port" -U postgres -d postgres \
      -v password_file="$password_file" -f "$init_sql"
    kill -INT "$server"
    wait "$server"
  fi
  mv "$fresh" "$data"
fi

exec postgres -D "$data" -k "$run" -h "$host" -p "$port" "$@"
