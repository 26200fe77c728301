"""Targets files and the comparison of runs and sweeps with them.

The comparison is recomputed here from the output files themselves (parcels.parquet,
summary.json, the sweep's parcel files) with pandas and scipy, never from the code's own
moments; the model's levels are not assumed (they change as the model does).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments.calibration import targets as tg
from experiments.calibration.compare import compare_folder
from experiments.calibration.moments import MOMENTS

SMALL = {"merchants.exporters": 4, "merchants.importers": 1}
DIRECT = ("postal", "express", "dedicated_line")


# ------------------------------------------------------------------------------------------
# The files
# ------------------------------------------------------------------------------------------
def test_calibration_targets_describe_2024_or_earlier_and_validation_2025_on():
    cal = tg.load_targets("2024")
    val = tg.load_targets("validation-2025")
    assert len(cal.target) >= 15
    for t in cal.target:
        years = [int(y) for y in __import__("re").findall(r"(?:19|20)\d\d", t.date)]
        assert years and max(years) <= 2024, (t.id, t.date)
        assert t.source and t.moment in MOMENTS and not t.scenario
    for t in val.target:
        years = [int(y) for y in __import__("re").findall(r"(?:19|20)\d\d", t.date)]
        assert min(years) >= 2025, (t.id, t.date)
        assert t.scenario, t.id
    assert not {t.id for t in cal.target} & {t.id for t in val.target}


def test_a_target_file_with_an_error_is_one_line_and_exit_2(tmp_path):
    raw = tomllib.loads(tg.targets_path("2024").read_text())
    bad = tmp_path / "bad.toml"
    bad.write_text(tg.targets_path("2024").read_text().replace('moment = "loss_rate"', 'moment = "loss_rat"', 1))
    with pytest.raises(tg.CalibrationError, match="unknown moment 'loss_rat'"):
        tg.load_targets(bad)
    flipped = tmp_path / "flipped.toml"
    flipped.write_text(tg.targets_path("2024").read_text().replace("low = 7.0\nhigh = 20.0", "low = 20.0\nhigh = 7.0", 1))
    with pytest.raises(tg.CalibrationError, match="low must not exceed high"):
        tg.load_targets(flipped)
    assert raw["target"]
    for args in (["targets", str(tmp_path), "--targets", str(bad)], ["targets", str(tmp_path / "nowhere")],
                 ["targets", str(tmp_path), "--targets", "2023"]):
        p = subprocess.run([sys.executable, "-m", "experiments.cli", *args], capture_output=True, text=True)
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("error:"), p.stderr


def test_distance_from_a_band():
    assert tg.distance(5.0, 4.0, 6.0) == 0.0
    assert tg.distance(2.0, 4.0, 6.0) == pytest.approx(0.5)        # (4 - 2) / 4
    assert tg.distance(9.0, 4.0, 6.0) == pytest.approx(0.5)        # (9 - 6) / 6
    assert tg.distance(1.1, 1.0, 1.0) == pytest.approx(0.1)
    assert tg.distance(None, 4.0, 6.0) == 1.0
    table = pd.DataFrame({"weight": [1.0, 0.5, 0.25], "distance": [0.0, 0.5, 1.0]})
    assert tg.loss(table) == pytest.approx((0 + 0.5 * 0.25 + 0.25 * 1.0) / 1.75)


# ------------------------------------------------------------------------------------------
# A run folder, recomputed from its files
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    from experiments.run import run_scenario
    out = tmp_path_factory.mktemp("targets-run") / "run"
    run_scenario("baseline", days=40, seed=5, out=out, overrides=SMALL, progress=False)
    return out


def _by_hand(parcels: pd.DataFrame, summary: dict) -> dict:
    """The 2024 targets' measures recomputed from parcels.parquet and summary.json."""
    p = parcels
    out = {}
    delivered = p[p["status"] == "delivered"]
    for ch in ("express", "dedicated_line", "overseas_warehouse", "bonded_warehouse", "border_warehouse"):
        d = delivered[delivered["channel"] == ch]
        out[f"lead_time_{ch}"] = d["lead_time_days"].mean() if len(d) else None
    us_post = delivered[(delivered["channel"] == "postal") & (delivered["market"] == "US")]
    out["lead_time_postal_us"] = us_post["lead_time_days"].mean() if len(us_post) else None
    cost = (delivered["price_usd"] + delivered["upstream_usd"]).groupby(delivered["channel"]).mean()
    out["express_over_postal_price"] = (cost["express"] / cost["postal"]
                                        if {"express", "postal"} <= set(cost.index) else None)
    lost = (p["status"] == "lost").sum()
    out["loss_rate"] = lost / (lost + len(delivered))
    out["damage_rate"] = summary["parcels_damaged"] / len(delivered)
    direct = p[p["channel"].isin(DIRECT)]
    n_us = (direct["market"] == "US").sum()
    n_eu = (direct["market"] == "EU").sum()
    rate = summary["real_world"]["sample_rate"]
    out["us_low_value_parcels_per_year"] = n_us * rate * 365 / summary["days"]
    out["eu_low_value_parcels_per_year"] = n_eu * rate * 365 / summary["days"]
    out["eu_over_us_low_value"] = n_eu / n_us if n_us else None
    out["us_direct_not_postal"] = (((direct["market"] == "US") & (direct["channel"] != "postal")).sum() / n_us
                                   if n_us else None)
    us = p[p["market"] == "US"]
    out["us_local_fulfilment_share"] = (us["channel"] == "overseas_warehouse").mean()
    legs = summary["prices_by_mode"]["truck"]
    out["contract_share_truck"] = legs["contract_legs"] / (legs["contract_legs"] + legs["spot_legs"])
    out["spot_over_contract_truck"] = summary["market_structure"]["spot_over_contract_by_mode"]["truck"]
    out["carrier_margin"] = summary["market_structure"]["margins_by_role"]["carrier"]["role_margin"]
    out["integrator_margin"] = summary["market_structure"]["margins_by_role"]["integrator"]["role_margin"]
    return out


