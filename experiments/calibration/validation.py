"""The out-of-sample validation report: a sweep of the calibrated baseline and the 2025 and
2026 rule changes against what was published about what happened.

    python -m experiments.calibration.validation SWEEP_DIR OUT_DIR [--notes NOTES.md]

writes ``OUT_DIR/report.md`` (the comparison with ``market/data/validation-2025.toml``, the
model's predictions where nothing was published yet, monthly figures), ``OUT_DIR/validation.csv``
and ``OUT_DIR/plots/*.png``. OUT_DIR is written through the safe-output rules of
:mod:`experiments.outputs` (a report folder: replaced only if an earlier report wrote it,
unchanged). Hand-written findings (``--notes``) are inserted after the tables; their first line
``<!-- validation sha256: HASH -->`` names the validation.csv they were written for, and a
report whose figures changed says so above them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import pandas as pd

from experiments.calibration.compare import groups_of
from experiments.calibration.moments import DIRECT_CHANNELS, RunData
from experiments.calibration.targets import compare_validation, fmt, load_targets, markdown_table

# what the model predicts where no outcome had been published when the report was written:
# (id, scenario, moment, args, unit, what it is)
PREDICTIONS = [
    ("eu_direct_after_eu_duty", "eu-duty-2026", "period_change",
     {"before": ["2026-01-01", "2026-06-30"], "after": ["2026-07-01", "2026-12-31"], "market": "EU",
      "channels": list(DIRECT_CHANNELS)}, "ratio",
     "EU direct-channel parcels a day, second half of 2026 over the first (the EUR 3 duty from 1 Jul 2026)"),
    ("eu_warehouse_share_after_eu_duty", "eu-duty-2026", "period_share",
     {"period": ["2026-07-01", "2026-12-31"], "market": "EU", "channels": ["overseas_warehouse"]}, "share",
     "share of EU parcels sent from an EU warehouse after 1 Jul 2026"),
    ("eu_warehouse_share_before_eu_duty", "eu-duty-2026", "period_share",
     {"period": ["2026-01-01", "2026-06-30"], "market": "EU", "channels": ["overseas_warehouse"]}, "share",
     "share of EU parcels sent from an EU warehouse before 1 Jul 2026"),
    ("us_direct_after_global_end", "us-de-minimis-2025", "period_change",
     {"before": ["2025-01-01", "2025-04-30"], "after": ["2025-08-29", "2025-12-31"], "market": "US",
      "channels": list(DIRECT_CHANNELS)}, "ratio",
     "US direct-channel parcels a day after 29 Aug 2025 over January-April 2025"),
    ("us_postal_after_china_end", "us-de-minimis-2025", "period_change",
     {"before": ["2025-01-01", "2025-04-30"], "after": ["2025-05-15", "2025-12-31"], "market": "US",
      "channels": ["postal"]}, "ratio",
     "US postal parcels a day after mid-May 2025 over January-April 2025"),
    ("us_sales_2025_yoy", "us-de-minimis-2025", "period_level",
     {"period": ["2025-05-15", "2025-12-31"], "market": "US", "what": "sales"}, "ratio",
     "US consumer spending from mid-May to December 2025 over the same dates of 2024 (baseline)"),
]


def _predictions(by_scenario: dict[str, list[RunData]]) -> pd.DataFrame:
    from experiments.calibration.targets import Target, TargetFile
    rows = []
    for pid, scen, moment, args, unit, what in PREDICTIONS:
        t = Target(id=pid, moment=moment, args=args, low=0.0, high=0.0, unit=unit, source=what, date="prediction",
                   confidence="L", scenario=scen, relative_to="baseline" if pid.endswith("_yoy") else "")
        table = compare_validation(TargetFile(target=[t]), by_scenario)
        r = table.iloc[0]
        rows.append({"id": pid, "what": what, "unit": unit, "model_mean": r["model_mean"], "ci_low": r["ci_low"],
                     "ci_high": r["ci_high"], "runs": r["measured"]})
    return pd.DataFrame(rows)


def _monthly(by_scenario: dict[str, list[RunData]]) -> pd.DataFrame:
    """Parcels a day by month, market and channel group (direct / warehouse), mean over runs."""
    rows = []
    for scen, runs in by_scenario.items():
        for i, run in enumerate(runs):
            df = run.parcels()
            if df is None or run.start_date is None:
                continue
            start = pd.Timestamp(run.start_date)
            date = start + pd.to_timedelta(df["created_day"], unit="D")
            g = pd.DataFrame({"month": date.dt.to_period("M").astype(str), "market": df["market"],
                              "group": df["channel"].where(df["channel"].isin(DIRECT_CHANNELS), "warehouse")
                              .where(~df["channel"].isin(DIRECT_CHANNELS), "direct")})
            counts = g.groupby(["month", "market", "group"]).size().rename("parcels").reset_index()
            counts["per_day"] = counts["parcels"] / counts["month"].map(
                lambda m: pd.Period(m).days_in_month)
            counts["scenario"] = scen
            counts["replication"] = i
            rows.append(counts)
    if not rows:
        return pd.DataFrame()
    all_ = pd.concat(rows)
    return (all_.groupby(["scenario", "month", "market", "group"])["per_day"].mean().reset_index())


def _plot(monthly: pd.DataFrame, path: Path) -> bool:
    if monthly.empty:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=False)
    for ax, market in zip(axes, ("US", "EU")):
        sub = monthly[monthly["market"] == market]
        for (scen, group), g in sub.groupby(["scenario", "group"]):
            # months as month-of-year so the three years overlay
            x = [int(m[5:7]) for m in g["month"]]
            ax.plot(x, g["per_day"], marker="o", ms=3, label=f"{scen} {group}",
                    linestyle="-" if group == "direct" else "--")
        ax.set_title(f"{market}: simulated parcels a day by month")
        ax.set_xlabel("month")
        ax.set_xticks(range(1, 13))
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, dpi=100, format="png", metadata={"Software": None})
    os.replace(tmp, path)
    plt.close(fig)
    return True


def build(sweep_dir: Path, out: Path, notes: Path | None = None) -> Path:
    from experiments.outputs import OutputFolder, writing
    kind, groups = groups_of(sweep_dir)
    by_scenario: dict[str, list[RunData]] = {}
    for g in groups:
        by_scenario.setdefault(g.scenario, g.runs)
    tf = load_targets("validation-2025")
    table = compare_validation(tf, by_scenario)
    preds = _predictions(by_scenario)
    monthly = _monthly(by_scenario)
    csv = table.to_csv(index=False, float_format="%.6g")
    digest = hashlib.sha256(csv.encode()).hexdigest()
    with OutputFolder(out, "report", replace=True) as folder:
        staging = folder.prepare()
        (staging / "plots").mkdir()
        with writing("validation.csv", out):
            (staging / "validation.csv").write_text(csv)
        with writing("monthly.csv", out):
            monthly.to_csv(staging / "monthly.csv", index=False, float_format="%.6g")
        plotted = _plot(monthly, staging / "plots" / "monthly.png")
        runs = ", ".join(f"`{s}` ({len(r)} runs)" for s, r in by_scenario.items())
        lines = ["# Out-of-sample validation: 2025 and 2026", "",
                 "The model was calibrated on published 2024 figures only (experiments/examples/calibration/). "
                 "Here the calibrated model runs the 2025 and 2026 rule changes (the US de minimis end for China "
                 "on 2 May 2025 and for every country on 29 Aug 2025; the EU EUR 3 duty from 1 Jul 2026), and its "
                 "predictions are set against what was published about what happened "
                 "(`market/data/validation-2025.toml`). Nothing here was tuned to these figures.", "",
                 f"Runs: {runs}, a full year each at full size (sweep `{sweep_dir}`); replication r has the "
                 "same seed in every scenario, so year-on-year ratios pair runs. *inside*: the mean over "
                 "replications lies in the published band; *interval reaches band*: its 95% t-interval overlaps it.",
                 "", "## Published outcomes against the model", "", markdown_table(table), "",
                 f"{int(table['inside'].sum())} of {len(table)} inside their band. Table: "
                 "[validation.csv](validation.csv).", "",
                 "## Predictions without a published outcome (yet)", "",
                 "| prediction | model mean | 95% interval | unit |", "|---|---|---|---|"]
        for r in preds.itertuples():
            ci = "-" if pd.isna(r.ci_low) else f"{fmt(r.ci_low, r.unit)} - {fmt(r.ci_high, r.unit)}"
            lines.append(f"| {r.what} | {fmt(r.model_mean, r.unit)} | {ci} | {r.unit} |")
        lines += [""]
        if plotted:
            lines += ["## Parcels by month", "",
                      "Simulated parcels a day by month (mean over replications; direct channels: postal, express, "
                      "dedicated line; warehouse: from stock in or near the market). Figures: "
                      "[monthly.csv](monthly.csv).", "", "![parcels by month](plots/monthly.png)", ""]
        if notes is not None and notes.is_file():
            text = notes.read_text().splitlines()
            want = text[0].split("sha256:")[-1].strip(" ->") if text and "sha256:" in text[0] else ""
            lines += ["## Findings", ""]
            if want != digest:
                lines += ["> **Warning:** the findings below were written for other figures (the model or the runs "
                          "changed); check them against the tables above.", ""]
            lines += text[1:] + [""]
        lines += ["## Reproduce", "", "    bash experiments/examples/regenerate-validation.sh", "",
                  f"validation.csv sha256: `{digest}`", ""]
        with writing("report.md", out):
            (staging / "report.md").write_text("\n".join(lines))
        folder.commit()
    return out / "report.md"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--notes", type=Path, default=None)
    a = ap.parse_args(argv)
    from experiments.calibration.targets import CalibrationError
    from experiments.outputs import OutputError
    try:
        page = build(a.sweep_dir, a.out, a.notes)
    except (CalibrationError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {page}")
    print(f"validation.csv sha256: {hashlib.sha256((a.out / 'validation.csv').read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
