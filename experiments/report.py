"""``fourpl report DIR``: what a sweep found, with its uncertainty, in tables, plots and one page.

From a sweep folder (see :mod:`experiments.sweep`) it writes into ``DIR/report`` (or ``--out``):

``point_summary.csv``
    per scenario and design point, for every numeric summary figure: runs, mean, standard
    deviation and the 95% confidence interval of the mean over replications (Student t).
``sensitivity.csv``
    Sobol (S1, ST and their confidence intervals) or Morris (mu*, sigma) indices of the
    headline figures, when the design was Sobol or Morris (SALib).
``plots/*.png``
    design points compared, channels compared, markets compared (with ``outputs.by_market``),
    daily series with 95% bands over replications, channel shares over time, prices and
    markups over time, and the sensitivity indices.
``report.md``
    one Markdown page linking all of it.
``fourpl-manifest.json``
    every file of the report with its sha256.

The report is written into a hidden staging folder and swapped into place when complete. The
report folder is replaced only if it is empty or an earlier ``fourpl report`` wrote it and it
holds nothing else, unchanged (no symlinks, no files added or edited): a linked ``plots/`` or
``report.md`` stops it with one line instead of writing through the link. See
:mod:`experiments.outputs`.
"""

from __future__ import annotations

import contextvars
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.designs import ExperimentError
from experiments.outputs import OutputFolder, writing
from experiments.sweep import SweepError, read_daily, read_experiment, read_runs

_WHERE: contextvars.ContextVar[str | None] = contextvars.ContextVar("report_folder", default=None)

HEADLINE = ("parcels_created", "on_time_rate", "mean_lead_time_days", "p95_lead_time_days",
            "mean_logistics_cost", "mean_duty", "mean_landed_cost", "fourpl_share", "stockouts")
SENSITIVITY_OUTPUTS = ("on_time_rate", "mean_lead_time_days", "mean_landed_cost", "fourpl_share",
                       "parcels_created")
DAILY_SERIES = (("on_time_rate", "on-time rate", "share"), ("mean_lead_time_days", "mean delivery time", "days"),
                ("mean_logistics_cost", "logistics cost per parcel", "USD"), ("fourpl_share", "4PL share of new parcels", "share"),
                ("parcels_created", "parcels created", "parcels/day"), ("spot_share_of_legs", "legs bought spot", "share"))
ID_COLUMNS = {"run_id", "point", "replication", "seed", "days"}
UNITS = {"on_time_rate": "share", "fourpl_share": "share", "mean_lead_time_days": "days",
         "p95_lead_time_days": "days", "mean_logistics_cost": "USD/parcel", "mean_duty": "USD/parcel",
         "mean_landed_cost": "USD/parcel", "parcels_created": "parcels", "stockouts": "orders"}
MAX_LINES = 8          # design points drawn as separate lines; more are pooled per scenario
SMOOTH_DAYS = 7


# ------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------
def _clip(values, low, high, share: bool = False):
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
    lo, hi = _clip(a, mean - half, mean + half, share)
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


