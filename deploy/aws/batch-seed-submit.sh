#!/usr/bin/env bash
# Submits one seed as an AWS Batch array job: N children, each one shard
# (`--shard auto/N` reads AWS_BATCH_JOB_ARRAY_INDEX), all writing to the same bucket;
# a retried child resumes (`--resume`). The stack (deploy/aws/planscape.yaml) holds the
# compute environment, the queue (output SeedJobQueue), the job definition NAME-seed at
# the deployed image tag and the log group /batch/NAME-seed:
#   deploy/aws/batch-seed-submit.sh QUEUE LAYER ZOOMS BBOX N
# JOB_DEFINITION names another job definition (default planscape-seed).
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
  --job-definition "${JOB_DEFINITION:-planscape-seed}" \
  --array-properties "size=$N" \
  --parameters "{\"layer\":\"$LAYER\",\"zoom\":\"$ZOOMS\",\"bbox\":\"$BBOX\",\"shard\":\"auto/$N\"}"
