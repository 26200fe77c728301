"""Procurement and contracting inside whole simulations: each mechanism runs, money and
parcels stay conserved, and the contract life cycle, claims, insurance and reputation work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.run import run_scenario
from market import Marketplace
from market.goods.allocation import call_auction_allocate, zi_auction_allocate

# a 4PL at cost: without it a market this small has little pooled volume to contract (merchants
# doing it themselves rarely contract so little; the 4PL no longer gets a visibility flag's bonus)
SMALL = {"merchants.exporters": 8, "merchants.importers": 3, "integrators.markup": 0.0}


def run(tmp_path, days=100, seed=3, **over):
    return run_scenario("baseline", days=days, seed=seed, out=tmp_path / "o",
                        overrides={**SMALL, **over}, progress=False)


@pytest.mark.parametrize("fmt", ["first_price", "vickrey", "clock", "package"])
def test_each_auction_format_contracts_and_conserves(tmp_path, fmt, conserved):
    run(tmp_path, **{"market.auction": fmt})
    conserved(tmp_path / "o")
    c = pd.read_parquet(tmp_path / "o" / "contracts.parquet")
    assert len(c) > 20
    mech = set(c["mechanism"])
    if fmt == "package":
        assert {"package/bundle", "package/single"} & mech
    else:
        assert fmt in mech
    # every contract records its tender: bids received, winning bid, and a positive rate
    assert (c["n_bids"] >= 1).all() and (c["winning_bid"] > 0).all()
    assert ((c["rate_parcel"] + c["rate_kg"] + c["rate_shipment"] + c["rate_storage"]) > 0).all()
    # legs ran under those contracts
    p = pd.read_parquet(tmp_path / "o" / "parcels.parquet")
    # (issue 13: 0.15-0.16 of first legs here, against 0.2 and more while the 4PL had the former
    # visibility flag's bonus and pooled more of this small market)
    assert (p["leg1_contract"] >= 0).mean() > 0.1


def test_contract_net_subcontracts_legs(tmp_path, conserved):
    run(tmp_path, **{"integrators.procurement": "contract_net"})
    c = pd.read_parquet(tmp_path / "o" / "contracts.parquet")
    subs = c[c["mechanism"] == "contract_net/sub"]
    leads = c[c["mechanism"] == "contract_net"]
    assert len(leads) > 0 and len(subs) > 0
    # a subcontracted leg: the buyer pays the lead, the lead pays the provider that serves it
    assert (subs["sub_acct"] >= 0).all() and (subs["provider_acct"] != subs["sub_acct"]).all()
    assert (subs["rate_parcel"] >= subs["sub_rate_parcel"] - 1e-9).all()
    ts = pd.read_parquet(tmp_path / "o" / "timeseries.parquet")
    assert ts["subcontracted_usd"].sum() > 0
    conserved(tmp_path / "o")


@pytest.mark.parametrize("spot", ["double_auction", "zi_double_auction"])
def test_spot_double_auction_clears(tmp_path, conserved, spot):
    run(tmp_path, days=60, **{"market.spot": spot, "network.capacity_scale": 0.3})
    ts = pd.read_parquet(tmp_path / "o" / "timeseries.parquet")
    assert ts["spot_auction_trades"].sum() > 100
    conserved(tmp_path / "o")


def test_call_auction_clears_each_market_at_one_price():
    """Per resource, against a recomputation from the sorted bids and ask slots: as many units
    trade as the k-th highest bid meets the k-th cheapest slot, the highest bids trade, every
    trade is at one price between the dearest accepted ask and the lowest accepted bid, and no
    offer sells more than its spare slots."""
    rng = np.random.default_rng(1)
    traded_any = 0
    for _ in range(150):
        R = int(rng.integers(1, 4))
        n, no = int(rng.integers(1, 25)), int(rng.integers(1, 6))
        res, bid = rng.integers(0, R, n), rng.uniform(0, 10, n).round(2)
        ores, spare, ask = rng.integers(0, R, no), rng.integers(0, 5, no).astype(float), rng.uniform(0, 10, no).round(2)
        off, price = call_auction_allocate(res, bid, ores, spare, ask)
        for r in range(R):
            u, o = np.flatnonzero(res == r), np.flatnonzero(ores == r)
            bids_desc = np.sort(bid[u])[::-1]
            slots = np.sort(np.repeat(ask[o], spare[o].astype(int)))
            k = min(bids_desc.size, slots.size)
            volume = int(np.sum(bids_desc[:k] >= slots[:k]))
            traded = u[off[u] >= 0]
            assert traded.size == volume
            if volume == 0:
                assert np.isnan(price[u]).all()
                continue
            traded_any += 1
            assert bid[traded].min() >= bids_desc[volume - 1] - 1e-12     # the highest bids trade
            p = price[traded]
            assert np.allclose(p, p[0])
            assert ask[off[traded]].max() <= p[0] + 1e-9 <= bid[traded].min() + 2e-9
            assert (ores[off[traded]] == r).all()
            assert (np.bincount(off[traded], minlength=no) <= spare).all()
    assert traded_any > 50


def test_zero_intelligence_spot_trades_within_budgets():
    """The continuous double auction with zero-intelligence traders: each trade is between a
    unit and an offer of its resource, at a price no unit pays above its bid and no offer takes
    below its ask, within the offers' spare slots; with a seeded generator it is reproducible."""
    rng = np.random.default_rng(2)
    trades = 0
    for _ in range(60):
        R = int(rng.integers(1, 3))
        n, no = int(rng.integers(1, 30)), int(rng.integers(1, 5))
        res, bid = rng.integers(0, R, n), rng.uniform(5, 10, n)
        ores, spare, ask = rng.integers(0, R, no), rng.integers(0, 8, no).astype(float), rng.uniform(3, 8, no)
        seed = int(rng.integers(1 << 30))
        off, price = zi_auction_allocate(res, bid, ores, spare, ask, np.random.default_rng(seed))
        again = zi_auction_allocate(res, bid, ores, spare, ask, np.random.default_rng(seed))
        np.testing.assert_array_equal(off, again[0])
        t = off >= 0
        trades += int(t.sum())
        assert (ores[off[t]] == res[t]).all()
        assert (price[t] <= bid[t] + 1e-12).all() and (price[t] >= ask[off[t]] - 1e-12).all()
        assert (np.bincount(off[t], minlength=no) <= spare).all()
        assert np.isnan(price[~t]).all()
    assert trades > 100


