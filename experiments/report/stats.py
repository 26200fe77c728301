"""The statistics of a report: means with confidence intervals over replications, per design
point and pooled, and Sobol or Morris sensitivity indices (SALib)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from experiments.designs import ExperimentError

HEADLINE = ("parcels_created", "on_time_rate", "mean_lead_time_days", "p95_lead_time_days",
            "mean_logistics_cost", "mean_duty", "mean_landed_cost", "fourpl_share", "stockouts")
SENSITIVITY_OUTPUTS = ("on_time_rate", "mean_lead_time_days", "mean_landed_cost", "fourpl_share",
                       "parcels_created")
ID_COLUMNS = {"run_id", "point", "replication", "seed", "days"}
UNITS = {"on_time_rate": "share", "fourpl_share": "share", "mean_lead_time_days": "days",
         "p95_lead_time_days": "days", "mean_logistics_cost": "USD/parcel", "mean_duty": "USD/parcel",
         "mean_landed_cost": "USD/parcel", "parcels_created": "parcels", "stockouts": "orders"}


def clip(values, low, high, share: bool = False):
    """Keep an interval within what the figure can be: >= 0 if it never is negative, <= 1 for shares."""
    v = pd.to_numeric(pd.Series(np.asarray(values, dtype=object).ravel()), errors="coerce").dropna()
    if len(v) and (v >= 0).all():
        low = np.maximum(low, 0.0)
    if share:
        high = np.minimum(high, 1.0)
    return low, high


def mean_ci(x, confidence: float = 0.95, share: bool = False) -> tuple[int, float, float, float, float]:
    """(n, mean, sd, low, high): the t confidence interval of the mean of the non-missing x.

    The interval is clipped to what the figure can take: not below 0 for a figure that is never
    negative, not above 1 for a share or rate.
    """
    from scipy import stats
    a = pd.to_numeric(pd.Series(x), errors="coerce").dropna().to_numpy(dtype=np.float64)
    n = a.size
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    mean = float(a.mean())
    if n == 1:
        return 1, mean, math.nan, math.nan, math.nan
    sd = float(a.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    lo, hi = clip(a, mean - half, mean + half, share)
    return n, mean, sd, float(lo), float(hi)


def is_share(figure: str) -> bool:
    """Figures that are shares or rates (between 0 and 1)."""
    return figure.rsplit(".", 1)[-1].endswith(("_rate", "_share")) or figure.endswith("share_of_legs")


def figure_columns(runs: pd.DataFrame) -> list[str]:
    """The numeric summary figures of a run table (not ids, seeds or parameters)."""
    out = []
    for c in runs.columns:
        if c in ID_COLUMNS or c.startswith(("param.", "unit.")):
            continue
        if pd.api.types.is_numeric_dtype(runs[c]) and not pd.api.types.is_bool_dtype(runs[c]):
            out.append(c)
    return out


def point_summary(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Long table: scenario, point, label, figure, n, mean, sd, ci_low, ci_high (successful runs)."""
    ok = runs[runs["status"] == "ok"]
    figs = figure_columns(ok)
    rows = []
    for (scn, point), g in ok.groupby(["scenario", "point"], sort=True):
        label = g["label"].iloc[0]
        for f in figs:
            n, m, sd, lo, hi = mean_ci(g[f], confidence, is_share(f))
            if n:
                rows.append((scn, point, label, f, n, m, sd, lo, hi))
    return pd.DataFrame(rows, columns=["scenario", "point", "label", "figure", "n", "mean", "sd", "ci_low", "ci_high"])


def pooled_stats(groups, confidence: float = 0.95) -> pd.DataFrame:
    """:func:`point_summary`'s table for groups of runs (each group a pseudo design point)."""
    rows = []
    for i, (name, g) in enumerate(groups):
        for f in figure_columns(g):
            n, m, sd, lo, hi = mean_ci(g[f], confidence, is_share(f))
            if n:
                rows.append(("", i, name, f, n, m, sd, lo, hi))
    return pd.DataFrame(rows, columns=["scenario", "point", "label", "figure", "n", "mean", "sd", "ci_low", "ci_high"])


def sensitivity(runs: pd.DataFrame, design: pd.DataFrame, experiment: dict,
                outputs=SENSITIVITY_OUTPUTS) -> tuple[pd.DataFrame, list[str]]:
    """Sobol or Morris indices per scenario and output, from the means over replications.

    Returns (table, notes); notes say what could not be computed and why.
    """
    d = experiment["experiment"]["design"]
    kind = d["kind"]
    if kind not in ("sobol", "morris"):
        return pd.DataFrame(), []
    try:
        from SALib.analyze import morris as morris_analyze
        from SALib.analyze import sobol as sobol_analyze
    except ImportError:
        raise ExperimentError("sensitivity indices need SALib: pip install 'fourpl-market[sensitivity]'") from None
    names = [p["key"] for p in d["parameters"]]
    problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
    seed = int(experiment["experiment"]["seed"]) % (2 ** 32)
    rows, notes = [], []
    for scn, plan in design.groupby("scenario", sort=True):
        points = plan.drop_duplicates("point").sort_values("point")
        X = points[[f"unit.{k}" for k in names]].to_numpy(dtype=np.float64)
        got = runs[(runs["scenario"] == scn) & (runs["status"] == "ok")]
        for out in outputs:
            if out not in got:
                continue
            y = got.groupby("point")[out].mean().reindex(points["point"]).to_numpy(dtype=np.float64)
            if np.isnan(y).any():
                notes.append(f"{scn} / {out}: {int(np.isnan(y).sum())} of {y.size} design points have no "
                             "successful run yet, so no indices")
                continue
            if np.allclose(y, y[0]):
                notes.append(f"{scn} / {out}: the same at every design point, so no indices")
                continue
            if kind == "sobol":
                res = sobol_analyze.analyze(problem, y, calc_second_order=d.get("second_order", False),
                                            print_to_console=False, seed=seed)
                for i, k in enumerate(names):
                    rows.append({"scenario": scn, "output": out, "parameter": k, "method": "sobol",
                                 "S1": res["S1"][i], "S1_conf": res["S1_conf"][i],
                                 "ST": res["ST"][i], "ST_conf": res["ST_conf"][i]})
            else:
                res = morris_analyze.analyze(problem, X, y, num_levels=d.get("morris_levels", 4),
                                             print_to_console=False, seed=seed)
                for i, k in enumerate(names):
                    rows.append({"scenario": scn, "output": out, "parameter": k, "method": "morris",
                                 "mu": res["mu"][i], "mu_star": res["mu_star"][i],
                                 "mu_star_conf": res["mu_star_conf"][i], "sigma": res["sigma"][i]})
    return pd.DataFrame(rows), notes
