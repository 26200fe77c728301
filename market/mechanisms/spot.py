"""Spot market helpers: posted utilisation-based prices and cheapest-first fill.

Spot freight rates rise steeply as capacity tightens (peak season, blank
sailings).  :func:`posted_spot_price` models the posted per-unit rate of a
provider as a convex function of its utilisation; the allocation helpers send
spot demand to providers' spare capacity cheapest-first, fully vectorised
with ``sort``/``cumsum``/``searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "posted_spot_price",
    "SpotAllocation",
    "allocate_cheapest_first",
    "OrderSplit",
    "split_orders_cheapest_first",
]


def posted_spot_price(
    base_rate: np.ndarray | float,
    utilisation: np.ndarray | float,
    slope: float | np.ndarray = 1.0,
    convexity: float | np.ndarray = 2.0,
    cap: float | np.ndarray | None = None,
) -> np.ndarray:
    """Posted spot rate per unit rising with capacity utilisation.

    ``price = base_rate * (1 + slope * max(utilisation, 0) ** convexity)``,
    capped at ``cap`` (an absolute USD/unit ceiling, e.g. a regulatory or
    contractual cap; ``None`` for none).  With ``slope >= 0`` and
    ``convexity > 0`` the price is non-decreasing in utilisation; at 100 %
    utilisation it is ``base_rate * (1 + slope)``.  Broadcasts over all
    arguments.
    """
    slope = np.asarray(slope, dtype=float)
    convexity = np.asarray(convexity, dtype=float)
    if np.any(slope < 0) or np.any(convexity <= 0):
        raise ValueError("need slope >= 0 and convexity > 0")
    u = np.maximum(np.asarray(utilisation, dtype=float), 0.0)
    price = np.asarray(base_rate, dtype=float) * (1.0 + slope * u**convexity)
    if cap is not None:
        price = np.minimum(price, cap)
    return price


@dataclass
class SpotAllocation:
    """Result of :func:`allocate_cheapest_first`.

    quantity: units sent to each provider (same shape as ``price``).
    cost: total USD per market (scalar for a single market).
    unserved: demand left over per market.
    marginal_price: price of the most expensive provider used (NaN if none).
    """

    quantity: np.ndarray
    cost: np.ndarray | float
    unserved: np.ndarray | float
    marginal_price: np.ndarray | float


def allocate_cheapest_first(
    demand: np.ndarray | float, price: np.ndarray, capacity: np.ndarray
) -> SpotAllocation:
    """Fill spot demand from providers' spare capacity, cheapest first.

    ``price``/``capacity`` are ``(n_providers,)`` for one market or
    ``(n_markets, n_providers)`` for a batch (e.g. one row per lane) with
    ``demand`` of shape ``(n_markets,)``.  Ties in price go to the lower
    provider index.  This is the optimal (least-cost) allocation of a single
    divisible demand over capacitated linear offers.
    """
    p = np.asarray(price, dtype=float)
    single = p.ndim == 1
    p2 = np.atleast_2d(p)
    cap = np.broadcast_to(np.asarray(capacity, dtype=float), p.shape).reshape(p2.shape)
    d = np.broadcast_to(np.asarray(demand, dtype=float), (p2.shape[0],))
    if np.any(cap < 0) or np.any(d < 0):
        raise ValueError("capacity and demand must be >= 0")

    order = np.argsort(p2, axis=1, kind="stable")
    cap_s = np.take_along_axis(cap, order, axis=1)
    before = np.cumsum(cap_s, axis=1) - cap_s
    q_s = np.clip(d[:, None] - before, 0.0, cap_s)
    q = np.empty_like(q_s)
    np.put_along_axis(q, order, q_s, axis=1)

    cost = (q * p2).sum(axis=1)
    unserved = d - q.sum(axis=1)
    used = q_s > 0
    last = used.shape[1] - 1 - np.argmax(used[:, ::-1], axis=1)
    p_s = np.take_along_axis(p2, order, axis=1)
    marginal = np.where(used.any(axis=1), p_s[np.arange(p2.shape[0]), last], np.nan)
    if single:
        return SpotAllocation(q[0], float(cost[0]), float(unserved[0]), float(marginal[0]))
    return SpotAllocation(q, cost, unserved, marginal)


@dataclass
class OrderSplit:
    """Result of :func:`split_orders_cheapest_first` (one row per segment).

    order, provider, quantity, unit_price: segment ``k`` sends
    ``quantity[k]`` units of order ``order[k]`` to ``provider[k]`` at
    ``unit_price[k]``.
    unserved: per order, units that found no capacity.
    """

    order: np.ndarray
    provider: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray
    unserved: np.ndarray


def split_orders_cheapest_first(
    order_qty: np.ndarray, price: np.ndarray, capacity: np.ndarray
) -> OrderSplit:
    """Serve a queue of spot orders (in the given order) from a price ladder.

    Providers' spare capacity is stacked cheapest first (ties: lower index);
    orders consume it first-come first-served, so order 0 gets the cheapest
    units, and an order may be split across providers.  The segments are found
    by merging the cumulative order and capacity break-points
    (``O(n log n)``, no loop over order x provider pairs).
    """
    oq = np.asarray(order_qty, dtype=float).ravel()
    p = np.asarray(price, dtype=float).ravel()
    cap = np.broadcast_to(np.asarray(capacity, dtype=float), p.shape).ravel()
    if np.any(oq < 0) or np.any(cap < 0):
        raise ValueError("quantities must be >= 0")
    order = np.argsort(p, kind="stable")
    cum_cap = np.cumsum(cap[order])
    cum_ord = np.cumsum(oq)
    total = min(cum_ord[-1] if oq.size else 0.0, cum_cap[-1] if cap.size else 0.0)
    cuts = np.unique(np.concatenate([[0.0], cum_ord, cum_cap, [total]]))
    cuts = cuts[cuts <= total]
    length = np.diff(cuts)
    mid = cuts[:-1] + 0.5 * length
    keep = length > 0
    mid, length = mid[keep], length[keep]
    o = np.searchsorted(cum_ord, mid, side="right")
    prov = order[np.searchsorted(cum_cap, mid, side="right")]
    served = np.bincount(o, weights=length, minlength=oq.size)
    return OrderSplit(order=o, provider=prov, quantity=length, unit_price=p[prov],
                      unserved=oq - served)
