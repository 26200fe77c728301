"""What a leg, a route or a replenishment costs a given buyer today.

A buyer pays its contract rate where it holds a contract on a resource, otherwise the best
cost-plus list price providers would quote for its volume. Merchants use these figures to
compare channels and providers; integrators to price their services.

Prices change once a day (markups, spot premiums), so the best list and spot offer of every
resource is found once a day for all resources at once; a quote is then a few array lookups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from market.arrays import broadcast
from market.money.contracts import ACTIVE

if TYPE_CHECKING:
    from market.model import Marketplace


class Quoter:
    """Today's prices for buyers: stage rates, route and replenishment costs, storage rates.

    Takes the model because a quote reads the offer book (costs, markups, spot factors,
    capacity), the buyer's active contracts in the contract book, the routes and warehouses of
    the world, the density discount and tender interval of the scenario, and the model's day
    (its cache lasts a day; :meth:`invalidate` ends it early when prices or contracts change).
    """

    def __init__(self, model: Marketplace):
        self.model = model
        self._contract_cache: dict[int, dict[int, np.ndarray]] = {}
        self._replenish_memo: dict[tuple, tuple[float, float, float]] = {}
        self._open_memo: dict[int, bool] = {}
        self._day = -1

    def invalidate(self):
        """Forget today's cached prices (a shock, a tender round or new capacity changed them)."""
        self._day = -1

    def cheapest_open_variant(self, family: tuple, prefix: list[int] | None = None) -> int | None:
        """The variant of a route family whose resources are all open today with the lowest
        list price, optionally sharing ``prefix`` (the stages a parcel has done); None if none."""
        self._refresh()
        world = self.model.world
        best, best_cost = None, np.inf
        for r in world.route_variants.get(family, []):
            res = world.routes[r].resources
            if prefix is not None and res[: len(prefix)] != prefix:
                continue
            if not self.res_open[res].all():
                continue
            cost = float(self.list_ref[res].sum())
            if cost < best_cost:
                best, best_cost = r, cost
        return best

    def _refresh(self):
        """Best list and spot offer per resource, and their rates, for today."""
        model = self.model
        if self._day == model.day:
            return
        self._day = model.day
        self._contract_cache.clear()
        self._replenish_memo.clear()
        self._open_memo.clear()
        offers = model.offers
        n_resources = len(model.world.resources)
        ref = offers.cost_parcel + offers.cost_kg * model.reference_weight + offers.cost_shipment
        up = 1.0 + offers.markup
        list_ref = np.where(offers.active, ref * up, np.inf)
        spot_ref = np.where(offers.active, ref * up * offers.spot_factor, np.inf)
        # a resource whose every offer has no capacity today (a closed border) is closed
        cap = np.bincount(offers.resource[offers.active], weights=offers.capacity[offers.active],
                          minlength=n_resources)
        self.res_open = cap > 0
        self.list_rates = np.full((n_resources, 4), np.inf)
        self.spot_rates = np.full((n_resources, 4), np.inf)
        self.list_ref = np.full(n_resources, np.inf)
        self.spot_ref = np.full(n_resources, np.inf)
        # cheapest offer per resource: sort by (resource, price), take each resource's first
        for price, rates, best in ((list_ref, self.list_rates, self.list_ref),
                                   (spot_ref, self.spot_rates, self.spot_ref)):
            order = np.lexsort((price, offers.resource))
            first = np.ones(order.size, dtype=bool)
            first[1:] = offers.resource[order][1:] != offers.resource[order][:-1]
            j = order[first]
            j = j[np.isfinite(price[j])]
            r = offers.resource[j]
            f = price[j] / np.where(ref[j] > 0, ref[j], 1.0)    # the multiplier on cost
            f = np.where(ref[j] > 0, f, up[j] * (offers.spot_factor[j] if best is self.spot_ref else 1.0))
            rates[r] = np.column_stack([offers.cost_parcel[j] * f, offers.cost_kg[j] * f,
                                        offers.cost_shipment[j] * f, offers.cost_storage[j] * up[j]])
            best[r] = price[j]
        self._py = ([tuple(x) for x in self.list_rates.tolist()], self.list_ref.tolist(),
                    [tuple(x) for x in self.spot_rates.tolist()], self.spot_ref.tolist(),
                    model.net.res_bulk.tolist())

    def _contracts_of(self, buyer_acct: int) -> dict[int, np.ndarray]:
        """resource -> rates of this buyer's cheapest active contract on it (cached for the day)."""
        got = self._contract_cache.get(buyer_acct)
        if got is None:
            book = self.model.contracts
            ids = np.flatnonzero((book.status == ACTIVE) & (book.buyer_acct == buyer_acct))
            ref = book.rate_parcel[ids] + book.rate_kg[ids] * self.model.reference_weight + book.rate_shipment[ids]
            got = {}
            cap: dict[int, float] = {}
            order = ids[np.argsort(-ref, kind="stable")]     # cheapest last wins
            columns = (book.resource, book.rate_parcel, book.rate_kg, book.rate_shipment, book.rate_storage,
                       book.capacity)
            for r, *rates, capacity in zip(*(col[order].tolist() for col in columns)):
                got[r] = tuple(rates)
                cap[r] = cap.get(r, 0.0) + capacity
            got = {r: (rates, cap[r]) for r, rates in got.items()}
            self._contract_cache[buyer_acct] = got
        return got

    def stage_rates(self, buyer_acct: int, resources, volume, contract_cost: float = 0.0) -> np.ndarray:
        """Rates per stage, shape (n, 4): per parcel, per kg, per shipment, storage per unit-day.

        Where the buyer has no contract it compares contracting at its volume (the list price
        with the volume's density discount, plus ``contract_cost`` - the cost of running a
        contract for a tender period - spread over the period's volume) with buying spot, and
        takes the cheaper. Where it holds contracts, volume beyond their capacity goes spot.
        Resources nobody serves cost inf.
        """
        self._refresh()
        # a route has a handful of stages: plain Python over precomputed rows beats numpy here
        res = [int(r) for r in np.atleast_1d(resources)]
        if np.ndim(volume) == 0:
            vols = [float(volume)] * len(res)
        else:
            vols = broadcast(np.asarray(volume, dtype=np.float64), (len(res),)).tolist()
        carriers = self.model.config.carriers
        D, H = carriers.density_discount, carriers.density_half_volume
        interval = self.model.config.market.tender_interval_days
        mine = self._contracts_of(buyer_acct)
        lr, lref, sr, sref, bulk = self._py
        out = []
        for r, v in zip(res, vols):
            v = max(v, 0.0)
            own = mine.get(r) if mine else None
            if own is not None:
                rates, cap = own
                share = 1.0 if v <= cap or v <= 0 else cap / v
                spot = sr[r]
                out.append((share * rates[0] + (1 - share) * spot[0], share * rates[1] + (1 - share) * spot[1],
                            share * rates[2] + (1 - share) * spot[2], rates[3]))
                continue
            d = 1.0 if bulk[r] else 1.0 - D * v / (v + H)
            per_parcel, per_kg, ship, store = lr[r]
            row = (per_parcel * d, per_kg * d, ship * d, store)
            if contract_cost > 0:
                extra = contract_cost / (max(v, 1e-9) * interval)
                if sref[r] < lref[r] * d + extra:
                    spot = sr[r]
                    row = (spot[0], spot[1], spot[2], store)
                else:
                    row = (row[0] + extra, row[1], row[2], store)
            out.append(row)
        return np.array(out, dtype=np.float64).reshape(len(res), 4)

    def route_open(self, route: int) -> bool:
        """Whether every stage of a route has some capacity today."""
        self._refresh()
        got = self._open_memo.get(route)
        if got is None:     # asked for every option of every review: remembered for the day
            got = self._open_memo[route] = bool(self.res_open[self.model.world.routes[route].resources].all())
        return got

    def route_cost(self, buyer_acct: int, route: int, weights, volume, contract_cost: float = 0.0) -> np.ndarray:
        """Cost of sending parcels of these weights along a parcel route (USD each)."""
        res = self.model.world.routes[route].resources
        rates = self.stage_rates(buyer_acct, res, volume, contract_cost)
        w = np.asarray(weights, dtype=np.float64)
        return rates[:, 0].sum() + rates[:, 1].sum() * w

    def replenish_cost(self, buyer_acct: int, rep_route: int, wh_node: str, weights,
                       units_per_consignment: float, stock_days: float, contract_cost: float = 0.0,
                       kg_per_day: float = 0.0) -> np.ndarray:
        """Bulk freight, customs fees and storage per unit shipped through a warehouse (USD)."""
        model = self.model
        key = (buyer_acct, rep_route, wh_node, kg_per_day, contract_cost)
        got = self._replenish_memo.get(key) if self._day == model.day else None
        if got is None:
            self._refresh()
            rates = self.stage_rates(buyer_acct, model.world.routes[rep_route].resources, kg_per_day, contract_cost)
            storage = self.stage_rates(buyer_acct, [model.handling_resource[wh_node]], 0.0)[0, 3]
            got = (rates[:, 1].sum(), rates[:, 2].sum() + rates[:, 0].sum(), storage)
            self._replenish_memo[key] = got
        per_kg, per_shipment, storage = got
        w = np.asarray(weights, dtype=np.float64)
        return per_kg * w + per_shipment / max(units_per_consignment, 1.0) + storage * stock_days

    def storage_rates(self, buyer_acct: np.ndarray, wh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offer, storage rate per unit-day) each buyer pays at each warehouse: its contract's
        rate there (its first contract), else the cheapest open offer's list rate."""
        model = self.model
        book, offers = model.contracts, model.offers
        contracted: dict[tuple[int, int], tuple[int, float]] = {}
        cheapest: dict[int, tuple[int, float]] = {}
        for w in np.unique(wh):
            r = model.handling_resource[model.warehouse_nodes[int(w)]]
            for cid in reversed(book.by_resource.get(r, np.zeros(0, dtype=np.int64)).tolist()):  # first wins
                contracted[(int(book.buyer_acct[cid]), int(w))] = (int(book.offer[cid]), float(book.rate_storage[cid]))
            offs = offers.by_resource.get(r)
            offs = offs[offers.active[offs]] if offs is not None else np.zeros(0, dtype=np.int64)
            if offs.size:
                price = offers.cost_storage[offs] * (1.0 + offers.markup[offs])
                j = int(np.argmin(price))
                cheapest[int(w)] = (int(offs[j]), float(price[j]))
        offer = np.full(buyer_acct.size, -1, dtype=np.int64)
        rate = np.zeros(buyer_acct.size)
        for i, (b, w) in enumerate(zip(buyer_acct.tolist(), wh.tolist())):
            offer[i], rate[i] = contracted.get((b, w)) or cheapest.get(w, (-1, 0.0))
        return offer, rate
