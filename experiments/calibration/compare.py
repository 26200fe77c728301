"""``fourpl targets DIR``: a run or a sweep against published targets.

``DIR`` is a ``fourpl run`` folder (one replication: a mean without an interval) or a
``fourpl sweep`` folder (one table per scenario and design point, with the 95% t-interval of
the mean over its replications). Targets that need per-market figures read them from the run's
``parcels.parquet`` (a run folder) or from the sweep's ``by_market`` figures (an experiment
with ``outputs.by_market = true``); without them those targets show as not measured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments.calibration.moments import RunData, from_run_folder, from_sweep
from experiments.calibration.targets import (CalibrationError, TargetFile, band_text, compare, compare_validation, fmt,
                                             load_targets, loss)


@dataclass
class Group:
    """The replications of one scenario (and design point) of a folder."""

    label: str
    scenario: str
    point: int
    runs: list[RunData]


def groups_of(folder: str | Path) -> tuple[str, list[Group]]:
    """('run' | 'sweep', the folder's groups of replications)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"'{folder}' is not a folder (a fourpl run or sweep folder)")
    if (folder / "summary.json").is_file():
        try:
            run = from_run_folder(folder)
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"cannot read '{folder}/summary.json': {exc}") from None
        return "run", [Group(str(run.figures.get("scenario") or _scenario_of(folder)), _scenario_of(folder), 0, [run])]
    if (folder / "experiment.json").is_file():
        rows = from_sweep(folder)
        if not rows:
            raise CalibrationError(f"sweep '{folder}' has no finished runs yet")
        by: dict[tuple[str, int], list[RunData]] = {}
        for scenario, point, run in rows:
            by.setdefault((scenario, point), []).append(run)
        labels = _point_labels(folder)
        groups = [Group(f"{s}, {labels.get(p, f'point {p}')}" if len({k[0] for k in by}) > 1 or len(by) > 1 else s,
                        s, p, runs) for (s, p), runs in sorted(by.items())]
        return "sweep", groups
    raise CalibrationError(f"'{folder}' is neither a fourpl run folder (summary.json) nor a sweep folder "
                           "(experiment.json)")


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _scenario_of(folder: Path) -> str:
    try:
        return str(json.loads((folder / "summary.json").read_text()).get("scenario", folder.name))
    except (OSError, ValueError):
        return folder.name


def _point_labels(folder: Path) -> dict[int, str]:
    p = folder / "design.parquet"
    if not p.is_file():
        return {}
    d = pd.read_parquet(p)
    if "point" not in d or "label" not in d:
        return {}
    return {int(r.point): str(r.label) for r in d[["point", "label"]].drop_duplicates().itertuples()}


def compare_folder(folder: str | Path, targets: TargetFile) -> tuple[str, list[tuple[Group, pd.DataFrame]]]:
    """The folder against the targets: one table per group; targets bound to scenarios
    (validation files) give one table for the whole folder, each target on its scenario's runs
    (the first design point of each scenario)."""
    kind, groups = groups_of(folder)
    if any(t.scenario for t in targets.target):
        by_scenario: dict[str, list[RunData]] = {}
        for g in groups:
            by_scenario.setdefault(g.scenario, g.runs)
        if kind == "run" and groups:            # one run folder: it is the scenario it says it is
            by_scenario = {groups[0].scenario: groups[0].runs}
        label = ", ".join(f"{s} ({len(r)} runs)" for s, r in by_scenario.items())
        return kind, [(Group(label, "", 0, [r for rs in by_scenario.values() for r in rs]),
                       compare_validation(targets, by_scenario))]
    return kind, [(g, compare(targets, g.runs)) for g in groups]


def targets_cli(folder: Path, targets_file: str, console):
    """Print one table per group; exit status 0 (the comparison is a result, not a test)."""
    from rich.table import Table
    from rich.text import Text
    tf = load_targets(targets_file)
    kind, tables = compare_folder(folder, tf)
    for g, table in tables:
        n = len(g.runs)
        title = (f"{g.label}: one run (one replication: no confidence interval)" if n == 1
                 else f"{g.label}: {n} replications (95% t-interval of the mean)")
        t = Table(title=Text(title), title_justify="left")
        for c in ("target", "model", "95% interval", "published", "unit", "inside", "reaches", "conf.", "source"):
            t.add_column(c, justify="right" if c in ("model", "95% interval", "published") else "left",
                         overflow="fold", no_wrap=c == "target", min_width=len(max(table["id"], key=len)) if c == "target" else None)
        for r in table.itertuples():
            ci = "-" if r.ci_low is None or pd.isna(r.ci_low) else f"{fmt(r.ci_low, r.unit)} - {fmt(r.ci_high, r.unit)}"
            mark = Text("yes", style="green") if r.inside else (
                Text("not measured", style="yellow") if r.measured == 0 else Text("no", style="red"))
            reach = "-" if ci == "-" else ("yes" if r.interval_reaches_band else "no")
            t.add_row(Text(r.id), fmt(r.model_mean, r.unit), ci, band_text(r.low, r.high, r.unit), Text(r.unit),
                      mark, reach, r.confidence, Text(_short(f"{r.source} ({r.date})")))
        console.print(t)
        inside = int(table["inside"].sum())
        console.print(f"{inside} of {len(table)} targets inside their published band (the mean over replications; "
                      "'reaches': the 95% interval overlaps the band); loss (weighted mean of squared relative "
                      f"distances) {loss(table):.4f}", highlight=False)
    return tables
