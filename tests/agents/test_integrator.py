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


def fourpl_shares(seeds, days, **over) -> np.ndarray:
    """The 4PL's share of parcels in runs with these seeds (same seeds: paired comparisons)."""
    shares = []
    for seed in seeds:
        m = Marketplace("baseline", rng=seed, **{**SMALL, **over})
        m.run_for(days)
        shares.append(m.finish()["fourpl_share"])
    return np.array(shares)


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
            # services with room for the volume come first: if any fits, all offered fit (the
            # room on a leg is its resource's open capacity: a buyer may use all its providers)
            front = it.catalogue.cache.get(("src", family), ("dst", family),
                                           edge_ok=lambda u, v, k, d: d["capacity"] > 0, filter_key="open")
            room = np.bincount(m.offers.resource, weights=np.where(m.offers.active, m.offers.capacity, 0.0),
                               minlength=len(m.world.resources))
            if any(s.capacity >= volume for s in front):
                assert all(min(room[m.offers.resource[o]] for o in svc.offers) >= volume for svc in offers.values())
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


def test_the_catalogue_keeps_its_legs_and_fronts_current_as_the_market_moves():
    """After five weeks of weekly price reviews, capacity moves and contracts, and a refresh, every
    leg of the service graph holds values within the materiality thresholds of what the offer
    book and contracts give today (1% on cost, 0.05 days, 0.002 risk, the same capacity class), and every
    cached front is the front a fresh search of the graph finds."""
    m = Marketplace("baseline", rng=4, **SMALL)
    it = m.integrators[0]
    for _ in range(35):
        m.step()
        for family in m.world.route_variants:          # fronts cached along the way
            if family[2] != "replenish":
                it.offers(family, 1.0)
    cat = it.catalogue
    cat.version = -1                 # capacity alone moved since the last price review: revalue now
    cat.refresh()
    offers = np.array([e[2] for e in cat._edges], dtype=np.int64)
    cp, ck, days, risk, cap = cat._leg_values(offers)
    cost = cp + ck * m.reference_weight
    moved = 0
    for i, (u, v, offer, _) in enumerate(cat._edges):
        d = cat.G.edges[u, v, offer]
        assert abs(d["cost"] - cost[i]) <= 0.01 * max(abs(d["cost"]), 1e-9)
        assert abs(d["time"] - days[i]) <= 0.05 and abs(d["risk"] - risk[i]) <= 0.002
        klass = [-1.0 if c <= 0 else float(np.floor(np.log2(c))) for c in (d["capacity"], cap[i])]
        assert klass[0] == klass[1]
        moved += d["cost"] != cost[i]
    assert moved > 0                 # prices did drift below the threshold somewhere
    checked = 0
    for family in m.world.route_variants:
        if family[2] == "replenish":
            continue
        key = (("src", family), ("dst", family), "open")
        if key not in cat.cache:
            continue
        cached = cat.cache.get(*key[:2], filter_key="open")
        fresh = pareto_services(cat.G, ("src", family), ("dst", family),
                                edge_ok=lambda u, v, k, d: d["capacity"] > 0)
        assert [s.legs for s in cached] == [s.legs for s in fresh], family
        checked += 1
    assert checked >= 10


def test_diy_friction_raises_the_4pl_share():
    """Dearer doing it yourself (a transaction cost of 3000 USD per contract and tender period,
    2 days at each hand-off, against none) sends merchants to the 4PL: in every paired seed the
    4PL's share rises, the mean rise is beyond 2 standard errors, and the 4PL wins at least 5% of
    the parcels merchants carried themselves without the friction.

    30 exporters, not 10: with 10 one big merchant's channel moves the share by itself (seen on
    the merged issue-12 model, seeds 1-3: rises 0.031, 0.020, 0.177, mean under 2 s.e.).
    Ten seeds, not five, since the calibrated defaults (issue 14): seeds 1-5 rose 0.209 0.020
    0.060 0.026 0.017, all positive but the mean (0.066) under 2 s.e. (0.073), one seed's large
    rise carrying it. Seen with seeds 1-10: shares 0.442 0.094 0.272 0.398 0.348 0.058 0.175
    0.423 0.474 0.509 -> 0.651 0.115 0.333 0.424 0.364 0.091 0.248 0.482 0.537 0.664, rises mean
    0.072 (s.e. 0.020), 10.5% of the DIY parcels. Returns are off (issue 13): with returns on,
    merchants move to warehouse channels, which blurs the friction's effect; this test isolates it."""
    over = {"merchants.exporters": 30, "returns.enabled": False}
    seeds = list(range(1, 11))
    low = fourpl_shares(seeds, 60, **over,
                        **{"merchants.diy_transaction_cost": 0.0, "merchants.diy_handoff_delay": 0.0})
    high = fourpl_shares(seeds, 60, **over,
                         **{"merchants.diy_transaction_cost": 3000.0, "merchants.diy_handoff_delay": 2.0})
    diff = high - low                       # paired by seed: the effect beyond seed noise
    assert (diff > 0).all() and diff.mean() > 2 * diff.std(ddof=1) / np.sqrt(diff.size), (low, high)
    assert diff.sum() / (1 - low).sum() > 0.05, (low, high)


