#!/bin/sh
# Deploy hook: runs before the rollout with SHIPLINE_ENV, IMAGE_TAG and SHIPLINE_PREVIOUS_TAG
# set. A non-zero exit aborts the deploy (and rolls back). Keep it idempotent.
set -eu
echo "deploy hook: ${SHIPLINE_ENV}: ${SHIPLINE_PREVIOUS_TAG:-none} -> ${IMAGE_TAG}"
