"""Double auctions: zero-intelligence continuous double auction and call market.

* :func:`zi_continuous_double_auction` reproduces the market of Gode & Sunder
  (1993), "Allocative efficiency of markets with zero-intelligence traders",
  *Journal of Political Economy* 101(1): zero-intelligence traders submit
  random bids/asks into a continuous double auction (CDA).  Budget-constrained
  ZI-C traders never bid above their value or ask below their cost; ZI-U
  traders bid anywhere in ``[price_floor, price_ceiling]``.
* :func:`call_market_clear` clears a sealed uniform-price double auction
  (call market), e.g. the daily spot market for spare container/air capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "ZIResult",
    "zi_continuous_double_auction",
    "max_surplus",
    "CallMarketResult",
    "call_market_clear",
]


def _units(a: np.ndarray) -> np.ndarray:
    """Coerce to a (traders, units) array with NaN for missing units."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError("values/costs must be 1-D (one unit each) or 2-D (traders x units)")
    return a


def max_surplus(buyer_values: np.ndarray, seller_costs: np.ndarray) -> float:
    """Maximum (competitive-equilibrium) gains from trade.

    Pools all buyer unit values (descending) and seller unit costs
    (ascending) and sums the positive differences ``v_(k) - c_(k)``.  NaNs are
    ignored (padding of ragged unit schedules).
    """
    v = _units(buyer_values).ravel()
    c = _units(seller_costs).ravel()
    v = -np.sort(-v[~np.isnan(v)])
    c = np.sort(c[~np.isnan(c)])
    k = min(v.size, c.size)
    gains = v[:k] - c[:k]
    return float(gains[gains > 0].sum())


@dataclass
class ZIResult:
    """Outcome of one ZI double-auction trading period.

    buyer, seller, price: one entry per transaction, in trading order.
    buyer_value, seller_cost: value / cost of the traded units.
    surplus: realised gains from trade ``sum(buyer_value - seller_cost)``.
    max_surplus: competitive-equilibrium gains (see :func:`max_surplus`).
    efficiency: ``surplus / max_surplus`` (NaN if no gains are possible).
    rounds: number of order submissions simulated.
    """

    buyer: np.ndarray
    seller: np.ndarray
    price: np.ndarray
    buyer_value: np.ndarray
    seller_cost: np.ndarray
    surplus: float
    max_surplus: float
    efficiency: float
    rounds: int

    @property
    def trades(self) -> list[tuple[int, int, float]]:
        """Transactions as ``(buyer, seller, price)`` tuples."""
        return list(zip(self.buyer.tolist(), self.seller.tolist(), self.price.tolist()))

    @property
    def n_trades(self) -> int:
        """Number of transactions."""
        return int(self.price.size)


def zi_continuous_double_auction(
    buyer_values: np.ndarray,
    seller_costs: np.ndarray,
    rng: np.random.Generator,
    budget_constrained: bool = True,
    max_rounds: int = 20_000,
    price_floor: float = 0.0,
    price_ceiling: float | None = None,
) -> ZIResult:
    """Simulate a continuous double auction with zero-intelligence traders.

    Gode & Sunder (1993) set-up: buyers hold redemption values, sellers unit
    costs, for one or several units each (``(traders, units)`` arrays, NaN for
    missing units; units are traded in column order, so schedules are usually
    given with values descending / costs ascending).  At each round a trader
    with units left is drawn uniformly at random and submits an order for its
    next unit:

    * ZI-C (``budget_constrained=True``): a buyer bids ``U(price_floor, value)``,
      a seller asks ``U(cost, price_ceiling)``;
    * ZI-U: both draw ``U(price_floor, price_ceiling)``.

    The book keeps only the best bid and best ask (an order that does not
    improve its side is discarded).  A bid at or above the best ask trades at
    the ask; an ask at or below the best bid trades at the bid.  After every
    transaction the book is cleared.  The period ends after ``max_rounds``
    submissions, when one side runs out of units, or (ZI-C) when no remaining
    buyer value reaches a remaining seller cost.

    ``price_ceiling`` defaults to the highest value/cost in the market.
    """
    values = _units(buyer_values)
    costs = _units(seller_costs)
    n_b, n_s = values.shape[0], costs.shape[0]
    if price_ceiling is None:
        finite = np.concatenate([values[~np.isnan(values)], costs[~np.isnan(costs)]])
        price_ceiling = float(finite.max()) if finite.size else float(price_floor)
    floor, ceil = float(price_floor), float(price_ceiling)

    # number of usable units per trader (stop at the first NaN)
    n_units_b = np.argmax(np.concatenate([np.isnan(values), np.ones((n_b, 1), bool)], 1), 1)
    n_units_s = np.argmax(np.concatenate([np.isnan(costs), np.ones((n_s, 1), bool)], 1), 1)
    next_b = np.zeros(n_b, dtype=np.int64)
    next_s = np.zeros(n_s, dtype=np.int64)

    out_b: list[int] = []
    out_s: list[int] = []
    out_p: list[float] = []
    out_v: list[float] = []
    out_c: list[float] = []

    def active() -> tuple[np.ndarray, np.ndarray]:
        return np.flatnonzero(next_b < n_units_b), np.flatnonzero(next_s < n_units_s)

    def can_trade(ab: np.ndarray, as_: np.ndarray) -> bool:
        if ab.size == 0 or as_.size == 0:
            return False
        if not budget_constrained:
            return True
        return values[ab, next_b[ab]].max() >= costs[as_, next_s[as_]].min()

    act_b, act_s = active()
    live = can_trade(act_b, act_s)
    best_bid, bid_owner = -np.inf, -1
    best_ask, ask_owner = np.inf, -1
    rounds = 0
    chunk = 4096
    while live and rounds < max_rounds:
        m = min(chunk, max_rounds - rounds)
        pick_u = rng.random(m)
        price_u = rng.random(m)
        for j in range(m):
            rounds += 1
            n_active = act_b.size + act_s.size
            t = int(pick_u[j] * n_active)
            traded = False
            if t < act_b.size:
                i = int(act_b[t])
                v = values[i, next_b[i]]
                hi = v if budget_constrained else ceil
                bid = floor + price_u[j] * (max(hi, floor) - floor)
                if bid >= best_ask:
                    b, s, p = i, ask_owner, best_ask
                    traded = True
                elif bid > best_bid:
                    best_bid, bid_owner = bid, i
            else:
                i = int(act_s[t - act_b.size])
                c = costs[i, next_s[i]]
                lo = c if budget_constrained else floor
                ask = lo + price_u[j] * (ceil - min(lo, ceil))
                if ask <= best_bid:
                    b, s, p = bid_owner, i, best_bid
                    traded = True
                elif ask < best_ask:
                    best_ask, ask_owner = ask, i
            if traded:
                out_b.append(b)
                out_s.append(s)
                out_p.append(float(p))
                out_v.append(float(values[b, next_b[b]]))
                out_c.append(float(costs[s, next_s[s]]))
                next_b[b] += 1
                next_s[s] += 1
                best_bid, bid_owner = -np.inf, -1
                best_ask, ask_owner = np.inf, -1
                act_b, act_s = active()
                live = can_trade(act_b, act_s)
                if not live:
                    break

    bv = np.asarray(out_v)
    sc = np.asarray(out_c)
    surplus = float((bv - sc).sum())
    best = max_surplus(values, costs)
    eff = surplus / best if best > 0 else float("nan")
    return ZIResult(
        buyer=np.asarray(out_b, dtype=np.int64), seller=np.asarray(out_s, dtype=np.int64),
        price=np.asarray(out_p, dtype=float), buyer_value=bv, seller_cost=sc,
        surplus=surplus, max_surplus=best, efficiency=eff, rounds=rounds,
    )


