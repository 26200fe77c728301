"""Integration efficiency: an integrator's routing and buying against the centralised optimum.

For the integrator's current daily flows (the volume of each route family its merchants send
through it), two costs are computed on the same basis (a 1 kg reference parcel, today's
prices, today's capacities):

* *realised*: the route variants it actually uses, its contracted capacity at contract rates
  and the rest at today's spot prices, cheapest first, within the capacity providers have
  left;
* *optimum*: the minimum-cost multicommodity flow over the same stages, every provider's leg
  available at the integrator's best price for it (its contract rate, else the list price at
  its pooled volume), solved exactly with HiGHS (``market.integration.optimum``) - the 4PL routing
  problem with parallel 3PL options (Huang et al. 2013).

Efficiency = optimum / realised. The realised plan is a feasible flow of the same problem
and every leg costs it at least the optimum's price for that leg, so efficiency is at most 1
(volume no capacity can carry is charged the same penalty in both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from market.integration.optimum import Commodity, min_cost_multicommodity_flow
from market.money.contracts import ACTIVE

if TYPE_CHECKING:
    from market.model import Marketplace


def integrator_flows(mm, demand_scale: float, integ_index: int) -> dict[int, float]:
    """Parcels a day on each parcel route the integrator's merchants use (expected volumes),
    from the merchants' choices (``mm``, the model's merchant-market table) and the scenario's
    ``demand.scale``."""
    flows: dict[int, float] = {}
    for row in np.flatnonzero((mm.integrator == integ_index) & (mm.route >= 0)):
        q = mm.base[row] * demand_scale * mm.demand_factor[row]
        flows[int(mm.route[row])] = flows.get(int(mm.route[row]), 0.0) + float(q)
    return flows


def leg_prices(model: Marketplace, integrator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per offer, for this integrator: best price (contract or pooled list), spot price, room
    (capacity not held by other buyers' daily contracts), per reference parcel, USD.

    Takes the model because it reads the offer book, the contract book, the network's bulk
    flags, the scenario's density discount and the reference weight."""
    offers, book = model.offers, model.contracts
    ref = offers.cost_parcel + offers.cost_kg * model.reference_weight
    res = offers.resource
    vol = integrator.planned_volume(res)
    carriers = model.config.carriers
    dens = np.where(model.net.res_bulk[res], 1.0,
                    1.0 - carriers.density_discount * vol / (vol + carriers.density_half_volume))
    best = ref * (1.0 + offers.markup) * dens
    spot = ref * (1.0 + offers.markup) * offers.spot_factor
    live = np.flatnonzero((book.status == ACTIVE) & (book.offer >= 0))
    mine = live[book.buyer_acct[live] == integrator.acct]
    others = live[(book.buyer_acct[live] != integrator.acct) & ~model.net.res_bulk[book.resource[live]]]
    room = np.maximum(offers.capacity - np.bincount(book.offer[others], weights=book.capacity[others],
                                                    minlength=offers.n), 0.0)
    room = np.where(offers.active, room, 0.0)
    for cid in mine:
        off = int(book.offer[cid])
        best[off] = min(best[off], book.rate_parcel[cid] + book.rate_kg[cid] * model.reference_weight)
    return best, spot, room


def measure(model: Marketplace, integrator) -> dict:
    """Realised and optimal daily cost of the integrator's current flows, and their ratio.

    Takes the model because it needs the integrator's flows (the merchants' choices), the
    world's routes and route variants, the offer book and the contract book (see
    :func:`leg_prices`)."""
    flows = integrator_flows(model.mm, model.config.demand.scale, integrator.index)
    if not flows:
        return {"efficiency": float("nan"), "optimum": 0.0, "realised": 0.0, "volume": 0.0}
    best, spot, room = leg_prices(model, integrator)
    offers = model.offers
    families: dict[tuple, float] = {}
    for r, q in flows.items():
        fam = model.world.routes[r].family
        families[fam] = families.get(fam, 0.0) + q
    # the stage graph: every resource once (shared capacity), one parallel leg per offer
    G = nx.MultiDiGraph()
    used_res: set[int] = set()
    for fam in families:
        for r in model.world.route_variants[fam]:
            res = model.world.routes[r].resources
            G.add_edge(("src", fam), ("in", res[0]), key="start", cost=0.0, capacity=np.inf)
            G.add_edge(("out", res[-1]), ("dst", fam), key="end", cost=0.0, capacity=np.inf)
            for a, b in zip(res[:-1], res[1:]):
                G.add_edge(("out", a), ("in", b), key="next", cost=0.0, capacity=np.inf)
            used_res.update(res)
    for r in used_res:
        for off in offers.by_resource.get(r, ()):
            G.add_edge(("in", r), ("out", r), key=int(off), cost=float(best[off]), capacity=float(room[off]))
    penalty = 10.0 * float(max(spot[np.isfinite(spot)].max(), 1.0)) * 20
    sol = min_cost_multicommodity_flow(G, [Commodity(("src", f), ("dst", f), v) for f, v in families.items()],
                                       unserved_penalty=penalty)
    optimum = float(sol.total_cost)

    # realised: its own route choices; contracts first, then spot cheapest first, within room
    load: dict[int, float] = {}
    for r, q in flows.items():
        for res in model.world.routes[r].resources:
            load[res] = load.get(res, 0.0) + q
    book = model.contracts
    live = np.flatnonzero((book.status == ACTIVE) & (book.buyer_acct == integrator.acct) & (book.offer >= 0))
    left = room.copy()
    realised = 0.0
    for res, q in load.items():
        need = q
        for cid in live[book.resource[live] == res]:
            off = int(book.offer[cid])
            take = min(need, book.capacity[cid], left[off])
            realised += take * (book.rate_parcel[cid] + book.rate_kg[cid] * model.reference_weight)
            left[off] -= take
            need -= take
        offs = np.asarray(offers.by_resource.get(res, np.zeros(0, dtype=np.int64)))
        for off in offs[np.argsort(spot[offs], kind="stable")]:
            if need <= 1e-12:
                break
            take = min(need, left[off])
            realised += take * spot[off]
            left[off] -= take
            need -= take
        realised += max(need, 0.0) * penalty
    eff = optimum / realised if realised > 0 else float("nan")
    return {"efficiency": eff, "optimum": optimum, "realised": realised, "volume": float(sum(flows.values()))}
