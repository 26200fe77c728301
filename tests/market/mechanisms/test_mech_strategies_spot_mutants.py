"""Spot prices, cheapest-first fills and bidding strategies: defaults, limits and edge cases
on hand figures (written against the mutants the first tests let through)."""

from __future__ import annotations

import numpy as np
import pytest

from market.mechanisms import (AdaptiveMarkup, BanditMarkup, BiddingStrategy, CostPlus, Truthful,
                               allocate_cheapest_first, posted_spot_price,
                               split_orders_cheapest_first)


def test_posted_spot_price_defaults_and_clipping():
    # defaults slope 1, convexity 2: 100 x (1 + 0.5^2) = 125; full: 200; idle or negative: 100
    assert posted_spot_price(100.0, [0.5, 1.0, 0.0, -0.3]).tolist() == [125.0, 200.0, 100.0, 100.0]
    # slope 0.5, convexity 1: 100 x (1 + 0.5 x 0.8) = 140, capped at 130
    assert posted_spot_price(100.0, 0.8, slope=0.5, convexity=1.0).tolist() == pytest.approx(140.0)
    assert posted_spot_price(100.0, 0.8, slope=0.5, convexity=1.0, cap=130.0).tolist() == 130.0
    # integer inputs work the same: 10 x (1 + 2 x 1^3) = 30
    assert posted_spot_price(10, 1, slope=2, convexity=3).tolist() == 30.0
    assert posted_spot_price(10.0, 0.5, slope=0.0).tolist() == 10.0      # slope 0 is allowed


@pytest.mark.parametrize("kw", [{"slope": -0.1}, {"convexity": 0.0}, {"convexity": -1.0}])
def test_posted_spot_price_refuses_bad_shapes(kw):
    with pytest.raises(ValueError):
        posted_spot_price(10.0, 0.5, **kw)


def test_allocate_cheapest_first_batch_hand_figures():
    # market 0: demand 5 over prices 3 (cap 2), 1 (cap 2), 2 (cap 4): 2 at 1, 3 at 2 -> cost 8,
    #   marginal price 2; market 1: demand 10, only 3 units at all -> 7 unserved, marginal 4
    price = np.array([[3.0, 1.0, 2.0], [4.0, 5.0, 6.0]])
    cap = np.array([[2.0, 2.0, 4.0], [3.0, 0.0, 0.0]])
    r = allocate_cheapest_first(np.array([5.0, 10.0]), price, cap)
    assert r.quantity.tolist() == [[0.0, 2.0, 3.0], [3.0, 0.0, 0.0]]
    assert r.cost.tolist() == [8.0, 12.0] and r.unserved.tolist() == [0.0, 7.0]
    assert r.marginal_price.tolist() == [2.0, 4.0]
    # no demand: nothing used, marginal price NaN; ties go to the lower index
    r = allocate_cheapest_first(0.0, np.array([1.0, 1.0]), np.array([5.0, 5.0]))
    assert r.quantity.tolist() == [0.0, 0.0] and np.isnan(r.marginal_price) and r.cost == 0.0
    r = allocate_cheapest_first(6.0, np.array([1.0, 1.0]), np.array([5.0, 5.0]))
    assert r.quantity.tolist() == [5.0, 1.0]
    for bad in ((-1.0, [1.0], [1.0]), (1.0, [1.0], [-1.0])):
        with pytest.raises(ValueError):
            allocate_cheapest_first(*bad)


