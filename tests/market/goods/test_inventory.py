"""Stock and consignments over whole runs: who insures a bulk consignment, and how a merchant
ships while a newly chosen warehouse waits for its first stock."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.run import run_scenario

SMALL = {"merchants.exporters": 10, "merchants.importers": 3}
# sea and rail 100 times riskier than usual, so consignments are lost within a short run; a
# Hague-Visby-like carrier liability (USD 2/kg) leaves most of a consignment's value uncovered
RISKY_SEA = {"integrators.count": 1, "carriers.liability_per_kg": 2.0,
             "merchants.allowed_channels": ["overseas_warehouse", "postal"],
             "shocks": [{"name": "piracy", "kind": "risk", "day": 0, "modes": ["sea", "rail"], "factor": 100.0}]}


def _risky_run(tmp_path, risk_aversion):
    over = dict(SMALL, **RISKY_SEA, **{"insurance.risk_aversion": risk_aversion})
    r = run_scenario("baseline", days=120, seed=5, out=tmp_path / "o", overrides=over, progress=False)
    claims = pd.read_parquet(tmp_path / "o" / "claims.parquet")
    ledger = pd.read_parquet(tmp_path / "o" / "ledger.parquet")
    parcels = pd.read_parquet(tmp_path / "o" / "parcels.parquet")
    cons = claims[claims["parcel_id"] < 0]          # consignments are claimed as -1 - id
    return r, cons, ledger, parcels, claims


def _ids(cons, kind, via_4pl=None):
    c = cons[cons["kind"] == kind]
    if via_4pl is not None:
        c = c[c["via_4pl"] == via_4pl]
    return set(c["parcel_id"])


def test_risk_averse_merchants_insure_their_consignments(tmp_path):
    r, cons, ledger, parcels, _ = _risky_run(tmp_path, [20.0, 30.0])
    lost_diy = _ids(cons, "loss", via_4pl=False)
    assert r.summary["consignments_lost"] >= len(lost_diy) > 0
    # every lost consignment, the merchant's own and the integrator's, is claimed from the insurer
    assert _ids(cons, "insurance", via_4pl=False) == lost_diy
    assert _ids(cons, "insurance", via_4pl=True) == _ids(cons, "loss", via_4pl=True)
    # premiums on consignments come on top of those on parcels
    assert ledger.loc[ledger["kind"] == "premium", "amount_usd"].sum() > parcels["premium_usd"].sum() + 1.0


def test_merchants_without_risk_aversion_do_not_insure_but_the_integrator_does(tmp_path):
    r, cons, ledger, parcels, claims = _risky_run(tmp_path, [0.0, 0.0])
    assert _ids(cons, "loss", via_4pl=False)             # merchants lost consignments ...
    assert not _ids(cons, "insurance", via_4pl=False)     # ... and had no cover
    lost_4pl = _ids(cons, "loss", via_4pl=True)
    assert lost_4pl and _ids(cons, "insurance", via_4pl=True) == lost_4pl
    assert parcels.loc[parcels["integrator"] < 0, "insured"].sum() == 0
    # what the insurer paid is booked as insurance payouts, and only that
    paid = claims.loc[claims["kind"] == "insurance", "paid_usd"].sum()
    assert paid > 0
    assert ledger.loc[ledger["kind"] == "insurance_payout", "amount_usd"].sum() == pytest.approx(paid)
    assert r.summary["insurance"]["payouts_usd"] == pytest.approx(paid)


def test_a_merchant_moving_to_a_warehouse_ships_as_before_until_its_stock_arrives(tmp_path):
    """Direct channels only for 60 days, then overseas warehouses: until a merchant's first stock
    is in, its stock-outs go by the direct route it used; after that, by express. A demand rush
    at the end makes stock-outs after the stock has arrived."""
    over = dict(SMALL, **{"integrators.count": 0, "shocks": [
        {"name": "direct only", "kind": "channels", "day": 0, "days": 60,
         "channels": ["postal", "express", "dedicated_line"]},
        {"name": "to warehouses", "kind": "channels", "day": 60, "channels": ["overseas_warehouse", "postal"]},
        {"name": "rush", "kind": "demand", "day": 135, "days": 15, "factor": 4.0}]})
    run_scenario("baseline", days=150, seed=4, out=tmp_path / "o", overrides=over, progress=False)
    p = pd.read_parquet(tmp_path / "o" / "parcels.parquet")
    first_stock = (p[p["channel"] == "overseas_warehouse"].groupby(["merchant", "market"])["created_day"]
                   .min().rename("first_stock"))
    fb = p[p["fallback"] == 1].join(first_stock, on=["merchant", "market"])
    # a market that moved late may still wait for its first stock at the end: all its stock-outs
    # come before it (but some must have had their stock in by then)
    assert fb["first_stock"].notna().any()
    fb["first_stock"] = fb["first_stock"].fillna(np.inf)
    before = fb[fb["created_day"] < fb["first_stock"]]
    after = fb[fb["created_day"] >= fb["first_stock"]]
    assert len(before) > 100 and len(after) > 100
    # before: each market's previous direct channel, the one its last own (not fallback) direct
    # order before its first stock-out used (merchants answer prices, so a few chose express
    # while direct channels only were open; and postal stays open after day 60, so a market can
    # move to the post first and to its warehouse later: seed 4, a merchant's RU market on the
    # dedicated line until day 60, by post from then until its warehouse move on day 103)
    first_fallback = fb.groupby(["merchant", "market"])["created_day"].min().rename("first_fallback")
    own = p[(p["fallback"] == 0) & (p["channel"] != "overseas_warehouse")].join(
        first_fallback, on=["merchant", "market"])
    direct = (own[own["created_day"] < own["first_fallback"]].sort_values("created_day")
              .groupby(["merchant", "market"])["channel"].last().rename("direct_channel"))
    before = before.join(direct, on=["merchant", "market"])
    assert (before["channel"] == before["direct_channel"]).all()
    assert len(set(before["channel"]) - {"express"}) >= 1      # not the express rule of 'after'
    assert before["created_day"].min() >= 60
    # after the first stock arrived: express only
    assert set(after["channel"]) == {"express"}


def test_warehouse_space_is_shared_and_never_exceeded(tmp_path, conserved):
    """With a twentieth of the usual space, stock plus stock on its way stays within every
    warehouse's space on every day, orders are cut to fit, and more orders find no stock."""
    from experiments.run import write_results
    from market import Marketplace
    over = dict(SMALL, **{"merchants.allowed_channels": ["overseas_warehouse", "bonded_warehouse", "postal"],
                          "evolution.enabled": False})
    runs = {}
    for scale in (1.0, 0.05):
        out = tmp_path / str(scale)
        m = Marketplace("baseline", rng=5, parcels_path=out / "parcels.parquet", **over,
                        **{"warehouses.space_scale": scale})
        space = m.inventory.space()
        assert (m.inventory.held() <= space).all()          # the opening stock fits too
        for _ in range(120):
            m.step()
            assert (m.inventory.held() <= space).all()
            assert (m.inventory.stock.sum(axis=0) <= space).all()
        runs[scale] = m.finish()
        write_results(m, runs[scale], out, 5, 120)
        conserved(out)
    tight, roomy = runs[0.05]["warehouse_space"], runs[1.0]["warehouse_space"]
    assert all(w["shortfall_units"] == 0 for w in roomy.values())
    assert sum(w["shortfall_units"] for w in tight.values()) > 0
    assert max(w["peak_share_committed"] for w in tight.values()) > 0.95
    assert all(w["peak_share_committed"] <= 1.0 for w in tight.values())
    assert runs[0.05]["stockouts"] > 2 * runs[1.0]["stockouts"]