# ------------------------------------------------------------------------------------------
# Plots
# ------------------------------------------------------------------------------------------
def _plt():
    try:
        import matplotlib
    except ImportError:
        raise ExperimentError("plots need matplotlib: pip install 'fourpl-market[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 10,
                         "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 8})
    return plt


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    try:
        with writing(f"{path.parent.name}/{path.name}", _WHERE.get() or path.parent.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def _groups(runs: pd.DataFrame, params: list[str] | None = None) -> list[tuple[str, pd.DataFrame]]:
    """The lines to draw: each design point when there are few; else the runs pooled by the
    levels of the first design parameter that has few; else each scenario."""
    ok = runs[runs["status"] == "ok"]
    keys = ok[["scenario", "point", "label"]].drop_duplicates().sort_values(["scenario", "point"])
    many_scenarios = keys["scenario"].nunique() > 1
    if len(keys) <= MAX_LINES:
        out = []
        for _, k in keys.iterrows():
            name = f"{k['scenario']}: {k['label']}" if many_scenarios else str(k["label"])
            out.append((name, ok[(ok["scenario"] == k["scenario"]) & (ok["point"] == k["point"])]))
        return out
    for p in params or []:
        col = f"param.{p}"
        if col in ok and ok[col].nunique() * ok["scenario"].nunique() <= MAX_LINES:
            short = p.rsplit(".", 1)[-1]
            out = []
            for (scn, v), g in ok.groupby(["scenario", col], sort=True):
                pre = f"{scn}: " if many_scenarios else ""
                out.append((f"{pre}{short}={v} (pooled over {g['point'].nunique()} points)", g))
            return out
    return [(f"{s} (all {g['point'].nunique()} points)", g) for s, g in ok.groupby("scenario", sort=True)]


def pooled_stats(groups, confidence: float = 0.95) -> pd.DataFrame:
    """:func:`point_summary`'s table for groups of runs (each group a pseudo design point)."""
    rows = []
    for i, (name, g) in enumerate(groups):
        for f in figure_columns(g):
            n, m, sd, lo, hi = mean_ci(g[f], confidence, is_share(f))
            if n:
                rows.append(("", i, name, f, n, m, sd, lo, hi))
    return pd.DataFrame(rows, columns=["scenario", "point", "label", "figure", "n", "mean", "sd", "ci_low", "ci_high"])


def plot_effects(runs: pd.DataFrame, params: list[str], figures, path: Path) -> Path | None:
    """Main effects of a grid: each figure's mean (95% CI) at each level of each parameter,
    pooled over the other parameters; with a line per level of the first parameter (their
    interaction) on the other parameters' panels."""
    plt = _plt()
    ok = runs[runs["status"] == "ok"]
    params = [p for p in params if f"param.{p}" in ok and ok[f"param.{p}"].nunique() > 1]
    figures = [f for f in figures if f in ok]
    if not params or not figures or ok.empty:
        return None
    first = f"param.{params[0]}"
    split = ok[first].nunique() <= 5 and len(params) > 1
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(figures), len(params), figsize=(3.4 * len(params), 2.4 * len(figures)),
                             squeeze=False)
    for i, f in enumerate(figures):
        for j, p in enumerate(params):
            ax = axes[i, j]
            col = f"param.{p}"
            subsets = [(None, ok)] if (j == 0 or not split) else \
                [(f"{params[0].rsplit('.', 1)[-1]}={v}", g) for v, g in ok.groupby(first, sort=True)]
            for k, (name, g) in enumerate(subsets):
                levels = sorted(g[col].dropna().unique(), key=lambda v: (str(type(v)), v))
                res = [mean_ci(g.loc[g[col] == v, f], share=is_share(f)) for v in levels]
                m = np.array([r[1] for r in res])
                lo = np.array([r[3] for r in res])
                hi = np.array([r[4] for r in res])
                x = np.arange(len(levels)) if not pd.api.types.is_numeric_dtype(g[col]) else np.array(levels, float)
                color = "black" if name is None else cmap(k % 10)
                ax.errorbar(x, m, yerr=np.nan_to_num(np.vstack([m - lo, hi - m])), marker="o", ms=3, capsize=2,
                            color=color, label=name)
                if not pd.api.types.is_numeric_dtype(g[col]):
                    ax.set_xticks(x, [str(v) for v in levels], rotation=20)
            if i == len(figures) - 1:
                ax.set_xlabel(p)
            if j == 0:
                ax.set_ylabel(f"{f}\n({UNITS[f]})" if f in UNITS else f)
    fig.tight_layout()
    rows = _legend(fig, axes, 1.0)
    fig.suptitle("Main effects: mean over all runs at each level (95% CI); colours: levels of "
                 f"{params[0]}" if split else "Main effects: mean over all runs at each level (95% CI)",
                 y=1.02 + 0.03 * rows)
    return _save(fig, path)


def plot_points(stats: pd.DataFrame, figures, path: Path, title: str) -> Path | None:
    """Design points side by side: mean and 95% CI of each figure (horizontal bars)."""
    plt = _plt()
    figures = [f for f in figures if f in set(stats["figure"])]
    if not figures:
        return None
    s = stats[stats["figure"].isin(figures)].copy()
    s["name"] = np.where(s["scenario"].nunique() > 1, s["scenario"] + ": " + s["label"], s["label"])
    names = list(dict.fromkeys(s.sort_values(["scenario", "point"])["name"]))
    if len(names) > 40:
        return None
    ncol = min(3, len(figures))
    nrow = math.ceil(len(figures) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 0.6 + 0.28 * len(names) * nrow + 0.5 * nrow),
                             squeeze=False)
    for ax, f in zip(axes.flat, figures):
        g = s[s["figure"] == f].set_index("name").reindex(names)
        y = np.arange(len(names))
        err = np.vstack([g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]])
        ax.barh(y, g["mean"], xerr=np.nan_to_num(err), color="#4C78A8", alpha=0.85, ecolor="#333", capsize=2)
        ax.set_yticks(y, names if ax in axes[:, 0] else [""] * len(names))
        ax.invert_yaxis()
        ax.set_title(f"{f} ({UNITS.get(f, '')})" if UNITS.get(f) else f)
    for ax in list(axes.flat)[len(figures):]:
        ax.set_visible(False)
    fig.suptitle(title + "  (bars: mean over replications; whiskers: 95% CI)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_scatter(runs: pd.DataFrame, params: list[str], figures, path: Path) -> Path | None:
    """Each figure against each design parameter, one dot per run (sampled designs)."""
    plt = _plt()
    ok = runs[runs["status"] == "ok"]
    figures = [f for f in figures if f in ok]
    cols = [p for p in params if f"param.{p}" in ok and pd.api.types.is_numeric_dtype(ok[f"param.{p}"])]
    if not figures or not cols or ok.empty:
        return None
    fig, axes = plt.subplots(len(figures), len(cols), figsize=(2.8 * len(cols), 2.2 * len(figures)), squeeze=False)
    for i, f in enumerate(figures):
        for j, p in enumerate(cols):
            ax = axes[i, j]
            for scn, g in ok.groupby("scenario", sort=True):
                ax.scatter(g[f"param.{p}"], g[f], s=6, alpha=0.6, label=scn)
            if i == len(figures) - 1:
                ax.set_xlabel(p)
            if j == 0:
                ax.set_ylabel(f)
    if ok["scenario"].nunique() > 1:
        axes[0, 0].legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_breakdown(stats: pd.DataFrame, prefix: str, figures, path: Path, title: str,
                   min_parcels: float = 1.0) -> Path | None:
    """Grouped bars per channel (or market): one bar per design point, with 95% CI."""
    plt = _plt()
    pat = re.compile(rf"^{re.escape(prefix)}\.([^.]+)\.(.+)$")
    s = stats.copy()
    m = s["figure"].str.extract(pat)
    s["group"], s["fig"] = m[0], m[1]
    s = s.dropna(subset=["group"])
    if s.empty:
        return None
    s["name"] = np.where(s["scenario"].nunique() > 1, s["scenario"] + ": " + s["label"], s["label"])
    names = list(dict.fromkeys(s.sort_values(["scenario", "point"])["name"]))
    if len(names) > MAX_LINES:
        return None
    volume = s[s["fig"] == "parcels_created"].groupby("group")["mean"].max()
    groups = [g for g in sorted(s["group"].unique()) if volume.get(g, 0) >= min_parcels]
    figures = [f for f in figures if f in set(s["fig"])]
    if not groups or not figures:
        return None
    fig, axes = plt.subplots(len(figures), 1, figsize=(max(6.0, 1.1 * len(groups) * max(1, len(names)) ** 0.5 + 2),
                                                      2.4 * len(figures)), squeeze=False)
    width = 0.8 / len(names)
    cmap = plt.get_cmap("tab10")
    for ax, f in zip(axes[:, 0], figures):
        for k, name in enumerate(names):
            g = s[(s["fig"] == f) & (s["name"] == name)].set_index("group").reindex(groups)
            x = np.arange(len(groups)) + (k - (len(names) - 1) / 2) * width
            err = np.vstack([g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]])
            ax.bar(x, g["mean"], width, yerr=np.nan_to_num(err), label=name, color=cmap(k % 10), capsize=2,
                   ecolor="#333")
        ax.set_xticks(np.arange(len(groups)), groups)
        ax.set_ylabel(f"{f}\n({UNITS.get(f, '')})" if UNITS.get(f) else f)
    fig.tight_layout()
    rows = _legend(fig, axes, 1.0)
    fig.suptitle(title + " (mean over replications, whiskers: 95% CI)", fontsize=10,
                 y=1.0 + 0.06 * rows / len(figures) + 0.04)
    return _save(fig, path)