def test_split_orders_hand_figures():
    # ladder: provider 1 at 2 (3 units), provider 0 at 5 (4 units), provider 2 at 9 (0 units)
    # orders 2, 4, 3: order 0 takes 2 at 2; order 1 takes 1 at 2 then 3 at 5; order 2 takes
    # the last unit at 5 and 2 are unserved
    r = split_orders_cheapest_first([2.0, 4.0, 3.0], [5.0, 2.0, 9.0], [4.0, 3.0, 0.0])
    assert r.order.tolist() == [0, 1, 1, 2] and r.provider.tolist() == [1, 1, 0, 0]
    assert r.quantity.tolist() == [2.0, 1.0, 3.0, 1.0] and r.unit_price.tolist() == [2.0, 2.0, 5.0, 5.0]
    assert r.unserved.tolist() == [0.0, 0.0, 2.0]
    # an order of zero and integer inputs; ties in price go to the lower index
    r = split_orders_cheapest_first(np.array([0, 3]), np.array([1, 1]), np.array([2, 2]))
    assert r.order.tolist() == [1, 1] and r.provider.tolist() == [0, 1]
    assert r.quantity.tolist() == [2.0, 1.0] and r.unserved.tolist() == [0.0, 0.0]
    # nothing to split
    r = split_orders_cheapest_first([], [1.0], [1.0])
    assert r.order.size == 0 and r.unserved.size == 0
    r = split_orders_cheapest_first([1.0], [], [])
    assert r.order.size == 0 and r.unserved.tolist() == [1.0]
    r = split_orders_cheapest_first([1.0, 0.0], [1.0], [0.0])
    assert r.order.size == 0 and r.unserved.tolist() == [1.0, 0.0]
    for bad in (([-1.0], [1.0], [1.0]), ([1.0], [1.0], [-1.0])):
        with pytest.raises(ValueError):
            split_orders_cheapest_first(*bad)


def test_split_orders_matches_a_unit_by_unit_queue():
    rng = np.random.default_rng(4)
    for _ in range(20):
        oq = rng.integers(0, 5, rng.integers(1, 6)).astype(float)
        price = rng.integers(1, 6, rng.integers(1, 5)).astype(float)
        cap = rng.integers(0, 5, price.size).astype(float)
        # brute force: stack units cheapest first (stable), hand them out one by one
        units = [p for p in np.argsort(price, kind="stable") for _ in range(int(cap[p]))]
        got = np.zeros((oq.size, price.size))
        k = 0
        for o, q in enumerate(oq):
            for _ in range(int(q)):
                if k < len(units):
                    got[o, units[k]] += 1
                    k += 1
        r = split_orders_cheapest_first(oq, price, cap)
        seg = np.zeros_like(got)
        np.add.at(seg, (r.order, r.provider), r.quantity)
        assert (seg == got).all()
        assert (r.unserved == oq - got.sum(axis=1)).all()
        assert (r.unit_price == price[r.provider]).all()


def test_strategies_markups_and_asks():
    assert Truthful(3).ask(np.array([1.0, 2.0, 3.0])).tolist() == [1.0, 2.0, 3.0]
    assert BiddingStrategy().markup().tolist() == [0.0]
    assert BiddingStrategy(2).markup(np.array([True, False])).tolist() == [0.0]
    cp = CostPlus()                                    # default markup 10%, one provider
    assert cp.n_providers == 1 and cp.ask(np.array([10.0])).tolist() == pytest.approx([11.0])
    cp = CostPlus(0.2, n_providers=3)                  # a scalar markup spread over providers
    assert cp.markup().tolist() == [0.2] * 3
    cp = CostPlus([0.1, 0.5])
    assert cp.ask(np.array([[10.0, 20.0], [10.0, 20.0]])).ravel().tolist() == pytest.approx([11.0, 22.0, 15.0, 30.0])
    assert cp.markup(np.array([1])).tolist() == [0.5]
    assert cp.ask(np.array([4.0]), providers=np.array([False, True])).tolist() == [6.0]
    m = cp.markup()
    m[:] = 9.0
    assert cp.markup().tolist() == [0.1, 0.5]         # a copy, not the state


