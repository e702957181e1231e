#!/usr/bin/env bash
# Submits one seed as an AWS Batch array job: N children, each one shard
# (`--shard auto/N` reads AWS_BATCH_JOB_ARRAY_INDEX), all writing to the same bucket;
# a retried child resumes (`--resume`). Register the job definition first:
#   envsubst < deploy/aws/batch-seed-job-definition.json > /tmp/jd.json
#   aws batch register-job-definition --cli-input-json file:///tmp/jd.json
#   deploy/aws/batch-seed-submit.sh QUEUE LAYER ZOOMS BBOX N
set -euo pipefail
if [ "$#" -ne 5 ]; then
  echo "usage: $0 QUEUE LAYER ZOOMS BBOX N   e.g. planscape-seed watersheds 0-12 -121.7,35,-117.9,40.8 8" >&2
  exit 2
fi
QUEUE="$1" LAYER="$2" ZOOMS="$3" BBOX="$4" N="$5"
if [ "$N" -lt 2 ]; then echo "an array job needs N >= 2" >&2; exit 2; fi
aws batch submit-job \
  --job-name "seed-$LAYER-$(date +%Y%m%d%H%M%S)" \
  --job-queue "$QUEUE" \
  --job-definition planscape-seed \
  --array-properties "size=$N" \
  --parameters "{\"layer\":\"$LAYER\",\"zoom\":\"$ZOOMS\",\"bbox\":\"$BBOX\",\"shard\":\"auto/$N\"}"
