#!/bin/bash
# Submits a split run and its merge:
#   SCENARIO=scenarios/endpoint.kdl RESULTS=/shared/benchctl deploy/slurm/submit-split.sh 8
set -euo pipefail

shards=${1:-8}
here=$(cd "$(dirname "$0")" && pwd)
# Every shard starts its first phase at the same time, after setup: allow for queueing.
start_at=$(date -u -d "+${START_DELAY_MIN:-5} minutes" +%Y-%m-%dT%H:%M:%SZ)
export START_AT=$start_at

array_id=$(sbatch --parsable --array="0-$((shards - 1))" "$here/split.sbatch")
echo "split run $array_id: $shards shards starting at $start_at"
merge_id=$(RUN_ID=$array_id SHARDS=$shards sbatch --parsable --export=ALL \
    --dependency="afterany:$array_id" "$here/merge.sbatch")
echo "merge job $merge_id runs after every shard has ended; results in $RESULTS/$array_id/merged"
