"""Buyers' volume plans: what each buyer expects to ship on each resource and route a day.

A buyer is a merchant doing it itself or the 4PL it buys from. The plan comes from merchants'
current choices and expected orders; tenders put it out to bid (with cover), and integrators
price their first quotes on it before they hold contracts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from market.world import TRANSPORT

if TYPE_CHECKING:
    from market.model import Marketplace


class VolumePlan:
    """Expected daily volume per (buyer account, resource) and per (buyer account, route).

    Bulk lanes are planned in kg a day, bulk customs in entries (consignments) a day, everything
    else in parcels a day. ``dirty`` is set when a merchant changes its choice.
    """

    def __init__(self):
        self.volumes: dict[tuple[int, int], float] = {}
        self.routes: dict[tuple[int, int], float] = {}
        self.by_buyer: dict[int, np.ndarray] = {}
        self.dirty = False

    def refresh(self, model: Marketplace):
        """Rebuild the plan from every merchant's current choice (it reads the merchants' table,
        their products and the routes, hence the model)."""
        mm, cfg = model.mm, model.config
        volumes: dict[tuple[int, int], float] = {}
        routes: dict[tuple[int, int], float] = {}
        orders = mm.base * cfg.demand.scale * mm.demand_factor
        for row in range(mm.n):
            if mm.route[row] < 0:
                continue
            merchant = model.merchants[mm.merchant[row]]
            integ = mm.integrator[row]
            buyer = merchant.acct if integ < 0 else model.integrators[integ].acct
            q = orders[row]
            key = (buyer, int(mm.route[row]))
            routes[key] = routes.get(key, 0.0) + q
            for r in model.world.routes[mm.route[row]].resources:
                volumes[(buyer, r)] = volumes.get((buyer, r), 0.0) + q
            if mm.rep_route[row] >= 0:
                kg = q * float((model.prod_share[merchant.products] * model.prod_weight[merchant.products]).sum())
                per_consignment = max(q * cfg.merchants.order_cycle_days, 1.0)
                for r in model.world.routes[mm.rep_route[row]].resources:
                    amount = kg if model.net.res_kind[r] == TRANSPORT else q / per_consignment
                    volumes[(buyer, r)] = volumes.get((buyer, r), 0.0) + amount
        self.volumes = volumes
        self.routes = routes
        # the same plan as a dense array per buyer, for vectorized lookups
        n_resources = len(model.world.resources)
        self.by_buyer = {}
        for (acct, r), v in volumes.items():
            self.by_buyer.setdefault(acct, np.zeros(n_resources))[r] = v
        self.dirty = False
