#!/usr/bin/env bash
# The warm path at the physical limit: Planscape serving the 2,000 tiles of benches/load.sh
# from its cache, against nginx serving the very same bytes as static files, in one go:
# each run gives each server DURATION seconds of wrk in alternating slices; then
# (PROFILE=1, the default) a `perf` profile of the server during one more warm run,
# summarised by symbol.
#
#   benches/warm_path.sh [DURATION_SECONDS] [CONNECTIONS] [RUNS]
#   SLICES=1 benches/warm_path.sh ...             # one block of DURATION s per server and
#                                                 # run, instead of 4 alternating slices
#   NGINX_WORKER_PROCESSES=1 benches/warm_path.sh ...  # one nginx worker (default: auto,
#                                                 # one per core)
#   NGINX_SENDFILE=off benches/warm_path.sh ...   # nginx copies each body into the socket
#                                                 # (write from its buffers)
#   PLANSCAPE_CACHE_SENDFILE=false benches/warm_path.sh ...  # the server copies each body
#                                                 # into the socket instead of sendfile
#
# Sets up what it needs (packages incl. wrk, nginx and perf, embedded PostGIS, demo data,
# release build). nginx: the apt package, `worker_processes auto`, sendfile, an open-file
# cache (with the file-descriptor limit it needs), keep-alive without a request limit,
# access log off: its fastest honest set-up.
# Both answer `GET /tiles/watersheds/{z}/{x}/{y}.mvt` without `Accept-Encoding` (the
# identity bytes); the server's body bytes are what nginx serves. Besides wrk's figures,
# each run reports the CPU time the server (or nginx's workers) spent per request: on 2
# cores shared with wrk, throughput is bounded by scheduling as much as by that cost.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-20}"
CONNECTIONS="${2:-8}"
RUNS="${3:-4}"
PROFILE="${PROFILE:-1}"
TILES="${TILES:-2000}"
WORK="$ROOT/.data/bench/warm"
mkdir -p "$WORK"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

# BIN=path measures another build (e.g. a copy of the binary before a change).
bench_setup wrk nginx linux-perf
"$BIN" --config tiles/demo.toml demo >&2

/usr/bin/python3 benches/tile_list.py "$TILES" 5 12 > "$WORK/tiles.txt"
sed 's|^|/tiles/watersheds/|; s|$|.mvt|' "$WORK/tiles.txt" > "$WORK/paths.txt"

sed -e "s|^listen = .*|listen = \"127.0.0.1:18080\"|" -e "s|^size_mb = .*|size_mb = 2048|" \
  tiles/demo.toml > "$WORK/planscape.toml"
RUST_LOG=warn "$BIN" --config "$WORK/planscape.toml" serve 2>"$WORK/planscape.log" &
PID=$!
wait_for http://127.0.0.1:18080/ready
# A first start builds the low-zoom copies in the background (minutes of PostgreSQL
# work): wait for them so that nothing else loads the machine during the runs.
for _ in $(seq 1 600); do
  [ "$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM planscape.lowzoom_sources" 2>/dev/null || echo 0)" -ge 1 ] && break
  sleep 1
done

# The same bytes as files: every tile fetched once from the server (this also primes its
# cache), written where nginx finds it under the same path. 204 (empty) tiles become
# empty files: nginx answers them 200 with no body, a shade cheaper than the server's 204.
NGINX_DIR="$(mktemp -d /tmp/planscape-warm.XXXXXX)"
mkdir -p "$NGINX_DIR/files"
while read -r path; do
  mkdir -p "$NGINX_DIR/files$(dirname "$path")"
  echo "url = \"http://127.0.0.1:18080$path\""
  echo "output = \"$NGINX_DIR/files$path\""
done < "$WORK/paths.txt" > "$WORK/curl.cfg"
curl -s --no-progress-meter --parallel --parallel-max 4 -K "$WORK/curl.cfg"
primed="$(find "$NGINX_DIR/files" -type f | wc -l)"
echo "tiles written for nginx: $primed of $(wc -l < "$WORK/paths.txt"), $(du -sh "$NGINX_DIR/files" | cut -f1)" >&2

