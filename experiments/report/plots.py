"""The plots of a report (matplotlib, PNG): design points, effects, breakdowns by channel and
market, daily series with bands over replications, shares, prices, sensitivity indices."""

from __future__ import annotations

import contextvars
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.designs import ExperimentError
from experiments.outputs import writing
from experiments.report.stats import UNITS, clip, is_share, mean_ci

REPORT_FOLDER: contextvars.ContextVar[str | None] = contextvars.ContextVar("report_folder", default=None)


DAILY_SERIES = (("on_time_rate", "on-time rate", "share"), ("mean_lead_time_days", "mean delivery time", "days"),
                ("mean_logistics_cost", "logistics cost per parcel", "USD"), ("fourpl_share", "4PL share of new parcels", "share"),
                ("parcels_created", "parcels created", "parcels/day"), ("spot_share_of_legs", "legs bought spot", "share"))
MAX_LINES = 8          # design points drawn as separate lines; more are pooled per scenario
SMOOTH_DAYS = 7


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
        with writing(f"{path.parent.name}/{path.name}", REPORT_FOLDER.get() or path.parent.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def line_groups(runs: pd.DataFrame, params: list[str] | None = None) -> list[tuple[str, pd.DataFrame]]:
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
    lo, hi = clip(series, mean.values - half, mean.values + half, share)
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
