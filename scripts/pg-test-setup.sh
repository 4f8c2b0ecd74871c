#!/usr/bin/env bash
# Start (idempotently) a throwaway PostgreSQL cluster for the cityos tests and print its URL.
#
#   scripts/pg-test-setup.sh            -> postgresql://mamori:mamori@127.0.0.1:55432/mamori_test
#   MAMORI_PG_PORT=5544 MAMORI_PG_DIR=/tmp/pg scripts/pg-test-setup.sh
#
# Uses Debian's PostgreSQL binaries (apt package `postgresql`). Root cannot run postgres, so
# as root everything runs as the `postgres` user via runuser. The cluster listens on
# 127.0.0.1 only; the role `mamori` may create databases (each test session makes its own).
# Only the URL goes to stdout; progress and errors go to stderr. Exit status 1 = no PostgreSQL.
set -euo pipefail

PORT="${MAMORI_PG_PORT:-55432}"
DIR="${MAMORI_PG_DIR:-/tmp/mamori-pg-$PORT}"
ROLE=mamori
PASSWORD=mamori
DB=mamori_test

BIN="${MAMORI_PG_BIN:-}"
if [[ -z "$BIN" ]]; then
  BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [[ -z "$BIN" || ! -x "$BIN/initdb" ]]; then
  echo "pg-test-setup: no PostgreSQL binaries (apt-get install postgresql)" >&2
  exit 1
fi

if [[ "$(id -u)" == 0 ]]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "pg-test-setup: running as root but there is no 'postgres' user" >&2
    exit 1
  fi
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

if [[ ! -s "$DIR/PG_VERSION" ]]; then
  mkdir -p "$DIR"
  [[ "$(id -u)" == 0 ]] && chown postgres:postgres "$DIR"
  chmod 700 "$DIR"
  as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >&2
fi

if ! as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 30 \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2 || { echo "pg-test-setup: PostgreSQL did not start; log:" >&2; tail -n 30 "$DIR/server.log" >&2; exit 1; }
fi

psql_pg() { as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [[ "$(psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]]; then
  psql_pg -c "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'" >&2
fi
if [[ "$(psql_pg -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
  psql_pg -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi

echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
