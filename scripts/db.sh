#!/usr/bin/env bash
# The embedded PostGIS: a private PostgreSQL 15 cluster for this checkout.
#
#   scripts/db.sh start    create the cluster when missing, start it when stopped (idempotent)
#   scripts/db.sh stop     stop it
#   scripts/db.sh status   say whether it runs
#   scripts/db.sh url      print its DATABASE_URL
#   scripts/db.sh fresh N  start it, (re)create the empty PostGIS database N, print its URL
#
# The cluster lives in .data/pg (git-ignored). PostgreSQL refuses to run as root, so as
# root it runs as the `postgres` user; when that user cannot reach the checkout (e.g.
# it sits under /root), the data lives under /var/lib/planscape/<hash> and .data/pg
# links to it. Port: PLANSCAPE_PG_PORT (default 54329). Set DATABASE_URL to use any
# other PostGIS instead; this script is then not needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PLANSCAPE_PG_PORT:-54329}"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
URL="postgres://planscape@127.0.0.1:${PORT}/planscape"

as_owner() {
  # From /: the postgres user may not be allowed into the current directory.
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

data_dir() {
  local local_dir="$ROOT/.data/pg"
  if [ "$(id -u)" != 0 ]; then echo "$local_dir"; return; fi
  mkdir -p "$ROOT/.data"
  if [ -L "$local_dir" ]; then readlink -f "$local_dir"; return; fi
  if (cd / && runuser -u postgres -- test -x "$ROOT/.data"); then echo "$local_dir"; return; fi
  local hash
  hash="$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
  local shared="/var/lib/planscape/$hash/pg"
  mkdir -p "$(dirname "$shared")"
  ln -sfn "$shared" "$local_dir"
  echo "$shared"
}

is_running() {
  local data="$1"
  [ -f "$data/PG_VERSION" ] && as_owner "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
  "$ROOT/scripts/setup-debian.sh"
  local data
  data="$(data_dir)"
  if is_running "$data"; then
    echo "PostGIS already running: $URL" >&2
    return 0
  fi
  mkdir -p "$data"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$data" "$(dirname "$data")"; fi
  chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    echo "creating the PostGIS cluster in $data" >&2
    as_owner "$PGBIN/initdb" -D "$data" -U planscape --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$data/postgresql.conf" <<CONF
# Planscape embedded cluster
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$data'
max_connections = 200
shared_buffers = 512MB
work_mem = 32MB
synchronous_commit = off
postgis.gdal_enabled_drivers = 'ENABLE_ALL'
postgis.enable_outdb_rasters = on
CONF
  fi
  as_owner "$PGBIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null
  for _ in $(seq 1 60); do
    if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then break; fi
    sleep 0.5
  done
  if ! "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U planscape -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='planscape'" | grep -q 1; then
    "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U planscape planscape
  fi
  PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -q -h 127.0.0.1 -p "$PORT" -U planscape -d planscape -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
  echo "PostGIS running: $URL" >&2
}

# A new empty database with PostGIS (the test suite's: every run migrates from nothing).
fresh() {
  local name="$1"
  if ! [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || [ "$name" = planscape ]; then
    echo "fresh: '$name' is not a test database name" >&2; exit 64
  fi
  start >/dev/null 2>&1
  "$PGBIN/dropdb" -h 127.0.0.1 -p "$PORT" -U planscape --if-exists --force "$name"
  "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U planscape "$name"
  PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -q -h 127.0.0.1 -p "$PORT" -U planscape -d "$name" -c "CREATE EXTENSION postgis" >/dev/null
  echo "postgres://planscape@127.0.0.1:${PORT}/$name"
}

stop() {
  local data
  data="$(data_dir)"
  if is_running "$data"; then
    as_owner "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    echo "PostGIS stopped" >&2
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if is_running "$(data_dir)"; then echo "running: $URL"; else echo "stopped"; exit 3; fi ;;
  url) echo "$URL" ;;
  fresh) fresh "${2:?usage: $0 fresh DATABASE}" ;;
  *) echo "usage: $0 start|stop|restart|status|url|fresh NAME" >&2; exit 64 ;;
esac
