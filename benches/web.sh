#!/usr/bin/env bash
# The web app's user-facing times (benches/web.mjs) against a release build of the server
# with the demo data, straight and through the deployment's nginx, in one go:
#   benches/web.sh [RUNS]
# Sets up what it needs (packages, embedded PostGIS, the web build, demo data, a release
# build). Prints the bundle report and the measured times (JSON).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${1:-5}"
scripts/setup-debian.sh postgis curl nginx chromium
scripts/db.sh start
DATABASE_URL="$(scripts/db.sh url)"
export DATABASE_URL
scripts/web-build.sh >/dev/null
cargo build --release --quiet
BIN="$ROOT/target/release/planscape"
"$BIN" --config tiles/demo.toml demo >&2
"$BIN" --config tiles/demo.toml conditions build >&2
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SERVER_PORT="$(port)"
NGINX_PORT="$(port)"
pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
PLANSCAPE_LISTEN="127.0.0.1:$SERVER_PORT" PLANSCAPE_WEB_DIR="$ROOT/web/dist" RUST_LOG=warn \
  "$BIN" --config tiles/demo.toml serve > "$ROOT/.data/bench-web-server.log" 2>&1 &
pids+=($!)
scripts/nginx-local.sh "$NGINX_PORT" "127.0.0.1:$SERVER_PORT" "$(mktemp -d /tmp/planscape-bench-nginx.XXXXXX)" &
pids+=($!)
for _ in $(seq 1 150); do
  if curl -fs -o /dev/null "http://127.0.0.1:$SERVER_PORT/ready" && curl -fs -o /dev/null "http://127.0.0.1:$NGINX_PORT/health"; then break; fi
  sleep 0.2
done
echo "== bundle (web/dist/build-report.json)"
cat web/dist/build-report.json
echo "== straight at the server"
node benches/web.mjs "http://127.0.0.1:$SERVER_PORT" "$RUNS"
echo "== through nginx"
node benches/web.mjs "http://127.0.0.1:$NGINX_PORT" "$RUNS"
