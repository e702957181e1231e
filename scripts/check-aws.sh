#!/usr/bin/env bash
# Offline checks of the AWS deployment (nothing here reaches AWS):
#   cfn-lint (PyPI, pinned, in a venv under .data/tools/cfn) on every template in
#     deploy/aws/, no errors or warnings; each under CloudFormation's 51,200-byte limit
#     for a template passed inline;
#   scripts/check-task-definition.py: the task definitions rendered as deploy.yml renders
#     them against the template's (containers, ports, health checks, ...);
#   deploy/aws/db-setup.sql run by the setup task's own command against the real PostGIS
#     (DATABASE_URL, a superuser): twice (idempotent), and its role/database part as a
#     non-superuser master, as on RDS.
# Closes with `# pass N` / `# fail N` (scripts/test.sh adds them up).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CFN_LINT=1.58.0
VENV="$ROOT/.data/tools/cfn"
scripts/setup-debian.sh python3-venv jq gettext-base
if ! "$VENV/bin/cfn-lint" --version 2>/dev/null | grep -q "$CFN_LINT"; then
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "cfn-lint==$CFN_LINT"
fi
pass=0
fail=0
result() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "ok   $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }
# expect DESCRIPTION COMMAND...: a check that COMMAND succeeds.
expect() { local description="$1" status=0; shift; "$@" || status=$?; result "$status" "$description"; }

echo "== cfn-lint $CFN_LINT"
for template in deploy/aws/*.yaml; do
  status=0
  "$VENV/bin/cfn-lint" "$template" || status=$?
  result "$status" "cfn-lint $template"
  size="$(wc -c < "$template")"
  expect "$template is $size bytes (inline limit 51200)" [ "$size" -le 51200 ]
done

echo "== task definitions (as deploy.yml renders them) against the template"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
status=0
"$VENV/bin/python" scripts/check-task-definition.py > "$out" 2>&1 || status=$?
grep -v '^# \(pass\|fail\)' "$out" || true
pass=$((pass + $(sed -n 's/^# pass //p' "$out")))
fail=$((fail + $(sed -n 's/^# fail //p' "$out")))
if [ "$status" != 0 ] && ! grep -q '^# fail' "$out"; then fail=$((fail + 1)); fi

if [ -n "${DATABASE_URL:-}" ]; then
  echo "== database setup SQL (the setup task's command) against PostGIS"
  suffix="$$_$RANDOM"
  role="aws_setup_$suffix" db="aws_setup_$suffix" master="aws_master_$suffix"
  outputs="$(mktemp)"
  jq -n '[{OutputKey: "Name", OutputValue: "planscape"}]' > "$outputs"
  # The command and SQL of the setup task, for a role and database of this run's own.
  definition="$("$VENV/bin/python" - "$outputs" <<'PY'
import json, subprocess, sys
from cfnlint.decode import decode_str
template, _ = decode_str(open("deploy/aws/planscape.yaml").read())
outputs = [{"OutputKey": k, "OutputValue": f"fake-{k}"} for k in template["Outputs"]]
for o in outputs:
    if o["OutputKey"] in ("BackendMemory",):
        o["OutputValue"] = "1536"
    if o["OutputKey"] == "SharedCacheUrlSecretArn":
        o["OutputValue"] = ""
json.dump(outputs, open(sys.argv[1], "w"))
PY
  deploy/aws/render-task-definition.sh "$outputs" test setup)"
  rm -f "$outputs"
  command="$(jq -r '.containerDefinitions[0].entryPoint[2]' <<<"$definition" \
    | sed "s/app_role=planscape/app_role=$role/; s/app_db=planscape/app_db=$db/")"
  sql="$(jq -r '.containerDefinitions[0].environment[] | select(.name == "SETUP_SQL") | .value' <<<"$definition")"
  admin() { psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
  cleanup_db() {
    admin -c "DROP DATABASE IF EXISTS $db" -c "DROP ROLE IF EXISTS $role" -c "DROP ROLE IF EXISTS $master" >/dev/null 2>&1 || true
  }
  cleanup_db
  run_setup() { # USER PASSWORD SQL
    PGUSER="$1" PGPASSWORD="$2" SETUP_SQL="$3" APP_DB_PASSWORD="app-secret" \
      PGHOST="$(admin -c 'SELECT inet_server_addr()' | sed 's/\/.*//')" \
      PGPORT="$(admin -c 'SHOW port')" PGDATABASE="$(admin -c 'SELECT current_database()')" \
      sh -c "$command"
  }
  superuser="$(admin -c 'SELECT current_user')"
  status=0; run_setup "$superuser" "" "$sql" >/dev/null 2>&1 || status=$?
  result "$status" "setup SQL runs"
  status=0; run_setup "$superuser" "" "$sql" >/dev/null 2>&1 || status=$?
  result "$status" "setup SQL runs again (idempotent)"
  db_url="$(sed -E "s#^(postgres(ql)?://[^/]+/)[^?]*#\\1$db#" <<<"$DATABASE_URL")"
  facts="$(psql "$db_url" -qAtX -c "SELECT pg_get_userbyid(datdba) || ' ' || (SELECT extname FROM pg_extension WHERE extname = 'postgis') FROM pg_database WHERE datname = current_database()" 2>&1 || true)"
  expect "database owned by the application role, PostGIS in it ($facts)" [ "$facts" = "$role postgis" ]
  # RDS: the master is no superuser (CREATEROLE, CREATEDB). Up to \connect, the SQL
  # must work for it: CREATE DATABASE ... OWNER needs its membership in the role.
  cleanup_db
  admin -c "CREATE ROLE $master LOGIN CREATEROLE CREATEDB PASSWORD 'master-secret'" >/dev/null
  roles_part="$(sed '/^\\connect/,$d' <<<"$sql")"
  status=0; run_setup "$master" "master-secret" "$roles_part" >/dev/null 2>&1 || status=$?
  result "$status" "role and database part as a non-superuser master (RDS)"
  no_grant="$(grep -v '^GRANT' <<<"$roles_part")"
  admin -c "DROP DATABASE IF EXISTS $db" -c "DROP ROLE IF EXISTS $role" >/dev/null
  status=0; run_setup "$master" "master-secret" "$no_grant" >/dev/null 2>&1 || status=$?
  expect "without the GRANT the non-superuser master cannot create the database (the defect)" [ "$status" != 0 ]
  cleanup_db
fi
echo "# pass $pass"
echo "# fail $fail"
[ "$fail" = 0 ]