def _smooth_by_run(daily: pd.DataFrame, col: str) -> pd.Series:
    return daily.groupby("run_id")[col].transform(lambda s: s.rolling(SMOOTH_DAYS, min_periods=1).mean())


def _band(ax, daily: pd.DataFrame, series: pd.Series, label: str, color, style="-", share: bool = False):
    """Mean over runs per day with the 95% CI band of that mean."""
    from scipy import stats
    g = pd.DataFrame({"day": daily["day"], "v": series}).groupby("day")["v"]
    mean, sd, n = g.mean(), g.std(ddof=1), g.count()
    t = stats.t.ppf(0.975, np.maximum(n - 1, 1))
    half = np.where(n > 1, t * sd / np.sqrt(n), np.nan)
    lo, hi = _clip(series, mean.values - half, mean.values + half, share)
    ax.plot(mean.index, mean.values, style, color=color, label=label, lw=1.2)
    ax.fill_between(mean.index, lo, hi, color=color, alpha=0.2, lw=0)


def _legend(fig, axes, y: float = 1.0) -> int:
    """One legend for the whole figure, with every label drawn on any of its axes."""
    seen = {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=min(4, len(seen)), frameon=False,
                   bbox_to_anchor=(0.5, y))
    return math.ceil(len(seen) / 4)


