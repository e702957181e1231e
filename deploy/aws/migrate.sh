#!/usr/bin/env bash
# Sets up the database (idempotent: deploy/aws/db-setup.sql as the RDS master) and runs
# the migrations of IMAGE_TAG, each as a one-off Fargate task in the stack's cluster,
# before the service runs that image. Stops at the first failure, with the task's log.
#   deploy/aws/migrate.sh STACK IMAGE_TAG        e.g. deploy/aws/migrate.sh planscape "$(git rev-parse HEAD)"
# Needs the AWS CLI and jq; the images of IMAGE_TAG must be in the stack's repositories.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "$#" -ne 2 ]; then
  echo "usage: $0 STACK IMAGE_TAG" >&2
  exit 2
fi
STACK="$1" IMAGE_TAG="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
aws cloudformation describe-stacks --stack-name "$STACK" \
  --query 'Stacks[0].Outputs' --output json > "$work/outputs.json"
out() { jq -r --arg k "$1" '.[] | select(.OutputKey == $k) | .OutputValue' "$work/outputs.json"; }
cluster="$(out ClusterName)"
log_group="$(out LogGroup)"
network="$(jq -cn --arg subnets "$(out PrivateSubnetIds)" --arg group "$(out TaskSecurityGroup)" \
  '{awsvpcConfiguration: {subnets: ($subnets | split(",")), securityGroups: [$group],
                          assignPublicIp: "DISABLED"}}')"

# run KIND: registers the KIND task definition for IMAGE_TAG, runs it, waits, and fails
# unless its container exited 0.
run() {
  local kind="$1" definition arn task_arn exit_code reason
  definition="$work/$kind.json"
  "$HERE/render-task-definition.sh" "$work/outputs.json" "$IMAGE_TAG" "$kind" > "$definition"
  arn="$(aws ecs register-task-definition --cli-input-json "file://$definition" \
    --query 'taskDefinition.taskDefinitionArn' --output text)"
  echo "== $kind: $arn"
  task_arn="$(aws ecs run-task --cluster "$cluster" --task-definition "$arn" \
    --launch-type FARGATE --network-configuration "$network" \
    --started-by "$kind-${IMAGE_TAG:0:20}" \
    --query 'tasks[0].taskArn' --output text)"
  if [ -z "$task_arn" ] || [ "$task_arn" = "None" ]; then
    echo "$kind: the task did not start" >&2
    return 1
  fi
  echo "$kind: task $task_arn"
  # The waiter gives up after 10 minutes; migrations may take longer.
  for attempt in 1 2 3 4 5 6; do
    if aws ecs wait tasks-stopped --cluster "$cluster" --tasks "$task_arn"; then break; fi
    echo "$kind: still running (attempt $attempt)"
  done
  exit_code="$(aws ecs describe-tasks --cluster "$cluster" --tasks "$task_arn" \
    --query "tasks[0].containers[?name=='backend'].exitCode | [0]" --output text)"
  reason="$(aws ecs describe-tasks --cluster "$cluster" --tasks "$task_arn" \
    --query 'tasks[0].stoppedReason' --output text)"
  echo "$kind: stopped ($reason), exit code $exit_code"
  aws logs get-log-events --log-group-name "$log_group" \
    --log-stream-name "$kind/backend/${task_arn##*/}" \
    --query 'events[].message' --output text || true
  if [ "$exit_code" != "0" ]; then
    echo "$kind failed (exit code $exit_code)" >&2
    return 1
  fi
}

run setup
run migrate
