#!/usr/bin/env bash
# The shared cache level measured: two servers behind the deployment's nginx (round
# robin) over one Redis (scripts/redis.sh on a port of its own), TILES distinct watershed
# tiles (z5-z12 over the demo region, benches/tile_list.py), each asked twice in a row
# (two people looking at the same map: round robin sends one request to each server).
#
#   benches/shared_cache.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Prints two Markdown tables:
#   - one pass (benches/tile_pass.py, CONNECTIONS at a time, gzip accepted): seconds,
#     requests/s, renders per tile (tile_render_seconds_count of the servers over TILES)
#     and failed requests, for the two servers without and with the shared level, then a
#     freshly started third server's first pass over the tiles, cold (without) and from
#     the shared level (which the second run filled);
#   - wrk for DURATION seconds over the tiles: a server with its in-process cache off
#     serving from the shared level alone, beside a warm in-process cache (Martin's warm
#     figure on the same tiles: benches/load.sh, docs/benchmarks.md).
# Release build; PLANSCAPE_BIN=target/debug/planscape (with DATABASE_URL of a database of
# its own and DEMO_ARGS) makes a smoke run whose numbers are no benchmark. Bounded:
# loopback only, DURATION seconds per wrk run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-20}"
CONNECTIONS="${2:-8}"
TILES="${TILES:-2000}"
WORK="$ROOT/.data/bench/shared"
NGINX_PORT=18091
REDIS_PORT="${PLANSCAPE_BENCH_REDIS_PORT:-54341}"
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

scripts/setup-debian.sh wrk
if [ -z "${DATABASE_URL:-}" ]; then
  scripts/db.sh start
  DATABASE_URL="$(scripts/db.sh url)"
fi
export DATABASE_URL
if [ -z "${PLANSCAPE_BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/planscape
else
  BIN="$PLANSCAPE_BIN"
fi
# DEMO_ARGS: demo options for a quick smoke run (e.g. "--raster-resolution 2000").
# shellcheck disable=SC2086
"$BIN" --config tiles/demo.toml demo ${DEMO_ARGS:-} >&2
if [ ! -f web/dist/index.html ]; then scripts/web-build.sh >&2; fi
PLANSCAPE_REDIS_PORT="$REDIS_PORT" scripts/redis.sh start
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

/usr/bin/python3 benches/tile_list.py "$TILES" 5 12 > "$WORK/tiles.txt"
sed 's|^|/tiles/watersheds/|; s|$|.mvt|' "$WORK/tiles.txt" > "$WORK/paths.txt"
# Each tile twice in a row: round robin sends one request to each server.
sed 'p' "$WORK/paths.txt" > "$WORK/paths-twice.txt"

SERVERS=()
NGINX_PID=""
stop_servers() {
  for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  SERVERS=()
}
stop_all() {
  stop_servers
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
  PLANSCAPE_REDIS_PORT="$REDIS_PORT" scripts/redis.sh stop
}
trap stop_all EXIT

start_server() { # port, cache MB, shared (1) or not (0)
  local config="$WORK/server-$1.toml" env=()
  sed -e "s|^listen = .*|listen = \"127.0.0.1:$1\"|" -e "s|^size_mb = .*|size_mb = $2|" tiles/demo.toml > "$config"
  if [ "$3" = 1 ]; then env=("PLANSCAPE_SHARED_CACHE_URL=$REDIS_URL"); fi
  env ${env[@]+"${env[@]}"} RUST_LOG=warn "$BIN" --config "$config" serve 2>"$WORK/server-$1.log" &
  SERVERS+=("$!")
  wait_for "http://127.0.0.1:$1/ready"
}

renders() { # ports...: tiles rendered by those servers
  for port in "$@"; do curl -fsS "http://127.0.0.1:$port/metrics"; done \
    | awk '/^tile_render_seconds_count\{layer="watersheds"\}/ { n += $2 } END { print n + 0 }'
}

flush_redis() { redis-cli -p "$REDIS_PORT" flushall >/dev/null; }

# One pass; prints "seconds | requests/s | renders per tile | failures". Args: base-url
# paths-file ports-whose-renders-count...
pass() {
  local base="$1" paths="$2"
  shift 2
  local before after
  before="$(renders "$@")"
  read -r seconds requests failures < <(/usr/bin/python3 benches/tile_pass.py "$base" "$paths" "$CONNECTIONS")
  # Writes to the shared level happen behind the responses: let them land.
  sleep 1
  after="$(renders "$@")"
  awk -v s="$seconds" -v r="$requests" -v b="$before" -v a="$after" -v t="$TILES" -v f="$failures" \
    'BEGIN { printf "%.1f | %.0f | %.2f | %d\n", s, r / s, (a - b) / t, f }'
}

scripts/nginx-local.sh "$NGINX_PORT" "127.0.0.1:18081; server 127.0.0.1:18082" "$WORK/nginx" &
NGINX_PID=$!
NGINX="http://127.0.0.1:$NGINX_PORT"

echo "| run ($TILES tiles, each asked twice through nginx unless noted) | seconds | requests/s | renders per tile | failed |"
echo "| --- | --- | --- | --- | --- |"
flush_redis
start_server 18081 2048 0
start_server 18082 2048 0
wait_for "$NGINX/ready"
echo "| two servers, without the shared level | $(pass "$NGINX" "$WORK/paths-twice.txt" 18081 18082) |"
stop_servers
flush_redis
start_server 18081 2048 1
start_server 18082 2048 1
wait_for "$NGINX/ready"
echo "| two servers, with the shared level | $(pass "$NGINX" "$WORK/paths-twice.txt" 18081 18082) |"
stop_servers
# The shared level now holds every tile (from the run above).
start_server 18083 2048 0
echo "| a third server's first pass (each tile once), cold | $(pass http://127.0.0.1:18083 "$WORK/paths.txt" 18083) |"
stop_servers
start_server 18083 2048 1
echo "| a third server's first pass (each tile once), from the shared level | $(pass http://127.0.0.1:18083 "$WORK/paths.txt" 18083) |"

echo
echo "| served from ($CONNECTIONS connections, ${DURATION} s) | req/s | p50 | p99 | transfer/s |"
echo "| --- | --- | --- | --- | --- |"
echo "| the in-process cache, warm (after the pass above) | $(run_wrk http://127.0.0.1:18083 "$WORK/paths.txt" 'Accept-Encoding: gzip') |"
stop_servers
start_server 18084 0 1
echo "| the shared level alone (in-process cache off) | $(run_wrk http://127.0.0.1:18084 "$WORK/paths.txt" 'Accept-Encoding: gzip') |"
too_large="$(curl -fsS http://127.0.0.1:18084/metrics \
  | awk '/^shared_cache_writes_total\{result="too_large"\}/ { n += $2 } END { print n + 0 }')"
echo
echo "Renders during the last run: $(renders 18084) (tiles over max_entry_kb, not written to the shared level: $too_large)."
