#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine and runs the whole test suite:
# system packages, the embedded PostGIS, an S3 API on loopback (moto), a Redis on
# loopback (the shared cache), format and lint gates, then every test (unit and
# integration, against real PostGIS, real S3 API, real Redis, real HTTP and GDAL's MVT
# driver).
# The tests run in a database of their own, `planscape_test`, made anew each run so that
# migrations always run from nothing and no earlier run's leftovers count; the demo's
# `planscape` database is left alone. Set DATABASE_URL to test against another PostGIS
# (the database-restart test needs the embedded cluster, whose scripts/db.sh it calls).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/setup-debian.sh
scripts/db.sh start
if [ -z "${DATABASE_URL:-}" ]; then DATABASE_URL="$(scripts/db.sh fresh planscape_test)"; fi
export DATABASE_URL
# A real S3 API on loopback (moto) for the tile store tests, with dummy credentials:
# the tests never talk to AWS, whatever credentials the caller's environment holds.
scripts/s3.sh start
export PLANSCAPE_TEST_S3_ENDPOINT="${PLANSCAPE_TEST_S3_ENDPOINT:-$(scripts/s3.sh url)}"
export AWS_ACCESS_KEY_ID=planscape-test AWS_SECRET_ACCESS_KEY=planscape-test AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
# A real Redis on loopback for the shared cache tests (each test keeps to a key prefix of
# its own; the outage tests start and stop instances of their own on other ports).
scripts/redis.sh start
export PLANSCAPE_TEST_REDIS_URL="${PLANSCAPE_TEST_REDIS_URL:-$(scripts/redis.sh url)}"

# Schemas left behind by interrupted test runs.
psql "$DATABASE_URL" -qAtc "SELECT 'DROP SCHEMA ' || quote_ident(nspname) || ' CASCADE;' FROM pg_namespace WHERE nspname LIKE 't\_%'" \
  | psql "$DATABASE_URL" -q >/dev/null

scripts/lint.sh
echo "== web app: npm ci, type check, unit tests, build"
scripts/web-build.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
echo "== web app end to end (headless Chromium)"
scripts/e2e-stack.sh target/debug/planscape 2>&1 | tee -a "$log" || status=$?
echo "== API fuzzing (schemathesis against the OpenAPI document)"
scripts/fuzz-api.sh target/debug/planscape 2>&1 | tee -a "$log" || status=$?
echo "== AWS deployment (cfn-lint, task definitions against the template, database setup SQL)"
scripts/check-aws.sh 2>&1 | tee -a "$log" || status=$?
# One closing line over every test binary (cargo prints one per binary), the end-to-end
# runs (node's test runner prints `# pass N` / `# fail N`, or `ℹ pass N` on a terminal)
# the fuzzing (`# pass N` / `# fail N`, one per operation) and the AWS checks (one per check).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^(# |ℹ )pass [0-9]+$/ { p += $NF }
     /^(# |ℹ )fail [0-9]+$/ { f += $NF }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
