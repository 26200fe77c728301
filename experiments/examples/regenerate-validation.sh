#!/usr/bin/env bash
# Regenerate experiments/examples/validation/: the calibrated baseline (2024), the US de minimis end
# (2025) and the EU EUR 3 duty (2026), a full year each, three paired replications, against what
# was published about what happened (market/data/validation-2025.toml).
#
#   bash experiments/examples/regenerate-validation.sh             # about 10 minutes on 2 cores
#   REPORT_ONLY=1 bash experiments/examples/regenerate-validation.sh
#
# Hand-written findings: experiments/examples/notes/validation.md (first line
# "<!-- validation sha256: HASH -->", the hash of the validation.csv they were written for) are
# inserted into the report; with other figures they are marked as needing a check.
set -euo pipefail
cd "$(dirname "$0")/../.."
FOURPL=${FOURPL:-$( [ -x .venv/bin/fourpl ] && echo .venv/bin/fourpl || echo fourpl )}
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
WORKERS=${WORKERS:-$(nproc 2>/dev/null || echo 2)}
out=results/sweeps/validation-2025
if [ "${REPORT_ONLY:-0}" != "1" ]; then
    "$FOURPL" sweep experiments/calibrations/validation-2025.toml --out "$out" --workers "$WORKERS" --overwrite
fi
"$PYTHON" -m experiments.calibration.validation "$out" experiments/examples/validation \
    --notes experiments/examples/notes/validation.md
