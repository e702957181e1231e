#!/usr/bin/env bash
# Registers the Planscape ECS service with Application Auto Scaling and attaches two
# target-tracking policies: average CPU at 60 % and ALB requests per target at 1500
# (requests per minute per task). Idempotent: re-running updates the target and policies.
#
#   CLUSTER=planscape SERVICE=planscape \
#   TARGET_GROUP_RESOURCE_LABEL=app/<alb-name>/<alb-id>/targetgroup/<tg-name>/<tg-id> \
#   [MIN=2] [MAX=10] deploy/aws/autoscaling.sh
#
# TARGET_GROUP_RESOURCE_LABEL is the tail of the load balancer ARN (after "loadbalancer/")
# joined with the tail of the target group ARN (from "targetgroup/"), separated by "/".
set -euo pipefail

: "${CLUSTER:?set CLUSTER to the ECS cluster name}"
: "${SERVICE:?set SERVICE to the ECS service name}"
: "${TARGET_GROUP_RESOURCE_LABEL:?set TARGET_GROUP_RESOURCE_LABEL (app/<alb>/<id>/targetgroup/<tg>/<id>)}"
MIN="${MIN:-2}"
MAX="${MAX:-10}"
CPU_TARGET="${CPU_TARGET:-60}"
REQUESTS_PER_TARGET="${REQUESTS_PER_TARGET:-1500}"
SCALE_IN_COOLDOWN="${SCALE_IN_COOLDOWN:-300}"
SCALE_OUT_COOLDOWN="${SCALE_OUT_COOLDOWN:-60}"

for n in MIN MAX CPU_TARGET REQUESTS_PER_TARGET SCALE_IN_COOLDOWN SCALE_OUT_COOLDOWN; do
  if ! [[ "${!n}" =~ ^[0-9]+$ ]]; then
    echo "autoscaling.sh: $n must be a whole number, got '${!n}'" >&2
    exit 2
  fi
done
if (( MIN < 1 || MIN > MAX )); then
  echo "autoscaling.sh: need 1 <= MIN ($MIN) <= MAX ($MAX)" >&2
  exit 2
fi
if ! [[ "$TARGET_GROUP_RESOURCE_LABEL" =~ ^app/[^/]+/[^/]+/targetgroup/[^/]+/[^/]+$ ]]; then
  echo "autoscaling.sh: TARGET_GROUP_RESOURCE_LABEL must look like app/<alb>/<id>/targetgroup/<tg>/<id>" >&2
  exit 2
fi

RESOURCE_ID="service/${CLUSTER}/${SERVICE}"
DIMENSION="ecs:service:DesiredCount"

echo "Registering ${RESOURCE_ID} as a scalable target (min ${MIN}, max ${MAX})"
aws application-autoscaling register-scalable-target \
  --service-namespace ecs \
  --scalable-dimension "$DIMENSION" \
  --resource-id "$RESOURCE_ID" \
  --min-capacity "$MIN" \
  --max-capacity "$MAX"

# put_policy NAME TARGET_TRACKING_JSON
put_policy() {
  echo "Putting target-tracking policy $1"
  aws application-autoscaling put-scaling-policy \
    --service-namespace ecs \
    --scalable-dimension "$DIMENSION" \
    --resource-id "$RESOURCE_ID" \
    --policy-name "$1" \
    --policy-type TargetTrackingScaling \
    --target-tracking-scaling-policy-configuration "$2" \
    --query 'PolicyARN' --output text
}

put_policy "planscape-cpu" "$(cat <<JSON
{
  "TargetValue": ${CPU_TARGET}.0,
  "PredefinedMetricSpecification": {
    "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
  },
  "ScaleInCooldown": ${SCALE_IN_COOLDOWN},
  "ScaleOutCooldown": ${SCALE_OUT_COOLDOWN}
}
JSON
)"

put_policy "planscape-requests-per-target" "$(cat <<JSON
{
  "TargetValue": ${REQUESTS_PER_TARGET}.0,
  "PredefinedMetricSpecification": {
    "PredefinedMetricType": "ALBRequestCountPerTarget",
    "ResourceLabel": "${TARGET_GROUP_RESOURCE_LABEL}"
  },
  "ScaleInCooldown": ${SCALE_IN_COOLDOWN},
  "ScaleOutCooldown": ${SCALE_OUT_COOLDOWN}
}
JSON
)"

echo "Done. Current policies:"
aws application-autoscaling describe-scaling-policies \
  --service-namespace ecs \
  --resource-id "$RESOURCE_ID" \
  --query 'ScalingPolicies[].[PolicyName,TargetTrackingScalingPolicyConfiguration.TargetValue]' \
  --output table
