#!/bin/bash
# Submits a clip as an array of PARTS tasks (one GPU each) and a join job that waits for them.
#   usage: submit.sh INPUT OUTPUT.webm PARTS [compose options...]
# Environment: BACKDROP (the launcher, default `backdrop` on PATH), BACKDROP_DEVICE (default
# cuda), BACKDROP_SLURM_GRES (default gpu:1; empty for CPU nodes), BACKDROP_SLURM_OPTIONS (more
# sbatch options for both jobs, e.g. "--partition=gpu --time=2:00:00").
# Prints the two job ids.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
input=$(realpath "$1")
output=$(realpath -m "$2")
parts=$3
shift 3
outdir="${output%.*}.parts"
gres=${BACKDROP_SLURM_GRES-gpu:1}
# shellcheck disable=SC2206
extra=(${BACKDROP_SLURM_OPTIONS:-})
array=$(sbatch --parsable --array="0-$((parts - 1))" ${gres:+--gres="$gres"} "${extra[@]}" \
  --chdir="$(dirname "$output")" "$here/backdrop-part.sbatch" "$input" "$outdir" "$@")
array=${array%%;*}
join=$(sbatch --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes "${extra[@]}" \
  --chdir="$(dirname "$output")" "$here/backdrop-join.sbatch" "$outdir" "$output")
echo "array $array join ${join%%;*}"
