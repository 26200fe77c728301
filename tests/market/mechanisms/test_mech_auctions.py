"""Tests for market.mechanisms.auctions."""

from itertools import combinations

import numpy as np
import pytest
from scipy import stats

from market.mechanisms.auctions import (
    ScoreRule,
    TenderBids,
    award_tender,
    descending_clock_auction,
    first_price_equilibrium_bid,
)


# ---------------------------------------------------------------------------
# Reference implementations (exhaustive, independent of the MILP)
# ---------------------------------------------------------------------------
def brute_force_tender(score, cap, demand, min_winners=1, max_winners=None, min_lot=None):
    """Enumerate every set of selected bids; fill each set optimally.

    For a fixed selected set S the problem is a continuous knapsack with lower
    bounds: give every bid its minimum lot, then fill the rest cheapest first.
    Returns (optimal total score, covered quantity).
    """
    n = len(score)
    if n == 0 or demand <= 0:
        return 0.0, 0.0
    k = n if max_winners is None else min(max_winners, n)
    covered = min(demand, np.sort(cap)[::-1][:k].sum())
    if covered <= 0:
        return 0.0, 0.0
    m = min(max(min_winners, 0), k)
    lot_size = 1.0 if min_lot is None else min_lot
    lots = np.minimum(np.minimum(cap, lot_size), covered / m) if m > 1 else np.zeros(n)
    best = np.inf
    for r in range(max(m, 1), k + 1):
        for subset in combinations(range(n), r):
            s = np.array(subset)
            if cap[s].sum() < covered - 1e-9 or lots[s].sum() > covered + 1e-9:
                continue
            cost = float(score[s] @ lots[s])
            rest = covered - lots[s].sum()
            for i in s[np.argsort(score[s], kind="stable")]:
                take = min(rest, cap[i] - lots[i])
                cost += take * score[i]
                rest -= take
            best = min(best, cost)
    return best, covered


def random_tender(rng, n):
    return TenderBids(
        bidder=np.arange(n),
        price=rng.uniform(50, 150, n).round(1),
        capacity=rng.integers(1, 8, n).astype(float),
        reliability=rng.uniform(0.8, 1.0, n),
        reputation=rng.uniform(0.5, 1.0, n),
        incumbent=rng.random(n) < 0.3,
    )


# ---------------------------------------------------------------------------
# Data validation and scoring
# ---------------------------------------------------------------------------
def test_tender_bids_validate_lengths():
    with pytest.raises(ValueError):
        TenderBids(bidder=[0, 1], price=[1.0, 2.0], capacity=[1.0])
    with pytest.raises(ValueError):
        TenderBids(bidder=[0], price=[1.0], capacity=[1.0], reliability=[1.5])
    b = TenderBids(bidder=[0, 1], price=[1.0, 2.0], capacity=[1.0, 3.0])
    assert len(b) == 2 and b.reliability.tolist() == [1.0, 1.0]


def test_score_rule_formula():
    b = TenderBids(bidder=[0, 1], price=[100.0, 100.0], capacity=[1, 1],
                   reliability=[0.9, 1.0], reputation=[0.8, 1.0], incumbent=[False, True])
    rule = ScoreRule(w_reliability=2.0, w_reputation=0.5, incumbent_discount=0.1)
    np.testing.assert_allclose(rule.score(b), [100 * (1 + 0.2 + 0.1), 100 * 0.9])


# ---------------------------------------------------------------------------
# Single-item Vickrey / first price
# ---------------------------------------------------------------------------
def test_vickrey_pays_second_lowest_cost():
    """One unit, every bid able to carry it: the lowest ask wins and is paid the second-lowest."""
    rng = np.random.default_rng(1)
    costs = rng.uniform(10, 20, size=(40, 6))
    for row in costs:
        bids = TenderBids(bidder=np.arange(6), price=row, capacity=np.ones(6))
        award = award_tender(bids, 1.0, payment="vickrey")
        assert award.winners.tolist() == [int(np.argmin(row))]
        assert award.unit_payment[award.winners[0]] == pytest.approx(np.sort(row)[1], abs=1e-9)
        assert award.second_price == pytest.approx(np.sort(row)[1])
        first = award_tender(bids, 1.0, payment="first_price")
        assert first.unit_payment[first.winners[0]] == pytest.approx(row.min())