def test_a_higher_markup_lowers_the_4pl_share():
    """A markup of 60% on cost instead of 2% (the 4PL's price 57% higher) costs it parcels: in
    every paired seed its share falls, the mean fall is beyond 2 standard errors, and it keeps
    under half its parcels (pooled over the seeds).

    The level a seed's share starts from is the world's (0.23 to 0.85 across seeds), so a fixed
    fall in points (the former 0.3) tested the world, not the markup. Seen on the merged issue-12
    model (seeds 1-3): 0.847 0.230 0.433 -> 0.457 0.0004 0.017, falls 0.390 0.230 0.416, kept
    31%; over seeds 1-12 every fall was 0.15 or more and 39% was kept.

    30 exporters, not 10 (issue 13): without the former visibility flag's bonus the 4PL carries
    few merchants' parcels in a 10-exporter world (shares 0.347 0.019 0.040 at 2%), so a few
    merchants' choices decide it, and seed 3's share rose with the markup (0.040 -> 0.044; log
    ratios -0.87 -0.91 +0.09). Seen with 30 (seeds 1-5): 0.353 0.024 0.166 0.371
    0.297 -> 0.135 0.009 0.047 0.176 0.061, log ratios -0.96 -0.90 -1.25 -0.74 -1.56, 35% kept."""
    over = {"merchants.exporters": 30}
    cheap = fourpl_shares([1, 2, 3], 45, **over, **{"integrators.markup": 0.02})
    dear = fourpl_shares([1, 2, 3], 45, **over, **{"integrators.markup": 0.6})
    # the fall relative to the seed's level: without the former visibility flag's bonus the 4PL's
    # levels spread further across seeds (issue 13: 0.353 0.024 0.166 at 2%), so falls in points
    # mix the level with the markup's effect; log ratios do not
    diff = np.log(dear + 1e-3) - np.log(cheap + 1e-3)
    assert (diff < 0).all() and -diff.mean() > 2 * diff.std(ddof=1) / np.sqrt(diff.size), (cheap, dear)
    assert dear.sum() < 0.5 * cheap.sum(), (cheap, dear)


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


