"""Speed of the browser app: stepping one day and redrawing, for the baseline scenario.

The app's page (viz/app.py) is rendered with ``solara.render`` (the server side of a browser
session, without the network), and its Step button is clicked: each click runs one
``model.step()`` and redraws every component on the open tab (map, plots, tables) into the
widgets a browser would receive. Reported: the median (and 90th percentile) time of a click per
tab, early in the year and after a warm-up of --warmup days (longer series), plus what the
pieces cost on their own. The target is a median under one second on the Overview tab.

    .venv/bin/python benchmarks/bench_viz.py                  # 15 clicks per tab, 120-day warm-up
    .venv/bin/python benchmarks/bench_viz.py --clicks 30 --json results/bench_viz.json

The machine's load average is printed with the results: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def _stats(xs: list[float]) -> dict:
    return {"median_ms": round(1000 * statistics.median(xs), 1), "p90_ms": round(1000 * _quantile(xs, 0.9), 1),
            "n": len(xs)}


def bench(clicks: int, warmup: int, scenario: str, seed: int) -> dict:
    import ipyvuetify as v
    import solara

    from viz import app, charts
    from viz.components.agent_inspector import agent_chart_png
    from viz.components.network_map import map_png
    from viz.state import AppModel, default_settings, series

    warnings.filterwarnings("ignore")
    out: dict = {"scenario": scenario, "seed": seed, "clicks": clicks, "warmup_days": warmup,
                 "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in os.getloadavg()]}

    # the pieces on their own, on a model mid-run
    m = AppModel(**default_settings(scenario, seed))
    t_step = []
    for _ in range(max(warmup, clicks)):
        t0 = time.perf_counter()
        m.step()
        t_step.append(time.perf_counter() - t0)
    pieces = {"model.step": _stats(t_step[-clicks:])}
    map_png(m)  # the map's static layers are drawn once per world
    for name, fn in [("map", lambda: map_png(m)),
                     *[(f"chart:{c.key}", lambda c=c: charts.chart_png(c.key, series(m))) for c in charts.CHARTS],
                     ("agent chart", lambda: agent_chart_png(m, m.merchants[0]))]:
        ts = []
        for _ in range(max(3, clicks // 3)):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        pieces[name] = _stats(ts)
    out["pieces"] = pieces

    # the page: click Step, per tab
    results = {}
    for phase, days in (("early", 0), ("warm", warmup)):
        model = solara.Reactive(AppModel(**default_settings(scenario, seed)))
        for _ in range(days):  # warm up: advance the model itself, no redraws
            model.value.step()
        with contextlib.redirect_stdout(io.StringIO()):  # solara prints the app bar outside a server
            box, rc = solara.render(solara.AppLayout(children=[app.Page(model=model)]), handle_error=False)
        try:
            step = rc.find(v.Btn, children=["Step"]).widget
            tabs = rc.find(v.Tabs).widget
            for i, tab in enumerate(app.TABS):
                tabs.v_model = i
                step.click()  # the tab's first draw (caches fill)
                ts = []
                for _ in range(clicks):
                    t0 = time.perf_counter()
                    step.click()
                    ts.append(time.perf_counter() - t0)
                results[f"{phase}:{tab}"] = {**_stats(ts), "day_after": model.value.steps}
        finally:
            rc.close()
    out["step_and_redraw"] = results
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def report(r: dict) -> str:
    lines = [f"viz benchmark: {r['scenario']} (seed {r['seed']}), {r['clicks']} clicks per tab, "
             f"{r['cpus']} CPUs, load average {r['load_before']} -> {r['load_after']}", "",
             "step + redraw (one click of Step, server side):",
             f"  {'tab':<28}{'median':>10}{'p90':>10}   day"]
    for k, s in r["step_and_redraw"].items():
        lines.append(f"  {k:<28}{s['median_ms']:>8.0f}ms{s['p90_ms']:>8.0f}ms   {s['day_after']}")
    lines += ["", "pieces (median of repeated draws on the warmed-up model):"]
    for k, s in r["pieces"].items():
        lines.append(f"  {k:<28}{s['median_ms']:>8.1f}ms")
    head = r["step_and_redraw"].get("warm:Overview") or next(iter(r["step_and_redraw"].values()))
    lines += ["", f"headline: median step + redraw on the Overview tab after {r['warmup_days']} days: "
              f"{head['median_ms']:.0f} ms ({'under' if head['median_ms'] < 1000 else 'OVER'} the 1 s target)"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clicks", type=int, default=15, help="timed clicks of Step per tab and phase")
    p.add_argument("--warmup", type=int, default=120, help="days simulated before the 'warm' phase")
    p.add_argument("--scenario", default="baseline")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = p.parse_args(argv)
    r = bench(a.clicks, a.warmup, a.scenario, a.seed)
    print(report(r))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