def test_vcg_tender_truthful_multi_unit():
    """Multi-unit VCG: no bidder gains by scaling its ask (unconstrained tender)."""
    rng = np.random.default_rng(3)
    factors = [0.8, 0.95, 1.05, 1.25]
    for _ in range(12):
        n = 4
        cost = rng.uniform(50, 100, n)
        cap = rng.integers(1, 5, n).astype(float)
        demand = float(rng.integers(2, 9))

        def utility(i, ask_i):
            price = cost.copy()
            price[i] = ask_i
            # an exogenous reserve values unserved units when a carrier is pivotal
            a = award_tender(TenderBids(np.arange(n), price, cap), demand,
                             payment="vickrey", reserve_price=200.0)
            return a.quantity[i] * (a.unit_payment[i] - cost[i])

        for i in range(n):
            u0 = utility(i, cost[i])
            for f in factors:
                assert utility(i, cost[i] * f) <= u0 + 1e-6


def test_award_tender_ties_lowest_index():
    bids = TenderBids(bidder=[0, 1, 2, 3], price=[9.0, 7.0, 7.0, 7.0], capacity=[5, 5, 5, 5])
    a = award_tender(bids, 4.0)
    assert a.winners.tolist() == [1] and a.quantity[1] == pytest.approx(4.0)
    a = award_tender(bids, 7.0)
    np.testing.assert_allclose(a.quantity, [0, 5, 2, 0], atol=1e-9)
    a = award_tender(bids, 4.0, max_winners=1)
    assert a.winners.tolist() == [1]
    a = award_tender(bids, 4.0, min_winners=2, max_winners=2)
    assert a.winners.tolist() == [1, 2]


# ---------------------------------------------------------------------------
# Tender winner determination vs brute force; VCG
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_tender_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    rule = ScoreRule(w_reliability=1.0, w_reputation=0.5, incumbent_discount=0.05)
    for _ in range(25):
        n = int(rng.integers(1, 7))
        bids = random_tender(rng, n)
        demand = float(rng.integers(1, 25))
        max_w = [None, 1, 2, 3][int(rng.integers(4))]
        min_w = int(rng.integers(1, 4)) if max_w is None else int(rng.integers(1, max_w + 1))
        min_lot = [None, 0.5, 2.0][int(rng.integers(3))]
        a = award_tender(bids, demand, rule=rule, min_winners=min_w, max_winners=max_w,
                         min_lot=min_lot)
        score = rule.score(bids)
        ref, covered = brute_force_tender(score, bids.capacity, demand, min_w, max_w, min_lot)
        assert a.covered == pytest.approx(covered, abs=1e-7)
        assert float(score @ a.quantity) == pytest.approx(ref, rel=1e-7, abs=1e-7)
        # feasibility of the returned allocation
        assert np.all(a.quantity <= bids.capacity + 1e-9) and np.all(a.quantity >= 0)
        if max_w is not None:
            assert a.winners.size <= max_w
        assert a.winners.size >= min(min_w, n, max_w or n)
        np.testing.assert_allclose(a.unit_payment[a.winners], bids.price[a.winners])
        assert a.total_cost == pytest.approx(float(bids.price @ a.quantity))