def test_a_run_folder_against_the_targets_recomputed_from_its_files(run_folder):
    parcels = pd.read_parquet(run_folder / "parcels.parquet")
    for c in ("market", "channel", "status"):
        parcels[c] = parcels[c].astype(str)
    summary = json.loads((run_folder / "summary.json").read_text())
    want = _by_hand(parcels, summary)
    kind, tables = compare_folder(run_folder, tg.load_targets("2024"))
    assert kind == "run" and len(tables) == 1
    table = tables[0][1].set_index("id")
    tf = tg.load_targets("2024")
    assert set(table.index) == {t.id for t in tf.target} == set(want)
    for t in tf.target:
        row = table.loc[t.id]
        w = want[t.id]
        if w is None or (isinstance(w, float) and math.isnan(w)):
            assert row["measured"] == 0, t.id
            continue
        assert row["model_mean"] == pytest.approx(w, rel=1e-9), t.id
        assert row["runs"] == 1 and pd.isna(row["ci_low"])            # one replication: no interval
        assert bool(row["inside"]) == (t.low <= w <= t.high), t.id
        assert row["distance"] == pytest.approx(0.0 if t.low <= w <= t.high
                                                else min(abs(w - t.low) / abs(t.low), abs(w - t.high) / abs(t.high)))


def test_fourpl_targets_prints_a_table_per_target(run_folder):
    p = subprocess.run([sys.executable, "-m", "experiments.cli", "targets", str(run_folder)], capture_output=True,
                       text=True, env={**__import__("os").environ, "COLUMNS": "250"})
    assert p.returncode == 0, p.stderr
    assert "one replication: no confidence interval" in p.stdout
    for t in tg.load_targets("2024").target:
        assert t.id in p.stdout
    assert "targets inside their published band" in p.stdout


# ------------------------------------------------------------------------------------------
# A sweep: replications give a t-interval, recomputed from the sweep's parcel files
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    from experiments.sweep import run_sweep
    d = tmp_path_factory.mktemp("targets-sweep")
    exp = d / "exp.toml"
    exp.write_text('name = "t"\nscenarios = ["baseline", "us-de-minimis-2025"]\ndays = 40\nreplications = 3\n'
                   'seed = 9\ncommon_random_numbers = true\n[overrides]\n"merchants.exporters" = 4\n'
                   '"merchants.importers" = 1\n[outputs]\ndaily = false\nby_market = true\nparcels = true\n')
    run_sweep(exp, d / "out", workers=1, progress=False)
    return d / "out"


