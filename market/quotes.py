"""What a leg, a route or a replenishment costs a given buyer today.

A buyer pays its contract rate where it holds a contract on a resource, otherwise the best
cost-plus list price providers would quote for its volume. Merchants use these figures to
compare channels and providers; integrators to price their services.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from market.contracts import ACTIVE

if TYPE_CHECKING:
    from market.model import Marketplace


class Quoter:
    def __init__(self, model: Marketplace):
        self.m = model
        self._contract_cache: dict[int, dict[int, int]] = {}
        self._cache_day = -1

    def _contracts_of(self, buyer_acct: int) -> dict[int, int]:
        """resource -> cheapest active contract of this buyer (cached for the day)."""
        if self._cache_day != self.m.day:
            self._contract_cache.clear()
            self._cache_day = self.m.day
        got = self._contract_cache.get(buyer_acct)
        if got is None:
            book = self.m.contracts
            ids = np.flatnonzero((book.status == ACTIVE) & (book.buyer_acct == buyer_acct))
            got = {}
            ref = book.rate_parcel[ids] + book.rate_kg[ids] * self.m.reference_weight + book.rate_shipment[ids]
            for cid in ids[np.argsort(-ref, kind="stable")]:   # cheapest last wins
                got[int(book.resource[cid])] = int(cid)
            self._contract_cache[buyer_acct] = got
        return got

    def invalidate(self):
        self._cache_day = -1

    def stage_rates(self, buyer_acct: int, resources, volume) -> np.ndarray:
        """Rates per stage, shape (n, 4): per parcel, per kg, per shipment, storage per unit-day."""
        m = self.m
        resources = np.asarray(resources, dtype=np.int64)
        vols = np.broadcast_to(np.asarray(volume, dtype=np.float64), resources.shape)
        out = np.zeros((resources.size, 4))
        mine = self._contracts_of(buyer_acct)
        book, offers = m.contracts, m.offers
        cfg = m.config.carriers
        for i, r in enumerate(resources):
            cid = mine.get(int(r))
            if cid is not None:
                out[i] = (book.rate_parcel[cid], book.rate_kg[cid], book.rate_shipment[cid], book.rate_storage[cid])
                continue
            o = offers.by_resource.get(int(r))
            if o is None:
                out[i] = np.inf
                continue
            o = o[offers.active[o]]
            if o.size == 0:
                out[i] = np.inf
                continue
            bulk = m.net.res_bulk[r]
            v = vols[i]
            dens = 1.0 if bulk else 1.0 - cfg.density_discount * v / (v + cfg.density_half_volume)
            up = (1.0 + offers.markup[o]) * dens
            ref = (offers.cost_parcel[o] + offers.cost_kg[o] * m.reference_weight + offers.cost_shipment[o]) * up
            j = o[np.argmin(ref)]
            k = (1.0 + offers.markup[j]) * dens
            out[i] = (offers.cost_parcel[j] * k, offers.cost_kg[j] * k, offers.cost_shipment[j] * k,
                      offers.cost_storage[j] * (1.0 + offers.markup[j]))
        return out

    def route_cost(self, buyer_acct: int, route: int, weights, volume) -> np.ndarray:
        """Cost of sending parcels of these weights along a parcel route (USD each)."""
        res = self.m.world.routes[route].resources
        rates = self.stage_rates(buyer_acct, res, volume)
        w = np.asarray(weights, dtype=np.float64)
        return rates[:, 0].sum() + rates[:, 1].sum() * w

    def replenish_cost(self, buyer_acct: int, rep_route: int, wh_node: str, weights,
                       units_per_consignment: float, stock_days: float) -> np.ndarray:
        """Bulk freight, customs fees and storage per unit shipped through a warehouse (USD)."""
        m = self.m
        rt = m.world.routes[rep_route]
        rates = self.stage_rates(buyer_acct, rt.resources, 0.0)
        w = np.asarray(weights, dtype=np.float64)
        units = max(units_per_consignment, 1.0)
        bulk = rates[:, 1].sum() * w + (rates[:, 2].sum() + rates[:, 0].sum()) / units
        wh_res = m.handling_resource[wh_node]
        storage = self.stage_rates(buyer_acct, [wh_res], 0.0)[0, 3]
        return bulk + storage * stock_days
