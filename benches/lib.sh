# shellcheck shell=bash
# Shared helpers of the load-test scripts (sourced, not run). Expects WORK and
# CONNECTIONS and DURATION to be set by the caller.

PID=""

# Stops the server started last.
stop_server() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi
}
trap stop_server EXIT

# The median of the numbers on stdin, one a line (the lower of the middle two).
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# A token for a new user of the API at $1 (…/planscape-backend); $2 names the bench in
# the user's e-mail address.
signup_token() {
  curl -fsS "$1/auth/signup" -H 'content-type: application/json' \
    -d "{\"email\":\"${2:-bench}$(date +%s%N)@example.org\",\"password\":\"a long bench password\",\"name\":\"Bench\"}" \
    | sed -n 's/.*"token":"\([^"]*\)".*/\1/p'
}

# A circle of $3 acres around longitude $1, latitude $2, as a GeoJSON geometry (PostGIS:
# a geodesic buffer, 64 segments a quarter circle).
circle_geojson() {
  psql "$DATABASE_URL" -Atc "SELECT ST_AsGeoJSON(ST_Buffer(ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, sqrt($3 * 4046.8564224 / pi()), 64)::geometry, 9)"
}

# Whether the 30 m demo's rasters are made: its 25 built element and pillar rasters exist
# (`conditions build` runs after `demo`, which makes the metrics).
have_30m_rasters() {
  [ "$(find .data/conditions-30m -name '*.tif' 2>/dev/null | wc -l)" -ge 25 ]
}

# Exits unless the 30 m demo's rasters are made (benches that only read them).
require_30m_rasters() {
  if ! have_30m_rasters; then
    echo "the 30 m rasters are not made: run benches/stats.sh 1 --30m first" >&2
    exit 1
  fi
}

# Exits when a server already listens on port $1 (it would answer instead).
require_free_port() {
  if ss -ltn | grep -q ":$1 "; then echo "port $1 is in use" >&2; exit 1; fi
}

# The K-th ($1, from 1) of N ($2) centres along the Sierra Nevada demo range, as
# "longitude latitude": every statistics bench asks new areas along the same line.
range_centre() {
  echo "$1 $2" | awk '{ t = ($1 - 0.5) / $2; printf "%.5f %.5f", -120.65 + t * 2.15, 39.6 - t * 3.7 }'
}

# Drops the 30 m demo rasters' pages (and their copies', benches/recode_30m.sh) from the
# page cache: the next request that needs them reads them from the disk.
evict_30m_rasters() {
  find .data/rasters-30m* .data/conditions-30m* -name '*.tif' \
    -exec dd if='{}' iflag=nocache count=0 status=none ';'
}

# Waits up to 30 s for URL to answer 2xx.
wait_for() {
  for _ in $(seq 1 150); do
    if curl -fs -o /dev/null "$1"; then return 0; fi
    sleep 0.2
  done
  echo "server did not come up: $1" >&2; return 1
}

# Requests every path of the file once (fills caches). Args: base-url paths-file.
prime() {
  sed "s|^|$1|" "$2" | xargs -P 4 -n 1 curl -s -o /dev/null --compressed
}

# Fetches every path once, as a browser without a cache would; prints the mean body size
# in KB and the count. Args: base-url paths-file.
tile_bytes() {
  sed "s|^|$1|" "$2" | xargs -P 4 -n 1 curl -s -o /dev/null -w '%{http_code} %{size_download}\n' |
    awk '$1 == 200 { s += $2; n++ } END { printf "%.1f KB | %d\n", s / (n ? n : 1) / 1024, n }'
}

# One wrk run over the paths; prints "req/s | p50 | p99 | transfer/s".
# Args: base-url paths-file [extra header].
run_wrk() {
  local extra=()
  if [ -n "${3:-}" ]; then extra=(-H "$3"); fi
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s --latency "${extra[@]}" \
    -s benches/paths.lua "$1" -- "$2" > "$WORK/wrk.out"
  awk '
    /Requests\/sec/ { rps = $2 }
    /Transfer\/sec/ { tps = $2 }
    $1 == "50%" { p50 = $2 }
    $1 == "99%" { p99 = $2 }
    /Non-2xx/ { bad = $NF }
    END { printf "%s | %s | %s | %s%s\n", rps, p50, p99, tps, (bad ? " (" bad " non-2xx)" : "") }' "$WORK/wrk.out"
}

# Every condition of the catalog's first region (pillars, elements, metrics) as a JSON
# list of names. Args: the API's base URL.
catalog_conditions() {
  curl -fsS "$1/conditions" | /usr/bin/python3 -c "
import json, sys
d = json.load(sys.stdin)
names = []
for p in d['regions'][0]['pillars']:
    names.append(p['name'])
    for e in p['elements']:
        names.append(e['name'])
        names.extend(m['name'] for m in e['metrics'])
print(json.dumps(names))"
}

# The set-up every bench starts with: the Debian packages named (wrk, nginx, ...), the
# embedded PostGIS (DATABASE_URL exported, unless already set) and, unless BIN names
# another build (e.g. a copy of the binary before a change), the release build, as BIN.
bench_setup() {
  scripts/setup-debian.sh "$@"
  scripts/db.sh start
  DATABASE_URL="${DATABASE_URL:-$(scripts/db.sh url)}"
  export DATABASE_URL
  if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=target/release/planscape
  fi
}
