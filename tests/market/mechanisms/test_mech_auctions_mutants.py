"""Auctions and package auctions: theory, hand figures and brute force for the cases the first
tests let through (found by mutation testing)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate, stats

from market.mechanisms import (PackageBids, TenderBids, award_tender, descending_clock_auction,
                               first_price_equilibrium_bid, solve_package_auction)
from tests.market.mechanisms.test_mech_package import brute_force_package_auction


# ---- first-price equilibrium bids ---------------------------------------------------------
def test_equilibrium_bid_uniform_hand_figures_and_clipping():
    # b(c) = c + (hi - c) / n on [2, 10] with n = 4: c = 6 -> 7; below lo counts as lo: 2 + 2 = 4;
    # above hi the bidder cannot win at a profit and asks its cost, 12 (asks are never below
    # cost since the bids part, i12); one bidder asks the top of the support
    assert first_price_equilibrium_bid(6.0, 4, (2.0, 10.0)) == 7.0
    assert isinstance(first_price_equilibrium_bid(6.0, 4, (2.0, 10.0)), float)
    got = first_price_equilibrium_bid(np.array([1.0, 12.0]), 4, [2.0, 10.0])
    assert isinstance(got, np.ndarray) and got.tolist() == [4.0, 12.0]
    assert first_price_equilibrium_bid(3.0, 1, (2.0, 10.0)) == 10.0
    assert first_price_equilibrium_bid(5.0, 3, (5.0, 5.0)) == 5.0       # a point support is fine


def test_equilibrium_bid_numeric_matches_a_reference_integral():
    # costs Beta(2, 3) on [0, 1], n = 3: b(c) = c + int_c^1 (1 - F)^2 dt / (1 - F(c))^2
    dist = stats.beta(2, 3)
    for c in (0.05, 0.3, 0.7):
        ref = c + integrate.quad(lambda t: (1 - dist.cdf(t)) ** 2, c, 1.0, epsabs=1e-13)[0] / (1 - dist.cdf(c)) ** 2
        assert first_price_equilibrium_bid(c, 3, dist) == pytest.approx(ref, abs=1e-9)
        assert first_price_equilibrium_bid(c, 3, dist.cdf, upper=1.0) == pytest.approx(ref, abs=1e-9)
    # an explicit upper bound overrides the distribution's support: uniform on [0, 1] cut at 0.5
    # b(0.25) = 0.25 + int_0.25^0.5 (1 - t)^2 dt / 0.75^2 = 0.25 + (0.75^3 - 0.5^3) / 3 / 0.5625
    want = 0.25 + (0.75 ** 3 - 0.5 ** 3) / 3 / 0.5625
    assert first_price_equilibrium_bid(0.25, 3, stats.uniform(0, 1), upper=0.5) == pytest.approx(want, abs=1e-9)
    # at the top of the support there is no markup left
    assert first_price_equilibrium_bid(1.0, 3, dist) == pytest.approx(1.0)


@pytest.mark.parametrize("args, err", [
    ((1.0, 0, (0.0, 1.0)), ValueError),
    ((1.0, 2, (1.0, 0.5)), ValueError),
    ((0.5, 2, lambda t: t), ValueError),                    # a bare CDF needs `upper`
    ((0.5, 2, "uniform"), TypeError),
    ((0.5, 2, stats.expon()), ValueError),                  # unbounded above
])
def test_equilibrium_bid_refuses_bad_inputs(args, err):
    with pytest.raises(err):
        first_price_equilibrium_bid(*args)


# ---- descending clock ---------------------------------------------------------------------
def test_clock_hand_figures():
    # limits 3, 5, 8, one unit each, demand 1, start 10, step 1: the clock falls while two or
    # more are in; at 5 both 3 and 5 are in, one more step (4) leaves 1 = demand -> continue;
    # at 4 supply is 1 = demand: stop. Price 4, bidder 0 wins, 6 rounds
    r = descending_clock_auction([3.0, 5.0, 8.0], 1.0, start_price=10.0, decrement=1.0)
    assert (r.price, r.rounds, r.winners.tolist(), r.covered) == (4.0, 6, [0], 1.0)
    # supply short at the start: everybody in wins at the start price
    r = descending_clock_auction([3.0, 12.0], 5.0, start_price=10.0, decrement=1.0, capacity=[2.0, 9.0])
    assert (r.price, r.rounds, r.quantity.tolist()) == (10.0, 0, [2.0, 0.0])
    # rationing: limits 2, 6, 6 with capacities 4, 3, 3 and demand 6, step 1 from 9:
    # at 6 supply 10 > 6; at 5 it would be 4 < 6: stop at 6, bidder 0 keeps 4 and the two at 6
    # share the remaining 2 by index: 2 and 0
    r = descending_clock_auction([2.0, 6.0, 6.0], 6.0, start_price=9.0, decrement=1.0, capacity=[4.0, 3.0, 3.0])
    assert (r.price, r.quantity.tolist(), r.covered) == (6.0, [4.0, 2.0, 0.0], 6.0)
    # nothing to buy
    r = descending_clock_auction([1.0, 2.0], 0.0, start_price=5.0, decrement=1.0)
    assert r.winners.size == 0 and r.covered == 0.0 and r.price == 5.0
    # max_rounds stops the clock: 100 -> 99 -> 98 -> 97 and no further
    r = descending_clock_auction([1.0, 2.0], 1.0, start_price=100.0, decrement=1.0, max_rounds=3)
    assert (r.price, r.rounds, r.quantity.tolist()) == (97.0, 3, [1.0, 1.0])
    for bad in ({"decrement": 0.0}, {"decrement": 1.0, "capacity": [1.0]}):
        with pytest.raises(ValueError):
            descending_clock_auction([1.0, 2.0], 1.0, start_price=5.0, **bad)


# ---- scoring tenders --------------------------------------------------------------------------
def brute_force_tender(score, cap, demand, max_winners=None):
    """Cheapest integer allocation of ``demand`` units over bids, by enumeration."""
    best = (np.inf, None)
    for q in itertools.product(*[range(int(c) + 1) for c in cap]):
        if sum(q) != demand:
            continue
        if max_winners is not None and sum(x > 0 for x in q) > max_winners:
            continue
        cost = sum(s * x for s, x in zip(score, q))
        if cost < best[0] - 1e-9:
            best = (cost, q)
    return best[0]


@pytest.mark.parametrize("seed", range(4))
def test_tender_cost_and_vcg_against_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n = 4
    price = rng.integers(5, 20, n).astype(float)
    cap = rng.integers(1, 4, n).astype(float)
    demand = float(min(cap.sum() - 1, 5))
    bids = TenderBids(bidder=np.arange(n), price=price, capacity=cap)
    res = award_tender(bids, demand, payment="vickrey", max_winners=3, reserve_price=25.0)
    best = brute_force_tender(price, cap, int(demand), max_winners=3)
    assert res.score_cost == pytest.approx(best)
    assert res.covered == demand and res.quantity.sum() == demand
    # VCG: each winner is paid its cost plus what the others' cost rises by without it
    for w in res.winners:
        others = [i for i in range(n) if i != w]
        cov = min(demand, np.sort(cap[others])[::-1][:3].sum())
        without = brute_force_tender(price[others], cap[others], int(cov), max_winners=3)
        bonus = without + 25.0 * (demand - cov) - best
        assert res.unit_payment[w] * res.quantity[w] == pytest.approx(price[w] * res.quantity[w] + max(bonus, 0.0))
    assert res.total_cost == pytest.approx(float(res.quantity @ res.unit_payment))


def test_tender_reserve_eligibility_and_second_price():
    # scores: 10, 12, 30 (reserve 20 makes the third ineligible); one unit: 10 wins, pays 10
    bids = TenderBids(bidder=[0, 1, 2], price=[10.0, 12.0, 30.0], capacity=[1.0, 1.0, 0.0])
    res = award_tender(bids, 1.0, reserve_price=20.0)
    assert res.eligible.tolist() == [True, True, False]
    assert res.winners.tolist() == [0] and res.unit_payment.tolist() == [10.0, 0.0, 0.0]
    assert res.second_price == 12.0 and res.n_bids == 3 and res.demand == 1.0
    assert res.payment == "first_price"
    res = award_tender(bids, 1.0, reserve_price=10.0)       # a score equal to the reserve is eligible
    assert res.eligible.tolist() == [True, False, False] and np.isnan(res.second_price)
    # no demand: nobody wins
    res = award_tender(bids, 0.0)
    assert res.winners.size == 0 and res.total_cost == 0.0 and res.covered == 0.0


@pytest.mark.parametrize("kw", [{"demand": -1.0}, {"demand": np.inf}, {"payment": "dutch"},
                                {"max_winners": 0}, {"min_winners": 3, "max_winners": 2}])
def test_tender_refuses_bad_settings(kw):
    args = {"demand": 1.0, **kw}
    bids = TenderBids(bidder=[0, 1], price=[1.0, 2.0], capacity=[1.0, 1.0])
    with pytest.raises(ValueError):
        award_tender(bids, **args)


@pytest.mark.parametrize("kw", [{"price": [1.0, np.nan]}, {"capacity": [1.0, -1.0]},
                                {"capacity": [1.0, np.inf]}, {"reliability": [1.0, 1.1]},
                                {"reputation": [-0.1, 1.0]}, {"price": [[1.0, 2.0]]}])
def test_tender_bids_refuse_bad_values(kw):
    args = {"bidder": [0, 1], "price": [1.0, 2.0], "capacity": [1.0, 1.0], **kw}
    with pytest.raises(ValueError):
        TenderBids(**args)


def test_tender_bids_subset_keeps_every_column():
    bids = TenderBids(bidder=[4, 5, 6], price=[1.0, 2.0, 3.0], capacity=[1.0, 2.0, 3.0],
                      reliability=[0.9, 0.8, 0.7], reputation=[0.1, 0.2, 0.3], incumbent=[True, False, True])
    sub = bids.subset(np.array([2, 0]))
    assert sub.bidder.tolist() == [6, 4] and sub.price.tolist() == [3.0, 1.0] and len(sub) == 2
    assert sub.capacity.tolist() == [3.0, 1.0] and sub.reliability.tolist() == [0.7, 0.9]
    assert sub.reputation.tolist() == [0.3, 0.1] and sub.incumbent.tolist() == [True, True]


# ---- package auctions ------------------------------------------------------------------------
def test_package_auction_edge_cases():
    # no bids: feasible only when nothing is demanded
    none = PackageBids(bidder=np.zeros(0), quantity=np.zeros((0, 2)), price=np.zeros(0))
    ok = solve_package_auction(none, [0.0, 0.0])
    assert ok.feasible and ok.total_cost == 0.0 and ok.winners.size == 0
    no = solve_package_auction(none, [1.0, 0.0])
    assert not no.feasible and no.total_cost == np.inf and no.coverage.tolist() == [0.0, 0.0]
    assert no.selected.size == 0 and no.winners.size == 0
    # the exhaustive reference (test_mech_package.py) agrees: (feasible, least total price)
    assert brute_force_package_auction(none, [1.0, 0.0]) == (False, 0.0)
    assert brute_force_package_auction(none, [0.0, 0.0]) == (True, 0.0)
    # XOR is the default: bidder 0's two packages cannot both win
    bids = PackageBids(bidder=[0, 0, 1], quantity=[[1, 0], [0, 1], [1, 1]], price=[1.0, 1.0, 5.0])
    assert solve_package_auction(bids, [1, 1]).winners.tolist() == [2]
    assert solve_package_auction(bids, [1, 1], xor=False).winners.tolist() == [0, 1]
    assert brute_force_package_auction(bids, [1, 1]) == (True, 5.0)
    assert brute_force_package_auction(bids, [1, 1], xor=False) == (True, 2.0)
    # one lane given as a 1-D quantity vector
    one = PackageBids(bidder=[0, 1], quantity=[2.0, 3.0], price=[4.0, 5.0])
    assert one.n_lanes == 1 and solve_package_auction(one, [3.0]).winners.tolist() == [1]
    infeasible = solve_package_auction(one, [4.0])
    assert not infeasible.feasible and infeasible.selected.tolist() == [False, False]
    assert infeasible.coverage.tolist() == [0.0]


@pytest.mark.parametrize("kw", [{"bidder": [0]}, {"quantity": [[1.0], [-1.0]]},
                                {"quantity": [[1.0], [np.nan]]}, {"price": [1.0, np.inf]},
                                {"quantity": [[[1.0]], [[1.0]]]}])
def test_package_bids_refuse_bad_values(kw):
    args = {"bidder": [0, 1], "quantity": [[1.0], [1.0]], "price": [1.0, 2.0], **kw}
    with pytest.raises(ValueError):
        PackageBids(**args)


def test_package_auction_refuses_bad_calls():
    bids = PackageBids(bidder=[0], quantity=[[1.0, 1.0]], price=[1.0])
    with pytest.raises(ValueError):
        solve_package_auction(bids, [1.0])
    with pytest.raises(ValueError):
        solve_package_auction(bids, [1.0, 1.0], cover="most")
