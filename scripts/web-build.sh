#!/usr/bin/env bash
# Builds the web app: installs its npm packages with `npm ci` when web/package-lock.json
# changed since the last install, type-checks web/src, bundles it into web/dist
# (content-hashed JS/CSS, index.html, precompressed .gz twins) and runs the unit tests of
# its pure modules (web/test, node's test runner).
#   scripts/web-build.sh            install if needed, check, build
#   scripts/web-build.sh --deps     install if needed only (the e2e tests' playwright-core)
# Needs Node.js >= 20 and npm (the machine's; packages come from the npm registry).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/web"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "web-build.sh: Node.js >= 20 and npm are needed" >&2
  exit 1
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "web-build.sh: Node.js >= 20 is needed (found $(node --version))" >&2
  exit 1
fi

# The lockfile's hash, stamped into node_modules after an install: equal means up to date.
stamp=node_modules/.planscape-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== npm ci (web)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
if [ "${1:-}" = "--deps" ]; then
  exit 0
fi

echo "== tsc --noEmit (web)"
npx --no-install tsc --noEmit -p .
echo "== esbuild (web)"
node build.mjs
echo "== unit tests (web)"
node test.mjs
