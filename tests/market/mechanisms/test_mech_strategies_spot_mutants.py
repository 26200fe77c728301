"""Spot prices and bidding strategies: defaults, limits and edge cases
on hand figures (written against the mutants the first tests let through)."""

from __future__ import annotations

import numpy as np
import pytest

from market.mechanisms import (AdaptiveMarkup, BanditMarkup, BiddingStrategy, CostPlus, Truthful,
                               posted_spot_price)


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
