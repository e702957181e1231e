#!/usr/bin/env bash
# Load test of the whole path as deployed: wrk -> nginx (the project's config, from apt,
# unprivileged) -> planscape (release) -> PostGIS / GDAL, on loopback, with a realistic
# mix (benches/mix.py: map panning over distinct tiles at z7-z13 of a vector and a
# raster layer, TileJSON per view). Bounded: DURATION seconds per run.
#
#   benches/loadtest.sh [DURATION_SECONDS] [CONNECTIONS] [VIEWS]
#
# Writes docs/loadtest.md: throughput, p50/p99 and errors, cold (server cache off) and
# warm (cache on, after one pass). The planning API (stats, plan reads) joins the mix
# when those endpoints exist.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-30}"
CONNECTIONS="${2:-16}"
VIEWS="${3:-400}"
WORK="$ROOT/.data/bench"
NGINX_PORT=18088
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

bench_setup wrk
"$BIN" --config tiles/demo.toml demo >&2
/usr/bin/python3 benches/mix.py "$VIEWS" > "$WORK/mix.txt"
NGINX_PID=""
stop_all() {
  stop_server
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""; fi
}
trap stop_all EXIT

run() { # cache MB, label
  sed -e "s|^listen = .*|listen = \"127.0.0.1:18081\"|" -e "s|^size_mb = .*|size_mb = $1|" tiles/demo.toml > "$WORK/loadtest.toml"
  RUST_LOG=warn "$BIN" --config "$WORK/loadtest.toml" serve 2>"$WORK/planscape.log" &
  PID=$!
  wait_for http://127.0.0.1:18081/ready
  if [ "$1" != 0 ]; then prime "http://127.0.0.1:$NGINX_PORT" "$WORK/mix.txt"; fi
  local result socket
  result="$(run_wrk "http://127.0.0.1:$NGINX_PORT" "$WORK/mix.txt" 'Accept-Encoding: gzip')"
  socket="$(awk '/Socket errors/ { sub(/^ */, ""); print }' "$WORK/wrk.out")"
  echo "| $2 | $result | ${socket:-none} |"
  stop_server
}

scripts/nginx-local.sh "$NGINX_PORT" 127.0.0.1:18081 "$WORK/nginx" &
NGINX_PID=$!
sleep 1
requests=$(wc -l < "$WORK/mix.txt")
{
  echo "# Load test: the deployed path"
  echo
  echo "wrk -> nginx (docker/nginx config) -> planscape -> PostGIS/GDAL, loopback, measured $(date -u +%Y-%m-%d)"
  echo "on $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB. Command: \`benches/loadtest.sh $DURATION $CONNECTIONS $VIEWS\`"
  echo "(wrk -t1 -c$CONNECTIONS, ${DURATION} s per run, \`Accept-Encoding: gzip\` as browsers send)."
  echo
  echo "Mix (\`benches/mix.py $VIEWS\`): $VIEWS map views at z7–z13 over the demo region, alternating the"
  echo "vector \`watersheds\` layer and raster condition layers; each view is a TileJSON request, the"
  echo "12 tiles of a 1024x768 viewport and a one-tile pan: $requests requests, cycled."
  echo
  echo "| run | req/s | p50 | p99 | transfer/s (non-2xx, if any) | socket errors |"
  echo "| --- | --- | --- | --- | --- | --- |"
  run 0 "cold (server cache off)"
  run 1024 "warm (cache primed)"
  echo
  echo "Not yet in the mix: planning statistics and plan reads (their endpoints come with the"
  echo "planning issues); add them to \`benches/mix.py\` as they land."
} > "$WORK/loadtest.md"
# The soak's section (benches/soak.sh) stays.
/usr/bin/python3 - "$WORK/loadtest.md" docs/loadtest.md <<'PY'
import sys
new = open(sys.argv[1]).read().rstrip("\n")
old = open(sys.argv[2]).read()
soak = old.split("\n## Soak\n", 1)
open(sys.argv[2], "w").write(new + "\n" + ("\n## Soak\n" + soak[1] if len(soak) == 2 else ""))
PY
cat docs/loadtest.md
