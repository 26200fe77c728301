"""The app's data layer (viz/runs.py, viz/store.py) against the result files themselves.

Every expected value is recomputed here from the files with pyarrow, tomllib and plain Python
(never through the functions tested): a sweep point's mean and 95% band, the B-minus-A
difference paired by seed, duty and landed cost per market, the dated customs rules, the
parameters that differ between two runs.
"""

from __future__ import annotations

import json
import math
import statistics
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

from viz import runs as R
from viz import store as S


def _daily_files(sweep: Path) -> dict[int, pd.DataFrame]:
    out = {}
    for f in sorted((sweep / "daily").rglob("run-*.parquet")):
        t = pq.read_table(f).to_pandas()
        out[int(t["run_id"].iloc[0])] = t
    return out


def _runs_rows(sweep: Path) -> list[dict]:
    rows = []
    for f in sorted((sweep / "runs").rglob("run-*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


# ---------------------------------------------------------------- one run folder


def test_a_run_folder_opens_with_its_daily_record_parameters_and_seed(results_dirs):
    a = results_dirs["a"]
    run = R.open_results(a)
    assert isinstance(run, R.Run)
    raw = pq.read_table(a / "timeseries.parquet").to_pandas()
    for col in raw.columns:
        if col == "date":
            assert [str(d.date()) for d in run.daily["date"]] == list(raw["date"])
        else:
            assert run.daily[col].tolist() == raw[col].tolist() or np.allclose(
                run.daily[col].astype(float), raw[col].astype(float), equal_nan=True), col
    cfg = tomllib.loads((a / "config.toml").read_text())
    assert run.seed == cfg["run"]["seed"] == 3
    assert run.params["demand.scale"] == cfg["demand"]["scale"]
    assert run.params["merchants.exporters"] == 4
    assert run.scenario == "us-de-minimis-2025"
    assert run.summary == json.loads((a / "summary.json").read_text())
    assert not any(k.startswith("run.") for k in run.params)  # the seed and versions are not parameters


def test_duty_and_landed_cost_series_recomputed_from_the_parcels(results_dirs):
    a = results_dirs["a"]
    run = R.load_run(a)
    parcels = pq.read_table(a / "parcels.parquet").to_pylist()
    done = [p for p in parcels if p["finished_day"] >= 0]
    days = run.daily["day"].tolist()
    checked = 0
    for market in sorted({p["market"] for p in done}):
        for i, d in enumerate(days):
            mine = [p for p in done if p["finished_day"] == d and p["market"] == market]
            duty = sum((p["duty_usd"] or 0) + (p["upstream_duty_usd"] or 0) for p in mine)
            got = run.daily[f"duty_usd_{market}"].iloc[i]
            assert math.isclose(got, duty, rel_tol=1e-9, abs_tol=1e-9), (market, d)
            if mine:
                landed = sum((p["price_usd"] or 0) + (p["duty_usd"] or 0) + (p["upstream_duty_usd"] or 0)
                             for p in mine) / len(mine)
                assert math.isclose(run.daily[f"landed_cost_per_parcel_{market}"].iloc[i], landed, rel_tol=1e-9)
                assert math.isclose(run.daily[f"duty_per_parcel_{market}"].iloc[i], duty / len(mine), rel_tol=1e-9)
                checked += 1
            else:
                assert math.isnan(run.daily[f"duty_per_parcel_{market}"].iloc[i])
    assert checked > 50
    # the all-markets series is the sum over markets
    total = sum(run.daily[f"duty_usd_{m}"] for m in sorted({p["market"] for p in done}))
    assert np.allclose(run.daily["duty_usd"], total)


def test_the_dated_customs_rule_changes_inside_the_run_are_found(results_dirs):
    run = R.load_run(results_dirs["a"])
    world = tomllib.loads((Path(R.__file__).parents[1] / "market" / "data" / "world.toml").read_text())
    lo, hi = run.daily["date"].min(), run.daily["date"].max()
    expected = sorted((pd.Timestamp(str(r["start"])), terr) for terr, rules in world["duty_rules"].items()
                      for r in rules if lo < pd.Timestamp(str(r["start"])) <= hi)
    got = sorted((t, terr) for t, terr, _src in R.rule_changes(run.daily, run.world))
    assert got == expected
    assert (pd.Timestamp("2025-05-02"), "US") in got  # the end of the de minimis for China


def test_shock_spans_are_the_days_with_the_same_shocks_in_force():
    d = pd.DataFrame({"day": range(8), "date": pd.date_range("2025-01-01", periods=8),
                      "shocks_in_force": ["", "x", "x", "x, y", "", "", "y", "y"]})
    spans = R.shock_spans(d)
    assert [(a.day, b.day, n) for a, b, n in spans] == [(2, 3, "x"), (4, 4, "x, y"), (7, 8, "y")]


def test_parameters_that_differ_between_two_runs(results_dirs):
    a, b = R.load_run(results_dirs["a"]), R.load_run(results_dirs["b"])
    assert R.differing_params([a, b]) == {"demand.scale": [1.0, 1.5]}
    assert R.differing_params([a, a]) == {}
    d = R.paired_difference(a, b, "parcels_created")
    ra = pq.read_table(results_dirs["a"] / "timeseries.parquet").to_pandas()
    rb = pq.read_table(results_dirs["b"] / "timeseries.parquet").to_pandas()
    assert d["diff"].tolist() == (rb["parcels_created"] - ra["parcels_created"]).tolist()
    assert d["diff"].sum() > 0  # 1.5 times the demand: more parcels


# ---------------------------------------------------------------- a sweep folder


def test_a_sweep_point_mean_and_band_match_a_t_interval_over_its_replications(results_dirs):
    sw = R.open_results(results_dirs["sweep"])
    assert isinstance(sw, R.Sweep)
    rows = _runs_rows(results_dirs["sweep"])
    daily = _daily_files(results_dirs["sweep"])
    assert [p for p, _ in sw.points] == sorted({r["point"] for r in rows}) == [0, 1]
    assert sw.replications == [0, 1, 2]
    for point in (0, 1):
        ids = [r["run_id"] for r in rows if r["point"] == point and r["status"] == "ok"]
        assert len(ids) == 3
        band = sw.band(point, "parcels_created")
        for i, date in enumerate(band["x"]):
            xs = [float(daily[rid].loc[pd.to_datetime(daily[rid]["date"]) == date, "parcels_created"].iloc[0])
                  for rid in ids]
            m, sd = statistics.fmean(xs), statistics.stdev(xs)
            half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
            assert math.isclose(band["mean"].iloc[i], m, rel_tol=1e-12)
            assert math.isclose(band["lo"].iloc[i], m - half, rel_tol=1e-9, abs_tol=1e-9)
            assert math.isclose(band["hi"].iloc[i], m + half, rel_tol=1e-9, abs_tol=1e-9)
            assert band["n"].iloc[i] == 3
    # two replications only
    two = sw.band(0, "parcels_created", replications=[0, 2])
    assert set(two["n"]) == {2}


def test_the_sweep_difference_is_paired_by_seed(results_dirs):
    sw = R.load_sweep(results_dirs["sweep"])
    rows = _runs_rows(results_dirs["sweep"])
    daily = _daily_files(results_dirs["sweep"])
    by = {(r["point"], r["seed"]): r["run_id"] for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    d = R.sweep_paired_difference(sw, 0, 1, "parcels_created")
    for i, date in enumerate(d["x"]):
        diffs = []
        for s in seeds:  # the same seed under both points: common random numbers
            va = daily[by[(0, s)]].loc[pd.to_datetime(daily[by[(0, s)]]["date"]) == date, "parcels_created"].iloc[0]
            vb = daily[by[(1, s)]].loc[pd.to_datetime(daily[by[(1, s)]]["date"]) == date, "parcels_created"].iloc[0]
            diffs.append(float(vb - va))
        m = statistics.fmean(diffs)
        half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
        assert math.isclose(d["mean"].iloc[i], m, rel_tol=1e-12, abs_tol=1e-12)
        assert math.isclose(d["hi"].iloc[i] - d["lo"].iloc[i], 2 * half, rel_tol=1e-9, abs_tol=1e-9)


def test_a_sweep_replication_as_a_run_carries_its_design_values(results_dirs):
    sw = R.load_sweep(results_dirs["sweep"])
    rows = {r["run_id"]: r for r in _runs_rows(results_dirs["sweep"])}
    for rid, row in rows.items():
        run = sw.run(rid)
        assert run.seed == row["seed"]
        assert run.params["demand.scale"] == row["param.demand.scale"]
        assert len(run.daily) == row["days"]
    a = sw.run(next(r for r in rows if rows[r]["point"] == 0))
    b = sw.run(next(r for r in rows if rows[r]["point"] == 1))
    assert R.differing_params([a, b]) == {"demand.scale": [1.0, 1.6]}


def test_a_kept_sweep_point_is_the_mean_of_its_replications(results_dirs):
    sw = R.load_sweep(results_dirs["sweep"])
    daily = _daily_files(results_dirs["sweep"])
    rows = _runs_rows(results_dirs["sweep"])
    ids = [r["run_id"] for r in rows if r["point"] == 1]
    run = S.SweepPoint(sw, 1).as_run()
    expected = np.mean([daily[i].sort_values("day")["on_time_rate"].to_numpy(float) for i in ids], axis=0)
    assert np.allclose(run.daily["on_time_rate"].to_numpy(float), expected, equal_nan=True)
    assert "mean of 3" in run.label


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such folder"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "not a folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "neither a fourpl run folder"),
    (lambda p: ((p / "bad").mkdir(), (p / "bad" / "timeseries.parquet").write_text("not parquet"))
     and p / "bad", "cannot be read"),
])
def test_a_bad_folder_is_one_clear_line(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(R.LoadError) as exc:
        R.open_results(path)
    text = str(exc.value)
    assert message in text and "\n" not in text and str(path) in text


# ---------------------------------------------------------------- breakdowns from column names


def test_breakdowns_are_found_from_the_column_names_including_new_ones():
    cols = ["day", "date", "parcels_created", "orders_US", "orders_EU", "orders_UK",
            "created_postal", "created_express", "created_overseas_warehouse",
            "utilisation_postal", "utilisation_truck", "utilisation_express_air",
            "space_used_us_wh", "space_used_eu_wh", "share_4PL-1", "markup_4PL-1", "share_4PL-2", "markup_4PL-2",
            # tomorrow's columns, unknown to the app: returns and currencies by market
            "returns_US", "returns_EU", "fx_loss_usd_US", "fx_loss_usd_UK", "active_carriers", "active_contracts",
            "active_customs_agents"]
    fams, singles = R.column_families(cols)
    got = {(f.stem, f.dim): sorted(f.members) for f in fams}
    assert got[("orders", "market")] == ["EU", "UK", "US"]
    assert got[("returns", "market")] == ["EU", "US"]
    assert got[("fx_loss_usd", "market")] == ["UK", "US"]
    assert got[("created", "channel")] == ["express", "overseas_warehouse", "postal"]
    # postal is a channel and a mode: with truck and express_air it is a mode
    assert got[("utilisation", "mode")] == ["express_air", "postal", "truck"]
    assert got[("space_used", "warehouse")] == ["eu_wh", "us_wh"]
    assert got[("share", "integrator")] == ["4PL-1", "4PL-2"]
    assert got[("active", "provider group")] == ["carriers", "customs_agents"]
    assert "parcels_created" in singles and "active_contracts" in singles
    assert "day" not in singles and "date" not in singles


# ---------------------------------------------------------------- the session store


class _FakeModelRunning:
    running = True


def test_a_session_keeps_its_runs_and_an_abandoned_one_stops_and_is_dropped():
    sid = "test-session-store"
    st = S.kernel_opened(sid, "k1")
    model = _FakeModelRunning()
    st.model = model
    run = R.Run(key="r1", label="r1", scenario="x", seed=1, params={}, daily=pd.DataFrame({"day": [0]}))
    st.add(run)
    S.kernel_opened(sid, "k2")  # a reload: a second kernel of the same browser session
    S.kernel_closed(sid, "k1", now=0.0)
    assert model.running is True  # the session still has a page
    assert S.store_for(sid).entries["r1"].run is run
    S.kernel_closed(sid, "k2", now=100.0)
    assert model.running is False  # no page left: the model stops computing
    assert sid not in S.drop_abandoned(now=100.0 + S.ABANDONED_AFTER - 1)
    assert sid in S.sessions()
    assert sid in S.drop_abandoned(now=100.0 + S.ABANDONED_AFTER)
    assert sid not in S.sessions()


def test_a_store_keeps_at_most_max_runs_dropping_the_oldest():
    st = S.RunStore()
    for i in range(S.MAX_RUNS + 3):
        st.add(R.Run(key=f"r{i}", label="", scenario="x", seed=i, params={}, daily=pd.DataFrame()))
    assert len(st.entries) == S.MAX_RUNS
    assert "r0" not in st.entries and f"r{S.MAX_RUNS + 2}" in st.entries
    assert all(k in st.entries for k in st.selected)
