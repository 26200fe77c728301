"""Engine speed and memory: the baseline year and the 10x `large` scenario, end to end.

Each run happens in a fresh Python process (so peak memory is its own) and does what
`fourpl run` does: build the model, simulate, write every result file. Reported: wall time,
parcels simulated per second, peak resident memory, and memory against parcels created and
parcels in flight along the run (memory should follow parcels in flight, not parcels ever
created). Figures are medians over --repeats runs; these machines are noisy.

    .venv/bin/python benchmarks/bench_engine.py                 # baseline, large and small, 3 repeats
    .venv/bin/python benchmarks/bench_engine.py --cases large --large-days 365 --repeats 1
    .venv/bin/python benchmarks/bench_engine.py --cases market-1pct --repeats 1   # ~60 million parcels

Cases: ``baseline`` and ``large`` (built-in scenarios), ``small`` (the sweep benchmark's small
market: the baseline with 5 exporters and 2 importers, 180 days by default; what calibration
and sweeps run by the hundred, so its model time, simulating without building or writing, is
reported too) and ``market-1pct`` (``benchmarks/scenarios/market-1pct.toml``, a 1% sample of
the China-to-US-and-EU market).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


# benchmark scenarios that are not built in (too big for the test suite, which runs every built-in one)
CASE_FILES = {"market-1pct": Path(__file__).resolve().parent / "scenarios" / "market-1pct.toml"}
# cases that are a built-in scenario with overrides
CASE_OVERRIDES = {"small": ("baseline", {"merchants.exporters": 5, "merchants.importers": 2})}


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def peak_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(case: str, days: int, seed: int) -> dict:
    """One run, measured from the inside (called in a fresh process)."""
    from experiments.run import write_results
    from market import Marketplace
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        # as `fourpl run` does: parcels and the ledger's journal written as the run goes
        scenario, overrides = CASE_OVERRIDES.get(case, (CASE_FILES.get(case, case), {}))
        model = Marketplace(scenario, rng=seed, parcels_path=Path(tmp) / "parcels.parquet",
                            ledger_path=Path(tmp) / "ledger.parquet", **overrides)
        t_init = time.perf_counter() - t0
        trace = []
        every = max(days // 6, 1)
        for d in range(days):
            model.step()
            if (d + 1) % every == 0:
                P = model.parcels
                live = int(((P["status"] != 3) & (P["status"] != 4)).sum())
                trace.append({"day": d + 1, "created": int(model.metrics.created.sum()),
                              "in_flight": live, "rss_mb": round(rss_mb(), 1)})
        t_sim = time.perf_counter() - t0
        summary = model.finish()
        write_results(model, summary, Path(tmp), seed, days)
        wall = time.perf_counter() - t0
    return {"case": case, "days": days, "wall_s": wall, "init_s": t_init, "simulate_s": t_sim,
            "model_s": t_sim - t_init,
            "parcels": summary["parcels_created"], "parcels_per_s": summary["parcels_created"] / wall,
            "peak_rss_mb": peak_mb(), "trace": trace}


def run_child(case: str, days: int, seed: int) -> dict:
    code = ("import json, sys; sys.path.insert(0, %r); from bench_engine import child; "
            "print(json.dumps(child(%r, %d, %d)))" % (str(Path(__file__).parent), case, days, seed))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="baseline,large,small")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-days", type=int, default=365)
    ap.add_argument("--large-days", type=int, default=120)
    ap.add_argument("--market-days", type=int, default=365, help="days of the market-1pct case")
    ap.add_argument("--small-days", type=int, default=180, help="days of the small case")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)
    results = {}
    for case in args.cases.split(","):
        days = {"baseline": args.baseline_days, "market-1pct": args.market_days,
                "small": args.small_days}.get(case, args.large_days)
        runs = [run_child(case, days, args.seed) for _ in range(args.repeats)]
        results[case] = runs
        walls = [r["wall_s"] for r in runs]
        rates = [r["parcels_per_s"] for r in runs]
        peaks = [r["peak_rss_mb"] for r in runs]
        print(f"\n{case}: {days} days, {runs[0]['parcels']:,} parcels, {args.repeats} runs")
        print(f"  wall time        median {statistics.median(walls):7.1f} s   (min {min(walls):.1f}, max {max(walls):.1f})")
        print(f"  parcels / second median {statistics.median(rates):9,.0f}   (min {min(rates):,.0f}, max {max(rates):,.0f})")
        models = [r["model_s"] for r in runs]
        print(f"  model time       median {statistics.median(models):7.2f} s   (simulating only; min {min(models):.2f}, max {max(models):.2f})")
        print(f"  peak memory      median {statistics.median(peaks):7.0f} MB")
        print("  along the run (first repeat):  day   created   in flight   RSS MB")
        for t in runs[0]["trace"]:
            print(f"                                {t['day']:4d} {t['created']:10,} {t['in_flight']:10,} {t['rss_mb']:8.0f}")
    if "baseline" in results and "large" in results:
        b = statistics.median(r["wall_s"] / r["parcels"] for r in results["baseline"])
        lg = statistics.median(r["wall_s"] / r["parcels"] for r in results["large"])
        print(f"\ncost per parcel, large / baseline: {lg / b:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