def test_adaptive_markup_defaults_and_limits():
    s = AdaptiveMarkup(2)
    assert s.markup().tolist() == [0.1, 0.1]
    # defaults: steps 5%, target 85%, gain 1. Won at 95%: (1.1)(1 + 0.05 x 1.1) - 1 = 0.1605
    # lost at 65%: (1.1)(1 - 0.05 x 1.2) - 1 = 0.034
    s.observe(np.array([True, False]), utilisation=np.array([0.95, 0.65]))
    assert s.markup().tolist() == pytest.approx([0.1605, 0.034])
    # bounds: markups clipped to [min, max] at the start and after updates
    s = AdaptiveMarkup(2, initial=[-0.5, 3.0], min_markup=0.0, max_markup=1.0, step_up=0.5)
    assert s.markup().tolist() == [0.0, 1.0]
    s.observe(np.array([True, True]))                  # no utilisation: at target
    assert s.markup().tolist() == [0.5, 1.0]
    s.observe(np.array([False]), providers=np.array([0]))
    assert s.markup().tolist() == pytest.approx([1.5 * 0.95 - 1.0, 1.0])
    # utilisation far below target cannot turn the cut factor negative
    s = AdaptiveMarkup(1, initial=0.5, step_down=0.5, util_gain=10.0, min_markup=-0.99)
    s.observe(np.array([False]), utilisation=np.array([0.0]))
    assert s.markup().tolist() == pytest.approx([1.5 * (1 - 0.99) - 1.0])
    # far above target a loss is only a plain cut, and a win far below target no rise
    s = AdaptiveMarkup(1, initial=0.5, util_gain=10.0)
    s.observe(np.array([True]), utilisation=np.array([0.0]))
    assert s.markup().tolist() == pytest.approx([0.5])


@pytest.mark.parametrize("kw", [{"step_down": 1.0}, {"step_down": -0.1}, {"step_up": -0.1},
                                {"min_markup": 0.5, "max_markup": 0.4}, {"min_markup": -1.0}])
def test_adaptive_markup_refuses_bad_settings(kw):
    with pytest.raises(ValueError):
        AdaptiveMarkup(1, **kw)


def test_adaptive_markup_accepts_limit_settings():
    s = AdaptiveMarkup(1, step_down=0.0, step_up=0.0, min_markup=0.3, max_markup=0.3, initial=0.3)
    s.observe(np.array([False]))
    assert s.markup().tolist() == pytest.approx([0.3])


def test_bandit_sample_average_and_constant_step():
    rng = np.random.default_rng(0)
    b = BanditMarkup(2, rng, grid=np.array([0.0, 0.2]), epsilon=0.0)
    # greedy with equal values picks the first arm (markup 0)
    assert b.ask(np.array([10.0, 10.0])).tolist() == [10.0, 10.0]
    b.observe(np.array([True, False]), profit=np.array([3.0, 1.0]))
    b.observe(np.array([True, False]), profit=np.array([1.0, 1.0]))
    assert b.values[:, 0].tolist() == [2.0, 1.0] and b.counts[:, 0].tolist() == [2, 2]
    # without a profit the reward is won x markup
    b.values[:] = [[0.0, 1.0], [0.0, 1.0]]
    assert b.ask(np.array([10.0, 10.0])).tolist() == pytest.approx([12.0, 12.0])
    assert b.markup().tolist() == [0.2, 0.2]
    b.observe(np.array([True, False]))
    assert b.values[:, 1].tolist() == pytest.approx([0.2, 0.0])
    c = BanditMarkup(1, rng, grid=np.array([0.1]), epsilon=0.0, step_size=0.5, initial_value=4.0)
    c.ask(np.array([1.0]))
    c.observe(np.array([True]), profit=np.array([0.0]))
    assert c.values.tolist() == [[2.0]]
    # exploring every time draws arms uniformly
    e = BanditMarkup(4000, np.random.default_rng(1), grid=np.array([0.0, 0.1, 0.2, 0.3]), epsilon=1.0)
    e.ask(np.ones(4000))
    counts = np.bincount(e.last_arm, minlength=4)
    assert (np.abs(counts - 1000) < 150).all()
