"""The 4PL integrator: service composition, pricing, merchant choice, re-routing, evolution."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from experiments.run import run_scenario
from market import Marketplace
from market.integration.composition import brute_force_pareto, pareto_services

SMALL = {"merchants.exporters": 10, "merchants.importers": 3}


def fourpl_share(seeds, days=90, **over):
    shares = []
    for seed in seeds:
        m = Marketplace("baseline", rng=seed, **{**SMALL, **over})
        m.run_for(days)
        s = m.finish()
        shares.append(s["fourpl_share"])
    return float(np.mean(shares))


def test_composed_services_are_valid_paths():
    m = Marketplace("baseline", rng=1, **SMALL)
    m.run_for(2)
    it = m.integrators[0]
    checked = 0
    for family, variants in m.world.route_variants.items():
        if family[2] == "replenish":
            continue
        for volume in (1.0, 50.0):
            offers = it.offers(family, volume)
            for svc in offers.values():
                route = m.world.routes[svc.route]
                assert svc.route in variants and route.channel == family[2]      # the channel's own legs
                assert len(svc.offers) == route.n_stages
                for stage, off in enumerate(svc.offers):
                    assert m.offers.resource[off] == route.resources[stage]          # a leg of that stage
                    assert m.offers.active[off]
                    assert m.offers.capacity[off] > 0                                 # an open leg
            # services with room for the volume come first: if any fits, all offered fit
            front = it.catalogue.cache.get(("src", family), ("dst", family),
                                           edge_ok=lambda u, v, k, d: d["capacity"] > 0, filter_key="open")
            if any(s.capacity >= volume for s in front):
                assert all(min(m.offers.capacity[o] for o in svc.offers) >= volume for svc in offers.values())
                assert svc.cost_parcel > 0 and svc.days > 0 and 0 <= svc.risk < 1
                checked += 1
    assert checked > 20


def test_composition_equals_brute_force_on_the_service_graph():
    m = Marketplace("baseline", rng=2, **SMALL)
    m.run_for(1)
    it = m.integrators[0]
    it.offers(("harbin_wh", "RU", "border_warehouse"), 1.0)       # builds the catalogue
    G = it.catalogue.G
    for family in [("harbin_wh", "RU", "border_warehouse"), ("shenzhen", "US", "express"), ("us_wh", "US", "overseas_warehouse")]:
        src, dst = ("src", family), ("dst", family)
        fast = pareto_services(G, src, dst)
        slow = brute_force_pareto(G, src, dst)
        assert {s.vector() for s in fast} == {s.vector() for s in slow}
        assert len(fast) >= 1


def test_diy_friction_raises_the_4pl_share():
    low = fourpl_share([1, 2, 3], **{"merchants.diy_transaction_cost": 0.0, "merchants.diy_handoff_delay": 0.0})
    high = fourpl_share([1, 2, 3], **{"merchants.diy_transaction_cost": 3000.0, "merchants.diy_handoff_delay": 2.0})
    assert high > low + 0.1


def test_a_higher_markup_lowers_the_4pl_share():
    cheap = fourpl_share([1, 2, 3], **{"integrators.markup": 0.02})
    dear = fourpl_share([1, 2, 3], **{"integrators.markup": 0.6})
    assert cheap > dear + 0.1


def test_a_closed_border_shifts_the_integrators_flow(tmp_path):
    over = {**SMALL, "merchants.allowed_channels": ["border_warehouse"], "merchants.diy_transaction_cost": 5000.0,
            "merchants.diy_handoff_delay": 3.0, "simulation.start_date": dt.date(2024, 2, 1)}
    r = run_scenario("ru-border-closure", days=80, seed=4, out=tmp_path / "o", overrides=over, progress=False)
    m = r.model
    p = pd.read_parquet(tmp_path / "o" / "parcels.parquet")
    bw = p[(p["channel"] == "border_warehouse") & (p["integrator"] >= 0)]
    assert len(bw) > 100
    via_zab = bw["route"].map(lambda rt: any("zabaikalsk" in m.world.resources[x].name
                                             for x in m.world.routes[rt].resources))
    closure = (dt.date(2024, 3, 1) - dt.date(2024, 2, 1)).days
    before = bw["created_day"] < closure - 10
    during = (bw["created_day"] >= closure) & (bw["created_day"] < closure + 42)
    assert via_zab[during].mean() > 0.9          # re-routed around the closed crossing
    assert via_zab[before].mean() < 0.5           # the cheaper Suifenhe crossing before
    assert m.integrators[0].rerouted > 0


def test_integration_efficiency_is_at_most_one_and_reported(tmp_path):
    r = run_scenario("baseline", days=60, seed=5, out=tmp_path / "o", overrides=SMALL, progress=False)
    s = r.summary["integrators"]["4PL-1"]
    assert 0 < s["integration_efficiency"] <= 1 + 1e-9
    assert s["optimum_cost_per_day"] <= s["realised_cost_per_day"] + 1e-6
    ts = pd.read_parquet(tmp_path / "o" / "timeseries.parquet")
    eff = ts["efficiency_4PL-1"].dropna()
    assert len(eff) > 5 and (eff <= 1 + 1e-9).all() and (eff > 0).all()


@pytest.mark.parametrize("pricing", ["value_based", "adaptive"])
def test_pricing_policies(pricing):
    m = Marketplace("baseline", rng=6, **{**SMALL, "integrators.pricing": pricing, "merchants.review_days": 7})
    m.run_for(60)
    it = m.integrators[0]
    if pricing == "value_based":
        markup, _ = it.price(10.0, 14.0)
        assert 10.0 <= 10.0 * (1 + markup) <= 14.0
        assert it.price(10.0, 9.0)[0] == pytest.approx(m.config.integrators.min_markup)
    else:
        assert it.policy.pulls.sum() > 20          # it has learned from quotes
        assert m.config.integrators.min_markup <= it.markup <= m.config.integrators.max_markup
    s = m.finish()
    assert s["ledger_imbalance"] == 0


def test_several_integrators_compete():
    m = Marketplace("baseline", rng=7, **{**SMALL, "integrators.count": 3})
    m.run_for(60)
    s = m.finish()
    shares = [v["parcel_share"] for v in s["integrators"].values()]
    assert len(shares) == 3 and sum(x > 0 for x in shares) >= 2
    assert sum(shares) == pytest.approx(s["fourpl_share"])


def test_losses_drive_exit_and_margins_drive_entry():
    m = Marketplace("baseline", rng=8, **{**SMALL, "evolution.period_days": 14, "evolution.exit_after": 2,
                                          "carriers.fixed_cost_share": 0.85, "evolution.entry_margin": 0.0})
    n0 = len(m.carriers) + len(m.operators) + len(m.brokers)
    m.run_for(100)
    assert m.evolution.exits > 0 and m.evolution.entries > 0
    gone = [p for p in m.carriers + m.operators + m.brokers if not p.in_market]
    assert gone and not m.offers.active[np.concatenate([p.offer_ids for p in gone])].any()
    book = m.contracts
    for p in gone:
        mine = (book.provider == p.unique_id) & np.isin(book.status, [0, 1])
        assert not mine.any()                      # its contracts were terminated
    assert len(m.carriers) + len(m.operators) + len(m.brokers) > n0
    new = [p for p in m.carriers + m.operators + m.brokers if p.in_market][-1]
    s = m.finish()
    assert s["ledger_imbalance"] == 0
    assert s["parcels_created"] == s["parcels_delivered"] + s["parcels_in_transit"] + s["parcels_lost"]
    del new


def test_integration_series_are_recorded():
    m = Marketplace("baseline", rng=9, **SMALL)
    m.run_for(40)
    ts = m.datacollector.get_model_vars_dataframe()
    for col in ("fourpl_share", "share_4PL-1", "markup_4PL-1", "providers_per_4pl_parcel",
                "hhi_carriers_last_mile", "hhi_warehouses", "active_carriers"):
        assert col in ts.columns
    assert ((ts["hhi_warehouses"].dropna() > 0) & (ts["hhi_warehouses"].dropna() <= 10000)).all()
    assert (ts["providers_per_4pl_parcel"].dropna() >= 1).all()


def test_end_to_end_contracts_and_competing_policies():
    m = Marketplace("baseline", rng=10, **{**SMALL, "integrators.count": 3,
                                           "integrators.pricing_by_integrator": ["cost_plus", "value_based", "adaptive"]})
    m.run_for(60)
    assert [it.pricing for it in m.integrators] == ["cost_plus", "value_based", "adaptive"]
    c = m.contracts.frame()
    e2e = c[c["service"] == "end_to_end"]
    # every merchant market bought from an integrator has one active end-to-end contract with it
    via = np.flatnonzero(m.mm.integrator >= 0)
    active = e2e[e2e["status"] == "active"]
    assert len(active) == len(via)
    assert set(active["provider"]) <= {it.unique_id for it in m.integrators}
    assert (active["rate_parcel"] > 0).all()
    assert m.finish()["ledger_imbalance"] == 0
