"""The report page: reads a sweep, computes the tables, draws the plots, writes ``report.md``
and the CSV files into a staged folder and swaps it into place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.outputs import OutputFolder, writing
from experiments.report.plots import (DAILY_SERIES, MAX_LINES, PRICE_COLUMN, REPORT_FOLDER, SMOOTH_DAYS,
                                      line_groups, plot_breakdown, plot_daily, plot_effects, plot_points,
                                      plot_prices, plot_scatter, plot_sensitivity, plot_shares)
from experiments.report.stats import HEADLINE, point_summary, pooled_stats, sensitivity
from experiments.report.tables import cell, figure_table, md_table
from experiments.sweep import SweepError, read_daily, read_experiment, read_runs

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
    """The per-point table when there are few points, else the runs pooled as in :func:`line_groups`."""
    if stats[["scenario", "point"]].drop_duplicates().shape[0] <= MAX_LINES:
        return stats
    return pooled_stats(line_groups(runs, params))


def _returns_section(stats: pd.DataFrame) -> list[str]:
    """Returns (summary key ``returns``, market/goods/returns.py), where runs had any: rates,
    net cost per delivered order, value recovered, where returned units went; per channel,
    the rate and what a return recovers net of its handling."""
    have = stats[stats["figure"] == "returns.units.returned"]
    if have.empty or have["mean"].max() < 1:
        return []
    lines = ["## Returns", "",
             "Returns opened per delivered order, their net cost (refunds, return freight, restocking and "
             "scrapping, less resale, liquidation, recovery at the origin and drawback) per delivered order, "
             "and where the returned units went (summary key `returns`; docs/ODD.md section 7.15).", "",
             figure_table(stats, ("return_rate", "on_time_return_rate", "late_return_rate", "net_cost_per_order_usd",
                                  "recovered_value_usd", "handling_cost_per_return_usd", "units.returned", "units.resold",
                                  "units.liquidated", "units.scrapped", "units.back_at_origin",
                                  "units.in_transit_back"), "returns."), ""]
    chans = sorted({f.split(".")[2] for f in stats["figure"] if f.startswith("returns.by_channel.")})
    for ch in chans:
        sub = stats[stats["figure"] == f"returns.by_channel.{ch}.returned"]
        if sub.empty or sub["mean"].max() < 1:
            continue
        lines += [f"### Returns by {ch}", "",
                  figure_table(stats, ("returned", "return_rate", "net_recovered_per_return_usd", "net_cost_usd",
                                       "dispositions.resell", "dispositions.liquidate", "dispositions.scrap",
                                       "dispositions.ship_back"), f"returns.by_channel.{ch}."), ""]
    return lines


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
        lines += [f"### {mkt}", "", figure_table(stats, ("parcels_created", "mean_lead_time_days",
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
            lines += [md_table((["scenario"] if ok["scenario"].nunique() > 1 else []) + ["design point", "channel mix"],
                                mix_rows), ""]
    return lines


MAX_TARGET_TABLES = 6


def _targets_section(sweep_dir: Path, folder: Path, where) -> list[str]:
    """The sweep against the published 2024 targets (``fourpl targets``): one table per scenario
    and design point (the first few), all of them in targets.csv."""
    from experiments.calibration.compare import compare_folder
    from experiments.calibration.targets import load_targets, loss, markdown_table
    kind, tables = compare_folder(sweep_dir, load_targets("2024"))
    if not tables:
        return []
    frames = [t.assign(scenario=g.scenario, point=g.point, group=g.label) for g, t in tables]
    with writing("targets.csv", where):
        pd.concat(frames).to_csv(folder / "targets.csv", index=False, float_format="%.6g")
    lines = ["## Published targets (2024)", "",
             "Each published 2024 figure of `market/data/targets-2024.toml` against the model: the mean over "
             "replications with its 95% t-interval, the published band and its source; *inside*: the mean lies in "
             "the band. Per-market targets need `outputs.by_market = true` in the experiment (else: not measured). "
             "Loss: the confidence-weighted mean of squared relative distances from the bands, as `fourpl calibrate` "
             "minimises it. All groups: [targets.csv](targets.csv).", ""]
    for g, t in tables[:MAX_TARGET_TABLES]:
        lines += [f"### {g.label}", "",
                  f"{int(t['inside'].sum())} of {len(t)} targets inside their band; loss {loss(t):.4f} "
                  f"({len(g.runs)} replications).", "", markdown_table(t), ""]
    if len(tables) > MAX_TARGET_TABLES:
        lines += [f"... and {len(tables) - MAX_TARGET_TABLES} more design points in [targets.csv](targets.csv).", ""]
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
        token = REPORT_FOLDER.set(str(final))
        try:
            rep = _write_report(sweep_dir, out, target.staging, info, runs, design)
        finally:
            REPORT_FOLDER.reset(token)
        target.commit()
    moved = {p: final / p.relative_to(rep.folder) for p in rep.plots}
    return Report(final, final / rep.page.relative_to(rep.folder), rep.stats, rep.sensitivity,
                  [moved[p] for p in rep.plots])


def _write_report(sweep_dir: Path, out, folder: Path, info: dict, runs: pd.DataFrame,
                  design: pd.DataFrame) -> Report:
    """Write the report's files into ``folder`` (the staging folder)."""
    exp = info["experiment"]
    where = REPORT_FOLDER.get() or folder
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
              md_table(["", ""], [
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
              figure_table(stats, HEADLINE), ""]
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
                lines += [md_table(["scenario", "output", "parameter", "S1", "ST"], rows), ""]
            else:
                lines += ["Morris elementary effects (SALib), on each parameter's range scaled to [0, 1]: mu* is "
                          "the mean absolute change of the output over the whole range, sigma the spread "
                          "of the effects (non-linearity or interactions).", ""]
                rows = [[r.scenario, r.output, r.parameter, f"{r.mu_star:.4g} ± {r.mu_star_conf:.2g}", f"{r.sigma:.4g}"]
                        for r in sens.itertuples(index=False)]
                lines += [md_table(["scenario", "output", "parameter", "mu*", "sigma"], rows), ""]
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
        lines += [f"### {ch}", "", figure_table(stats, ("parcels_created", "mean_lead_time_days", "on_time_rate",
                                                         "mean_logistics_cost", "mean_duty", "mean_landed_cost",
                                                         "fourpl_share"), f"by_channel.{ch}."), ""]
    lines += link(plot_breakdown(_few_points(stats, runs, params), "by_channel",
                                 ("parcels_created", "mean_lead_time_days", "mean_landed_cost"),
                                 plots_dir / "channels.png", "Channels compared"), "channels")
    lines += _returns_section(stats)
    lines += _market_section(stats, runs, plots_dir, plots, params)
    lines += _targets_section(sweep_dir, folder, where)
    if (sweep_dir / "daily").exists():
        daily = read_daily(sweep_dir, daily_columns(sweep_dir))
        groups = line_groups(runs, params)
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
        lines += [md_table(["run", "scenario", "design point", "seed", "error"], rows), ""]
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
                        + [cell(idx.get((p.scenario, p.point, f)), f) for f in figs]))
        console.print(t)
        if len(pts) > 40:
            console.print(f"... and {len(pts) - 40} more points in {rep.folder / 'point_summary.csv'}")
    console.print(f"report: [bold]{rep.page}[/] ({len(rep.plots)} plots)", highlight=False)
    return rep
