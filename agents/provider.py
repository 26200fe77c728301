"""What every provider (carrier, warehouse operator, customs broker) has in common.

A provider owns offers (rows of the model's OfferBook): capacity on resources, its own unit
costs and a markup. It bids cost-plus in tenders, passing on the economies of density a
committed volume gives it, and reviews its markups against the utilisation of its capacity.
"""

from __future__ import annotations

import mesa
import numpy as np


class Provider(mesa.Agent):
    """Base class of the three provider actors; subclasses set ``role``."""

    role = "provider"

    def __init__(self, model, name: str, group: str):
        super().__init__(model)
        self.name = name
        self.group = group
        self.acct = model.ledger.open(f"{self.role}:{name}", self.role, self.unique_id)
        self.offer_ids = np.zeros(0, dtype=np.int64)
        self.in_market = True
        self.loss_periods = 0      # review periods in a row with a loss (evolution)

    # ---- pricing ----
    def density_factor(self, volume) -> np.ndarray:
        """Unit-cost factor at a committed daily volume: economies of density (Caplice & Sheffi)."""
        c = self.model.config.carriers
        v = np.maximum(np.asarray(volume, dtype=np.float64), 0.0)
        return 1.0 - c.density_discount * v / (v + c.density_half_volume)

    def bid_rates(self, offers: np.ndarray, volume: float, bulk: bool) -> dict[str, np.ndarray]:
        """Cost-plus contract rates for ``volume`` a day on these (own) offers."""
        book = self.model.offers
        factor = np.ones(offers.size) if bulk else self.density_factor(np.full(offers.size, volume))
        up = (1.0 + book.markup[offers]) * factor
        return {"rate_parcel": book.cost_parcel[offers] * up, "rate_kg": book.cost_kg[offers] * up,
                "rate_shipment": book.cost_shipment[offers] * up,
                "rate_storage": book.cost_storage[offers] * (1.0 + book.markup[offers]),
                "cost_factor": factor}

    def review_prices(self):
        """Raise markups where capacity ran hot, cut them where it stood idle."""
        c = self.model.config.carriers
        book = self.model.offers
        o = self.offer_ids[book.active[self.offer_ids]]
        if o.size == 0:
            return
        util = book.util_sum[o] / c.review_days
        book.util_sum[o] = 0.0
        lo, hi = c.utilisation_target
        step = np.where(util > hi, c.markup_step, np.where(util < lo, -c.markup_step, 0.0))
        book.markup[o] = np.clip(book.markup[o] + step, *c.markup_bounds)

    def step(self):
        if not self.in_market:
            return
        day = self.model.day
        # with adaptive bidding the markup is learned in tenders instead
        if day > 0 and day % self.model.config.carriers.review_days == 0 \
                and self.model.config.market.bidding != "adaptive":
            self.review_prices()

    # ---- reporting ----
    @property
    def cash(self) -> float:
        return self.model.ledger.balance(self.acct) / 100.0

    def utilisation(self) -> float:
        book = self.model.offers
        o = self.offer_ids
        cap = book.capacity[o].sum()
        return float(book.used_prev[o].sum() / cap) if cap > 0 else 0.0
