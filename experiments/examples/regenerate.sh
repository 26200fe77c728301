#!/usr/bin/env bash
# Regenerate the example reports under experiments/examples/ from the ready experiments in
# experiments/experiments/: each is swept afresh (into results/sweeps/<name>, not committed)
# and its report is written into experiments/examples/<name>/.
#
#   bash experiments/examples/regenerate.sh                  # all of them, all cores
#   bash experiments/examples/regenerate.sh calibration      # regenerate-calibration.sh (fourpl calibrate)
#   bash experiments/examples/regenerate.sh validation       # regenerate-validation.sh (out of sample)
#   bash experiments/examples/regenerate.sh fourpl-vs-diy    # one of them
#   WORKERS=2 bash experiments/examples/regenerate.sh
#   REPORT_ONLY=1 bash experiments/examples/regenerate.sh   # reuse results/sweeps/<name>
#
# Each takes a few minutes on 2 cores (see the comments at the top of each experiment file).
#
# Hand-written findings: experiments/examples/notes/<name>.md, if present, is inserted into the
# report after its description. Its first line is "<!-- point_summary sha256: HASH -->", the
# hash of the point_summary.csv its figures were read from; if the new sweep gives different
# figures (the model changed), the findings are still inserted but under a warning that they
# describe an earlier run and must be checked against the tables. After reading the new report,
# update the notes and their hash (the script prints it).
set -euo pipefail
cd "$(dirname "$0")/../.."
FOURPL=${FOURPL:-$( [ -x .venv/bin/fourpl ] && echo .venv/bin/fourpl || echo fourpl )}
WORKERS=${WORKERS:-$(nproc 2>/dev/null || echo 2)}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(channel-strategies fourpl-vs-diy returns-and-warehouses fx-bonded-vs-direct calibration validation)
fi
for name in "${names[@]}"; do
    # the calibration (about 35 minutes) and the out-of-sample validation (about 10) have scripts of their own
    if [ "$name" = calibration ] || [ "$name" = validation ]; then
        bash "experiments/examples/regenerate-${name}.sh"
        continue
    fi
    exp="experiments/experiments/${name}.toml"
    out="results/sweeps/${name}"
    dest="experiments/examples/${name}"
    notes="experiments/examples/notes/${name}.md"
    if [ "${REPORT_ONLY:-0}" = "1" ] && [ -d "$out" ]; then
        echo "== ${name}: report from the existing sweep ${out}"
    else
        echo "== ${name}: sweep into ${out}"
        start=$(date +%s)
        "$FOURPL" sweep "$exp" --out "$out" --workers "$WORKERS" --overwrite
        echo "== ${name}: report into ${dest} ($(( $(date +%s) - start )) s of sweeping)"
    fi
    rm -rf "$dest"
    "$FOURPL" report "$out" --out "$dest"
    hash=$(sha256sum "${dest}/point_summary.csv" | cut -d' ' -f1)
    echo "== ${name}: point_summary sha256 ${hash}"
    if [ -f "$notes" ]; then
        want=$(head -n 1 "$notes" | sed -n 's/.*point_summary sha256: *\([0-9a-f]*\).*/\1/p')
        block=$(mktemp)
        if [ "$want" != "$hash" ]; then
            echo "== ${name}: WARNING the findings in ${notes} were written for other figures; check and update them"
            {
                echo "> **Warning:** the findings below were written for an earlier run of this experiment"
                echo "> (its figures have changed since); check them against the tables before relying on them."
                echo
            } > "$block"
        fi
        tail -n +2 "$notes" >> "$block"
        echo >> "$block"
        # insert before the first "## " heading (after the title and the description)
        awk -v f="$block" 'BEGIN { done = 0 }
            !done && /^## / { while ((getline line < f) > 0) print line; done = 1 }
            { print }' "${dest}/report.md" > "${dest}/report.md.tmp"
        mv "${dest}/report.md.tmp" "${dest}/report.md"
        rm -f "$block"
    fi
done