def plot_daily(daily: pd.DataFrame, groups, path: Path) -> Path | None:
    """Key daily figures over time: a line per design point, 95% band over replications."""
    plt = _plt()
    series = [(c, t, u) for c, t, u in DAILY_SERIES if c in daily]
    if not series or daily.empty:
        return None
    ncol = 2
    nrow = math.ceil(len(series) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(11, 2.6 * nrow), squeeze=False, sharex=True)
    cmap = plt.get_cmap("tab10")
    for ax, (c, title, unit) in zip(axes.flat, series):
        for k, (name, g) in enumerate(groups):
            d = daily[daily["run_id"].isin(g["run_id"])]
            if d.empty:
                continue
            _band(ax, d, _smooth_by_run(d, c), name, cmap(k % 10), share=is_share(c))
        ax.set_title(f"{title} ({unit}), {SMOOTH_DAYS}-day mean")
    for ax in list(axes.flat)[len(series):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("day")
    fig.tight_layout()
    rows = _legend(fig, axes, 1.0)
    fig.suptitle("Daily figures: mean over replications, band = 95% CI", y=1.02 + 0.03 * rows)
    return _save(fig, path)


def plot_shares(daily: pd.DataFrame, groups, path: Path) -> Path | None:
    """Channel shares of new parcels over time (stacked), and the 4PL share, per design point."""
    plt = _plt()
    chans = [c for c in daily.columns if c.startswith("created_")]
    if not chans or daily.empty:
        return None
    n = len(groups)
    ncol = min(2, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 2.8 * nrow), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab10")
    for ax, (name, g) in zip(axes.flat, groups):
        d = daily[daily["run_id"].isin(g["run_id"])]
        if d.empty:
            continue
        sums = d.groupby("day")[chans].mean().rolling(SMOOTH_DAYS, min_periods=1).mean()
        total = sums.sum(axis=1).replace(0, np.nan)
        shares = sums.div(total, axis=0).fillna(0.0)
        ax.stackplot(shares.index, shares.T.values, labels=[c.removeprefix("created_") for c in chans],
                     colors=[cmap(i % 10) for i in range(len(chans))], alpha=0.85)
        if "fourpl_share" in d:
            f = d.groupby("day")["fourpl_share"].mean().rolling(SMOOTH_DAYS, min_periods=1).mean()
            ax.plot(f.index, f.values, color="black", lw=1.4, label="4PL share (all channels)")
        ax.set_ylim(0, 1)
        ax.set_title(name)
        ax.set_xlabel("day")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    rows = _legend(fig, axes, 1.0)
    fig.suptitle(f"Market shares of new parcels by channel ({SMOOTH_DAYS}-day mean over replications)",
                 y=1.02 + 0.05 * rows)
    return _save(fig, path)


PRICE_COLUMN = re.compile(r"^(contract|spot)_price_(?:per_kg_)?(.+)$")


def price_columns(columns) -> dict[str, dict[str, str]]:
    """mode -> {"contract": column, "spot": column} of the daily series' price columns."""
    out: dict[str, dict[str, str]] = {}
    for c in columns:
        m = PRICE_COLUMN.match(c)
        if m:
            out.setdefault(m.group(2), {})[m.group(1)] = c
    return dict(sorted(out.items()))


def plot_prices(daily: pd.DataFrame, groups, path: Path) -> Path | None:
    """Contract and spot prices by mode, integrator markups and cash, over time."""
    plt = _plt()
    modes = price_columns(daily.columns)
    markups = [c for c in daily.columns if c.startswith("markup_")]
    cash = [c for c in daily.columns if c.startswith("cash_")]
    panels = [("mode", m) for m, cols in modes.items() if daily[list(cols.values())].notna().any().any()]
    if markups:
        panels.append(("markup", None))
    if cash:
        panels.append(("cash", None))
    if not panels or daily.empty:
        return None
    ncol = 2
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(11, 2.6 * nrow), squeeze=False, sharex=True)
    cmap = plt.get_cmap("tab10")
    for ax, (kind, mode) in zip(axes.flat, panels):
        for k, (name, g) in enumerate(groups):
            d = daily[daily["run_id"].isin(g["run_id"])]
            if d.empty:
                continue
            if kind == "mode":
                for tag, style in (("contract", "-"), ("spot", "--")):
                    col = modes[mode].get(tag)
                    if col is not None and d[col].notna().any():
                        _band(ax, d, _smooth_by_run(d, col), f"{name} ({tag})", cmap(k % 10), style)
                unit = "USD/kg" if "per_kg" in next(iter(modes[mode].values())) else "USD"
                ax.set_title(f"{mode} leg price ({unit}): contract solid, spot dashed")
            else:
                cols = markups if kind == "markup" else cash
                for j, col in enumerate(cols):
                    if not d[col].notna().any():
                        continue
                    style = ["-", "--", ":", "-."][j % 4]
                    _band(ax, d, d[col] if kind == "markup" else d[col] / 1e6,
                          f"{name}: {col.split('_', 1)[1]}", cmap(k % 10), style)
                ax.set_title("integrator markups" if kind == "markup" else "integrator cash (million USD)")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("day")
    fig.tight_layout()
    rows = _legend(fig, axes, 1.0)
    fig.suptitle(f"Prices and markups over time ({SMOOTH_DAYS}-day mean, mean over replications, band = 95% CI)",
                 y=1.02 + 0.03 * rows)
    return _save(fig, path)


