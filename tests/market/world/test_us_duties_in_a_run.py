"""The US duty rules of 2025 as parcels meet them in a run: each parcel's duty (parcels.parquet)
against the rate in force on the day it entered US customs, worked out here from the enacted
rules (not with the model's calculator), and the postal method as a scenario switch, with
paired seeds.

Rates (world file, duty_rules.US; sources there): MFN by category electronics 2%, apparel 16%,
cosmetics 3%, home 4%, toys 0%; Section 301 on goods of China electronics 7.5%, apparel 7.5%,
cosmetics 25%, home 25%, toys 0%; IEEPA on goods of China 145% from 10 Apr 2025, 30% from 14 May,
20% from 10 Nov 2025. Postal items of China: 120% from 2 May, 54% from 14 May (EO 14256; or $100
an item), then the IEEPA rate (EO 14324; or $80 / $160 / $200 an item by that rate).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from market.world import IMPORT

MFN = {"electronics": 0.02, "apparel": 0.16, "cosmetics": 0.03, "home": 0.04, "toys": 0.0}
S301 = {"electronics": 0.075, "apparel": 0.075, "cosmetics": 0.25, "home": 0.25, "toys": 0.0}
SMALL = {"merchants.exporters": 8, "merchants.importers": 2, "evolution.enabled": False}
SWITCH = {"name": "China Post declares the per-item method", "kind": "duty_rule", "start": dt.date(2025, 8, 29),
          "territories": ["US"], "rule": {"postal": {"method": {"CN": "specific"}}}}


def us_imports(run, start: dt.date) -> pd.DataFrame:
    """US-bound parcels that have cleared US import customs: channel, category, value, duty and
    the date their import stage started."""
    m = run.model
    p = pd.read_parquet(run.out / "parcels.parquet")
    net = m.net
    res = net.route_res[p["route"].to_numpy()]
    kinds = np.where(res >= 0, net.res_kind[np.maximum(res, 0)], -1)
    has = (kinds == IMPORT).any(axis=1)
    stage = np.argmax(kinds == IMPORT, axis=1)
    starts = np.column_stack([p[f"leg{s + 1}_start"].to_numpy() for s in range(net.max_stages)])
    p["import_day"] = np.where(has, starts[np.arange(len(p)), stage], -1)
    us = p[(p["market"] == "US") & (p["import_day"] >= 0) & (p["origin_territory"] == "CN")].copy()
    us["import_date"] = [start + dt.timedelta(days=int(d)) for d in us["import_day"]]
    us["category"] = us["category"].astype(str)
    return us


def run(tmp_path, name, start, days, seed, channels, shocks=None):
    from experiments.run import run_scenario
    over = {**SMALL, "simulation.start_date": start, "merchants.allowed_channels": channels}
    if shocks is not None:
        over["shocks"] = shocks
    return run_scenario("us-de-minimis-2025", days=days, seed=seed, out=tmp_path / name, overrides=over,
                        progress=False)


def test_the_april_peak_and_the_may_truce_reach_each_parcel(tmp_path):
    """2 to 20 May 2025: an express parcel of China pays MFN + Section 301 + IEEPA (145% before
    14 May, 30% from it) on its value; a postal one pays 120% (54% from 14 May) of its value and
    nothing else (China Post's method: ad valorem).

    One run per channel (merchants.allowed_channels): with both allowed, which one merchants pick
    for the US is the market's choice, not the duty rules'; since visibility (ODD 7.17) none of
    the 8 exporters of seed 2 picked express for the US (0 of 1178 US parcels, against 89 of 384
    before), so a run with both had no express parcel to check."""
    start = dt.date(2025, 5, 1)
    express = us_imports(run(tmp_path, "may-express", start, 20, seed=2, channels=["express"]), start)
    postal = us_imports(run(tmp_path, "may-postal", start, 20, seed=2, channels=["postal"]), start)
    truce = dt.date(2025, 5, 14)
    assert (express["channel"] == "express").all() and (postal["channel"] == "postal").all()
    for frame in (express, postal):
        assert (frame["import_date"] < truce).sum() >= 10 and (frame["import_date"] >= truce).sum() >= 10
    ieepa = np.where(express["import_date"] >= truce, 0.30, 1.45)
    rate = express["category"].map(MFN).to_numpy() + express["category"].map(S301).to_numpy() + ieepa
    np.testing.assert_allclose(express["duty_usd"], express["value"] * rate, atol=0.006)
    rate = np.where(postal["import_date"] >= truce, 0.54, 1.20)
    np.testing.assert_allclose(postal["duty_usd"], postal["value"] * rate, atol=0.006)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_postal_method_is_the_operators_for_the_period(tmp_path, seed):
    """From 29 Aug 2025 (IEEPA 30% on China): with China Post on ad valorem (the world file)
    every postal parcel pays 30% of its value; in the paired run where it declares the per-item
    method (a duty_rule shock), every one pays $200, however cheap, so the mean duty a parcel
    rises far beyond seed noise. Before 29 Aug (EO 14256, 54%) the switch changes nothing."""
    start = dt.date(2025, 8, 8)
    base = us_imports(run(tmp_path, "base", start, 36, seed, ["postal"]), start)
    switched = us_imports(run(tmp_path, "switch", start, 36, seed, ["postal"], [SWITCH]), start)
    eo = dt.date(2025, 8, 29)
    for frame, after in ((base, lambda v: 0.30 * v), (switched, lambda v: np.full(len(v), 200.0))):
        late = frame[frame["import_date"] >= eo]
        early = frame[frame["import_date"] < eo]
        assert len(late) >= 30 and len(early) >= 10
        np.testing.assert_allclose(late["duty_usd"], after(late["value"].to_numpy()), atol=0.006)
        np.testing.assert_allclose(early["duty_usd"], 0.54 * early["value"], atol=0.006)
    a = base.loc[base["import_date"] >= eo, "duty_usd"]
    b = switched.loc[switched["import_date"] >= eo, "duty_usd"]
    assert b.mean() - a.mean() > 2 * np.sqrt(a.var() / len(a) + b.var() / len(b))
    assert (a < 200.0).all()          # the per-item amount never was the cheaper one here