cat > "$NGINX_DIR/nginx.conf" <<CONF
worker_processes ${NGINX_WORKER_PROCESSES:-auto};
worker_rlimit_nofile 16384;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile ${NGINX_SENDFILE:-on};
  tcp_nopush on;
  keepalive_requests 1000000;
  open_file_cache max=4096 inactive=60s;
  client_body_temp_path $NGINX_DIR/body;
  proxy_temp_path $NGINX_DIR/proxy;
  fastcgi_temp_path $NGINX_DIR/fastcgi;
  uwsgi_temp_path $NGINX_DIR/uwsgi;
  scgi_temp_path $NGINX_DIR/scgi;
  server {
    listen 127.0.0.1:18090;
    root $NGINX_DIR/files;
    location /tiles/ {
      default_type application/vnd.mapbox-vector-tile;
      add_header Cache-Control "public, max-age=3600";
    }
  }
}
CONF
chown -R www-data:www-data "$NGINX_DIR"
(cd / && exec runuser -u www-data -- /usr/sbin/nginx -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" -e "$NGINX_DIR/error.log") &
NGINX_PID=$!
cleanup() { stop_server; kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; rm -rf "$NGINX_DIR"; }
trap cleanup EXIT
wait_for "http://127.0.0.1:18090$(head -1 "$WORK/paths.txt")"

# Same bytes: compare a sample of bodies from both.
while read -r path; do
  cmp -s <(curl -s "http://127.0.0.1:18080$path") <(curl -s "http://127.0.0.1:18090$path") ||
    { echo "bodies differ: $path" >&2; exit 1; }
done < <(awk 'NR % 50 == 1' "$WORK/paths.txt")

# CPU time (user + system, clock ticks) of the processes given, threads included.
cpu_ticks() {
  local total=0 pid fields
  for pid in "$@"; do
    # Fields after the command name, which is in parentheses: utime and stime are the
    # 12th and 13th of them.
    read -r -a fields <<< "$(sed 's/^.*) //' "/proc/$pid/stat")"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}
TICKS="$(getconf CLK_TCK)"
NGINX_WORKERS=()
mapfile -t NGINX_WORKERS < <(pgrep -u www-data -f "nginx: worker process")
# One slice: wrk for SLICE_S seconds against a server. Appends "requests seconds
# cpu_ticks" to NAME.slices (the CPU time of the server's processes over the slice) and
# wrk's latency histogram to NAME.latency (benches/paths.lua). Args: NAME (a path without
# extension), the base URL, then the server's PIDs.
measured_slice() {
  local name="$1" url="$2" before after
  shift 2
  before="$(cpu_ticks "$@")"
  WRK_LATENCY_OUT="$name.latency" DURATION="$SLICE_S" run_wrk "$url" "$WORK/paths.txt" >/dev/null
  after="$(cpu_ticks "$@")"
  awk -v ticks="$((after - before))" '
    / requests in / { n = $1; t = $4; sub(/s,$/, "", t) }
    END { print n, t, ticks }' "$WORK/wrk.out" >> "$name.slices"
}

# One server's figures over a run's slices: "req/s|p50|p99|CPU µs/req". The rate and the
# CPU per request are totals over the slices; p50 and p99 come from the slices' latency
# histograms merged. Args: NAME as for measured_slice.
run_figures() {
  local totals percentiles
  totals="$(awk -v hz="$TICKS" '{ n += $1; t += $2; c += $3 }
    END { printf "%.0f|%.1f", n / t, c / hz / n * 1e6 }' "$1.slices")"
  percentiles="$(sort -n -k1 "$1.latency" | awk '
    { v[NR] = $1; c[NR] = $2; total += $2 }
    function fmt(x) { return x >= 1000 ? sprintf("%.2fms", x / 1000) : sprintf("%dus", x) }
    function at(p,   i, seen) {
      for (i = 1; i <= NR; i++) { seen += c[i]; if (seen >= p * total) return v[i] }
      return v[NR]
    }
    END { printf "%s|%s", fmt(at(0.50)), fmt(at(0.99)) }')"
  echo "${totals%|*}|${percentiles}|${totals#*|}"
}

# Each run gives each server DURATION seconds in SLICES slices, alternating A B B A ...
# (nginx first in every other pair), so that both are measured under the same drift of
# the machine: on a shared VM the CPU a request costs moves by 20-50 % over tens of
# seconds (docs/benchmarks.md), which sequential blocks of DURATION seconds measure as
# much as the servers. SLICES=1 measures one block each, the server first.
SLICES="${SLICES:-4}"
SLICE_S="$(( (DURATION + SLICES - 1) / SLICES ))"
echo "each run: $SLICES slice(s) of ${SLICE_S} s per server, alternating" >&2
echo "| run | planscape req/s | p50 | p99 | CPU µs/req | nginx req/s | p50 | p99 | CPU µs/req | ratio |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for run in $(seq 1 "$RUNS"); do
  : > "$WORK/ours.slices" && : > "$WORK/ours.latency"
  : > "$WORK/nginx.slices" && : > "$WORK/nginx.latency"
  for slice in $(seq 1 "$SLICES"); do
    if [ $((slice % 2)) = 1 ]; then
      measured_slice "$WORK/ours" http://127.0.0.1:18080 "$PID"
      measured_slice "$WORK/nginx" http://127.0.0.1:18090 "${NGINX_WORKERS[@]}"
    else
      measured_slice "$WORK/nginx" http://127.0.0.1:18090 "${NGINX_WORKERS[@]}"
      measured_slice "$WORK/ours" http://127.0.0.1:18080 "$PID"
    fi
  done
  IFS='|' read -r ours_rps ours_p50 ours_p99 ours_cpu <<< "$(run_figures "$WORK/ours")"
  IFS='|' read -r ng_rps ng_p50 ng_p99 ng_cpu <<< "$(run_figures "$WORK/nginx")"
  ratio="$(awk -v a="$ours_rps" -v b="$ng_rps" 'BEGIN { printf "%.2fx", a / b }')"
  echo "| $run | $ours_rps | $ours_p50 | $ours_p99 | $ours_cpu | $ng_rps | $ng_p50 | $ng_p99 | $ng_cpu | $ratio |"
done

if [ "$PROFILE" = 1 ]; then
  # One more warm run with perf sampling the server (DWARF call graphs from the release
  # build's line tables), summarised by benches/perf_stages.py: the share of the server's
  # CPU under each stage of a request, and who calls the memory copies and malloc/free.
  wrk -t1 -c"$CONNECTIONS" -d"$((DURATION + 4))s" -s benches/paths.lua http://127.0.0.1:18080 -- "$WORK/paths.txt" > /dev/null &
  WRK=$!
  sleep 2
  perf record -q -F 499 --call-graph dwarf,32768 -p "$PID" -o "$WORK/perf.data" -- sleep "$DURATION" 2>/dev/null
  wait "$WRK"
  perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio -g none --percent-limit 1 2>/dev/null \
    > "$WORK/perf-self.txt" || true
  echo
  echo "perf, self time by symbol (>= 1 %):"
  grep -v '^#' "$WORK/perf-self.txt" | grep -v '^$' | sed 's/  */ /g' | cut -c1-120 || true
  echo
  perf script -i "$WORK/perf.data" 2>/dev/null | /usr/bin/python3 benches/perf_stages.py
fi
