#!/usr/bin/env bash
# Rolls the stack's service (and the seeding job definition) to IMAGE_TAG: updates the
# stack's ImageTag parameter with the template it already has, every other parameter
# kept, and waits. The ECS deployment circuit breaker fails the update when the new
# tasks do not become healthy; CloudFormation then rolls the stack back to the
# previous tag, and this script fails. Rolling back by hand is the same command with
# the previous tag.
#   deploy/aws/roll-out.sh STACK IMAGE_TAG
# The first roll-out (it creates the service) needs the operator's credentials; later
# ones are what deploy.yml does with the stack's deploy role.
set -euo pipefail
if [ "$#" -ne 2 ]; then
  echo "usage: $0 STACK IMAGE_TAG" >&2
  exit 2
fi
STACK="$1" IMAGE_TAG="$2"
if ! [[ "$IMAGE_TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "roll-out.sh: '$IMAGE_TAG' is not an image tag" >&2
  exit 2
fi
previous="$(aws cloudformation describe-stacks --stack-name "$STACK" \
  --query "Stacks[0].Parameters[?ParameterKey=='ImageTag'].ParameterValue | [0]" --output text)"
mapfile -t keys < <(aws cloudformation describe-stacks --stack-name "$STACK" \
  --query 'Stacks[0].Parameters[].ParameterKey' --output text | tr '\t' '\n')
parameters=()
for key in "${keys[@]}"; do
  if [ "$key" = ImageTag ]; then
    parameters+=("ParameterKey=ImageTag,ParameterValue=$IMAGE_TAG")
  else
    parameters+=("ParameterKey=$key,UsePreviousValue=true")
  fi
done
echo "Rolling $STACK from image tag '${previous}' to '$IMAGE_TAG'"
if ! output="$(aws cloudformation update-stack --stack-name "$STACK" --use-previous-template \
      --capabilities CAPABILITY_NAMED_IAM --parameters "${parameters[@]}" 2>&1)"; then
  if grep -q "No updates are to be performed" <<<"$output"; then
    echo "$STACK already runs $IMAGE_TAG"
    exit 0
  fi
  echo "$output" >&2
  exit 1
fi
if ! aws cloudformation wait stack-update-complete --stack-name "$STACK"; then
  echo "The update failed; recent events:" >&2
  aws cloudformation describe-stack-events --stack-name "$STACK" --max-items 15 \
    --query "StackEvents[?contains(ResourceStatus, 'FAILED')].[LogicalResourceId,ResourceStatusReason]" \
    --output text >&2 || true
  exit 1
fi
echo "$STACK runs $IMAGE_TAG"