@pytest.mark.parametrize("seed", range(3))
def test_vcg_payments_match_brute_force_and_are_individually_rational(seed):
    rng = np.random.default_rng(200 + seed)
    rule = ScoreRule(w_reliability=1.0, w_reputation=0.5)
    for _ in range(15):
        n = int(rng.integers(2, 7))
        bids = random_tender(rng, n)
        demand = float(rng.integers(1, 20))
        max_w = [None, 1, 2, 3][int(rng.integers(4))]
        min_w = 1 if max_w == 1 else int(rng.integers(1, 3))
        reserve = [None, 400.0][int(rng.integers(2))]
        a = award_tender(bids, demand, rule=rule, min_winners=min_w, max_winners=max_w,
                         payment="vickrey", reserve_price=reserve)
        # individual rationality: nobody is paid below its ask
        assert np.all(a.unit_payment[a.winners] >= bids.price[a.winners] - 1e-9)
        score = rule.score(bids)
        factor = rule.factor(bids)
        c_all, cov = brute_force_tender(score, bids.capacity, demand, min_w, max_w)
        value = score.max() if reserve is None else reserve
        for w in a.winners:
            keep = np.arange(n) != w
            c_wo, cov_wo = brute_force_tender(score[keep], bids.capacity[keep], demand,
                                              min_w, max_w)
            bonus = max(0.0, c_wo + value * (cov - cov_wo) - c_all)
            expected = bids.price[w] + bonus / (a.quantity[w] * factor[w])
            assert a.unit_payment[w] == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_vcg_hand_example():
    # three carriers, 10 units; optimum takes 3 @ 8, 4 @ 9, 3 @ 10
    bids = TenderBids(bidder=[0, 1, 2, 3], price=[10, 8, 9, 12], capacity=[5, 3, 4, 10])
    a = award_tender(bids, 10, payment="vickrey")
    np.testing.assert_allclose(a.quantity, [3, 3, 4, 0])
    # without bidder 1: 4 @ 9 + 5 @ 10 + 1 @ 12 = 98, with it 90 -> +8 over 3 units
    assert a.unit_payment[1] == pytest.approx(8 + 8 / 3)
    # without bidder 2: 3 @ 8 + 5 @ 10 + 2 @ 12 = 98 -> +8 over 4 units
    assert a.unit_payment[2] == pytest.approx(9 + 2)
    # without bidder 0: 3 @ 8 + 4 @ 9 + 3 @ 12 = 96 -> +6 over 3 units
    assert a.unit_payment[0] == pytest.approx(10 + 2)
    assert a.second_price == pytest.approx(12.0)


def test_capacity_shortfall_is_reported():
    bids = TenderBids(bidder=[0, 1], price=[5.0, 6.0], capacity=[2.0, 3.0])
    a = award_tender(bids, 10.0)
    assert a.covered == pytest.approx(5.0) and a.demand == 10.0
    assert np.isnan(a.second_price)
    a = award_tender(bids, 10.0, max_winners=1)
    assert a.covered == pytest.approx(3.0) and a.winners.tolist() == [1]


# ---------------------------------------------------------------------------
# Revenue equivalence and the equilibrium bid function
# ---------------------------------------------------------------------------
def test_first_price_revenue_equivalence_uniform():
    rng = np.random.default_rng(4)
    n, n_auctions = 4, 20_000
    lo, hi = 100.0, 200.0
    costs = rng.uniform(lo, hi, size=(n_auctions, n))
    bids = first_price_equilibrium_bid(costs, n, (lo, hi))
    rows = np.arange(n_auctions)
    # the low-cost bidder wins both (the equilibrium bid is increasing)
    np.testing.assert_array_equal(np.argmin(bids, axis=1), np.argmin(costs, axis=1))
    fp = bids[rows, np.argmin(bids, axis=1)]            # pay as bid
    vk = np.sort(costs, axis=1)[:, 1]                    # truthful, paid the second-lowest cost
    diff = fp - vk
    half_width = stats.norm.ppf(0.995) * diff.std(ddof=1) / np.sqrt(n_auctions)
    assert abs(diff.mean()) < half_width
    # both match the theoretical expected price lo + 2 (hi - lo) / (n + 1)
    theory = lo + 2 * (hi - lo) / (n + 1)
    for p in (fp, vk):
        hw = stats.norm.ppf(0.995) * p.std(ddof=1) / np.sqrt(n_auctions)
        assert abs(p.mean() - theory) < hw
    # truthful first-price bidding would NOT be revenue equivalent
    naive = costs.min(axis=1) - vk
    assert abs(naive.mean()) > 10 * half_width


