#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine and runs the server with the demo data:
# system packages, the embedded PostGIS (scripts/db.sh), a release build, the generated
# demo data (`planscape demo`, skipped when already loaded), the web app (web/dist,
# scripts/web-build.sh), then `planscape serve` with
# the demo layer catalog tiles/demo.toml on http://127.0.0.1:8080 (Ctrl-C stops it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/setup-debian.sh
scripts/db.sh start
cargo build --release --quiet
scripts/web-build.sh
CONFIG="${PLANSCAPE_CONFIG:-tiles/demo.toml}"
target/release/planscape --config "$CONFIG" demo
target/release/planscape --config "$CONFIG" conditions build
echo "serving the demo: open http://127.0.0.1:8080/ (tiles catalog at /tiles)" >&2
exec target/release/planscape --config "$CONFIG" serve