def test_integration_efficiency_is_the_optimum_over_the_realised_cost(independent_mcf):
    """Every 7 days the integrator's routing is measured against the centralised optimum of its
    flows: the optimum is what an independent LP finds on the stage graph (each leg at the
    integrator's best price, within the room providers have left), the efficiency is optimum
    over realised cost, and it is reported in the daily series and the summary."""
    import networkx as nx
    from market.integration.efficiency import integrator_flows, leg_prices
    m = Marketplace("baseline", rng=5, **SMALL)
    m.run_for(57)                                  # day 56 is a measuring day
    it = m.integrators[0]
    got = m.efficiency[it.index]
    ts = m.datacollector.get_model_vars_dataframe()
    assert ts["efficiency_4PL-1"].iloc[56] == got["efficiency"]
    # the stage graph: route variants of each family the integrator carries, one parallel leg
    # per offer on each stage (shared by all families)
    best, spot, room = leg_prices(m, it)
    families = {}
    for r, q in integrator_flows(m.mm, m.config.demand.scale, it.index).items():
        fam = m.world.routes[r].family
        families[fam] = families.get(fam, 0.0) + q
    G = nx.MultiDiGraph()
    stages = set()
    for fam in families:
        for r in m.world.route_variants[fam]:
            res = m.world.routes[r].resources
            G.add_edge(("src", fam), ("in", res[0]), cost=0.0)
            G.add_edge(("out", res[-1]), ("dst", fam), cost=0.0)
            for a, b in zip(res[:-1], res[1:]):
                G.add_edge(("out", a), ("in", b), cost=0.0)
            stages.update(res)
    for r in stages:
        for off in m.offers.by_resource.get(r, ()):
            G.add_edge(("in", r), ("out", r), key=int(off), cost=float(best[off]), capacity=float(room[off]))
    penalty = 200.0 * max(float(spot[np.isfinite(spot)].max()), 1.0)
    optimum = independent_mcf(G, [(("src", f), ("dst", f), v) for f, v in families.items()], penalty)
    assert got["optimum"] == pytest.approx(optimum, rel=1e-7)
    assert got["efficiency"] == pytest.approx(optimum / got["realised"], rel=1e-12)
    assert got["volume"] == pytest.approx(sum(families.values()))
    # never better than the planner (the optimum is a lower bound on its cost), and not as good
    # on some days here: the measure is not vacuous (seen: 0.906 to 0.995 over the 57 days)
    eff = ts["efficiency_4PL-1"].dropna()
    assert len(eff) == 57 and (eff <= 1.0 + 1e-9).all() and (eff < 0.99).any()
    s = m.finish()["integrators"]["4PL-1"]
    assert (s["integration_efficiency"], s["optimum_cost_per_day"], s["realised_cost_per_day"]) == \
        (got["efficiency"], got["optimum"], got["realised"])


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


def test_several_integrators_compete():
    m = Marketplace("baseline", rng=7, **{**SMALL, "integrators.count": 3})
    m.run_for(60)
    s = m.finish()
    shares = [v["parcel_share"] for v in s["integrators"].values()]
    assert len(shares) == 3 and sum(x > 0 for x in shares) >= 2
    assert sum(shares) == pytest.approx(s["fourpl_share"])


def test_losses_drive_exit_and_margins_drive_entry(tmp_path, conserved):
    """Providers that lose more than they bear leave (offers closed, contracts terminated, no
    parcel lost or counted twice); where capacity runs short and margins are rich, newcomers
    enter (the rules themselves are tested in tests/market/test_market_structure.py)."""
    from experiments.run import write_results
    m = Marketplace("baseline", rng=8, parcels_path=tmp_path / "parcels.parquet",
                    **{**SMALL, "evolution.period_days": 14, "evolution.exit_window": [1, 1],
                       "evolution.loss_tolerance": [0.0, 0.2], "carriers.fixed_cost_share": 0.85})
    m.run_for(100)
    assert m.evolution.exits > 0
    gone = [p for p in m.carriers + m.operators + m.brokers if not p.in_market]
    assert gone and not m.offers.active[np.concatenate([p.offer_ids for p in gone])].any()
    book = m.contracts
    for p in gone:
        mine = (book.provider == p.unique_id) & np.isin(book.status, [0, 1])
        assert not mine.any()                      # its contracts were terminated
    # parcels on the legs of providers that left are neither lost nor counted twice
    write_results(m, m.finish(), tmp_path, 8, 100)
    conserved(tmp_path)
    rich = Marketplace("baseline", rng=8, **{**SMALL, "evolution.period_days": 14, "carriers.markup": 0.6,
                                             "warehouses.markup": 0.6, "customs_agents.markup": 0.6,
                                             "evolution.entry_hurdle": [0.0, 0.0]})
    n0 = len(rich.carriers) + len(rich.operators) + len(rich.brokers)
    rich.run_for(100)
    assert rich.evolution.entries > 0
    assert len(rich.carriers) + len(rich.operators) + len(rich.brokers) > n0


