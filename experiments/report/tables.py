"""The Markdown tables of a report: figures formatted with their units and intervals."""

from __future__ import annotations

import math

import pandas as pd

from experiments.report.stats import is_share

def fmt(v, figure: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if is_share(figure):
        return f"{100 * v:.1f}%"
    if abs(v) >= 1000 or (figure.startswith(("parcels_", "stockouts")) and abs(v) >= 100):
        return f"{v:,.0f}"
    if figure.startswith(("parcels_", "stockouts")):
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(row, figure: str) -> str:
    if row is None:
        return "-"
    m = fmt(row["mean"], figure)
    if row["n"] > 1 and not math.isnan(row["ci_low"]):
        return f"{m} ({fmt(row['ci_low'], figure)} to {fmt(row['ci_high'], figure)})"
    return m


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def figure_table(stats: pd.DataFrame, figures, prefix: str = "") -> str:
    idx = {(r.scenario, r.point, r.figure): r._asdict() for r in stats.itertuples(index=False)}
    points = stats[["scenario", "point", "label"]].drop_duplicates().sort_values(["scenario", "point"])
    figures = [f for f in figures if f"{prefix}{f}" in set(stats["figure"])]
    multi = points["scenario"].nunique() > 1
    header = (["scenario"] if multi else []) + ["design point", "runs"] + figures
    rows = []
    for p in points.itertuples(index=False):
        n = max((idx.get((p.scenario, p.point, f"{prefix}{f}"), {}).get("n", 0) for f in figures), default=0)
        cells = [cell(idx.get((p.scenario, p.point, f"{prefix}{f}")), f) for f in figures]
        rows.append(([p.scenario] if multi else []) + [p.label, str(n)] + cells)
    return md_table(header, rows)