def _parcels_of(sweep: Path, scenario: str) -> list[pd.DataFrame]:
    files = sorted((sweep / "parcels").glob(f"scenario={scenario}/run-*.parquet"))
    out = []
    for f in files:
        df = pd.read_parquet(f)
        for c in ("market", "channel", "status"):
            df[c] = df[c].astype(str)
        out.append(df)
    return out


def test_a_sweep_against_the_targets_with_t_intervals(sweep_folder):
    kind, tables = compare_folder(sweep_folder, tg.load_targets("2024"))
    assert kind == "sweep"
    groups = {g.scenario: t.set_index("id") for g, t in tables}
    table = groups["baseline"]
    per_run = []
    for df in _parcels_of(sweep_folder, "baseline"):
        d = df[df["status"] == "delivered"]
        per_run.append(d.loc[d["channel"] == "overseas_warehouse", "lead_time_days"].mean())
    x = np.array(per_run)
    assert len(x) == 3 and not np.isnan(x).any()
    half = stats.t.ppf(0.975, 2) * x.std(ddof=1) / math.sqrt(3)
    row = table.loc["lead_time_overseas_warehouse"]
    assert row["model_mean"] == pytest.approx(x.mean())
    assert row["ci_low"] == pytest.approx(max(x.mean() - half, 0.0))
    assert row["ci_high"] == pytest.approx(x.mean() + half)
    assert row["measured"] == 3
    t = next(t for t in tg.load_targets("2024").target if t.id == "lead_time_overseas_warehouse")
    assert bool(row["inside"]) == (t.low <= x.mean() <= t.high)
    assert bool(row["interval_reaches_band"]) == (row["ci_low"] <= t.high and row["ci_high"] >= t.low)


def test_validation_targets_year_on_year_pair_replications(sweep_folder, tmp_path):
    """A target relative to the baseline divides each 2025 run's figure by the baseline run of
    the same replication, with the dates moved back a year."""
    f = tmp_path / "v.toml"
    f.write_text('[[target]]\nid = "us_sales_jan_yoy"\nscenario = "us-de-minimis-2025"\nrelative_to = "baseline"\n'
                 'moment = "period_level"\nargs = { period = ["2025-01-05", "2025-02-05"], market = "US", what = "sales" }\n'
                 'low = 0.5\nhigh = 2.0\nunit = "ratio"\nsource = "test"\ndate = "2025"\nconfidence = "M"\n')
    kind, tables = compare_folder(sweep_folder, tg.load_targets(f))
    row = tables[0][1].set_index("id").loc["us_sales_jan_yoy"]
    runs = pd.read_parquet(sweep_folder / "design.parquet")
    assert set(runs["scenario"]) == {"baseline", "us-de-minimis-2025"}

    def level(df):          # 5 Jan - 5 Feb is days 4..35 of a run starting on 1 January
        sel = (df["created_day"] >= 4) & (df["created_day"] <= 35) & (df["market"] == "US")
        return df.loc[sel, "sale_usd"].sum() / 32
    base = [level(df) for df in _parcels_of(sweep_folder, "baseline")]
    new = [level(df) for df in _parcels_of(sweep_folder, "us-de-minimis-2025")]
    ratios = np.array(new) / np.array(base)        # run files sort by run id: replications in order
    assert row["measured"] == 3
    assert row["model_mean"] == pytest.approx(ratios.mean())


def test_the_sweep_report_has_a_targets_section(sweep_folder, tmp_path):
    from experiments.report import build_report
    rep = build_report(sweep_folder, tmp_path / "report")
    text = rep.page.read_text()
    assert "## Published targets (2024)" in text and "### baseline" in text
    csv = pd.read_csv(rep.folder / "targets.csv")
    _, tables = compare_folder(sweep_folder, tg.load_targets("2024"))
    for g, t in tables:
        sub = csv[csv["scenario"] == g.scenario].set_index("id")
        for r in t.itertuples():
            if r.model_mean is not None and not pd.isna(r.model_mean):
                assert sub.loc[r.id, "model_mean"] == pytest.approx(r.model_mean, rel=1e-5)
            assert bool(sub.loc[r.id, "inside"]) == bool(r.inside)
