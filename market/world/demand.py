"""Consumer demand: the daily order rate's weekly pattern and seasonal peaks, per market, and
how orders answer the delivery time consumers expect."""

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
