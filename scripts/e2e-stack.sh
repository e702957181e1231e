#!/usr/bin/env bash
# The web app's end-to-end tests against a real stack made for them: a database of its
# own (`planscape_e2e`, made anew), the demo data at a coarse raster resolution in a
# working folder of its own (.data/e2e, so the demo's own rasters are left alone), the
# server on a free loopback port, then the deployment's nginx in front of it. Runs
# scripts/e2e.sh straight at the server, then once through nginx.
#   scripts/e2e-stack.sh [PLANSCAPE_BINARY]     (default: target/debug/planscape)
# PLANSCAPE_E2E_DATABASE_URL names another (empty, PostGIS-enabled) database to use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$(realpath "${1:-target/debug/planscape}")"
WORK="$ROOT/.data/e2e"
mkdir -p "$WORK"
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SERVER_PORT="$(port)"
NGINX_PORT="$(port)"
pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

DATABASE_URL="${PLANSCAPE_E2E_DATABASE_URL:-$(scripts/db.sh fresh planscape_e2e)}"
export DATABASE_URL
export PLANSCAPE_STYLES_DIR="$ROOT/styles" PLANSCAPE_WEB_DIR="$ROOT/web/dist"
export PLANSCAPE_CONDITIONS_CATALOG="$ROOT/tiles/conditions.toml"
export PLANSCAPE_LISTEN="127.0.0.1:$SERVER_PORT" RUST_LOG=warn
unset PLANSCAPE_ADMIN_TOKEN
# The server trusts the loopback proxy (nginx, and the test browsers, which each send an
# X-Real-IP of their own when they talk to the server straight) to name the client.
export PLANSCAPE_TRUSTED_PROXIES="127.0.0.1/32"
# The dashboard's test makes its account an administrator with this binary.
export PLANSCAPE_E2E_BIN="$BIN"
# The server's configuration: the demo's, with a larger sign-up allowance per client
# address. Through nginx every browser is 127.0.0.1 (nginx sets X-Real-IP and
# X-Forwarded-For from its peer), and one pass of the tests signs up 13 times (dashboard 1,
# docs 1, planner 1, reset 1, scenarios 2, sharing 2, sign-in 4, upload 1), past the default 10 per 15
# minutes. (Logins need no more: a browser that signed up logs in on its device
# cookie's own allowance.)
CONFIG="$WORK/e2e.toml"
# Mail: a real SMTP server of its own (aiosmtpd, from python3-aiosmtpd) writing what it
# receives into a maildir, which tests/e2e/reset.test.mjs reads the reset link from.
MAILDIR="$WORK/mail"
rm -rf "$MAILDIR"
SMTP_PORT="$(port)"
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$MAILDIR" &
pids+=($!)
export PLANSCAPE_SMTP_HOST=127.0.0.1 PLANSCAPE_SMTP_PORT="$SMTP_PORT" PLANSCAPE_SMTP_TLS=none
export PLANSCAPE_MAIL_FROM="Planscape <no-reply@planscape.test>"
export PLANSCAPE_APP_URL="http://127.0.0.1:$SERVER_PORT" PLANSCAPE_E2E_MAILDIR="$MAILDIR"
{ cat "$ROOT/tiles/demo.toml"; printf '\n[accounts]\nlogin_max_failures = 30\n'; } > "$CONFIG"
# Relative paths of tiles/demo.toml (rasters, built conditions, the tile store) resolve
# in the working folder.
cd "$WORK"
echo "== e2e: demo data (coarse rasters) in $WORK"
"$BIN" --config "$ROOT/tiles/demo.toml" demo --watersheds 5000 --raster-resolution 1000 >/dev/null
"$BIN" --config "$ROOT/tiles/demo.toml" conditions build >/dev/null
"$BIN" --config "$CONFIG" serve > "$WORK/server.log" 2>&1 &
pids+=($!)
cd "$ROOT"
for _ in $(seq 1 150); do
  if curl -fs -o /dev/null "http://127.0.0.1:$SERVER_PORT/ready"; then break; fi
  sleep 0.2
done
status=0
scripts/e2e.sh "http://127.0.0.1:$SERVER_PORT" || status=$?
scripts/nginx-local.sh "$NGINX_PORT" "127.0.0.1:$SERVER_PORT" "$(mktemp -d /tmp/planscape-e2e-nginx.XXXXXX)" &
pids+=($!)
for _ in $(seq 1 50); do
  if curl -fs -o /dev/null "http://127.0.0.1:$NGINX_PORT/health"; then break; fi
  sleep 0.2
done
echo "== e2e through the deployment's nginx"
scripts/e2e.sh "http://127.0.0.1:$NGINX_PORT" || status=$?
if [ "$status" != 0 ]; then
  echo "e2e failed; the server's log: $WORK/server.log" >&2
fi
exit "$status"
