"""Consumer demand: the daily order rate's weekly pattern and seasonal peaks, per market; how
orders answer the landed price, the delivery time and the reliability consumers expect; and
how merchants set retail prices from their costs.

A listing's orders a day are

    base x share x calendar x time_factor(days) x reliability_factor(on time) x (1 + u V)
        x price_factor(consumer price / reference consumer price)

The merchant lists ``retail_price`` (its reference price moved by the pass-through of its unit
logistics cost against a reference cost); the consumer pays that plus the duty and VAT passed on
to it (``consumer_price``). The functions are plain arrays in, arrays out; the merchant's
choice (``agents/merchant.py``) and the day's orders (``market/goods/orders.py``) both use them,
so a merchant expects the orders a dearer option loses.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from market.scenario import Demand


def black_friday(year: int) -> dt.date:
    """The day after the fourth Thursday of November."""
    nov1 = dt.date(year, 11, 1)
    first_thu = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7)
    return first_thu + dt.timedelta(days=21 + 1)


def _anchor(peak, year: int) -> dt.date:
    if peak.anchor == "black_friday":
        return black_friday(year)
    month, day = (int(x) for x in peak.date.split("-"))
    return dt.date(year, month, day)


def calendar_multipliers(demand: Demand, start: dt.date, days: int, markets: list[str]) -> np.ndarray:
    """Order-rate multipliers, shape (days, markets): weekly pattern x (1 + seasonal peaks)."""
    dates = [start + dt.timedelta(days=d) for d in range(days)]
    weekly = np.asarray(demand.weekly, dtype=np.float64)
    weekly = weekly / weekly.mean()
    week = weekly[[d.weekday() for d in dates]]
    season = np.ones((days, len(markets)))
    ordinal = np.array([d.toordinal() for d in dates], dtype=np.float64)
    years = range(start.year - 1, dates[-1].year + 2)
    for peak in demand.peaks:
        cols = [i for i, m in enumerate(markets) if not peak.markets or m in peak.markets]
        if not cols:
            continue
        bump = np.zeros(days)
        for y in years:
            centre = _anchor(peak, y).toordinal() + peak.offset
            bump += peak.amplitude * np.exp(-0.5 * ((ordinal - centre) / peak.width) ** 2)
        season[:, cols] += bump[:, None]
    return week[:, None] * season


def time_factor(expected_days, elasticity: float, reference_days: float):
    """Demand response to expected delivery time: exp(-e (days - reference))."""
    return np.exp(-elasticity * (np.asarray(expected_days, dtype=np.float64) - reference_days))


class DemandCalendar:
    """Order-rate multipliers per day and market, computed ahead of the clock as needed."""

    def __init__(self, demand: Demand, start: dt.date, markets: list[str], days: int):
        self.demand = demand
        self.start = start
        self.markets = markets
        self.table = calendar_multipliers(demand, start, days, markets)

    def ahead(self, market: int, day: int, horizon: int = 400) -> np.ndarray:
        """Multipliers of a market from ``day`` on (the table is extended as needed)."""
        if day + horizon > self.table.shape[0]:
            self.table = calendar_multipliers(self.demand, self.start, day + horizon + 366, self.markets)
        return self.table[day: day + horizon, market]

    def on(self, day: int, markets: np.ndarray) -> np.ndarray:
        """Multipliers on one day for each of these markets."""
        return self.table[day, markets]


# ------------------------------------------------------------------------------------------
# How consumers answer prices and service, and how merchants set prices
# ------------------------------------------------------------------------------------------
MIN_PRICE_SHARE = 0.05   # a retail price never falls below this share of the reference price


def retail_price(reference_price, unit_cost, reference_cost, pass_through: float):
    """The merchant's listed price (before the taxes the consumer pays on it).

    The reference price holds when the unit's logistics cost is the reference one; the price
    moves with the difference by the pass-through: ``p = p_ref + rho (c - c_ref)`` (never below
    ``MIN_PRICE_SHARE`` of the reference price).
    """
    ref = np.asarray(reference_price, dtype=np.float64)
    p = ref + pass_through * (np.asarray(unit_cost, dtype=np.float64) - np.asarray(reference_cost, dtype=np.float64))
    return np.maximum(p, MIN_PRICE_SHARE * ref)


def consumer_price(price, taxes, tax_pass_through: float):
    """What the consumer pays for a unit: the listed price plus the share of the unit's duty
    and VAT passed on to it (at checkout, or at the door: the same to the consumer)."""
    return np.asarray(price, dtype=np.float64) + tax_pass_through * np.asarray(taxes, dtype=np.float64)


def price_factor(price, reference_price, elasticity: float):
    """Demand response to the landed price: ``(price / reference price) ** -elasticity``."""
    return (np.asarray(price, dtype=np.float64) / np.asarray(reference_price, dtype=np.float64)) ** (-elasticity)


def reliability_factor(on_time, late_churn: float):
    """Demand response to reliability: each late parcel loses its buyer with probability
    ``late_churn``, so orders are ``1 - late_churn x (1 - on-time share)`` of the base."""
    return np.clip(1.0 - late_churn * (1.0 - np.asarray(on_time, dtype=np.float64)), 0.0, 1.0)


def spread_factor(sd_days, penalty: float):
    """Demand response to delivery-time uncertainty: exp(-penalty x sd), ``sd_days`` the
    standard deviation of delivery days consumers see for the channel and provider."""
    return np.exp(-penalty * np.maximum(np.asarray(sd_days, dtype=np.float64), 0.0))


def unit_margin(price, taxes, goods_cost, unit_cost, tax_pass_through: float):
    """What the merchant keeps of a unit sold: the consumer's payment less goods, logistics
    (and carrying) cost and the duty and VAT it remits."""
    return consumer_price(price, taxes, tax_pass_through) - np.asarray(goods_cost, dtype=np.float64) \
        - np.asarray(unit_cost, dtype=np.float64) - np.asarray(taxes, dtype=np.float64)
