#!/usr/bin/env bash
# API fuzzing: schemathesis (PyPI, pinned) generates requests from the served OpenAPI
# document and checks the answers of a live server, signed in with a bearer token:
#   not_a_server_error          no 5xx
#   status_code_conformance     every status is documented for its operation
#   content_type_conformance    every Content-Type is the documented one
#   response_schema_conformance every body fits its documented schema
#   negative_data_rejection     requests the document calls invalid are refused (4xx)
#   positive_data_acceptance    requests the document calls valid are not refused for a
#                               reason it does not state (see .data/fuzz/schemathesis.toml)
# The stack is its own: a fresh database (`planscape_fuzz`), the demo data at a coarse
# raster resolution in .data/fuzz (as scripts/e2e-stack.sh makes it), the server on a
# free loopback port. The run is bounded (examples per operation) and seeded, so a run
# repeats; its reports (JUnit XML, NDJSON events) go to .data/fuzz/report.
# Closes with `# pass N` / `# fail N` lines (operations) that scripts/test.sh adds up.
#   scripts/fuzz-api.sh [PLANSCAPE_BINARY]    (default: target/debug/planscape)
# PLANSCAPE_FUZZ_DATABASE_URL names another (empty, PostGIS-enabled) database to use;
# PLANSCAPE_FUZZ_EXAMPLES (default 50) and PLANSCAPE_FUZZ_SEED (default 1) tune the run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$(realpath "${1:-target/debug/planscape}")"
WORK="$ROOT/.data/fuzz"
REPORT="$WORK/report"
VENV="$ROOT/.data/tools/fuzz"
SCHEMATHESIS=4.32.5
EXAMPLES="${PLANSCAPE_FUZZ_EXAMPLES:-50}"
SEED="${PLANSCAPE_FUZZ_SEED:-1}"
mkdir -p "$WORK"
rm -rf "$REPORT"

# The tool, in a venv of Debian's Python (not whichever python3 comes first on PATH).
scripts/setup-debian.sh python3-venv
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS"; then
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS"
fi

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SERVER_PORT="$(port)"
pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

DATABASE_URL="${PLANSCAPE_FUZZ_DATABASE_URL:-$(scripts/db.sh fresh planscape_fuzz)}"
export DATABASE_URL
export PLANSCAPE_STYLES_DIR="$ROOT/styles" PLANSCAPE_WEB_DIR="$ROOT/web/dist"
export PLANSCAPE_CONDITIONS_CATALOG="$ROOT/tiles/conditions.toml"
export PLANSCAPE_LISTEN="127.0.0.1:$SERVER_PORT" RUST_LOG=warn
unset PLANSCAPE_ADMIN_TOKEN
# The demo's configuration. Sign-ups and failed logins stay limited as configured: the
# fuzzer meets their 429 answers, which the document states.
cd "$WORK"
echo "== fuzz: demo data (coarse rasters) in $WORK"
"$BIN" --config "$ROOT/tiles/demo.toml" demo --watersheds 2000 --raster-resolution 1000 >/dev/null
"$BIN" --config "$ROOT/tiles/demo.toml" conditions build >/dev/null
"$BIN" --config "$ROOT/tiles/demo.toml" serve > "$WORK/server.log" 2>&1 &
pids+=($!)
cd "$ROOT"
BASE="http://127.0.0.1:$SERVER_PORT"
for _ in $(seq 1 150); do
  if curl -fs -o /dev/null "$BASE/ready"; then break; fi
  sleep 0.2
done

# A user of its own; the fuzzer acts as them with the bearer token. A plan of theirs
# (a small square in the Sierra Nevada) and a scenario of it give the operations on
# `{id}` and `{sid}` something to find; without them most would answer 404.
api() { curl -fsS -H 'content-type: application/json' -H "Authorization: Bearer ${TOKEN:-}" "$@"; }
json() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
TOKEN="$(api -d '{"email":"fuzz@example.org","password":"a fuzzing password","name":"Fuzz"}' \
  "$BASE/planscape-backend/auth/signup" | json '["token"]')"
# An administrator, so that the analytics reports are fuzzed too (their 403 for everyone
# else is tests/analytics.rs's).
"$BIN" user admin --email fuzz@example.org >/dev/null
PLAN="$(api -d '{"name":"Fuzz","region":"sierra_nevada","geometry":{"type":"Polygon","coordinates":[[[-120.5,38.5],[-120.45,38.5],[-120.45,38.55],[-120.5,38.55],[-120.5,38.5]]]}}' \
  "$BASE/planscape-backend/plans" | json '["id"]')"
