"""Cost, clearance and inspection shocks do what they say: on the selected places only, in the
right direction, by the right factor, while they are in force - checked from the output files
of a run with the shock against a paired run without it (same seed) and against the world
file's own clearance and inspection tables.

(Capacity, transit and risk shocks: tests/experiments/test_scenarios.py.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from market.world import IMPORT, MODES, REGIMES

# cost-plus bidding: contract rates are cost x density x markup, so a cost shock shows in them
# exactly (equilibrium bids also move with rivals and the buyer's spot-based reserve)
SMALL = {"merchants.exporters": 8, "merchants.importers": 3,
         "merchants.allowed_channels": ["postal", "express"], "evolution.enabled": False,
         "market.bidding": "cost_plus"}
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