def test_integration_series_match_the_parcels(simulate):
    """The daily concentration of parcel carriers (HHI of legs started that day) and the number
    of distinct providers a delivered 4PL parcel passed through, rebuilt from parcels.parquet."""
    from market.world import MODES
    r = simulate("baseline", days=40, seed=9, **SMALL)
    m = r.model
    ts = pd.read_parquet(r.out / "timeseries.parquet")
    p = pd.read_parquet(r.out / "parcels.parquet")
    S = m.net.max_stages
    legs = pd.DataFrame({"day": np.concatenate([p[f"leg{s + 1}_start"] for s in range(S)]),
                         "provider": np.concatenate([p[f"leg{s + 1}_provider"] for s in range(S)]),
                         "resource": np.concatenate([m.net.route_res[p["route"], s] for s in range(S)])})
    legs = legs[legs["day"] >= 0]
    legs["mode"] = m.net.res_mode[legs["resource"]]
    checked = 0
    for mode in ("postal", "last_mile"):             # parcel lanes only: no consignment uses them
        mine = legs[legs["mode"] == MODES.index(mode)]
        assert not m.net.res_bulk[mine["resource"]].any()
        counts = mine.groupby(["day", "provider"]).size()
        for day in range(len(ts)):
            got = ts[f"hhi_carriers_{mode}"].iloc[day]
            if day not in counts.index.get_level_values(0):
                assert np.isnan(got), (mode, day)
                continue
            v = counts.loc[day].to_numpy(float)
            assert got == pytest.approx(10_000 * ((v / v.sum()) ** 2).sum(), rel=1e-12), (mode, day)
            checked += 1
    assert checked > 60
    assert ts["hhi_carriers_last_mile"].dropna().nunique() > 10       # shares move from day to day
    # distinct providers per delivered 4PL parcel, by delivery day
    d = p[(p["status"] == "delivered") & (p["integrator"] >= 0)]
    prov = np.column_stack([d[f"leg{s + 1}_provider"] for s in range(S)])
    distinct = np.array([len(set(row[row >= 0])) for row in prov])
    per_day = pd.Series(distinct).groupby(d["finished_day"].to_numpy()).mean()
    got = ts["providers_per_4pl_parcel"]
    assert got.notna().sum() == len(per_day) > 20
    np.testing.assert_allclose(got.dropna().to_numpy(), per_day.to_numpy(), rtol=1e-12)
    assert (per_day > 2).all()


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


def test_a_4pl_service_is_judged_by_the_same_reliability_as_shipping_oneself():
    """A merchant weighs an option's reliability as the chance of neither loss nor damage on the
    way. Its own route's is 1 - Network.route_risk; a 4PL service's must be the same measure at
    the providers the 4PL picked (their loss multipliers), not the composition's wider risk
    (which adds delays and customs holds, and so once made every 4PL service look less reliable
    than the same route shipped oneself: a high reliability weight drove the 4PL's share to 0).
    Recomputed here from the offer book; with every provider at the lane's own loss rate, a
    4PL service and the merchant's own route have the same reliability."""
    m = Marketplace("baseline", rng=4, **SMALL)
    m.run_for(3)
    net, book = m.net, m.offers

    def recomputed(svc) -> float:
        ok = 1.0
        for off in svc.offers:
            r = book.resource[off]
            ok *= 1.0 - min((net.res_loss[r] + net.res_damage[r]) * book.loss_mult[off], 1.0)
        return ok

    def fourpl_options():
        for merchant in m.merchants:
            for row in merchant.rows:
                for opt in merchant.options(int(row)):
                    yield int(row), opt

    checked = 0
    for row, opt in fourpl_options():
        if opt.integrator < 0:
            assert opt.reliability == pytest.approx(1.0 - net.route_risk[opt.route], abs=1e-12)
            continue
        # the service the merchant was quoted: the integrator's menu at the merchant's volume
        volume = m.mm.base[row] * m.config.demand.scale
        svc = m.integrators[opt.integrator].offers(m.world.routes[opt.route].family, volume)[opt.service]
        assert svc.route == opt.route
        assert opt.reliability == pytest.approx(recomputed(svc), abs=1e-12)
        checked += 1
    assert checked > 20

    # every provider at its lane's own loss rate: the same route, the same reliability
    book.loss_mult[:] = 1.0
    for it in m.integrators:
        it.catalogue._menus.clear()
    same = 0
    for _, opt in fourpl_options():
        if opt.integrator >= 0:
            assert opt.reliability == pytest.approx(1.0 - net.route_risk[opt.route], abs=1e-12)
            same += 1
    assert same > 20
