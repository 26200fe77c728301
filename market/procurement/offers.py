"""Providers' offers: who can serve which resource, with what capacity, cost and price.

An *offer* is one provider's service on one resource (a carrier on a lane, an operator's
warehouse, a broker at a customs point). Offers are rows of numpy arrays so daily pricing and
capacity allocation stay vectorized; provider agents own their rows and set their markups.

An offer's capacity has two parts: capacity the provider keeps for this market, which costs it
``fixed_rate`` a unit a day whether used or not, and ``outside_capacity``, spare capacity it
sells this market from networks that serve other markets, which carries no fixed cost here and
is never shed. Posted spot prices follow how tight each offer has been (:meth:`update_spot`).
"""

from __future__ import annotations

import numpy as np

from market.mechanisms.spot import posted_spot_price

FLOAT_COLS = ("capacity", "storage_capacity", "cost_parcel", "cost_kg", "cost_shipment",
              "cost_storage", "fixed_cost_day", "speed", "delay_mult", "loss_mult", "accuracy",
              "markup", "used_today", "used_prev", "util_sum", "reserved", "stock_units",
              "base_capacity", "outside_capacity", "fixed_rate")
INT_COLS = ("resource", "provider", "provider_idx", "acct", "kind")


class OfferBook:
    """Columns of offers; ``offers.cost_parcel[i]`` etc. are numpy arrays indexed by offer id."""

    def __init__(self):
        self._rows: list[dict] = []
        self.n = 0
        self.by_resource: dict[int, np.ndarray] = {}

    def add(self, **row) -> int:
        """Add an offer before :meth:`freeze`; returns its id."""
        self._rows.append(row)
        return len(self._rows) - 1

    def freeze(self, n_resources: int):
        """Turn the added rows into arrays and index them by resource."""
        self.n = len(self._rows)
        for c in FLOAT_COLS:
            setattr(self, c, np.array([float(r.get(c, 0.0)) for r in self._rows], dtype=np.float64))
        for c in INT_COLS:
            setattr(self, c, np.array([int(r.get(c, -1)) for r in self._rows], dtype=np.int64))
        self.active = np.ones(self.n, dtype=bool)
        self.base_capacity = self.capacity.copy()
        self.spot_factor = np.ones(self.n)
        self.tightness = np.zeros(self.n)        # smoothed share of capacity demanded (spot prices)
        self._rows = []
        self.reindex(n_resources)

    def extend(self, rows: list[dict], n_resources: int) -> np.ndarray:
        """Add offers while the model runs (a provider entering); returns their ids."""
        start = self.n
        for c in FLOAT_COLS:
            setattr(self, c, np.concatenate([getattr(self, c), [float(r.get(c, 0.0)) for r in rows]]))
        for c in INT_COLS:
            setattr(self, c, np.concatenate([getattr(self, c), np.array([int(r.get(c, -1)) for r in rows], dtype=np.int64)]))
        self.active = np.concatenate([self.active, np.ones(len(rows), dtype=bool)])
        self.spot_factor = np.concatenate([self.spot_factor, np.full(len(rows), self.spot_factor.mean() if self.n else 1.0)])
        self.tightness = np.concatenate([self.tightness, np.full(len(rows), self.tightness.mean() if self.n else 0.0)])
        self.n += len(rows)
        self.base_capacity[start:] = self.capacity[start:]
        self.reindex(n_resources)
        return np.arange(start, self.n)

    def reindex(self, n_resources: int):
        """Rebuild ``by_resource``: resource -> its offer ids (in offer order), for resources
        that have any."""
        order = np.argsort(self.resource, kind="stable")
        bounds = np.searchsorted(self.resource[order], np.arange(n_resources + 1))
        self.by_resource = {r: order[bounds[r]:bounds[r + 1]] for r in range(n_resources)
                            if bounds[r + 1] > bounds[r]}

    # ---- capacity and its fixed cost ----
    def set_fixed_cost(self, offers, capacity: np.ndarray):
        """The daily fixed cost of these offers at this capacity (before shocks): their rate on
        the capacity they keep beyond the outside spare."""
        self.fixed_cost_day[offers] = self.fixed_rate[offers] * np.maximum(capacity - self.outside_capacity[offers], 0.0)

    # ---- prices ----
    def update_spot(self, slope: float, convexity: float, spot_markup: float, slack: float,
                    smoothing_days: float, queue: np.ndarray | None = None):
        """Posted spot prices for today from how tight each offer has been.

        Yesterday's demand on an offer is what it served plus its share (pro rata to capacity)
        of the parcels left waiting at its resource; as a share of the capacity it keeps for this
        market (:meth:`own_capacity`), smoothed exponentially over ``smoothing_days``, it is the
        offer's tightness ``t``. The spot
        price is the list (contract) price times ``1 + spot_markup + slope * x ** convexity``,
        ``x = (t - slack) / (1 - slack)`` clipped to [0, 1]: ``1 + spot_markup`` (below list
        when negative) in a slack market, ``1 + spot_markup + slope`` when capacity runs full.
        """
        cap = self.own_capacity()
        demand = np.divide(self.used_prev, cap, out=np.zeros(self.n), where=cap > 0)
        if queue is not None and np.any(queue):
            open_cap = np.where(self.active, cap, 0.0)
            res_cap = np.bincount(self.resource, weights=open_cap, minlength=queue.size)
            q = queue[self.resource]
            demand += np.divide(q, res_cap[self.resource], out=np.zeros(self.n), where=res_cap[self.resource] > 0)
            demand = np.where((cap <= 0) & (q > 0), 1.0, demand)     # a closed resource with a queue is tight
        alpha = 1.0 - np.exp(-1.0 / smoothing_days)
        self.tightness += alpha * (np.minimum(demand, 2.0) - self.tightness)
        x = np.clip((self.tightness - slack) / max(1.0 - slack, 1e-9), 0.0, 1.0)
        # 1 + spot_markup + slope * x ** convexity, as the posted-price rule over base 1 + spot_markup
        self.spot_factor = posted_spot_price(1.0 + spot_markup, x, slope / (1.0 + spot_markup), convexity)

    def own_capacity(self) -> np.ndarray:
        """Capacity each offer keeps for this market (without the outside spare), or all its
        capacity where it keeps none: what its prices read utilisation against. Capacity is
        sized so that this runs mid-band and the fixed cost in the unit cost is spread over it
        at mid-band; counting the spare sold from other networks on top would read a fleet at
        mid-band as a slack market and price it below its full cost."""
        kept = self.capacity - self.outside_capacity
        return np.where(kept > 0, kept, self.capacity)

    def spot_rates(self, offers):
        """(per parcel, per kg, per shipment) spot rates of these offers."""
        m = (1.0 + self.markup[offers]) * self.spot_factor[offers]
        return self.cost_parcel[offers] * m, self.cost_kg[offers] * m, self.cost_shipment[offers] * m

    def new_day(self):
        """Roll today's use into yesterday's (for spot prices) and the utilisation sum (of the
        capacity kept for this market, for the providers' price reviews), and start the day
        with nothing used."""
        self.used_prev = self.used_today.copy()
        own = self.own_capacity()
        self.util_sum += np.divide(self.used_today, own, out=np.zeros(self.n), where=own > 0)
        self.used_today[:] = 0.0

    def spare(self, offers) -> np.ndarray:
        """Capacity of these offers not yet used today (0 for closed offers)."""
        return np.where(self.active[offers], np.maximum(self.capacity[offers] - self.used_today[offers], 0.0), 0.0)

    def utilisation_prev(self, offers) -> np.ndarray:
        """Share of these offers' capacity used yesterday (0 where there is no capacity)."""
        return np.divide(self.used_prev[offers], self.capacity[offers],
                         out=np.zeros(len(offers)), where=self.capacity[offers] > 0)
