"""Tenders inside whole simulations: who wins and what each winner is paid, checked against an
independent recomputation from the bids each tender received.

Every call the tender rounds make to :func:`market.mechanisms.auctions.award_tender` is
recorded (the real function still does the work) together with the day, the first contract id
it can sign and each bidder's reputation in the model's book at that moment. From those bids,
the model's own tables (reliability) and the contract history (incumbents), this file recomputes
each bid's score, the optimal award by brute force over the winner sets, and the VCG payments,
and compares them with the contracts written to contracts.parquet.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

import market.procurement.tendering as tendering
from experiments.run import write_results
from market import Marketplace
from market.world import HANDLING, TRANSPORT

SMALL = {"merchants.exporters": 8, "merchants.importers": 3}
# four tender rounds in 100 days (days 0, 30, 60, 90): reputations differ from round 2 on
RULES = {"market.tender_interval_days": 30, "market.contract_days": 30}
DAYS = 100
TOL = 1e-9


def run_recorded(out, auction: str, seed: int = 5, **over):
    """Run the baseline (small market) with every tender's bids recorded; write its files."""
    m = Marketplace("baseline", rng=seed, parcels_path=out / "parcels.parquet",
                    **SMALL, **RULES, **{"market.auction": auction}, **over)
    calls = []
    real = tendering.award_tender

    def recording_award_tender(bids, demand, **kw):
        calls.append({"day": m.day, "first_contract": m.contracts.n, "bids": bids.subset(np.arange(len(bids))),
                      "demand": float(demand), "kw": dict(kw),
                      "book_reputation": m.reputation.score(bids.bidder).copy()})
        award = real(bids, demand, **kw)
        calls[-1]["n_won"] = int((award.quantity > 1e-9).sum())
        return award

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tendering, "award_tender", recording_award_tender)
        for _ in range(DAYS):
            m.step()
    summary = m.finish()
    write_results(m, summary, out, seed, DAYS)
    return m, calls, pd.read_parquet(out / "contracts.parquet")


@pytest.fixture(scope="module")
def first_price(tmp_path_factory):
    out = tmp_path_factory.mktemp("first-price")
    return run_recorded(out, "first_price")


@pytest.fixture(scope="module")
def vickrey(tmp_path_factory):
    out = tmp_path_factory.mktemp("vickrey")
    return run_recorded(out, "vickrey", **{"market.bidding": "truthful"})


# ------------------------------------------------------------------ independent recomputation
def best_award(score: np.ndarray, cap: np.ndarray, demand: float, k: int) -> tuple[float, float, np.ndarray]:
    """(covered, least total score, quantities): the cheapest way to cover as much of ``demand``
    as the ``k`` largest capacities allow, with at most ``k`` winners, by enumerating every
    winner set and filling it cheapest score first."""
    n = score.size
    q_best = np.zeros(n)
    if n == 0 or demand <= 0:
        return 0.0, 0.0, q_best
    covered = min(demand, float(np.sort(cap)[::-1][:k].sum()))
    best = np.inf
    for size in range(1, min(k, n) + 1):
        for winners in combinations(range(n), size):
            w = np.array(winners)
            if cap[w].sum() < covered * (1 - 1e-12) - TOL:
                continue
            q = np.zeros(n)
            left = covered
            for i in w[np.argsort(score[w], kind="stable")]:
                q[i] = min(cap[i], left)
                left -= q[i]
            cost = float(score @ q)
            if not np.isfinite(best) or cost < best - 1e-9 * max(1.0, abs(best)):
                best, q_best = cost, q
    return covered, best, q_best


def reliability(m: Marketplace, resource: int, offers: np.ndarray) -> np.ndarray:
    """On-time reliability of offers on a resource, from the network and offer tables."""
    kind = m.net.res_kind[resource]
    if kind == TRANSPORT:
        rel = 1.0 - m.net.res_delay[resource] * m.offers.delay_mult[offers]
    elif kind == HANDLING:
        rel = np.ones(offers.size)
    else:
        rel = m.offers.accuracy[offers]
    return np.clip(rel, 0.0, 1.0)


def incumbents(contracts: pd.DataFrame, buyer_acct: int, resource: int, day: int) -> set[int]:
    """Providers that won the buyer's last tender for the resource before ``day``."""
    past = contracts[(contracts["buyer_acct"] == buyer_acct) & (contracts["resource"] == resource)
                     & (contracts["round"] < day) & (contracts["offer"] >= 0)]
    if past.empty:
        return set()
    return set(past.loc[past["round"] == past["round"].max(), "provider"])


