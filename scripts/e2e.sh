#!/usr/bin/env bash
# Runs the web app's end-to-end tests (tests/e2e/*.test.mjs, node's test runner) in
# Debian's headless Chromium against a running server that serves the built app at /:
#   scripts/e2e.sh BASE_URL        e.g. http://127.0.0.1:8080 (the server) or nginx's port
# Installs chromium from apt when missing, and the npm packages (playwright-core) when
# needed. Screenshots of each step go to .data/screenshots/ (PLANSCAPE_E2E_SHOTS).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="${1:?usage: scripts/e2e.sh BASE_URL}"

if [ ! -x /usr/bin/chromium ]; then
  "$ROOT/scripts/setup-debian.sh" chromium
fi
"$ROOT/scripts/web-build.sh" --deps

if ! curl -fsS -o /dev/null "$BASE/"; then
  echo "e2e.sh: nothing answers at $BASE/" >&2
  exit 1
fi
echo "== e2e tests against $BASE"
cd "$ROOT"
PLANSCAPE_E2E_URL="$BASE" node --test --test-concurrency=1 tests/e2e/*.test.mjs