def test_revenue_equivalence_holds_with_a_reserve():
    """With a reserve below the top of the costs, bidders above it stay out; the equilibrium
    asks of the others still cost the buyer what a Vickrey auction with that reserve does
    (the lower of the second-lowest cost and the reserve), and a lone bidder asks the reserve."""
    rng = np.random.default_rng(5)
    lo, hi, reserve = 100.0, 200.0, 170.0
    for n in (1, 2, 3, 5):
        costs = rng.uniform(lo, hi, size=(40_000, n))
        bids = first_price_equilibrium_bid(costs, n, (lo, hi), reserve=reserve)
        assert np.all(bids >= costs - 1e-12)
        enter = costs < reserve
        assert np.all(bids[enter] <= reserve + 1e-9)
        if n == 1:
            np.testing.assert_allclose(bids[enter], reserve)
        fp = np.where(enter, bids, np.inf).min(axis=1)
        srt = np.sort(costs, axis=1)
        vk = np.where(srt[:, 0] < reserve, np.minimum(srt[:, 1] if n > 1 else reserve, reserve), np.inf)
        sold = np.isfinite(vk)
        np.testing.assert_array_equal(np.isfinite(fp), sold)
        diff = fp[sold] - vk[sold]
        half_width = stats.norm.ppf(0.995) * diff.std(ddof=1) / np.sqrt(sold.sum()) + 1e-9
        assert abs(diff.mean()) < half_width, n


def test_equilibrium_bid_uniform_closed_form_and_numeric():
    c = np.linspace(0.0, 1.0, 11)
    for n in (1, 2, 3, 7):
        closed = first_price_equilibrium_bid(c, n, (0.0, 1.0))
        np.testing.assert_allclose(closed, c + (1.0 - c) / n)
        numeric = first_price_equilibrium_bid(c, n, lambda t: np.clip(t, 0, 1), upper=1.0)
        np.testing.assert_allclose(numeric, closed, atol=1e-8)
        frozen = first_price_equilibrium_bid(c, n, stats.uniform(0.0, 1.0))
        np.testing.assert_allclose(frozen, closed, atol=1e-8)
    assert first_price_equilibrium_bid(0.25, 3, (0.0, 1.0)) == pytest.approx(0.5)


def test_equilibrium_bid_with_a_reserve_closed_form_and_numeric():
    """The uniform closed form with a reserve agrees with the numeric integral and with the
    hand-computed ask: n = 2, costs U(0, 1), reserve 0.7, cost 0: 0.5 (1 - 0.3^2) = 0.455."""
    c = np.linspace(0.0, 1.0, 21)
    for n in (1, 2, 3, 6):
        for reserve in (0.4, 0.7, 1.0, 1.5):
            closed = first_price_equilibrium_bid(c, n, (0.0, 1.0), reserve=reserve)
            numeric = first_price_equilibrium_bid(c, n, lambda t: np.clip(t, 0, 1), upper=1.0, reserve=reserve)
            np.testing.assert_allclose(numeric, closed, atol=1e-8)
            assert np.all(closed >= c - 1e-12)
    assert first_price_equilibrium_bid(0.0, 2, (0.0, 1.0), reserve=0.7) == pytest.approx(0.455)
    # a reserve above the top of the costs changes nothing once there are rivals
    np.testing.assert_allclose(first_price_equilibrium_bid(c, 3, (0.0, 1.0), reserve=1.5), c + (1 - c) / 3)
    # below the support every cost asks what the lowest does
    assert first_price_equilibrium_bid(-1.0, 3, (0.0, 1.0)) == pytest.approx(1 / 3)


def test_equilibrium_bid_with_a_reserve_is_a_best_response():
    """Against rivals bidding b(.) with a reserve r < c_hi, no ask beats b(c): expected profit
    (ask - c) x P(every rival either stays out or asks more), computed on a fine grid."""
    n, lo, hi, r = 3, 0.0, 1.0, 0.6
    grid = np.linspace(lo, r, 3001)[:-1]
    b_grid = first_price_equilibrium_bid(grid, n, (lo, hi), reserve=r)
    assert np.all(np.diff(b_grid) > 0)

    def expected_profit(ask, cost):
        # a rival beats the ask when its cost is below b^-1(ask) (rivals above r stay out)
        rival = np.interp(ask, b_grid, grid, right=r)
        return (ask - cost) * (1 - rival) ** (n - 1) * (ask <= r)

    for cost in (0.05, 0.2, 0.4, 0.55):
        b_star = first_price_equilibrium_bid(cost, n, (lo, hi), reserve=r)
        alternatives = np.linspace(cost, r, 500)
        assert expected_profit(b_star, cost) >= expected_profit(alternatives, cost).max() - 1e-5


