#!/usr/bin/env bash
# Renders the ECS task definitions from the stack's outputs, as deploy.yml and
# deploy/aws/migrate.sh register them (scripts/check-aws.sh checks the result against
# the stack template's own task definition):
#   deploy/aws/render-task-definition.sh OUTPUTS_JSON IMAGE_TAG [service|migrate|setup]
# OUTPUTS_JSON: a file holding the stack's outputs, as
#   aws cloudformation describe-stacks --stack-name planscape --query 'Stacks[0].Outputs'
# service  deploy/aws/task-definition.json with every ${OutputKey} and ${IMAGE_TAG}
#          replaced (the same containers the stack runs);
# migrate  the backend alone, `planscape migrate`, no health check or ports;
# setup    the backend image running deploy/aws/db-setup.sql with psql as the RDS master
#          (its own execution role reads the master's and the application's passwords).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
  echo "usage: $0 OUTPUTS_JSON IMAGE_TAG [service|migrate|setup]" >&2
  exit 2
fi
OUTPUTS="$1" IMAGE_TAG="$2" KIND="${3:-service}"
if ! [[ "$IMAGE_TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "render-task-definition.sh: '$IMAGE_TAG' is not an image tag" >&2
  exit 2
fi
export IMAGE_TAG
# Every output becomes a variable of its own name.
while IFS=$'\t' read -r key value; do
  if ! [[ "$key" =~ ^[A-Za-z][A-Za-z0-9]*$ ]]; then
    echo "render-task-definition.sh: unexpected output key '$key'" >&2
    exit 1
  fi
  export "$key=$value"
done < <(jq -r '.[] | [.OutputKey, .OutputValue] | @tsv' "$OUTPUTS")

TEMPLATE="$HERE/task-definition.json"
# shellcheck disable=SC2016  # the placeholders themselves, not expanded
placeholders="$(grep -o '\${[A-Za-z_][A-Za-z0-9_]*}' "$TEMPLATE" | sort -u | tr '\n' ' ')"
for p in $placeholders; do
  name="${p:2:-1}"
  if [ -z "${!name:-}" ]; then
    echo "render-task-definition.sh: the stack has no output $name (needed by $TEMPLATE)" >&2
    exit 1
  fi
done
service="$(envsubst "$placeholders" < "$TEMPLATE" \
  | jq --arg cache "${SharedCacheUrlSecretArn:-}" '
      .containerDefinitions |= map(
        if .memory then .memory |= tonumber else . end
        | if .name == "backend" and $cache != "" then
            .secrets += [{name: "PLANSCAPE_SHARED_CACHE_URL", valueFrom: $cache}]
          else . end)')"

case "$KIND" in
  service)
    printf '%s\n' "$service"
    ;;
  migrate)
    jq '.family += "-migrate"
        | .containerDefinitions |= map(select(.name == "backend")
            | del(.healthCheck, .dependsOn, .portMappings)
            | .command = ["migrate"]
            | .logConfiguration.options["awslogs-stream-prefix"] = "migrate")' <<<"$service"
    ;;
  setup)
    for name in SetupExecutionRoleArn DatabaseMasterSecretArn AppDbPasswordSecretArn DatabaseEndpoint; do
      if [ -z "${!name:-}" ]; then
        echo "render-task-definition.sh: the stack has no output $name" >&2
        exit 1
      fi
    done
    jq --arg sql "$(cat "$HERE/db-setup.sql")" \
       --arg role "${SetupExecutionRoleArn:-}" --arg master "${DatabaseMasterSecretArn:-}" \
       --arg app "${AppDbPasswordSecretArn:-}" --arg host "${DatabaseEndpoint:-}" '
      .family += "-setup"
      | .executionRoleArn = $role
      | del(.taskRoleArn)
      | .containerDefinitions |= map(select(.name == "backend")
          | del(.healthCheck, .dependsOn, .portMappings, .command)
          | .entryPoint = ["sh", "-c", "printf \"%s\\n\" \"$SETUP_SQL\" | psql -v ON_ERROR_STOP=1 -v app_role=planscape -v app_db=planscape -v app_password=\"$APP_DB_PASSWORD\""]
          | .environment = [
              {name: "PGHOST", value: $host},
              {name: "PGDATABASE", value: "postgres"},
              {name: "PGSSLMODE", value: "verify-full"},
              {name: "PGSSLROOTCERT", value: "/etc/ssl/rds-global-bundle.pem"},
              {name: "SETUP_SQL", value: $sql}]
          | .secrets = [
              {name: "PGUSER", valueFrom: ($master + ":username::")},
              {name: "PGPASSWORD", valueFrom: ($master + ":password::")},
              {name: "APP_DB_PASSWORD", valueFrom: $app}]
          | .logConfiguration.options["awslogs-stream-prefix"] = "setup")' <<<"$service"
    ;;
  *)
    echo "render-task-definition.sh: unknown kind '$KIND' (service, migrate or setup)" >&2
    exit 2
    ;;
esac