def plot_sensitivity(table: pd.DataFrame, path: Path) -> Path | None:
    plt = _plt()
    if table.empty:
        return None
    method = table["method"].iloc[0]
    keys = list(dict.fromkeys(zip(table["scenario"], table["output"])))
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 0.8 + 0.35 * table["parameter"].nunique()),
                             squeeze=False)
    for ax, (scn, out) in zip(axes[0], keys):
        g = table[(table["scenario"] == scn) & (table["output"] == out)]
        y = np.arange(len(g))
        if method == "sobol":
            ax.barh(y - 0.2, g["S1"], 0.4, xerr=g["S1_conf"], label="S1 (first order)", color="#4C78A8")
            ax.barh(y + 0.2, g["ST"], 0.4, xerr=g["ST_conf"], label="ST (total)", color="#F58518")
        else:
            ax.barh(y, g["mu_star"], 0.6, xerr=g["mu_star_conf"], label="mu* (mean |effect|)", color="#4C78A8")
            ax.plot(g["sigma"], y, "o", color="#F58518", label="sigma (interactions)")
        ax.set_yticks(y, [p.rsplit(".", 1)[-1] for p in g["parameter"]] if ax is axes[0, 0] else [""] * len(g))
        ax.invert_yaxis()
        ax.set_title(f"{out}" + (f"\n({scn})" if table["scenario"].nunique() > 1 else ""))
    axes[0, 0].legend(loc="lower left", bbox_to_anchor=(0, 1.15), frameon=False)
    fig.suptitle(f"{method.capitalize()} sensitivity indices", y=1.12)
    fig.tight_layout()
    return _save(fig, path)


