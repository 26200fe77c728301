"""How consumers answer prices, delivery time and reliability, and how merchants price: the
demand model's functions against numbers worked out by hand and against their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from market.scenario import Demand
from market.world.demand import (MIN_PRICE_SHARE, consumer_price, price_factor, reliability_factor, retail_price,
                                 time_factor, unit_margin)


def test_retail_price_moves_with_cost_by_the_pass_through():
    # a $40 product whose reference logistics cost is $10: a unit costing $16 to deliver
    assert retail_price(40.0, 16.0, 10.0, 1.0) == pytest.approx(46.0)       # all of the $6 passed on
    assert retail_price(40.0, 16.0, 10.0, 0.5) == pytest.approx(43.0)       # half of it
    assert retail_price(40.0, 4.0, 10.0, 1.0) == pytest.approx(34.0)        # a cheaper route lowers it
    assert retail_price(40.0, 16.0, 10.0, 0.0) == pytest.approx(40.0)       # no pass-through: reference
    # never below a small share of the reference price, however cheap the route
    assert retail_price(40.0, 0.0, 100.0, 1.0) == pytest.approx(MIN_PRICE_SHARE * 40.0)
    np.testing.assert_allclose(retail_price(np.array([10.0, 20.0]), np.array([3.0, 1.0]), np.array([2.5, 5.0]), 1.0),
                               [10.5, 16.0])


def test_price_factor_is_a_constant_elasticity():
    assert price_factor(50.0, 50.0, 2.0) == pytest.approx(1.0)               # the reference price: base demand
    assert price_factor(60.0, 50.0, 2.0) == pytest.approx((50 / 60) ** 2)     # 20% dearer: 1/1.44 of the orders
    # the elasticity is the log-derivative of orders with respect to the price, everywhere
    p = np.array([5.0, 30.0, 200.0])
    h = 1e-6
    slope = (np.log(price_factor(p * (1 + h), 40.0, 2.3)) - np.log(price_factor(p, 40.0, 2.3))) / np.log1p(h)
    np.testing.assert_allclose(slope, -2.3, rtol=1e-5)
    assert price_factor(80.0, 40.0, 0.0) == pytest.approx(1.0)               # elasticity 0: price-blind


def test_time_factor_matches_the_published_semi_elasticity():
    # Fisher, Gallino & Xu (2019): one business day faster, 1.5% more sales. At the default
    # semi-elasticity per calendar day a business day (7/5 calendar days) is worth 1.5%.
    e = Demand().time_elasticity
    gain = time_factor(7.0 - 7 / 5, e, 7.0) / time_factor(7.0, e, 7.0) - 1.0
    assert gain == pytest.approx(0.015, abs=0.0005)
    assert time_factor(7.0, e, 7.0) == pytest.approx(1.0)


def test_reliability_factor():
    assert reliability_factor(1.0, 0.17) == pytest.approx(1.0)               # always on time: base demand
    assert reliability_factor(0.0, 0.17) == pytest.approx(0.83)              # always late: 17% lost
    assert reliability_factor(0.6, 0.17) == pytest.approx(1 - 0.17 * 0.4)
    assert reliability_factor(0.5, 2.0) == 0.0                               # clipped at no demand


def test_consumer_price_and_margin():
    # listed at $46, $9 of duty and VAT: the consumer pays all of it, or none
    assert consumer_price(46.0, 9.0, 1.0) == pytest.approx(55.0)
    assert consumer_price(46.0, 9.0, 0.0) == pytest.approx(46.0)
    # goods $18, logistics $16: paid 55, keeps 55 - 18 - 16 - 9 = 12
    assert unit_margin(46.0, 9.0, 18.0, 16.0, 1.0) == pytest.approx(12.0)
    # absorbing the tax (nothing passed on) costs the merchant all of it
    assert unit_margin(46.0, 9.0, 18.0, 16.0, 0.0) == pytest.approx(3.0)


def test_with_complete_pass_through_the_margin_does_not_depend_on_the_route():
    """Consumers bear a dearer route and a duty in full: the merchant's unit margin is its
    reference margin whatever the route costs - what it loses is orders."""
    rng = np.random.default_rng(3)
    value = rng.uniform(5, 150, 200)
    goods = value * rng.uniform(0.3, 0.6, 200)
    ref = 0.25 * value
    cost = rng.uniform(1, 40, 200)
    tax = rng.uniform(0, 30, 200)
    price = retail_price(value, cost, ref, 1.0)
    ok = price > MIN_PRICE_SHARE * value
    margin = unit_margin(price, tax, goods, cost, 1.0)
    np.testing.assert_allclose(margin[ok], (value - goods - ref)[ok])
    # and the consumer's price (so the orders) rises one for one with cost and tax
    np.testing.assert_allclose(consumer_price(price, tax, 1.0)[ok], (value + cost - ref + tax)[ok])
