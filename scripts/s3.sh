#!/usr/bin/env bash
# A real S3-compatible API on loopback for tests and local experiments: moto's server,
# installed from PyPI into a venv under .data/tools/moto (~25 s, once).
#   scripts/s3.sh start   install if needed, start on 127.0.0.1:$PLANSCAPE_S3_PORT (54330)
#   scripts/s3.sh stop    stop it (its data lives in memory and goes with it)
#   scripts/s3.sh status  exit 0 when it answers
#   scripts/s3.sh url     print the endpoint URL
# Any access key works against moto; tests export dummy AWS_* credentials.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PLANSCAPE_S3_PORT:-54330}"
VENV="$ROOT/.data/tools/moto"
RUN="$ROOT/.data/s3"
URL="http://127.0.0.1:$PORT"

answers() { curl -s -o /dev/null --max-time 2 "$URL/" ; }

install() {
  if [ ! -x "$VENV/bin/moto_server" ]; then
    "$ROOT/scripts/setup-debian.sh" python3-venv curl
    echo "installing moto[server] into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'moto[server]>=5,<6'
  fi
}

start() {
  if answers; then echo "S3 (moto) already up at $URL"; return; fi
  install
  mkdir -p "$RUN"
  nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$RUN/moto.log" 2>&1 &
  echo $! >"$RUN/moto.pid"
  for _ in $(seq 1 100); do
    if answers; then echo "S3 (moto) up at $URL"; return; fi
    sleep 0.2
  done
  echo "moto did not start; see $RUN/moto.log" >&2
  exit 1
}

stop() {
  if [ -f "$RUN/moto.pid" ]; then
    kill "$(cat "$RUN/moto.pid")" 2>/dev/null || true
    rm -f "$RUN/moto.pid"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