def tenders(m: Marketplace, calls: list[dict], contracts: pd.DataFrame, mechanism: str):
    """Each recorded tender that signed contracts, with its contract rows and its bids re-scored:
    reliability from the model's tables, reputation from the book, incumbents from the history."""
    cfg = m.config.market
    for c in calls:
        if c["n_won"] == 0:
            continue
        rows = contracts.iloc[c["first_contract"]: c["first_contract"] + c["n_won"]]
        assert (rows["contract_id"].to_numpy() == np.arange(c["first_contract"], c["first_contract"] + c["n_won"])).all()
        assert (rows["mechanism"] == mechanism).all() and (rows["round"] == c["day"]).all()
        assert rows["buyer_acct"].nunique() == 1 and rows["resource"].nunique() == 1
        bids = c["bids"]
        resource, buyer = int(rows["resource"].iloc[0]), int(rows["buyer_acct"].iloc[0])
        offers = np.array([int(np.flatnonzero((m.offers.provider == b) & (m.offers.resource == resource))[0])
                           for b in bids.bidder])
        inc = np.isin(bids.bidder, list(incumbents(contracts, buyer, resource, c["day"])))
        factor = (1.0 + cfg.w_reliability * (1.0 - reliability(m, resource, offers))
                  + cfg.w_reputation * (1.0 - c["book_reputation"])) * (1.0 - cfg.incumbent_discount * inc)
        yield c, rows, bids, factor


def bid_index(bids, rows: pd.DataFrame) -> np.ndarray:
    """Each contract row's bid (a provider bids once per tender)."""
    assert len(set(bids.bidder.tolist())) == len(bids)
    return np.array([int(np.flatnonzero(bids.bidder == p)[0]) for p in rows["provider"]])


# ------------------------------------------------------------------ the tests
def test_bids_are_scored_with_the_providers_reputation(first_price):
    """A bid's score is its price times a quality factor made of the provider's reliability,
    its reputation in the book (which differs between providers once they have served) and
    incumbency; the contracts record those scores."""
    m, calls, contracts = first_price
    reps, checked = [], 0
    for c, rows, bids, factor in tenders(m, calls, contracts, "first_price"):
        assert np.allclose(bids.reputation, c["book_reputation"], rtol=0, atol=1e-12)
        reps.append(c["book_reputation"])
        j = bid_index(bids, rows)
        np.testing.assert_allclose(rows["score"].to_numpy(), bids.price[j] * factor[j], rtol=1e-9)
        checked += len(rows)
    reps = np.concatenate(reps)
    assert checked > 50
    assert np.ptp(reps) > 0.05, "reputations never differed: the test could not tell them apart"


def test_first_price_pays_each_winner_its_own_bid(first_price):
    m, calls, contracts = first_price
    n = 0
    for c, rows, bids, factor in tenders(m, calls, contracts, "first_price"):
        j = bid_index(bids, rows)
        np.testing.assert_allclose(rows["winning_bid"].to_numpy(), bids.price[j], rtol=1e-12)
        n += len(rows)
    assert n > 50


def test_vickrey_pays_each_winner_its_vcg_price(vickrey):
    """The award is the least-score one, and each winner is paid its VCG price: its bid plus
    the extra score the others would cost without it (the runner-up's bid when one bid takes
    the whole volume and the runner-up could have carried it alone)."""
    m, calls, contracts = vickrey
    checked = above_bid = runner_up_cases = 0
    for c, rows, bids, factor in tenders(m, calls, contracts, "vickrey"):
        kw = c["kw"]
        k = min(kw.get("max_winners") or len(bids), len(bids))
        reserve = kw.get("reserve_price")
        score = bids.price * factor
        ok = (bids.capacity > 0) & (score <= reserve if reserve is not None else True)
        idx = np.flatnonzero(ok)
        covered, cost, q = best_award(score[idx], bids.capacity[idx], c["demand"], k)
        quantity = np.zeros(len(bids))
        quantity[idx] = q
        won = {int(bids.bidder[i]): quantity[i] for i in np.flatnonzero(quantity > 1e-9)}
        ties = np.unique(np.round(score[idx], 9)).size < idx.size
        if not ties:
            assert won.keys() == set(rows["provider"]), c["day"]
        np.testing.assert_allclose(rows["capacity"].sum(), covered, rtol=1e-9)
        np.testing.assert_allclose(score[bid_index(bids, rows)] @ rows["capacity"].to_numpy(), cost, rtol=1e-7)
        value = reserve if reserve is not None else float(score[idx].max())
        for _, row in rows.iterrows():
            b = int(row["provider"])
            j = int(np.flatnonzero(bids.bidder == b)[0])
            others = idx[bids.bidder[idx] != b]
            cov_b, cost_b, _ = best_award(score[others], bids.capacity[others], c["demand"], k)
            bonus = max(0.0, cost_b + value * (covered - cov_b) - cost)
            vcg = bids.price[j] + bonus / (row["capacity"] * factor[j])
            assert row["winning_bid"] == pytest.approx(vcg, rel=1e-7), (c["day"], b)
            assert row["winning_bid"] >= bids.price[j] * (1 - 1e-12)       # never less than the bid
            above_bid += row["winning_bid"] > bids.price[j] * (1 + 1e-6)
            # one winner took it all and the best other bid could have carried it alone
            if len(rows) == 1 and others.size:
                r = others[np.argmin(score[others])]
                if bids.capacity[r] >= covered:
                    assert row["winning_bid"] == pytest.approx(score[r] / factor[j], rel=1e-7)
                    runner_up_cases += 1
            checked += 1
    assert checked > 50 and runner_up_cases > 10
    assert above_bid > 0.5 * checked, "VCG payments equal the bids: the test could not tell the formats apart"
