"""fourpl report: confidence intervals per design point, sensitivity indices, plots, one page."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments.report import build_report, mean_ci
from experiments.sweep import read_runs, run_sweep

SMALL = """
[overrides]
"merchants.exporters" = 3
"merchants.importers" = 1
"""
PNG = b"\x89PNG\r\n\x1a\n"


def sweep(folder: Path, text: str) -> Path:
    exp = folder / "exp.toml"
    exp.write_text(text)
    out = folder / "out"
    run_sweep(exp, out, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    return sweep(tmp_path_factory.mktemp("grid"), f"""
name = "grid"
days = 12
replications = 3
seed = 31
{SMALL}
[[design.parameters]]
key = "integrators.count"
values = [1, 2]
[[design.parameters]]
key = "world"
values = ["world", "no-such-world"]
[outputs]
by_market = true
""")


def test_mean_ci_is_the_student_t_interval():
    x = [0.2, 0.5, 0.9, 0.4]
    n, m, sd, lo, hi = mean_ci(x)
    half = stats.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert (n, m, sd) == (4, pytest.approx(0.5), pytest.approx(np.std(x, ddof=1)))
    assert (lo, hi) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    assert mean_ci([3.0])[:2] == (1, 3.0) and np.isnan(mean_ci([3.0])[3])
    assert mean_ci([None, np.nan])[0] == 0
    # a share's interval stays within [0, 1], a non-negative figure's above 0
    assert mean_ci([0.0, 1.0], share=True)[3:] == (0.0, 1.0)


def test_report_has_the_ci_table_plots_and_one_page(grid_sweep, tmp_path):
    rep = build_report(grid_sweep, tmp_path / "report")
    runs = read_runs(grid_sweep)
    ok = runs[runs["status"] == "ok"]
    table = pd.read_csv(tmp_path / "report" / "point_summary.csv")
    # the points whose world exists: mean and t interval over their successful runs, as by hand
    for point, g in ok.groupby("point"):
        for fig in ("on_time_rate", "mean_lead_time_days", "mean_landed_cost", "by_channel.express.parcels_created",
                    "by_market.US.mean_landed_cost"):
            row = table[(table["point"] == point) & (table["figure"] == fig)].iloc[0]
            x = g[fig].dropna().astype(float)
            half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
            assert row["n"] == len(x) >= 2
            assert row["mean"] == pytest.approx(x.mean(), rel=1e-5)
            assert row["ci_high"] == pytest.approx(min(x.mean() + half, 1.0) if fig == "on_time_rate"
                                                   else x.mean() + half, rel=1e-5, abs=1e-9)
    assert set(table["label"]) == {"count=1, world=world", "count=2, world=world"}
    page = rep.page.read_text()
    assert "## Headline figures" in page and "## Failed runs" in page and "no-such-world" in page
    assert "## Markets" in page and "channel mix" in page
    # returns: their section, its figures the runs' means
    assert "## Returns" in page and "### Returns by overseas_warehouse" in page
    for point, g in ok.groupby("point"):
        row = table[(table["point"] == point) & (table["figure"] == "returns.units.returned")].iloc[0]
        assert row["mean"] == pytest.approx(g["returns.units.returned"].astype(float).mean()) and row["mean"] > 0
    links = re.findall(r"\]\(([^)]+)\)", page)
    assert {"plots/daily.png", "plots/shares.png", "plots/prices.png", "plots/channels.png",
            "plots/markets.png", "plots/design_points.png", "point_summary.csv"} <= set(links)
    for link in links:
        f = rep.folder / link
        assert f.exists(), link
        if f.suffix == ".png":
            assert f.read_bytes()[:8] == PNG and f.stat().st_size > 5000
    assert "fourpl run --scenario baseline --days 12 --seed" in page


@pytest.mark.parametrize("kind, samples, cols", [("sobol", 8, {"S1", "ST", "S1_conf", "ST_conf"}),
                                                  ("morris", 3, {"mu_star", "sigma", "mu_star_conf"})])
def test_sensitivity_indices_on_a_tiny_design(tmp_path, kind, samples, cols):
    out = sweep(tmp_path, f"""
name = "{kind}"
days = 6
seed = 3
common_random_numbers = true
{SMALL}
[design]
kind = "{kind}"
samples = {samples}
[[design.parameters]]
key = "demand.scale"
low = 0.5
high = 3.0
[[design.parameters]]
key = "carriers.liability_per_kg"
low = 20.0
high = 30.0
[outputs]
daily = false
""")
    runs = read_runs(out)
    assert len(runs) == (samples * 4 if kind == "sobol" else samples * 3) and (runs["status"] == "ok").all()
    rep = build_report(out)
    sens = pd.read_csv(rep.folder / "sensitivity.csv")
    assert cols <= set(sens.columns) and set(sens["method"]) == {kind}
    assert set(sens["parameter"]) == {"demand.scale", "carriers.liability_per_kg"}
    vol = sens[sens["output"] == "parcels_created"].set_index("parameter")
    # demand drives volume; the carriers' liability limit does not
    key = "ST" if kind == "sobol" else "mu_star"
    assert vol.loc["demand.scale", key] > 5 * abs(vol.loc["carriers.liability_per_kg", key])
    assert "## Sensitivity" in rep.page.read_text() and (rep.folder / "plots" / "sensitivity.png").exists()