# ------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------
def _fmt(v, figure: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if is_share(figure):
        return f"{100 * v:.1f}%"
    if abs(v) >= 1000 or (figure.startswith(("parcels_", "stockouts")) and abs(v) >= 100):
        return f"{v:,.0f}"
    if figure.startswith(("parcels_", "stockouts")):
        return f"{v:.1f}"
    return f"{v:.2f}"


def _cell(row, figure: str) -> str:
    if row is None:
        return "-"
    m = _fmt(row["mean"], figure)
    if row["n"] > 1 and not math.isnan(row["ci_low"]):
        return f"{m} ({_fmt(row['ci_low'], figure)} to {_fmt(row['ci_high'], figure)})"
    return m


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _figure_table(stats: pd.DataFrame, figures, prefix: str = "") -> str:
    idx = {(r.scenario, r.point, r.figure): r._asdict() for r in stats.itertuples(index=False)}
    points = stats[["scenario", "point", "label"]].drop_duplicates().sort_values(["scenario", "point"])
    figures = [f for f in figures if f"{prefix}{f}" in set(stats["figure"])]
    multi = points["scenario"].nunique() > 1
    header = (["scenario"] if multi else []) + ["design point", "runs"] + figures
    rows = []
    for p in points.itertuples(index=False):
        n = max((idx.get((p.scenario, p.point, f"{prefix}{f}"), {}).get("n", 0) for f in figures), default=0)
        cells = [_cell(idx.get((p.scenario, p.point, f"{prefix}{f}")), f) for f in figures]
        rows.append(([p.scenario] if multi else []) + [p.label, str(n)] + cells)
    return _md_table(header, rows)


def daily_columns(sweep_dir: Path) -> list[str]:
    """The daily-series columns the plots use (the rest is not read)."""
    import pyarrow.parquet as pq
    names: set[str] = set()
    for f in (Path(sweep_dir) / "daily").glob("scenario=*/run-*.parquet"):
        names.update(pq.read_schema(f).names)
    keep = {c for c, _, _ in DAILY_SERIES} | {"fourpl_share"}
    return sorted(c for c in names if c in keep or c.startswith(("created_", "markup_", "cash_"))
                  or PRICE_COLUMN.match(c))


@dataclass
class Report:
    folder: Path
    page: Path
    stats: pd.DataFrame
    sensitivity: pd.DataFrame
    plots: list[Path]


def _few_points(stats: pd.DataFrame, runs: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """The per-point table when there are few points, else the runs pooled as in :func:`_groups`."""
    if stats[["scenario", "point"]].drop_duplicates().shape[0] <= MAX_LINES:
        return stats
    return pooled_stats(_groups(runs, params))


def _market_section(stats: pd.DataFrame, runs: pd.DataFrame, plots_dir: Path, plots: list,
                    params: list[str]) -> list[str]:
    if not stats["figure"].str.startswith("by_market.").any():
        return []
    lines = ["## Markets", "",
             "Each market's parcels, whatever channel carried them (a warehouse channel's stock-outs ship "
             "express), with the channel mix: the share of the market's parcels on each channel. "
             "Landed cost = logistics (freight, handling, brokerage, storage and replenishment allocated "
             "to the unit, or the 4PL's price) + duty and import VAT, per delivered parcel.", ""]
    p = plot_breakdown(_few_points(stats, runs, params), "by_market",
                       ("mean_lead_time_days", "mean_landed_cost", "on_time_rate"),
                       plots_dir / "markets.png", "Markets: delivery time, landed cost and on-time rate")
    if p:
        plots.append(p)
        lines += [f"![markets]({p.relative_to(plots_dir.parent).as_posix()})", ""]
    markets = sorted({f.split(".")[1] for f in stats["figure"] if f.startswith("by_market.")})
    ok = runs[runs["status"] == "ok"]
    for mkt in markets:
        pre = f"by_market.{mkt}."
        lines += [f"### {mkt}", "", _figure_table(stats, ("parcels_created", "mean_lead_time_days",
                                                          "p95_lead_time_days", "on_time_rate",
                                                          "mean_logistics_cost", "mean_duty",
                                                          "mean_landed_cost", "fourpl_share"), pre), ""]
        # channel mix per point
        ch_cols = [c for c in ok.columns if c.startswith(f"by_market_channel.{mkt}.") and c.endswith(".parcels_created")]
        if ch_cols:
            mix_rows = []
            for (scn, point), g in ok.groupby(["scenario", "point"], sort=True):
                tot = g[ch_cols].fillna(0).sum(axis=1)
                shares = g[ch_cols].fillna(0).div(tot.replace(0, np.nan), axis=0).mean()
                parts = [f"{c.split('.')[2]} {100 * v:.0f}%" for c, v in shares.sort_values(ascending=False).items()
                         if v >= 0.005]
                mix_rows.append(([scn] if ok["scenario"].nunique() > 1 else []) + [g["label"].iloc[0], ", ".join(parts)])
            lines += [_md_table((["scenario"] if ok["scenario"].nunique() > 1 else []) + ["design point", "channel mix"],
                                mix_rows), ""]
    return lines


def build_report(sweep_dir: str | Path, out: str | Path | None = None) -> Report:
    """Analyse a sweep folder and write the report; returns what was written.

    The report folder (``out``, default ``sweep_dir/report``) is locked, built in a staging
    folder and swapped into place; an existing one is replaced only if ``fourpl report``
    wrote it and it is unchanged (:mod:`experiments.outputs`).
    """
    sweep_dir = Path(sweep_dir)
    info = read_experiment(sweep_dir)
    runs = read_runs(sweep_dir)
    if runs.empty:
        raise SweepError(f"'{sweep_dir}' has no finished runs yet")
    runs["scenario"] = runs["scenario"].astype(str)
    design = pd.read_parquet(sweep_dir / "design.parquet")
    final = Path(out) if out is not None else sweep_dir / "report"
    with OutputFolder(final, "report", replace=True) as target:
        target.prepare()
        token = _WHERE.set(str(final))
        try:
            rep = _write_report(sweep_dir, out, target.staging, info, runs, design)
        finally:
            _WHERE.reset(token)
        target.commit()
    moved = {p: final / p.relative_to(rep.folder) for p in rep.plots}
    return Report(final, final / rep.page.relative_to(rep.folder), rep.stats, rep.sensitivity,
                  [moved[p] for p in rep.plots])


def _write_report(sweep_dir: Path, out, folder: Path, info: dict, runs: pd.DataFrame,
                  design: pd.DataFrame) -> Report:
    """Write the report's files into ``folder`` (the staging folder)."""
    exp = info["experiment"]
    where = _WHERE.get() or folder
    plots_dir = folder / "plots"
    stats = point_summary(runs)
    with writing("point_summary.csv", where):
        stats.to_csv(folder / "point_summary.csv", index=False, float_format="%.6g")
    sens, notes = sensitivity(runs, design, info)
    if not sens.empty:
        with writing("sensitivity.csv", where):
            sens.to_csv(folder / "sensitivity.csv", index=False, float_format="%.6g")
    params = [p["key"] for p in exp["design"]["parameters"]]
    n_ok = int((runs["status"] == "ok").sum())
    n_failed = int((runs["status"] != "ok").sum())
    plots: list[Path] = []

    def link(p: Path | None, alt: str) -> list[str]:
        if p is None:
            return []
        plots.append(p)
        return [f"![{alt}]({p.relative_to(folder).as_posix()})", ""]

    scen = info.get("scenarios", {})
    lines = [f"# {info['name']}", ""]
    if info.get("description"):
        lines += [info["description"].strip(), ""]
    design_text = exp["design"]["kind"]
    if exp["design"]["kind"] != "grid":
        design_text += f", {exp['design']['samples']} samples"
    lines += ["## Experiment", "",
              _md_table(["", ""], [
                  ["scenarios", ", ".join(f"{k} ({v['days']} days)" for k, v in scen.items())],
                  ["design", f"{design_text}: " + (", ".join(params) if params else "no parameters")
                   + f" ({info['points']} points)"],
                  ["replications", str(exp["replications"])
                   + (" (common random numbers: replication r has the same seed at every point)"
                      if exp.get("common_random_numbers") else "")],
                  ["root seed", str(exp["seed"])],
                  ["fixed overrides", ", ".join(f"`{k} = {v}`" for k, v in exp["overrides"].items()) or "none"],
                  ["runs", f"{info['runs']} planned, {n_ok} ok, {n_failed} failed"
                   + (f", {info['runs'] - len(runs)} not run yet" if len(runs) < info["runs"] else "")],
                  ["model", f"fourpl-market {info['versions'].get('fourpl-market', '?')}, mesa "
                   f"{info['versions'].get('mesa', '?')}, Python {info.get('python', '?')}"],
              ]), ""]
    for p in exp["design"]["parameters"]:
        if p.get("labels"):
            lines += [f"`{p['key']}` levels: " + "; ".join(f"**{lab}** = `{v}`" for lab, v in zip(p["labels"], p["values"])), ""]
    lines += ["## Headline figures", "",
              "Mean over replications and, in brackets, the 95% confidence interval of the mean "
              "(Student t; only successful runs). All figures per design point are in "
              "[point_summary.csv](point_summary.csv).", "",
              _figure_table(stats, HEADLINE), ""]
    lines += link(plot_points(stats, ("on_time_rate", "mean_lead_time_days", "mean_landed_cost", "mean_logistics_cost",
                                      "fourpl_share", "parcels_created"),
                              plots_dir / "design_points.png", "Design points"), "design points")
    if exp["design"]["kind"] == "grid" and (len(params) > 1 or info["points"] > MAX_LINES):
        lines += link(plot_effects(runs, params, ("on_time_rate", "mean_lead_time_days", "mean_landed_cost",
                                                  "fourpl_share"), plots_dir / "effects.png"), "main effects")
    if exp["design"]["kind"] != "grid":
        lines += link(plot_scatter(runs, params, ("on_time_rate", "mean_lead_time_days", "mean_landed_cost", "fourpl_share"),
                                   plots_dir / "scatter.png"), "figures against parameters")
    if not sens.empty or notes:
        lines += ["## Sensitivity", ""]
        if not sens.empty:
            method = sens["method"].iloc[0]
            if method == "sobol":
                lines += ["Sobol indices (Saltelli design, SALib) of the mean over replications at each point: "
                          "S1 is the share of the output's variance due to the parameter alone, ST with all its "
                          "interactions (95% confidence intervals by bootstrap).", ""]
                rows = [[r.scenario, r.output, r.parameter, f"{r.S1:.3f} ± {r.S1_conf:.3f}", f"{r.ST:.3f} ± {r.ST_conf:.3f}"]
                        for r in sens.itertuples(index=False)]
                lines += [_md_table(["scenario", "output", "parameter", "S1", "ST"], rows), ""]
            else:
                lines += ["Morris elementary effects (SALib), on each parameter's range scaled to [0, 1]: mu* is "
                          "the mean absolute change of the output over the whole range, sigma the spread "
                          "of the effects (non-linearity or interactions).", ""]
                rows = [[r.scenario, r.output, r.parameter, f"{r.mu_star:.4g} ± {r.mu_star_conf:.2g}", f"{r.sigma:.4g}"]
                        for r in sens.itertuples(index=False)]
                lines += [_md_table(["scenario", "output", "parameter", "mu*", "sigma"], rows), ""]
            lines += link(plot_sensitivity(sens, plots_dir / "sensitivity.png"), "sensitivity")
            lines += ["Indices: [sensitivity.csv](sensitivity.csv).", ""]
        lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += ["## Channels", "",
              "Per channel (parcels created on it; warehouse channels count stock-outs shipped express "
              "under express). Landed cost = logistics + duty per delivered parcel.", ""]
    chans = sorted({f.split(".")[1] for f in stats["figure"] if f.startswith("by_channel.")})
    for ch in chans:
        sub = stats[stats["figure"] == f"by_channel.{ch}.parcels_created"]
        if sub.empty or sub["mean"].max() < 1:
            continue
        lines += [f"### {ch}", "", _figure_table(stats, ("parcels_created", "mean_lead_time_days", "on_time_rate",
                                                         "mean_logistics_cost", "mean_duty", "mean_landed_cost",
                                                         "fourpl_share"), f"by_channel.{ch}."), ""]
    lines += link(plot_breakdown(_few_points(stats, runs, params), "by_channel",
                                 ("parcels_created", "mean_lead_time_days", "mean_landed_cost"),
                                 plots_dir / "channels.png", "Channels compared"), "channels")
    lines += _market_section(stats, runs, plots_dir, plots, params)
    if (sweep_dir / "daily").exists():
        daily = read_daily(sweep_dir, daily_columns(sweep_dir))
        groups = _groups(runs, params)
        lines += ["## Over time", "",
                  f"Daily figures smoothed over {SMOOTH_DAYS} days within each run, then averaged over "
                  "replications; the band is the 95% confidence interval of that mean.", ""]
        lines += link(plot_daily(daily, groups, plots_dir / "daily.png"), "daily figures")
        lines += link(plot_shares(daily, groups, plots_dir / "shares.png"), "market shares")
        lines += link(plot_prices(daily, groups, plots_dir / "prices.png"), "prices and markups")
    failed = runs[runs["status"] != "ok"]
    if not failed.empty:
        lines += ["## Failed runs", "", f"{len(failed)} runs raised; their tracebacks are in the sweep's log.jsonl.", ""]
        rows = [[str(r.run_id), r.scenario, r.label, str(r.seed), str(r.error)[:200]] for r in failed.head(50).itertuples(index=False)]
        lines += [_md_table(["run", "scenario", "design point", "seed", "error"], rows), ""]
    example = runs[runs["status"] == "ok"].head(1)
    lines += ["## Reproduce", "",
              "Every run's seed is a child of `numpy.random.SeedSequence(root seed)`, spawned in run order; "
              "the run table's `command` column runs any one alone, e.g.:", "",
              f"    {example['command'].iloc[0] if not example.empty else runs['command'].iloc[0]}", "",
              "and the whole sweep and this report:", "",
              f"    fourpl sweep {info.get('experiment_file') or 'EXPERIMENT.toml'} --out {info.get('out') or sweep_dir}",
              f"    fourpl report {info.get('out') or sweep_dir}" + (f" --out {out}" if out is not None else ""), ""]
    page = folder / "report.md"
    with writing("report.md", where):
        page.write_text("\n".join(lines))
    return Report(folder, page, stats, sens, plots)


def report_cli(sweep_dir: Path, out: Path | None, quiet: bool, console):
    """``fourpl report``: build the report and print the headline figures."""
    from rich.table import Table
    rep = build_report(sweep_dir, out)
    if not quiet:
        s = rep.stats
        t = Table(title="mean (95% CI) per design point", title_justify="left")
        figs = [f for f in ("on_time_rate", "mean_lead_time_days", "mean_landed_cost", "fourpl_share")
                if f in set(s["figure"])]
        multi = s["scenario"].nunique() > 1
        for c in (["scenario"] if multi else []) + ["design point", "runs"] + figs:
            t.add_column(c, justify="left" if c in ("scenario", "design point") else "right")
        idx = {(r.scenario, r.point, r.figure): r._asdict() for r in s.itertuples(index=False)}
        pts = s[["scenario", "point", "label"]].drop_duplicates().sort_values(["scenario", "point"])
        for p in pts.head(40).itertuples(index=False):
            n = idx.get((p.scenario, p.point, figs[0]), {}).get("n", 0) if figs else 0
            t.add_row(*(([p.scenario] if multi else []) + [p.label, str(n)]
                        + [_cell(idx.get((p.scenario, p.point, f)), f) for f in figs]))
        console.print(t)
        if len(pts) > 40:
            console.print(f"... and {len(pts) - 40} more points in {rep.folder / 'point_summary.csv'}")
    console.print(f"report: [bold]{rep.page}[/] ({len(rep.plots)} plots)", highlight=False)
    return rep
