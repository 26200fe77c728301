"""Tests for market.mechanisms.strategies and market.mechanisms.spot."""

import numpy as np
import pytest
from scipy.optimize import linprog

from market.mechanisms.spot import (
    allocate_cheapest_first,
    posted_spot_price,
    split_orders_cheapest_first,
)
from market.mechanisms.strategies import AdaptiveMarkup, BanditMarkup, CostPlus, Truthful


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------
def test_truthful_and_cost_plus():
    costs = np.array([10.0, 20.0, 30.0])
    np.testing.assert_array_equal(Truthful().ask(costs), costs)
    np.testing.assert_allclose(CostPlus(0.1).ask(costs), costs * 1.1)
    cp = CostPlus(np.array([0.0, 0.1, 0.2]))
    np.testing.assert_allclose(cp.ask(costs), [10.0, 22.0, 36.0])
    np.testing.assert_allclose(cp.ask([5.0], providers=[2]), [6.0])
    lanes = np.array([[10.0, 20.0], [10.0, 20.0], [10.0, 20.0]])
    np.testing.assert_allclose(cp.ask(lanes), lanes * np.array([[1.0], [1.1], [1.2]]))


def test_adaptive_markup_learns_from_wins_losses_and_utilisation():
    s = AdaptiveMarkup(4, initial=0.2, step_up=0.1, step_down=0.1, max_markup=0.5,
                       target_utilisation=0.8)
    before = s.markup()
    s.observe(won=[True, False, True, False], utilisation=[0.8, 0.8, 0.99, 0.3])
    after = s.markup()
    assert after[0] > before[0] and after[1] < before[1]
    assert after[2] > after[0]          # busy winner raises faster
    assert after[3] < after[1]          # idle loser cuts faster
    # only participants are updated
    s.observe(won=[True], providers=[1])
    m = s.markup()
    assert m[1] > after[1] and np.array_equal(m[[0, 2, 3]], after[[0, 2, 3]])
    # bounded
    for _ in range(200):
        s.observe(won=[True, False, True, False])
    assert np.all(s.markup() <= 0.5 + 1e-12) and np.all(s.markup() >= 0.0)
    assert s.markup()[0] == pytest.approx(0.5) and s.markup()[1] == pytest.approx(0.0)


def test_bandit_markup_finds_the_profit_maximising_markup():
    """Stationary environment: win probability 1 - markup / 0.5, so the expected
    margin m (1 - 2 m) is maximised at m = 0.25."""
    rng = np.random.default_rng(3)
    env = np.random.default_rng(4)
    n = 50
    s = BanditMarkup(n, rng, grid=np.linspace(0, 0.5, 11), epsilon=0.1)
    costs = np.full(n, 100.0)
    for _ in range(1500):
        prices = s.ask(costs)
        m = prices / costs - 1
        won = env.random(n) < 1 - m / 0.5
        s.observe(won, profit=won * m)
    best = s.grid[np.argmax(s.values, axis=1)]
    assert np.median(best) == pytest.approx(0.25, abs=0.05)
    # reproducible given the generator
    s1 = BanditMarkup(3, np.random.default_rng(1))
    s2 = BanditMarkup(3, np.random.default_rng(1))
    np.testing.assert_array_equal(s1.ask(np.ones(3)), s2.ask(np.ones(3)))


# ---------------------------------------------------------------------------
# Spot
# ---------------------------------------------------------------------------
def test_posted_spot_price_monotone_and_capped():
    u = np.linspace(0, 1.2, 121)
    p = posted_spot_price(1000.0, u, slope=2.0, convexity=3.0)
    assert np.all(np.diff(p) >= 0) and np.all(np.diff(p)[1:] > 0)
    assert p[0] == pytest.approx(1000.0) and p[100] == pytest.approx(3000.0)
    capped = posted_spot_price(1000.0, u, slope=2.0, convexity=3.0, cap=2500.0)
    assert capped.max() == pytest.approx(2500.0) and np.all(np.diff(capped) >= 0)
    # vectorised over providers
    base = np.array([100.0, 200.0])
    np.testing.assert_allclose(posted_spot_price(base, [0.5, 1.0], slope=1.0, convexity=2.0),
                               [125.0, 400.0])


def test_allocate_cheapest_first_is_least_cost():
    rng = np.random.default_rng(5)
    prices = rng.uniform(50, 150, size=(40, 6))
    caps = rng.integers(0, 10, size=(40, 6)).astype(float)
    demand = rng.uniform(0, 50, 40)
    batch = allocate_cheapest_first(demand, prices, caps)
    for r in range(40):
        served = min(demand[r], caps[r].sum())
        lp = linprog(prices[r], A_eq=np.ones((1, 6)), b_eq=[served],
                     bounds=list(zip(np.zeros(6), caps[r])), method="highs")
        assert batch.cost[r] == pytest.approx(lp.fun, rel=1e-9, abs=1e-9)
        single = allocate_cheapest_first(demand[r], prices[r], caps[r])
        np.testing.assert_allclose(single.quantity, batch.quantity[r])
        assert single.unserved == pytest.approx(demand[r] - served)
        assert np.all(single.quantity <= caps[r])
        if served > 0:
            used = single.quantity > 0
            assert single.marginal_price == pytest.approx(prices[r][used].max())


def test_split_orders_cheapest_first():
    price = np.array([30.0, 10.0, 20.0])
    cap = np.array([5.0, 4.0, 3.0])
    split = split_orders_cheapest_first([3.0, 3.0, 5.0, 2.0], price, cap)
    # ladder: provider 1 (4 @ 10), provider 2 (3 @ 20), provider 0 (5 @ 30)
    rows = list(zip(split.order.tolist(), split.provider.tolist(), split.quantity.tolist()))
    assert rows == [(0, 1, 3.0), (1, 1, 1.0), (1, 2, 2.0), (2, 2, 1.0), (2, 0, 4.0),
                    (3, 0, 1.0)]
    np.testing.assert_allclose(split.unserved, [0, 0, 0, 1])
    np.testing.assert_allclose(split.unit_price, price[split.provider])
    rng = np.random.default_rng(6)
    for _ in range(50):
        oq = rng.uniform(0, 10, int(rng.integers(1, 8)))
        p, c = rng.uniform(1, 9, 5), rng.uniform(0, 8, 5)
        s = split_orders_cheapest_first(oq, p, c)
        per_order = np.bincount(s.order, weights=s.quantity, minlength=oq.size)
        per_provider = np.bincount(s.provider, weights=s.quantity, minlength=5)
        np.testing.assert_allclose(per_order + s.unserved, oq)
        assert np.all(per_provider <= c + 1e-9)
        # same provider totals as the single-demand cheapest-first allocation
        np.testing.assert_allclose(per_provider,
                                   allocate_cheapest_first(oq.sum(), p, c).quantity)
