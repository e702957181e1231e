#!/usr/bin/env bash
# Low zooms, single client, release build, cache off: the per-zoom cost of watershed tiles
# without the generalized copies (the table itself at every zoom), with them as the demo
# serves them (z5-z9, name + fire_risk), and with fire_risk only (the smallest tiles the
# copies give while keeping every pixel's feature); fidelity and bytes for the last two.
#
#   benches/lowzoom_cost.sh [TILES_PER_ZOOM]        (default 6)
#
# Sets up what it needs (embedded PostGIS, demo data, release build); a first start
# builds the copies (minutes), which this waits for before timing anything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PER_ZOOM="${1:-6}"
WORK="$ROOT/.data/bench/lowzoom"
PORT=18083
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

bench_setup gdal-bin python3-gdal
"$BIN" --config tiles/demo.toml demo >&2
DB="$(/usr/bin/python3 -c "
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
print(f'host={p.hostname} port={p.port or 5432} dbname={p.path.lstrip(\"/\")} user={p.username}')" "$DATABASE_URL")"

serve() { # label, then sed expressions applied to tiles/demo.toml
  local label="$1"
  shift
  sed -e "s|^listen = .*|listen = \"127.0.0.1:$PORT\"|" -e "s|^size_mb = .*|size_mb = 0|" "$@" \
    tiles/demo.toml > "$WORK/$label.toml"
  RUST_LOG=warn "$BIN" --config "$WORK/$label.toml" serve 2>"$WORK/$label.log" &
  PID=$!
  wait_for "http://127.0.0.1:$PORT/ready"
}

wait_for_copies() {
  for _ in $(seq 1 900); do
    [ "$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM planscape.lowzoom_sources" 2>/dev/null || echo 0)" -ge 1 ] && return 0
    sleep 1
  done
  echo "the low-zoom copies were not built in 15 minutes" >&2
  return 1
}

fidelity() { # label, extra arguments
  local label="$1"
  shift
  /usr/bin/python3 benches/fidelity.py --server "http://127.0.0.1:$PORT" --db "$DB" \
    --zooms 5-10 --label " $label" "$@"
}

serve copies
wait_for_copies
# First requests after a start open connections and warm PostgreSQL's buffers: one pass
# untimed, for every configuration alike.
fidelity "(warm-up)" --per-zoom 0 --timing "$PER_ZOOM" > /dev/null
fidelity "with the copies (name, fire_risk)" --per-zoom 14 --timing "$PER_ZOOM"
stop_server

serve without -e '/^lowzoom_maxzoom/d' -e '/^lowzoom_properties/d'
fidelity "(warm-up)" --per-zoom 0 --timing "$PER_ZOOM" > /dev/null
fidelity "without the copies" --per-zoom 0 --timing "$PER_ZOOM"
stop_server

serve fire_risk -e 's|^lowzoom_properties = .*|lowzoom_properties = ["fire_risk"]|'
fidelity "(warm-up)" --per-zoom 0 --timing "$PER_ZOOM" > /dev/null
fidelity "with the copies (fire_risk)" --per-zoom 14 --timing "$PER_ZOOM"
stop_server
