"""Tests for market.mechanisms.double_auction."""

import numpy as np
import pytest

from market.mechanisms.double_auction import (
    call_market_clear,
    max_surplus,
    zi_continuous_double_auction,
)


def gode_sunder_market(seed=0, n_traders=6, n_units=4):
    """Gode & Sunder (1993)-style market: 6 buyers and 6 sellers with several
    units each, redemption values / costs in [1, 200], prices in [1, 200];
    a buyer's unit values decline, a seller's unit costs rise."""
    rng = np.random.default_rng(seed)
    values = -np.sort(-rng.integers(1, 201, size=(n_traders, n_units)), axis=1)
    costs = np.sort(rng.integers(1, 201, size=(n_traders, n_units)), axis=1)
    return values.astype(float), costs.astype(float)


def test_max_surplus_hand_example():
    assert max_surplus([10, 8, 3], [2, 5, 9]) == pytest.approx((10 - 2) + (8 - 5))
    assert max_surplus([[10, np.nan], [8, 3]], [[2], [5]]) == pytest.approx(11)


def test_zi_c_efficiency_above_90_percent():
    values, costs = gode_sunder_market()
    rng = np.random.default_rng(42)
    effs = []
    for _ in range(10):
        r = zi_continuous_double_auction(values, costs, rng, budget_constrained=True,
                                         price_floor=1.0, price_ceiling=200.0)
        effs.append(r.efficiency)
        # budget constraint: no trade at a loss for either side
        assert np.all(r.price <= r.buyer_value + 1e-12)
        assert np.all(r.price >= r.seller_cost - 1e-12)
        assert r.surplus == pytest.approx(float((r.buyer_value - r.seller_cost).sum()))
        # every trader trades at most its number of units, in schedule order
        assert np.all(np.bincount(r.buyer, minlength=6) <= 4)
        assert np.all(np.bincount(r.seller, minlength=6) <= 4)
    assert np.mean(effs) > 0.90
    assert max(effs) <= 1.0 + 1e-12


def test_zi_u_is_less_efficient_and_trades_at_a_loss():
    values, costs = gode_sunder_market()
    rng_c, rng_u = np.random.default_rng(7), np.random.default_rng(7)
    eff_c = [zi_continuous_double_auction(values, costs, rng_c, True, price_floor=1.0,
                                          price_ceiling=200.0).efficiency for _ in range(10)]
    runs_u = [zi_continuous_double_auction(values, costs, rng_u, False, price_floor=1.0,
                                           price_ceiling=200.0) for _ in range(10)]
    eff_u = [r.efficiency for r in runs_u]
    assert np.mean(eff_u) < np.mean(eff_c) - 0.2
    losses = np.concatenate([(r.price > r.buyer_value) | (r.price < r.seller_cost)
                             for r in runs_u])
    assert losses.any()


def test_zi_reproducible_with_same_seed():
    values, costs = gode_sunder_market(seed=3)
    a = zi_continuous_double_auction(values, costs, np.random.default_rng(9))
    b = zi_continuous_double_auction(values, costs, np.random.default_rng(9))
    assert a.trades == b.trades and a.efficiency == b.efficiency


def test_zi_no_gains_no_trade():
    r = zi_continuous_double_auction([5.0, 4.0], [6.0, 7.0], np.random.default_rng(0))
    assert r.n_trades == 0 and np.isnan(r.efficiency)


# ---------------------------------------------------------------------------
# Call market
# ---------------------------------------------------------------------------
def test_call_market_hand_example():
    # demand: 10 @ 12, 10 @ 10, 10 @ 8 ; supply: 15 @ 7, 10 @ 9, 10 @ 11
    price, bid_fill, ask_fill = call_market_clear(
        [12, 10, 8], [10, 10, 10], [7, 9, 11], [15, 10, 10])
    # D(p) = 20 for p in (8, 10], S(p) = 25 for p in [9, 11): volume 20 at [9, 10]
    assert bid_fill.tolist() == [10, 10, 0]
    assert ask_fill.tolist() == [15, 5, 0]
    assert price == pytest.approx(9.5)


def test_call_market_hand_example_single_crossing():
    # one buyer 5 units @ 100, sellers 3 @ 90 and 4 @ 95: volume 5 at [95, 100]
    res = call_market_clear([100.0], [5.0], [95.0, 90.0], [4.0, 3.0])
    assert res.volume == pytest.approx(5.0)
    assert res.ask_fill.tolist() == [2.0, 3.0]
    assert res.price == pytest.approx(97.5)
    # no crossing -> no trade
    res = call_market_clear([80.0], [5.0], [95.0], [4.0])
    assert np.isnan(res.price) and res.volume == 0


def test_call_market_random_properties():
    rng = np.random.default_rng(11)
    for _ in range(300):
        nb, na = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        bp, ap = rng.integers(1, 20, nb).astype(float), rng.integers(1, 20, na).astype(float)
        bq, aq = rng.integers(1, 6, nb).astype(float), rng.integers(1, 6, na).astype(float)
        price, bf, af = call_market_clear(bp, bq, ap, aq)
        # supply/demand intersection on a fine price grid (independent check)
        grid = np.arange(0.0, 21.0, 0.25)
        demand = (bq[None, :] * (bp[None, :] >= grid[:, None])).sum(axis=1)
        supply = (aq[None, :] * (ap[None, :] <= grid[:, None])).sum(axis=1)
        q_star = np.minimum(demand, supply).max()
        assert bf.sum() == pytest.approx(q_star) and af.sum() == pytest.approx(q_star)
        assert np.all(bf <= bq) and np.all(af <= aq)
        if q_star == 0:
            assert np.isnan(price)
            continue
        # nobody trades at a price worse than its limit
        assert np.all(bp[bf > 0] >= price) and np.all(ap[af > 0] <= price)
        # price priority: an unfilled bid never beats a filled one
        if np.any(bf < bq):
            assert bp[bf < bq].max() <= bp[bf > 0].min()
        if np.any(af < aq):
            assert ap[af < aq].min() >= ap[af > 0].max()