def test_adaptive_bidders_learn():
    """Adaptive bidders raise their markup after a tender round they won something in, cut it
    after one they bid in and lost, and leave it where they did not bid; within the bounds.

    Who bid is the round's own record (``TenderRound.bid_offers``): a tender whose asks are all
    above the buyer's spot-based reserve signs nothing, yet its bidders lost; since posted spot
    sits 15% under list when capacity is slack (the capacity part), cost-plus asks often are
    above that reserve, so the resources with a signed contract no longer name every bidder
    and far fewer contracts are signed (seen, seed 2: 24, 9, 22 and 21 offers won in the four
    rounds, 43, 28, 33 and 35 bid). The bidders are checked against the test's own view: eligible
    offers on resources some buyer planned volume on."""
    from market.procurement import tendering
    rounds_seen: list[tendering.TenderRound] = []
    real_run = tendering.TenderRound.run

    def recording(self):
        real_run(self)
        rounds_seen.append(self)

    m = Marketplace("baseline", rng=2, **{**SMALL, "market.bidding": "adaptive", "market.tender_interval_days": 15,
                                          "market.contract_days": 15, "evolution.enabled": False})
    lo, hi = m.config.carriers.markup_bounds
    rounds = up = down = 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tendering.TenderRound, "run", recording)
        for day in range(50):
            before, n = m.offers.markup.copy(), m.offers.n
            eligible = m.offers.active & (m.offers.capacity > 0)
            planned = {r for (_, r), v in m.plan.volumes.items() if v > 0}
            m.step()
            after = m.offers.markup[:n]
            if day % 15:
                np.testing.assert_array_equal(after, before)        # only tenders move the markups
                continue
            rnd = rounds_seen[-1]
            assert rnd.day == day
            bid = np.zeros(n, dtype=bool)
            bid[np.concatenate(rnd.bid_offers)] = True
            assert (eligible & np.isin(m.offers.resource[:n], list(planned)))[bid].all()
            book = m.contracts
            signed = np.flatnonzero((book.round == day) & (book.offer >= 0))
            won = np.zeros(n, dtype=bool)
            won[book.offer[signed]] = True
            assert bid[won].all()
            lost = bid & ~won
            # enough of both to see (issue 13's smaller 4PL pool: 21 won and 7 lost on day 0, seed 2)
            assert won.sum() > 5 and lost.sum() > 5, (day, won.sum(), lost.sum())
            assert ((after[won] > before[won]) | np.isclose(after[won], hi)).all()
            assert ((after[lost] < before[lost]) | np.isclose(after[lost], lo)).all()
            np.testing.assert_array_equal(after[~bid], before[~bid])
            assert ((after >= lo) & (after <= hi)).all()
            rounds += 1
            up += int((after[won] > before[won]).sum())
            down += int((after[lost] < before[lost]).sum())
    assert rounds == 4 and up > 20 and down > 20, (rounds, up, down)


