"""Integrator: a 4PL that sells end-to-end cross-border services built from providers' legs.

It pools many merchants' volume, contracts the legs of its services in tenders (and so gets
the volume discounts a single merchant cannot), coordinates the hand-offs, tracks parcels,
handles claims on the merchant's behalf, and prices its services on top of its cost.
"""

from __future__ import annotations

import mesa
import numpy as np


class Integrator(mesa.Agent):
    """A 4PL integrator."""

    role = "integrator"

    def __init__(self, model, name: str, markup: float):
        super().__init__(model)
        self.name = name
        self.markup = markup
        self.acct = model.ledger.open(f"integrator:{name}", self.role, self.unique_id)
        self.index = len(model.integrators)
        self._rates: dict[int, tuple[float, float]] = {}
        self._rates_day = -1

    # ---- cost basis and quotes ----
    def planned_volume(self, resources) -> np.ndarray:
        """The pooled daily volume it expects on each resource (at least its planning volume)."""
        plan = self.model.plan
        floor = self.model.config.integrators.planning_volume
        return np.array([max(plan.get((self.acct, int(r)), 0.0), floor) for r in resources])

    def route_rates(self, route: int) -> tuple[float, float]:
        """Its cost of a route: (per parcel, per kg), from its contracts or pooled list prices."""
        if self._rates_day != self.model.day:
            self._rates.clear()
            self._rates_day = self.model.day
        got = self._rates.get(route)
        if got is None:
            res = self.model.world.routes[route].resources
            rates = self.model.quoter.stage_rates(self.acct, res, self.planned_volume(res))
            got = (float(rates[:, 0].sum()), float(rates[:, 1].sum()))
            self._rates[route] = got
        return got

    def quote(self, route: int, weights) -> np.ndarray:
        """Price of its end-to-end service on a route for parcels of these weights (USD)."""
        a, b = self.route_rates(route)
        return (a + b * np.asarray(weights, dtype=np.float64)) * (1.0 + self.markup)

    def step(self):
        """Baseline integrator: keeps a constant markup (adaptive pricing comes with issue 4)."""

    # ---- reporting ----
    @property
    def cash(self) -> float:
        return self.model.ledger.balance(self.acct) / 100.0
