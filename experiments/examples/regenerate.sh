#!/usr/bin/env bash
# Regenerate the example reports under experiments/examples/ from the ready experiments in
# experiments/experiments/: each is swept afresh (into results/sweeps/<name>, not committed)
# and its report is written into experiments/examples/<name>/.
#
#   bash experiments/examples/regenerate.sh                  # both, all cores
#   bash experiments/examples/regenerate.sh fourpl-vs-diy    # one of them
#   WORKERS=2 bash experiments/examples/regenerate.sh
#
# Each takes a few minutes on 2 cores (see the comments at the top of each experiment file).
set -euo pipefail
cd "$(dirname "$0")/../.."
FOURPL=${FOURPL:-$( [ -x .venv/bin/fourpl ] && echo .venv/bin/fourpl || echo fourpl )}
WORKERS=${WORKERS:-$(nproc 2>/dev/null || echo 2)}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(channel-strategies fourpl-vs-diy)
fi
for name in "${names[@]}"; do
    exp="experiments/experiments/${name}.toml"
    out="results/sweeps/${name}"
    echo "== ${name}: sweep into ${out}"
    start=$(date +%s)
    "$FOURPL" sweep "$exp" --out "$out" --workers "$WORKERS" --overwrite
    echo "== ${name}: report into experiments/examples/${name} ($(( $(date +%s) - start )) s of sweeping)"
    rm -rf "experiments/examples/${name}"
    "$FOURPL" report "$out" --out "experiments/examples/${name}"
done