class CallMarketResult(NamedTuple):
    """Outcome of :func:`call_market_clear`: ``(price, bid_fill, ask_fill)``."""

    price: float
    bid_fill: np.ndarray
    ask_fill: np.ndarray

    @property
    def volume(self) -> float:
        """Total quantity traded."""
        return float(self.bid_fill.sum())


def call_market_clear(
    bid_prices: np.ndarray,
    bid_qty: np.ndarray,
    ask_prices: np.ndarray,
    ask_qty: np.ndarray,
) -> CallMarketResult:
    """Clear a uniform-price sealed double auction (call market).

    Aggregate demand ``D(p) = sum(bid_qty[bid_prices >= p])`` and supply
    ``S(p) = sum(ask_qty[ask_prices <= p])`` are step functions; the traded
    volume is ``Q* = max_p min(D(p), S(p))``.  The prices attaining ``Q*``
    form an interval ``[p_lo, p_hi]`` whose ends are submitted prices (``p_lo``
    is set by the marginal ask side, ``p_hi`` by the marginal bid side); the
    clearing price is its midpoint (the "k = 1/2" rule).  Every executed bid is
    >= the price and every executed ask <= the price.

    Orders are filled by price priority then index (time) priority, so at most
    one bid and one ask per side are partially filled.  Fully vectorised
    (sort + cumulative sums + searchsorted).  Returns price NaN and zero fills
    when no trade is possible.
    """
    bp = np.asarray(bid_prices, dtype=float).ravel()
    bq = np.asarray(bid_qty, dtype=float).ravel()
    ap = np.asarray(ask_prices, dtype=float).ravel()
    aq = np.asarray(ask_qty, dtype=float).ravel()
    if bp.shape != bq.shape or ap.shape != aq.shape:
        raise ValueError("prices and quantities must have matching shapes")
    if np.any(bq < 0) or np.any(aq < 0):
        raise ValueError("quantities must be >= 0")
    bid_fill = np.zeros_like(bq)
    ask_fill = np.zeros_like(aq)
    if bp.size == 0 or ap.size == 0:
        return CallMarketResult(float("nan"), bid_fill, ask_fill)

    b_order = np.argsort(bp, kind="stable")
    b_sorted = bp[b_order]
    b_cum = np.concatenate([[0.0], np.cumsum(bq[b_order])])
    a_order = np.argsort(ap, kind="stable")
    a_sorted = ap[a_order]
    a_cum = np.concatenate([[0.0], np.cumsum(aq[a_order])])

    cand = np.unique(np.concatenate([bp, ap]))
    demand = b_cum[-1] - b_cum[np.searchsorted(b_sorted, cand, side="left")]
    supply = a_cum[np.searchsorted(a_sorted, cand, side="right")]
    traded = np.minimum(demand, supply)
    q_star = float(traded.max())
    if q_star <= 0:
        return CallMarketResult(float("nan"), bid_fill, ask_fill)
    at_max = cand[traded >= q_star]
    price = 0.5 * (float(at_max.min()) + float(at_max.max()))

    # price priority, then index priority
    bo = np.lexsort((np.arange(bp.size), -bp))
    before = np.concatenate([[0.0], np.cumsum(bq[bo])[:-1]])
    bid_fill[bo] = np.clip(q_star - before, 0.0, bq[bo])
    ao = np.lexsort((np.arange(ap.size), ap))
    before = np.concatenate([[0.0], np.cumsum(aq[ao])[:-1]])
    ask_fill[ao] = np.clip(q_star - before, 0.0, aq[ao])
    return CallMarketResult(price, bid_fill, ask_fill)
