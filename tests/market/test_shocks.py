"""Cost, clearance and inspection shocks do what they say: on the selected places only, in the
right direction, by the right factor, while they are in force - checked from the output files
of a run with the shock against a paired run without it (same seed) and against the world
file's own clearance and inspection tables.

(Capacity, transit and risk shocks: tests/experiments/test_scenarios.py.)
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from market.world import IMPORT, MODES, REGIMES

# cost-plus bidding: contract rates are cost x density x markup, so a cost shock shows in them
# exactly (equilibrium bids also move with rivals and the buyer's spot-based reserve). Posted
# spot at list when capacity is slack (spot_markup 0, not the soft market's -15%): a merchant
# contracts only where the contract saves it money on spot, and a cost-plus ask at list never
# beats a spot 15% under list, so with it no merchant contracts at day 0 and postal lanes, which
# only merchants buy, have no contracts to check (seen: 0 of 20 day-0 contracts on postal lanes;
# 6 of 45 at spot_markup 0)
SMALL = {"merchants.exporters": 8, "merchants.importers": 3,
         "merchants.allowed_channels": ["postal", "express"], "evolution.enabled": False,
         "market.bidding": "cost_plus", "market.spot_markup": 0.0}
DAYS = 60
ON, FOR = 10, 20            # clearance and inspection shocks: days 10 to 29
LAST_START = DAYS - 23      # stages started before this have ended by the last day, however slow
COST = {"name": "fuel", "kind": "cost", "day": 0, "days": 10, "modes": ["postal"], "factor": 1.5}
CLEARANCE = {"name": "slow Russian post", "kind": "clearance", "day": ON, "days": FOR, "territories": ["RU"],
             "regimes": ["postal"], "factor": 3.0}
INSPECTION = {"name": "EU crackdown", "kind": "inspection", "day": ON, "days": FOR, "territories": ["EU"],
              "factor": 4.0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from experiments.run import run_scenario
    out = {}
    for name, shocks in (("none", []), ("cost", [COST]), ("clearance", [CLEARANCE]), ("inspection", [INSPECTION])):
        folder = tmp_path_factory.mktemp(name) / "run"
        out[name] = run_scenario("baseline", days=DAYS, seed=4, out=folder, overrides={**SMALL, "shocks": shocks},
                                 progress=False)
    return out


def import_stages(run) -> pd.DataFrame:
    """Each parcel's import customs stage (if its route has one and it has started): territory,
    regime, start and end day (-1: not over), days taken, inspected and held flags, category."""
    m = run.model
    p = pd.read_parquet(run.out / "parcels.parquet")
    net = m.net
    route = p["route"].to_numpy()
    res = net.route_res[route]
    kind = np.where(res >= 0, net.res_kind[np.maximum(res, 0)], -1)
    is_import = kind == IMPORT
    assert (is_import.sum(axis=1) <= 1).all()        # a parcel clears import customs once
    rows = np.flatnonzero(is_import.any(axis=1))
    stage = np.argmax(is_import[rows], axis=1)
    start = np.column_stack([p[f"leg{s + 1}_start"] for s in range(net.max_stages)])[rows, stage]
    end = np.column_stack([p[f"leg{s + 1}_end"] for s in range(net.max_stages)])[rows, stage]
    out = pd.DataFrame({
        "territory": np.array(m.world.territories)[net.res_territory[res[rows, stage]]],
        "regime": np.array(REGIMES)[net.route_regime[route[rows], stage]],
        "start": start, "end": end, "days": end - start,
        "inspected": p["inspected"].to_numpy()[rows] > 0, "held": p["held"].to_numpy()[rows] > 0,
        "category": p["category"].astype(str).to_numpy()[rows]})
    return out[out["start"] >= 0]


def triangle_mean_var(tri) -> tuple[float, float]:
    a, b, c = tri
    return (a + b + c) / 3.0, (a * a + b * b + c * c - a * b - a * c - b * c) / 18.0


# ------------------------------------------------------------------------------------ cost
def test_cost_shock_scales_the_selected_providers_prices_only(runs):
    """A fuel shock on postal lanes: the contracts signed in the day-0 tenders carry rates
    1.5 times those the same buyer signed with the same offer without the shock, and exactly
    the same rates everywhere else; once it ends, costs are back to their base."""
    base, shocked = runs["none"], runs["cost"]
    m = shocked.model
    postal = m.net.res_mode == MODES.index("postal")
    cols = ["buyer_acct", "offer", "resource", "rate_parcel", "rate_kg", "rate_shipment", "cost_factor", "round",
            "service"]
    a, b = (pd.read_parquet(r.out / "contracts.parquet", columns=cols) for r in (base, shocked))
    a, b = (c[(c["round"] == 0) & (c["service"] != "end_to_end")] for c in (a, b))
    both = a.merge(b, on=["buyer_acct", "offer", "resource"], suffixes=("_a", "_b"))
    hit = postal[both["resource"].to_numpy()]
    assert hit.sum() >= 5 and (~hit).sum() >= 10
    for k in ("rate_parcel", "rate_kg", "rate_shipment"):
        ra, rb = both[f"{k}_a"] / both["cost_factor_a"], both[f"{k}_b"] / both["cost_factor_b"]
        use = ra > 0
        np.testing.assert_allclose((rb / ra)[use & hit], 1.5, rtol=1e-9)
        np.testing.assert_allclose((rb / ra)[use & ~hit], 1.0, rtol=1e-9)
    # over: every offer's costs are the unshocked run's again (offers are the same in both runs)
    for k in ("cost_parcel", "cost_kg", "cost_shipment", "cost_storage"):
        np.testing.assert_array_equal(getattr(m.offers, k), getattr(base.model.offers, k))


# ------------------------------------------------------------------------------------ clearance
def test_clearance_shock_slows_the_selected_territory_and_regime_while_in_force(runs):
    """Clearance of Russian postal imports (not express ones) takes three times the world file's days while the shock is
    in force; before and after it, in other territories and regimes, and in the paired run
    without the shock, it takes the world file's days. (Parcels inspected or held are left out:
    those add their own days.)"""
    world = runs["none"].model.world
    for name in ("none", "clearance"):
        st = import_stages(runs[name])
        st = st[~st["inspected"] & ~st["held"] & (st["start"] < LAST_START)]
        assert (st["end"] >= st["start"]).all()        # all of them over: no slow one is left out
        during = (st["start"] >= ON) & (st["start"] < ON + FOR)
        checked = 0
        for (terr, regime, inside), g in st.groupby(["territory", "regime", during]):
            if len(g) < 30:
                continue
            mean, var = triangle_mean_var(world.spec.customs[terr].clearance[regime])
            factor = 3.0 if (name == "clearance" and terr == "RU" and regime == "postal" and inside) else 1.0
            # whole days by stochastic rounding keep the mean; its variance adds at most 1/4
            se = np.sqrt((var * factor ** 2 + 0.25) / len(g))
            assert abs(g["days"].mean() - factor * mean) < 5 * se + 1e-9, (name, terr, regime, inside, len(g))
            checked += terr == "RU"
        assert checked == 4, "too few Russian postal and express parcels to tell"


# ------------------------------------------------------------------------------------ inspection
def test_inspection_shock_inspects_more_in_the_selected_territory_while_in_force(runs):
    """EU imports are inspected four times as often while the shock is in force (the world file's
    rate by regime times the category's multiplier); other territories, and the EU outside
    the shock and in the paired run, at the world file's rate. The daily count of inspections
    is what the parcels record."""
    world = runs["none"].model.world
    mult = {c: spec.inspection_multiplier for c, spec in world.spec.categories.items()}
    for name in ("none", "inspection"):
        st = import_stages(runs[name])
        during = (st["start"] >= ON) & (st["start"] < ON + FOR)
        checked = 0
        for (terr, inside), g in st.groupby(["territory", during]):   # (an inspection is drawn as the stage starts)
            rates = world.spec.customs[terr].inspection
            factor = 4.0 if (name == "inspection" and terr == "EU" and inside) else 1.0
            p = np.array([min(1.0, min(1.0, rates.get(r, 0.0) * factor) * mult[c])
                          for r, c in zip(g["regime"], g["category"])])
            if p.sum() < 20:
                continue
            sd = np.sqrt((p * (1 - p)).sum())
            assert abs(g["inspected"].sum() - p.sum()) < 5 * sd, (name, terr, inside, g["inspected"].sum(), p.sum())
            checked += terr == "EU"
        assert checked == 2, "too few EU parcels to tell"
        ts = pd.read_parquet(runs[name].out / "timeseries.parquet")
        per_day = np.bincount(st.loc[st["inspected"], "start"], minlength=DAYS)
        np.testing.assert_array_equal(ts["inspections"].to_numpy(), per_day)


# ------------------------------------------------------------------------------------ recovery
CLOSE_ON, CLOSE_FOR, RECOVER = 12, 15, 8
CLOSURE = {"name": "crossing closed", "kind": "capacity", "day": CLOSE_ON, "days": CLOSE_FOR,
           "recovery_days": RECOVER, "nodes": ["suifenhe", "pogranichny"], "modes": ["truck"], "factor": 0.0}


def restored_share(day: int) -> float:
    """The share of its base capacity a crossing closed on CLOSE_ON for CLOSE_FOR days has on
    ``day``, when carriers restore it in equal steps over RECOVER days: all of it before, none
    while closed, k / RECOVER on the k-th day after it reopens (1 on the day it reopens)."""
    reopen = CLOSE_ON + CLOSE_FOR
    if day < CLOSE_ON:
        return 1.0
    if day < reopen:
        return 0.0
    return min(1.0, (day - reopen + 1) / RECOVER)


def test_a_closed_crossing_comes_back_over_its_recovery_days():
    """Closed, the crossing's truck offers have no capacity; once it reopens, their capacity
    climbs in equal daily steps to the base over ``recovery_days`` (the shock is named
    "recovering" meanwhile); every other offer keeps its base throughout. Without
    recovery_days the capacity is back at once."""
    from market import Marketplace
    over = {**SMALL, "merchants.allowed_channels": ["border_warehouse", "postal"]}
    m = Marketplace("baseline", rng=2, **over, shocks=[CLOSURE])
    quick = Marketplace("baseline", rng=2, **over, shocks=[{**CLOSURE, "recovery_days": None}])
    w = m.world
    shut = np.array([r.lane is not None and r.lane.spec.mode == "truck" and {r.lane.u, r.lane.v} & {"suifenhe", "pogranichny"}
                     != set() for r in w.resources])
    assert shut.sum() == 2                        # Harbin -> Suifenhe and Suifenhe -> Pogranichny
    on = shut[m.offers.resource]
    base = m.offers.capacity.copy()
    assert (base[on] > 0).all() and (~on).sum() > 50
    names = {}
    for day in range(CLOSE_ON + CLOSE_FOR + RECOVER + 3):
        m.step()
        quick.step()
        assert m.day == day
        np.testing.assert_allclose(m.offers.capacity[on], base[on] * restored_share(day), rtol=1e-12)
        np.testing.assert_array_equal(m.offers.capacity[~on], base[~on])
        quick_share = 1.0 if not CLOSE_ON <= day < CLOSE_ON + CLOSE_FOR else 0.0
        np.testing.assert_allclose(quick.offers.capacity[on], base[on] * quick_share, rtol=1e-12)
        names[day] = m.today["shocks_in_force"]
    reopen = CLOSE_ON + CLOSE_FOR
    assert names[CLOSE_ON - 1] == "" and names[CLOSE_ON] == "crossing closed"
    assert names[reopen] == names[reopen + RECOVER - 2] == "crossing closed (recovering)"
    assert names[reopen + RECOVER - 1] == ""


def test_recovery_days_are_for_capacity_shocks_only():
    from market.scenario import ScenarioError, load_scenario
    bad = {**COST, "recovery_days": 5}
    with pytest.raises(ScenarioError) as err:
        load_scenario("baseline", {"shocks": [bad]})
    assert "recovery_days applies to capacity shocks only" in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------------------ flows after a closure
FLOW_SEEDS = (1, 2, 3)
FLOW_START = dt.date(2024, 1, 15)
CROSSING_BACK = (dt.date(2024, 3, 1) - FLOW_START).days + 42 + 21     # day it is fully back
WINDOW = (CROSSING_BACK + 7, CROSSING_BACK + 37)                       # a month after that


def border_channel_orders(seed: int, closure: bool) -> float:
    """Border-warehouse orders a day in WINDOW in ru-border-closure (a reduced market, every
    channel), or in the same run with no shock (the paired run)."""
    from market import Marketplace
    # returns off: a return to the border warehouse crosses the border back, so with returns
    # fewer merchants come back to it after the closure (seen: 0.78, 0.30, 0.42); exchange rates
    # held still: a rouble that wanders (15% a year) moves Russian demand and merchants' exits in
    # both runs of a pair, which drowns the closure's effect (seen: 0.64, 0.36, 0.89; held: 0.86, 1.96, 0.82)
    over = {"merchants.exporters": 40, "merchants.importers": 3, "simulation.start_date": FLOW_START,
            "returns.enabled": False, "currency.volatility_scale": 0.0}
    if not closure:
        over["shocks"] = []
    m = Marketplace("ru-border-closure", rng=seed, **over)
    m.run_for(WINDOW[1])
    created = m.datacollector.get_model_vars_dataframe()["created_border_warehouse"].to_numpy()
    return float(created[WINDOW[0]:WINDOW[1]].mean())


@pytest.mark.slow
def test_border_channel_flows_come_back_after_the_crossing_reopens():
    """A month after the crossing's capacity is fully back, the border-warehouse channel carries
    at least half the orders it carries in the same month of the paired run without the closure
    (same seed), in each of three seeds. Merchants shipping themselves divert to the
    Manzhouli-Zabaikalsk variant while Suifenhe is closed; marginal ones may leave the market and
    come back after ``merchants.entry_after_days`` (seen: 0.96, 0.64, 0.96; before merchants could
    choose among crossings: 0.00, 0.66, 0.17 with 10 exporters).

    40 exporters (20 before issue 13's visibility): consumers now answer the spread of delivery
    days they see, which moved marginal merchants off the border-warehouse channel in the paired
    run without a closure too (seed 3: seven merchants on it on day 19, four from day 39; its flow
    fell from 76 orders a day before March to 31 in the window, 61 before visibility), so with 20
    exporters a seed's ratio turned on one or two merchants' choices (seen: 0.67, 0.97, 0.46).
    With 40 the paired run's channel holds (seed 3: 90 a day before March, 88 in the window) and
    seed 3's ratio was 0.73."""
    shares = [border_channel_orders(s, True) / max(border_channel_orders(s, False), 1e-9) for s in FLOW_SEEDS]
    assert min(shares) >= 0.5, shares
