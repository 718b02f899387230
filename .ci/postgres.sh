#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: a new cluster in a temporary folder, on a free port of
# 127.0.0.1, with a password (so password authentication is what the tests use).
#
#   eval "$(bash .ci/postgres.sh start)"   # exports FOCUSFLOW_TEST_DATABASE_URL and FOCUSFLOW_TEST_PG_DIR
#   cargo test --test api                  # every app gets its own database on that server
#   bash .ci/postgres.sh stop "$FOCUSFLOW_TEST_PG_DIR"
#   bash .ci/postgres.sh down DIR | up DIR   # stop the server and start it again on the same
#                                            # port and data (fault tests: an outage)
#
# As root, the server runs as the unprivileged `postgres` user (PostgreSQL refuses root). On a
# machine without PostgreSQL it installs Debian's package first. Progress goes to stderr; stdout
# carries only the export lines.
set -euo pipefail

say() { echo "postgres.sh: $*" >&2; }

bin_dir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local bin
  bin=$(bin_dir || true)
  if [ -z "$bin" ]; then
    [ "$(id -u)" = 0 ] || { say "PostgreSQL is not installed (apt-get install postgresql, as root)"; exit 1; }
    say "installing Debian's postgresql package"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
    bin=$(bin_dir)
  fi
  local dir port password=focusflow-test
  dir=$(mktemp -d /tmp/focusflow-pg.XXXXXX)
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf '%s\n' "$password" >"$dir/password"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir/password"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/password" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  # Fast and throwaway: nothing here has to survive a crash of the machine. Each test app has
  # a pool of its own, so connections are many.
  printf '%s\n' "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 \
-c shared_buffers=64MB" >"$dir/options"
  server_start "$bin" "$dir"
  "$bin/pg_isready" -h 127.0.0.1 -p "$port" -t 30 >&2
  say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $dir"
  echo "export FOCUSFLOW_TEST_DATABASE_URL=postgres://postgres:$password@127.0.0.1:$port/postgres"
  echo "export FOCUSFLOW_TEST_PG_DIR=$dir"
}

server_start() {
  local bin=$1 dir=$2
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
}

down() {
  local dir=${1:?usage: postgres.sh down DIR}
  as_owner "$(bin_dir)/pg_ctl" -D "$dir/data" -m fast -w stop >&2
}

up() {
  local dir=${1:?usage: postgres.sh up DIR}
  server_start "$(bin_dir)" "$dir"
}

stop() {
  local dir=${1:?usage: postgres.sh stop DIR}
  local bin
  bin=$(bin_dir)
  [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
  rm -rf "$dir"
}

case "${1:-start}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  down) down "${2:-}" ;;
  up) up "${2:-}" ;;
  *) say "usage: postgres.sh start | stop DIR | down DIR | up DIR"; exit 2 ;;
esac