CONDITION=high_severity_potential_smoke_emissions
SCENARIO="$(api -d '{"name":"Fuzz","priorities":[{"condition":"'"$CONDITION"'","weight":1}],"stand_size_acres":100,"max_treatment_share":0.5,"max_project_areas":3}' \
  "$BASE/planscape-backend/plans/$PLAN/scenarios" | json '["id"]')"

# Positive data may be refused where the document says why in terms no schema can
# state (expected-statuses below): 422 for a geometry outside California or invalid, a
# condition without raw values, an email of no account, a wrong current password (also
# when deleting the account), an unknown or used reset token, a point outside a layer's
# data. The analytics reports answer 400 to a date that fits the pattern but is none
# (2024-02-30), a range that ends before it starts or spans more than 732 days.
cat > "$WORK/schemathesis.toml" <<TOML
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "429"]

[[operations]]
include-operation-id-regex = "^(create_plan|upload_plan|update_plan|area_stats|invite|change_password|delete_account|reset_password|create_scenario|point)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

[[operations]]
include-operation-id-regex = "^analytics_"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403"]
TOML
# The same, with the path parameters pinned to what exists. Pinned, a parameter cannot
# be made invalid, so this configuration runs valid requests only (schemathesis would
# otherwise count a pinned, valid id as the invalid one it meant to send).
{ cat <<TOML
[parameters]
"path.id" = $PLAN
"path.sid" = $SCENARIO
"path.region" = "sierra_nevada"
"path.name" = "$CONDITION"
"path.layer" = "sierra_nevada_$CONDITION"

TOML
  cat "$WORK/schemathesis.toml"; } > "$WORK/schemathesis-pinned.toml"

echo "== fuzz: schemathesis $SCHEMATHESIS against $BASE (seed $SEED, $EXAMPLES examples per operation)"
status=0
fuzz() {
  local config="$1"
  shift
  # One worker: requests in a fixed order (a seeded run repeats), and hypothesis's
  # lambda descriptions are not thread-safe on Python 3.11 ("AST constructor recursion
  # depth mismatch" errors with two). A hard stop besides the example count, should
  # the server hang.
  timeout 900 "$VENV/bin/schemathesis" --config-file "$WORK/$config" run \
    "$BASE/planscape-backend/openapi.json" \
    -H "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,positive_data_acceptance \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 --request-timeout 30 \
    --phases examples,coverage,fuzzing --report junit,ndjson --report-dir "$REPORT" \
    "$@" 2>&1 | tee -a "$WORK/schemathesis.log"
}
: > "$WORK/schemathesis.log"
# The API, under its prefix: valid and invalid requests with generated ids, then valid
# ones on the existing plan and scenario. Logout is left out: it would end the session
# the run signs in with (tests/accounts_plans.rs covers it).
api_operations=(--url "$BASE/planscape-backend" --exclude-path /auth/logout --exclude-path '/tiles/{layer}/point')
fuzz schemathesis.toml "${api_operations[@]}" --report-junit-path "$REPORT/api.xml" || status=$?
fuzz schemathesis-pinned.toml "${api_operations[@]}" --mode positive \
  --report-junit-path "$REPORT/api-existing.xml" || status=$?
# The point query, served beside the tiles (the document gives it the server `/`):
# generated layers, then valid requests on a layer that exists.
point=(--url "$BASE" --include-path '/tiles/{layer}/point')
fuzz schemathesis.toml "${point[@]}" --report-junit-path "$REPORT/tiles.xml" || status=$?
fuzz schemathesis-pinned.toml "${point[@]}" --mode positive \
  --report-junit-path "$REPORT/tiles-existing.xml" || status=$?

# One pass or fail per operation, from the JUnit report, for scripts/test.sh's count.
/usr/bin/python3 - "$REPORT" <<'EOF' || status=1
import glob, sys, xml.etree.ElementTree as ET
passed = failed = 0
for path in glob.glob(sys.argv[1] + "/*.xml"):
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is None:
            passed += 1
print(f"# pass {passed}")
print(f"# fail {failed}")
sys.exit(1 if failed or not passed else 0)
EOF
if [ "$status" != 0 ]; then
  echo "fuzz failed; the server's log: $WORK/server.log, the report: $REPORT" >&2
fi
exit "$status"