def test_contract_life_cycle_and_shortfall(tmp_path):
    r = run(tmp_path, days=200, **{"market.commitment_share": 1.0, "market.shortfall_fee_share": 0.5,
                                  "market.contract_cover": 2.0})
    c = pd.read_parquet(tmp_path / "o" / "contracts.parquet")
    c = c[c["service"] != "end_to_end"]            # leg contracts (merchants' 4PL services end on a switch)
    assert {"executed", "active"} <= set(c["status"].astype(str))
    ended = c[c["status"].astype(str).isin(["executed", "breached", "expired"])]
    assert len(ended) > 0
    # with capacity contracted at twice the need and all of it committed, shortfalls are charged
    assert (ended["shortfall_fee_usd"] > 0).any()
    j = pd.read_parquet(tmp_path / "o" / "ledger.parquet")
    assert j.loc[j["kind"] == "shortfall_fee", "amount_usd"].sum() == pytest.approx(ended["shortfall_fee_usd"].sum())
    # a contract is breached when too few of its legs were on time
    late_share = ended["late"] / ended["executed"].where(ended["executed"] > 0)
    breached = ended["status"].astype(str) == "breached"
    assert (late_share[breached] > 1 - r.model.config.market.sla_target - 1e-9).all()
    assert (late_share[ended["status"].astype(str) == "executed"] <= 1 - r.model.config.market.sla_target + 1e-9).all()


def test_claims_disputes_and_insurance(tmp_path, conserved):
    r = run(tmp_path, days=200, **{"claims.dispute_rate": 0.5, "insurance.risk_aversion": [2.0, 3.0],
                                   "integrators.count": 0})
    s = r.summary
    claims = pd.read_parquet(tmp_path / "o" / "claims.parquet")
    assert s["claims"]["filed"] == len(claims) > 0
    assert s["claims"]["disputed"] > 0 and s["claims"]["dispute_costs_usd"] > 0
    paid = claims[claims["status"] == "paid"]
    # disputed claims take longer and pay part; undisputed pay in full
    assert (paid.loc[~paid["disputed"], "paid_usd"] == paid.loc[~paid["disputed"], "amount_usd"]).all()
    assert (paid.loc[paid["disputed"], "paid_usd"] <= paid.loc[paid["disputed"], "amount_usd"]).all()
    delay = paid["paid_day"] - paid["filed_day"]
    assert delay[paid["disputed"]].mean() > delay[~paid["disputed"]].mean()
    # risk-averse merchants insured their parcels: premiums paid, insurer paid claims
    assert s["insurance"]["premiums_usd"] > 0 and s["insurance"]["payouts_usd"] > 0
    assert (claims["kind"] == "insurance").any()
    j = pd.read_parquet(tmp_path / "o" / "ledger.parquet")
    # carriers' liability is booked as "claim" (with the 4PL making merchants whole), the insurer's
    # payments as "insurance_payout": together they are what the claims table says was paid
    ins_paid = paid.loc[paid["kind"] == "insurance", "paid_usd"].sum()
    assert ins_paid > 0
    assert j.loc[j["kind"] == "insurance_payout", "amount_usd"].sum() == pytest.approx(ins_paid)
    assert j.loc[j["kind"] == "insurance_payout", "amount_usd"].sum() == pytest.approx(s["insurance"]["payouts_usd"])
    assert j.loc[j["kind"] == "claim", "amount_usd"].sum() == pytest.approx(paid["paid_usd"].sum() - ins_paid)
    conserved(tmp_path / "o")


def test_reputation_tracks_performance():
    """A carrier that is late and loses parcels far more often ends with the worst reputation."""
    m = Marketplace("baseline", rng=4, **SMALL)
    group = [c for c in m.carriers if c.group == "local_courier"]
    bad = group[0]
    m.offers.delay_mult[bad.offer_ids] = 8.0
    m.offers.loss_mult[bad.offer_ids] = 8.0
    m.run_for(90)
    uids = np.array([c.unique_id for c in group])
    evidence = m.reputation.positive[uids].sum(axis=1) + m.reputation.negative[uids].sum(axis=1)
    assert (evidence > 10).all()
    score = m.reputation.score(uids)
    assert score[0] < score[1:].min()
    assert ((score > 0) & (score < 1)).all()


def test_credit_premium_for_buyers_in_debt():
    from market.procurement.tendering import TenderRound
    m = Marketplace("baseline", rng=5, **SMALL)
    m.run_for(1)
    rnd = TenderRound(m, 1)
    mer = m.merchants[0]
    r = int(next(iter(m.offers.by_resource)))
    offs = m.offers.by_resource[r]
    good = rnd.asks(offs, 50.0, False, mer.acct)["ref"]
    m.reputation.record_payments(np.full(200, mer.unique_id), np.zeros(200, dtype=bool))
    bad = rnd.asks(offs, 50.0, False, mer.acct)["ref"]
    assert (bad > good).all()
