"""Sweep speed: runs per minute on the process pool and on a local Dask cluster, per worker count.

A short sweep (default: 8 runs of 30 days of a small market: 5 exporters, 2 importers) is run
with each engine and worker count, into a fresh folder each time, through
``run_sweep(..., engine=...)`` as ``fourpl sweep`` does:

- ``process``: the local process pool of that many workers (1 worker: the runs go in this
  process, as ``fourpl sweep --workers 1`` does); the pool starts its processes inside the
  sweep, so its sweep time includes their start-up;
- ``dask``: a local Dask cluster of that many worker processes, one thread each (the cluster
  ``fourpl sweep --engine dask`` starts when given no ``--scheduler``, made by the same
  ``experiments.sweep._dask_client``), started before the sweep, which then connects to its
  scheduler as it would to a remote one (``--scheduler ADDRESS``). The cluster's start-up and
  shut-down are timed separately, so that what a one-off sweep pays for them stays visible.

Reported per engine and worker count, as medians over --repeats sweeps (the engines alternate
within each repeat, in turn first, so drifts in the machine's speed hit both alike):

- start s: the Dask cluster's start-up (its scheduler and worker processes up and connected);
- sweep s and runs per minute (runs / sweep wall time, from reading the experiment to the last
  file written, the cluster already up); runs/min +start counts the cluster's start-up too;
- the run itself: median wall time of one run, measured inside the worker (build the model,
  simulate, summarise);
- the sweep's overhead per run: (sweep wall time x workers - the runs' own time) / runs, i.e. the
  worker time not spent in runs: starting pool processes, shipping tasks and results, writing
  the Parquet files and the log, waiting for the last runs;
- writing one run's files (its row and daily series), timed directly;
- dask/pool: Dask's runs per minute over the pool's at the same worker count (without, then
  with the cluster's start-up).

The project promises the same bytes whatever the engine and worker count: the first repeat's
Parquet files (design, runs, daily) of every engine and worker count are compared byte for byte,
and the benchmark stops with an AssertionError if any differs.

    .venv/bin/python benchmarks/bench_sweep.py
    .venv/bin/python benchmarks/bench_sweep.py --runs 16 --days 60 --workers 1 2 --repeats 3
    .venv/bin/python benchmarks/bench_sweep.py --engines dask --workers 2 4
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path

ENGINE_NAMES = {"process": "pool", "dask": "dask"}


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


def parquet_digests(out: Path) -> dict[str, str]:
    """Every Parquet file of a sweep folder: its path inside the folder -> SHA-256 of its bytes."""
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*.parquet"))}


@contextlib.contextmanager
def local_cluster(workers: int):
    """A local Dask cluster of ``workers`` processes (one thread each), as ``fourpl sweep
    --engine dask`` starts it; yields (scheduler address, start-up seconds, {"stop_s": ...}),
    the shut-down time filled in on leaving."""
    from experiments.sweep import _dask_client
    timing = {"stop_s": float("nan")}
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(_dask_client(workers, None))
        client.wait_for_workers(workers)
        start_s = time.perf_counter() - t0
        try:
            yield client.scheduler.address, start_s, timing
        finally:
            t1 = time.perf_counter()
            stack.close()
            timing["stop_s"] = time.perf_counter() - t1


def one_sweep(engine: str, workers: int, runs: int, days: int, digests: bool = False) -> dict:
    """One sweep of ``runs`` runs on ``engine`` with ``workers`` workers, measured."""
    from experiments.designs import load_experiment, plan_runs
    from experiments.sweep import RunTask, execute_run, record_outcome, run_sweep
    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "bench.toml"
        exp.write_text(experiment_text(runs, days))
        out = Path(tmp) / "out"
        with contextlib.ExitStack() as stack:
            scheduler, start_s, timing = None, 0.0, {"stop_s": 0.0}
            if engine == "dask":
                scheduler, start_s, timing = stack.enter_context(local_cluster(workers))
            t0 = time.perf_counter()
            result = run_sweep(exp, out, workers=workers, engine=engine, scheduler=scheduler, progress=False)
            wall = time.perf_counter() - t0
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        run_s = [e["wall_seconds"] for e in log]
        assert result.ok == runs, f"{result.failed} runs failed: see {out / 'log.jsonl'}"
        files = parquet_digests(out) if digests else None
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
    return {"engine": engine, "workers": workers, "start_s": start_s, "stop_s": timing["stop_s"],
            "wall_s": wall, "runs_per_min": runs / wall * 60,
            "runs_per_min_with_start": runs / (start_s + wall) * 60,
            "run_s_median": statistics.median(run_s), "overhead_per_run_s": (wall * workers - sum(run_s)) / runs,
            "write_s": write_s, "files": files}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--engines", nargs="+", choices=list(ENGINE_NAMES), default=list(ENGINE_NAMES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the medians here")
    args = ap.parse_args()
    engines = list(dict.fromkeys(args.engines))
    print(f"sweep benchmark: {args.runs} runs of {args.days} days (5 exporters, 2 importers), "
          f"medians of {args.repeats} sweeps per engine and worker count; pool = process pool "
          f"(1 worker: in this process), dask = local Dask cluster (processes, 1 thread each)")
    print(f"{'engine':>6} {'workers':>7} {'start s':>7} {'sweep s':>8} {'runs/min':>9} {'+start':>7} "
          f"{'run s':>7} {'overhead/run s':>15} {'overhead/run':>13} {'write s':>8} {'dask/pool':>9} {'+start':>7}")
    rows = []
    reference = None            # the first repeat's Parquet files, against which every other is checked
    checked = 0
    for w in args.workers:
        reps: dict[str, list[dict]] = {e: [] for e in engines}
        for i in range(args.repeats):
            for engine in (engines if i % 2 == 0 else engines[::-1]):
                rep = one_sweep(engine, w, args.runs, args.days, digests=i == 0)
                if i == 0:
                    reference = reference or rep["files"]
                    assert rep["files"] == reference, (
                        f"{engine} with {w} workers wrote different Parquet files: "
                        f"{sorted(k for k in reference.keys() | rep['files'].keys() if reference.get(k) != rep['files'].get(k))}")
                    checked += 1
                reps[engine].append(rep)
        meds = {}
        for engine in engines:
            numeric = [k for k, v in reps[engine][0].items() if isinstance(v, float)]
            med = {k: statistics.median(r[k] for r in reps[engine]) for k in numeric}
            med.update(engine=engine, workers=w)
            meds[engine] = med
            rows.append(med)
        for engine in engines:
            med = meds[engine]
            ratio = ratio_start = ""
            if engine == "dask" and "process" in meds:
                ratio = f"{med['runs_per_min'] / meds['process']['runs_per_min']:.2f}"
                ratio_start = f"{med['runs_per_min_with_start'] / meds['process']['runs_per_min']:.2f}"
                med["dask_over_pool"] = float(ratio)
                med["dask_over_pool_with_start"] = float(ratio_start)
            start = f"{med['start_s']:.2f}" if engine == "dask" else "-"
            with_start = f"{med['runs_per_min_with_start']:.1f}" if engine == "dask" else "-"
            print(f"{ENGINE_NAMES[engine]:>6} {w:>7} {start:>7} {med['wall_s']:>8.2f} {med['runs_per_min']:>9.1f} "
                  f"{with_start:>7} {med['run_s_median']:>7.2f} {med['overhead_per_run_s']:>15.3f} "
                  f"{med['overhead_per_run_s'] / med['run_s_median']:>12.0%} {med['write_s']:>8.3f} "
                  f"{ratio:>9} {ratio_start:>7}")
    if "dask" in engines:
        stops = [r["stop_s"] for r in rows if r["engine"] == "dask"]
        print(f"dask cluster shut-down (not in any column): median {statistics.median(stops):.2f} s "
              f"({', '.join(f'{s:.2f}' for s in stops)} s by worker count)")
    print(f"outputs: the {len(reference)} Parquet files of the first repeat are byte-identical across "
          f"{checked} sweeps ({', '.join(ENGINE_NAMES[e] for e in engines)}; workers "
          f"{', '.join(map(str, args.workers))})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