def test_equilibrium_bid_is_best_response_for_nonuniform_costs():
    """F(c) = c^2 on [0, 1]: bidding b(c) maximises (b - c)(1 - F(b^-1(b)))^(n-1)."""
    n = 3
    cdf = lambda t: np.clip(t, 0, 1) ** 2  # noqa: E731
    grid = np.linspace(0, 1, 2001)
    b_grid = first_price_equilibrium_bid(grid, n, cdf, upper=1.0)
    assert np.all(np.diff(b_grid) > 0)
    # closed form for this F: b(c) = c + int_c^1 (1 - t^2)^2 dt / (1 - c^2)^2
    cc = grid[:-1]
    integral = (1 - cc) - 2 * (1 - cc**3) / 3 + (1 - cc**5) / 5
    np.testing.assert_allclose(b_grid[:-1], cc + integral / (1 - cc**2) ** 2, rtol=1e-7)

    def expected_profit(bid, cost):
        rival_cost_at_bid = np.interp(bid, b_grid, grid)  # inverse bid function
        return (bid - cost) * (1 - cdf(rival_cost_at_bid)) ** (n - 1)

    for cost in (0.1, 0.3, 0.5, 0.7):
        b_star = first_price_equilibrium_bid(cost, n, cdf, upper=1.0)
        alternatives = np.linspace(cost, b_grid[-1], 400)
        assert expected_profit(b_star, cost) >= expected_profit(alternatives, cost).max() - 1e-5


# ---------------------------------------------------------------------------
# Descending clock auction
# ---------------------------------------------------------------------------
def test_clock_single_unit_within_one_decrement_of_vickrey():
    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(2, 9))
        limits = rng.uniform(20, 80, n)
        dec = float(rng.choice([0.05, 0.5, 2.0, 5.0]))
        res = descending_clock_auction(limits, 1.0, start_price=100.0, decrement=dec)
        second = np.sort(limits)[1]
        assert abs(res.price - second) <= dec + 1e-9
        assert res.winners.tolist() == [int(np.argmin(limits))]
        assert res.quantity.sum() == pytest.approx(1.0)
        assert res.price >= limits[res.winners[0]] - 1e-12  # winner not below its limit
        assert res.rounds == pytest.approx((100.0 - res.price) / dec, abs=1e-6)


def test_clock_multi_unit_hand_example():
    limits = np.array([10.0, 12.0, 15.0, 30.0])
    cap = np.array([4.0, 4.0, 4.0, 4.0])
    # demand 8: supply 16 > 8 until price < 30 (12), 12 > 8 until price < 15 ->
    # at 14 supply is 8 == demand: stop, winners 0 and 1 at 14
    res = descending_clock_auction(limits, 8.0, start_price=40.0, decrement=1.0, capacity=cap)
    assert res.price == pytest.approx(14.0)
    np.testing.assert_allclose(res.quantity, [4, 4, 0, 0])
    # demand 6: at 14 supply 8 > 6, at 11 supply would be 4 < 6 -> stop at 12,
    # bidder 0 keeps 4, the drop-out-at-11 bidder 1 is rationed to 2
    res = descending_clock_auction(limits, 6.0, start_price=40.0, decrement=1.0, capacity=cap)
    assert res.price == pytest.approx(12.0)
    np.testing.assert_allclose(res.quantity, [4, 2, 0, 0])
    # supply short at the start price: everybody in wins at the start price
    res = descending_clock_auction(limits, 50.0, start_price=20.0, decrement=1.0, capacity=cap)
    assert res.price == 20.0 and res.rounds == 0
    np.testing.assert_allclose(res.quantity, [4, 4, 4, 0])
