"""Sweep speed: runs per minute with 1 and 2 workers, and the sweep's overhead per run.

A short sweep (default: 8 runs of 30 days of a small market: 5 exporters, 2 importers) is run
with each worker count, into a fresh folder each time, as `fourpl sweep` does. Reported per
worker count, as medians over --repeats sweeps:

- runs per minute (runs / sweep wall time, including starting the workers);
- the run itself: median wall time of one run, measured inside the worker (build the model,
  simulate, summarise);
- the sweep's overhead per run: (sweep wall time x workers - the runs' own time) / runs, i.e. the
  worker time not spent in runs: starting processes, shipping tasks and results, writing the
  Parquet files and the log, waiting for the last runs;
- writing one run's files (its row and daily series), timed directly.

    .venv/bin/python benchmarks/bench_sweep.py
    .venv/bin/python benchmarks/bench_sweep.py --runs 16 --days 60 --workers 1 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def experiment_text(runs: int, days: int) -> str:
    return f"""
name = "bench"
days = {days}
replications = {runs}
seed = 2024
[overrides]
"merchants.exporters" = 5
"merchants.importers" = 2
[outputs]
daily = true
"""


def one_sweep(workers: int, runs: int, days: int) -> dict:
    from experiments.designs import load_experiment, plan_runs
    from experiments.sweep import RunTask, execute_run, record_outcome, run_sweep
    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "bench.toml"
        exp.write_text(experiment_text(runs, days))
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        result = run_sweep(exp, out, workers=workers, progress=False)
        wall = time.perf_counter() - t0
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        run_s = [e["wall_seconds"] for e in log]
        assert result.ok == runs, f"{result.failed} runs failed: see {out / 'log.jsonl'}"
        # writing one run's files, timed directly (outside the sweep)
        plan = plan_runs(load_experiment(exp), exp.parent)
        r = plan.runs[0]
        outcome = execute_run(RunTask(r.run_id, r.scenario, plan.scenario_data[r.scenario],
                                      plan.overrides_of(r), plan.days[r.scenario], r.seed))
        target = Path(tmp) / "write-test"
        target.mkdir()
        w0 = time.perf_counter()
        record_outcome(target, plan, r, outcome)
        write_s = time.perf_counter() - w0
    return {"workers": workers, "wall_s": wall, "runs_per_min": runs / wall * 60,
            "run_s_median": statistics.median(run_s), "overhead_per_run_s": (wall * workers - sum(run_s)) / runs,
            "write_s": write_s}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the medians here")
    args = ap.parse_args()
    print(f"sweep benchmark: {args.runs} runs of {args.days} days (5 exporters, 2 importers), "
          f"medians of {args.repeats} sweeps per worker count")
    print(f"{'workers':>7} {'sweep s':>8} {'runs/min':>9} {'run s':>7} {'overhead/run s':>15} "
          f"{'overhead/run':>13} {'write s':>8}")
    rows = []
    for w in args.workers:
        reps = [one_sweep(w, args.runs, args.days) for _ in range(args.repeats)]
        med = {k: statistics.median(r[k] for r in reps) for k in reps[0] if k != "workers"}
        med["workers"] = w
        rows.append(med)
        print(f"{w:>7} {med['wall_s']:>8.2f} {med['runs_per_min']:>9.1f} {med['run_s_median']:>7.2f} "
              f"{med['overhead_per_run_s']:>15.3f} {med['overhead_per_run_s'] / med['run_s_median']:>12.0%} "
              f"{med['write_s']:>8.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