def test_operators_add_space_where_stock_was_turned_away():
    """Reviews every 30 days: a warehouse that cut orders for want of space gets more of it, the
    others keep theirs (no entrants here, so space changes only by growth)."""
    from market import Marketplace
    over = dict(SMALL, **{"merchants.allowed_channels": ["overseas_warehouse", "postal"],
                          "warehouses.space_scale": 0.05, "evolution.max_entrants": 0})
    m = Marketplace("baseline", rng=5, **over)
    start = m.inventory.space()
    last_review = 3 * m.config.evolution.period_days
    while m.day < last_review - 1:
        m.step()
    seen = m.metrics.space_short.copy()          # what the reviews up to the last one saw
    m.run_for(10)
    grew = m.inventory.space() > start
    assert grew.any()
    np.testing.assert_array_equal(grew, seen > 0)
    np.testing.assert_array_equal(m.inventory.space()[~grew], start[~grew])



def test_stock_on_order_that_replenishment_counts_matches_a_count_over_the_consignments():
    """What a merchant's replenishment counts on its way to a warehouse (tracked consignments,
    and untracked ones until their due day) against a count made afresh from every consignment
    on its way, each day of a run where consignments arrive, get lost and go overdue."""
    from market import Marketplace
    from market.goods.inventory import IN_TRANSIT
    from market.scenario import load_scenario

    cfg = load_scenario("baseline", overrides=dict(RISKY_SEA, **{"merchants.exporters": 20}))
    model = Marketplace(cfg, rng=3)
    inv = model.inventory
    products = np.arange(inv.stock.shape[0])
    checked_unseen = overdue = 0
    for _ in range(120):
        model.step()
        day = model.day + 1                 # replenishment's next call
        for wh in range(inv.stock.shape[1]):
            expected = np.zeros(products.size, dtype=np.int64)
            for c in inv.consignments:
                if c.status == IN_TRANSIT and c.warehouse == wh:
                    if c.seen or day <= c.due_day:
                        np.add.at(expected, c.products, c.qty)
                    overdue += int(not c.seen and day > c.due_day)
                    checked_unseen += int(not c.seen)
            np.testing.assert_array_equal(inv.on_order_counted(products, wh, day), expected)
    assert inv.unseen_dispatched > 0 and checked_unseen > 0 and overdue > 0
    assert model.metrics.consignments_lost > 0
