"""The built-in scenario library: each validates and runs; each shock does what it says, when."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from experiments.run import run_scenario
from market import Marketplace
from market.scenario import builtin_scenarios, load_scenario

SMALL = {"merchants.exporters": 10, "merchants.importers": 3}
EXPECTED = {"baseline", "peak-season", "no-4pl", "4pl-competition", "4pl-monopoly", "us-de-minimis-2025",
            "eu-duty-2026", "ru-border-closure", "port-congestion", "warehouse-strategies", "large"}


def test_library_is_complete():
    assert EXPECTED <= set(builtin_scenarios())
    # each one runs, and conserves parcels and money: tests/market/test_engine_invariants.py
    # checks every scenario over a window holding its events, and (slow) over its whole horizon


def _import_clearance_day(parcels: pd.DataFrame, model: Marketplace) -> np.ndarray:
    """Day each parcel started its import customs stage (-1 if it has none or not yet)."""
    from market.world import IMPORT
    net = model.net
    route = parcels["route"].to_numpy()
    kinds = net.res_kind[net.route_res[route]]                       # (n, stages)
    kinds = np.where(net.route_res[route] >= 0, kinds, -1)
    stage = np.argmax(kinds == IMPORT, axis=1)
    has = (kinds == IMPORT).any(axis=1)
    starts = np.column_stack([parcels[f"leg{s + 1}_start"].to_numpy() for s in range(net.max_stages)])
    return np.where(has, starts[np.arange(len(parcels)), stage], -1)


def test_us_de_minimis_ends_on_2_may_2025(tmp_path):
    over = dict(SMALL, **{"simulation.start_date": dt.date(2025, 4, 10), "merchants.allowed_channels": ["postal"]})
    r = run_scenario("us-de-minimis-2025", days=45, seed=3, out=tmp_path / "o", overrides=over, progress=False)
    p = pd.read_parquet(tmp_path / "o" / "parcels.parquet")
    p["cleared"] = _import_clearance_day(p, r.model)
    us = p[(p["market"] == "US") & (p["cleared"] >= 0) & (p["value"] <= 800)]
    cutoff = (dt.date(2025, 5, 2) - dt.date(2025, 4, 10)).days
    before, after = us[us["cleared"] < cutoff], us[us["cleared"] >= cutoff]
    assert len(before) > 50 and len(after) > 50
    assert (before["duty_usd"] == 0).all()
    assert (after["duty_usd"] > 0).all()          # Chinese-origin parcels lose the exemption
    # the duty is the ad-valorem rate of the rule in force: base MFN + 30% on CN goods
    assert after["duty_usd"].sum() / after["value"].sum() > 0.3


def test_eu_flat_duty_from_1_july_2026(tmp_path):
    over = dict(SMALL, **{"simulation.start_date": dt.date(2026, 6, 10),
                          "merchants.allowed_channels": ["postal", "express", "dedicated_line"]})
    r = run_scenario("eu-duty-2026", days=45, seed=4, out=tmp_path / "o", overrides=over, progress=False)
    p = pd.read_parquet(tmp_path / "o" / "parcels.parquet")
    p["cleared"] = _import_clearance_day(p, r.model)
    eu = p[(p["market"] == "EU") & (p["cleared"] >= 0) & (p["value"] < 150 * 1.08)].copy()
    eu["duty_only"] = eu["duty_usd"] - 0.21 * eu["value"].astype(float)     # VAT is due either way
    cutoff = (dt.date(2026, 7, 1) - dt.date(2026, 6, 10)).days
    before, after = eu[eu["cleared"] < cutoff], eu[eu["cleared"] >= cutoff]
    assert len(before) > 30 and len(after) > 30
    assert before["duty_only"].abs().max() < 0.02
    assert np.allclose(after["duty_only"], 3 * 1.08, atol=0.02)


def test_ru_border_closure_stops_the_crossing(tmp_path):
    over = dict(SMALL, **{"merchants.allowed_channels": ["border_warehouse", "postal"],
                          "simulation.start_date": dt.date(2024, 2, 15)})
    r = run_scenario("ru-border-closure", days=75, seed=5, out=tmp_path / "o", overrides=over, progress=False)
    m = r.model
    p = pd.read_parquet(tmp_path / "o" / "parcels.parquet")
    bw = p[p["channel"] == "border_warehouse"]
    assert len(bw) > 100
    # parcels routed over the Suifenhe crossing (stage 4 of that route); others went via Manzhouli
    suifenhe = [rt.index for rt in m.world.routes
                if any("suifenhe>pogranichny" in m.world.resources[x].name for x in rt.resources)]
    bw = bw[bw["route"].isin(suifenhe)]
    route = m.world.routes[suifenhe[0]]
    stage = next(i for i, res in enumerate(route.resources) if "suifenhe>pogranichny" in m.world.resources[res].name)
    crossed = bw[f"leg{stage + 1}_start"]
    start = (dt.date(2024, 3, 1) - dt.date(2024, 2, 15)).days
    closed = crossed[(crossed >= start) & (crossed < start + 42)]
    assert len(closed) == 0
    assert (crossed >= start + 42).sum() > 0 and (crossed[crossed >= 0] < start).sum() > 0
    # parcels queued at the border and waited for it to reopen
    assert bw.loc[crossed >= start + 42, "wait_days"].max() > 20


def test_port_congestion_scales_and_restores():
    m = Marketplace("port-congestion", rng=1, **SMALL, **{"evolution.enabled": False})
    sea = np.flatnonzero(m.net.res_mode == m.net.modes.index("sea"))
    offers = np.flatnonzero(np.isin(m.offers.resource, sea))
    base_tri, base_cap = m.net.res_tri[sea].copy(), m.offers.capacity[offers].copy()
    day_on = (dt.date(2024, 4, 1) - dt.date(2024, 1, 1)).days
    m.run_for(day_on + 1)
    assert "congestion" in m.today["shocks_in_force"]
    assert np.allclose(m.net.res_tri[sea], base_tri * 1.6)
    assert np.allclose(m.offers.capacity[offers], base_cap * 0.8)
    m.run_for(91)
    assert m.today["shocks_in_force"] == ""
    assert np.allclose(m.net.res_tri[sea], base_tri) and np.allclose(m.offers.capacity[offers], base_cap)


def test_warehouse_strategies_switch_in_turn(tmp_path):
    over = dict(SMALL, **{"simulation.days": 200})
    run_scenario("warehouse-strategies", days=200, seed=6, out=tmp_path / "o", overrides=over, progress=False)
    ts = pd.read_parquet(tmp_path / "o" / "timeseries.parquet")
    phase1, phase2 = ts.iloc[5:85], ts.iloc[150:180]
    wh = ["created_overseas_warehouse", "created_bonded_warehouse", "created_border_warehouse"]
    assert phase1[wh].to_numpy().sum() == 0
    assert phase2[wh].to_numpy().sum() > 0.8 * phase2["parcels_created"].sum()
    assert "phase 2" in ts["shocks_in_force"].iloc[100]


def test_integrator_counts(tmp_path):
    r = run_scenario("no-4pl", days=30, seed=2, out=tmp_path / "a", overrides=SMALL, progress=False)
    assert r.summary["fourpl_share"] == 0 and not r.model.integrators
    r = run_scenario("4pl-competition", days=30, seed=2, out=tmp_path / "b", overrides=SMALL, progress=False)
    assert len(r.model.integrators) == 3


def test_peak_season_peaks(tmp_path):
    run_scenario("peak-season", days=90, seed=2, out=tmp_path / "o", overrides=SMALL, progress=False)
    ts = pd.read_parquet(tmp_path / "o" / "timeseries.parquet").set_index("date")
    assert ts.loc["2024-11-11", "parcels_created"] > 2.5 * ts.loc["2024-09-10":"2024-09-30", "parcels_created"].mean()


def test_bad_shocks_are_named():
    from market.scenario import ScenarioError
    base = load_scenario("baseline")
    bad = [({"name": "x", "kind": "capacity", "day": 1, "modes": ["teleport"]}, "unknown mode 'teleport'"),
           ({"name": "x", "kind": "capacity", "day": 1, "lanes": ["nowhere*"]}, "no lane matches"),
           ({"name": "x", "kind": "duty_rule", "day": 1, "territories": ["US"], "rule": {"de_minimus": 0}}, "de_minimus"),
           ({"name": "x", "kind": "capacity"}, "exactly one of 'start'")]
    for shock, needle in bad:
        with pytest.raises(ScenarioError, match=needle):
            Marketplace(load_scenario(base, {"shocks": [shock]}), rng=1)


def test_risk_shock_scales_loss_and_damage_and_restores():
    shock = {"name": "storm season", "kind": "risk", "day": 10, "days": 20, "modes": ["postal"], "factor": 5.0}
    m = Marketplace(load_scenario(load_scenario("baseline"), {"shocks": [shock]}), rng=1, **SMALL)
    postal = np.flatnonzero(m.net.res_mode == m.net.modes.index("postal"))
    base_loss, base_damage, base_risk = m.net.res_loss.copy(), m.net.res_damage.copy(), m.net.route_risk.copy()
    routes = [rt.index for rt in m.world.routes if set(rt.resources) & set(postal)]
    others = [rt.index for rt in m.world.routes if not set(rt.resources) & set(postal)]
    m.run_for(11)
    assert "storm season" in m.today["shocks_in_force"]
    assert np.allclose(m.net.res_loss[postal], base_loss[postal] * 5)
    assert np.allclose(m.net.res_damage[postal], base_damage[postal] * 5)
    assert (m.net.route_risk[routes] > base_risk[routes]).all()
    assert np.allclose(m.net.route_risk[others], base_risk[others])
    # the flow engine reads the same arrays, so parcels feel it
    assert m.flow.res_loss is m.net.res_loss
    m.run_for(20)
    assert m.today["shocks_in_force"] == ""
    assert np.allclose(m.net.res_loss, base_loss) and np.allclose(m.net.route_risk, base_risk)


def test_risk_shock_loses_more_parcels(tmp_path):
    shock = {"name": "theft", "kind": "risk", "day": 0, "modes": ["postal"], "factor": 20.0}
    over = dict(SMALL, **{"merchants.allowed_channels": ["postal"]})
    lost = []
    for shocks in ([], [shock]):
        r = run_scenario("baseline", days=60, seed=3, out=tmp_path / str(len(shocks)),
                         overrides=dict(over, shocks=shocks), progress=False)
        lost.append(r.summary["parcels_lost"] / r.summary["parcels_created"])
    assert lost[1] > 5 * lost[0] > 0
