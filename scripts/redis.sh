#!/usr/bin/env bash
# A private Redis (Debian's redis-server) on loopback for tests and trials: the shared
# cache level and the shared login limits ([cache.shared] url, PLANSCAPE_SHARED_CACHE_URL).
#   scripts/redis.sh start   install if needed, start on 127.0.0.1:$PLANSCAPE_REDIS_PORT (54331)
#   scripts/redis.sh stop    stop it (it keeps nothing on disk: a cache)
#   scripts/redis.sh status  exit 0 when it answers
#   scripts/redis.sh url     print its URL (redis://127.0.0.1:PORT)
# Each port has its own folder, .data/redis/PORT (git-ignored: pid file, log), so tests
# may run instances of their own beside the suite's (PLANSCAPE_REDIS_PORT=N scripts/redis.sh
# start). Loopback only, no password, protected mode on, no persistence; memory bounded
# (PLANSCAPE_REDIS_MAXMEMORY, default 256mb) and evicted like ElastiCache's default
# (volatile-lru: only entries with an expiry go, as tiles and counters all have one).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PLANSCAPE_REDIS_PORT:-54331}"
MAXMEMORY="${PLANSCAPE_REDIS_MAXMEMORY:-256mb}"
RUN="$ROOT/.data/redis/$PORT"
URL="redis://127.0.0.1:$PORT"

if ! [[ "$PORT" =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
  echo "PLANSCAPE_REDIS_PORT must be a port number, not '$PORT'" >&2
  exit 64
fi

answers() {
  command -v redis-cli >/dev/null 2>&1 \
    && [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ]
}

start() {
  if answers; then echo "Redis already up at $URL" >&2; return; fi
  "$ROOT/scripts/setup-debian.sh"
  mkdir -p "$RUN"
  # --dir holds nothing (no snapshots, no append-only file) but must be writable.
  redis-server --bind 127.0.0.1 --port "$PORT" --protected-mode yes \
    --dir "$RUN" --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log" \
    --save "" --appendonly no \
    --maxmemory "$MAXMEMORY" --maxmemory-policy volatile-lru
  for _ in $(seq 1 100); do
    if answers; then echo "Redis up at $URL" >&2; return; fi
    sleep 0.1
  done
  echo "redis-server did not start; see $RUN/redis.log" >&2
  exit 1
}

stop() {
  if answers; then
    redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
  # Wait until the process is gone (the port is free for a restart).
  if [ -f "$RUN/redis.pid" ]; then
    local pid
    pid="$(cat "$RUN/redis.pid")"
    for _ in $(seq 1 100); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      sleep 0.1
    done
    rm -f "$RUN/redis.pid"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 64 ;;
esac
