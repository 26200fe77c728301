"""An integrator's service graph and the end-to-end services it composes from it.

For every route family (an origin or warehouse, a market and a channel) the graph holds the
stages of each route variant in sequence, with one parallel leg per provider offer that can
serve the stage: an edge from stage position ``(route, s)`` to ``(route, s + 1)`` carrying the
integrator's cost of that leg (its contract rate with that provider, else the provider's list
price at the integrator's pooled volume), the expected days the provider takes, its risk
(loss, damage or delay) and its capacity. A path from the family's source to its target is a
valid end-to-end service: it follows one route variant's required legs in order and picks a
provider for each. Pareto-efficient services over cost, time and risk come from a
label-setting search (``market.integration.composition``), cached until a leg changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from market.integration.composition import Service, ServiceCache, pick_offers
from market.money.contracts import ACTIVE
from market.world import EXPORT, HANDLING, IMPORT, TRANSPORT

if TYPE_CHECKING:
    from market.model import Marketplace

OFFER_NAMES = ("economy", "standard", "express")


def _open_leg(u, v, k, d) -> bool:
    return d["capacity"] > 0


def _capacity_class(c: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(c <= 0, -1.0, np.floor(np.log2(np.maximum(c, 1e-9))))


def _material(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Which legs (rows of cost at the reference weight, days, risk, capacity) changed enough
    to matter for composition: 1% on cost, 0.05 days, 0.002 risk, or the capacity class."""
    with np.errstate(invalid="ignore"):
        return ((np.abs(new[:, 0] - old[:, 0]) > 0.01 * np.maximum(np.abs(old[:, 0]), 1e-9))
                | (np.abs(new[:, 1] - old[:, 1]) > 0.05) | (np.abs(new[:, 2] - old[:, 2]) > 0.002)
                | (_capacity_class(new[:, 3]) != _capacity_class(old[:, 3])))


@dataclass(frozen=True)
class ServiceOffer:
    """One end-to-end service an integrator can sell for a route family."""

    name: str                 # economy / standard / express
    route: int                # the route variant it follows
    offers: tuple[int, ...]   # preferred provider offer per stage
    cost_parcel: float        # the integrator's cost: per parcel ...
    cost_kg: float            # ... and per kg
    days: float               # expected days door to door
    risk: float               # chance of loss, damage or delay on the way (what it composes by)
    loss_risk: float = 0.0    # chance of loss or damage alone, at its providers' loss rates: the
    #                           measure a merchant's own route is judged by (Network.route_risk)

    def cost(self, weight) -> np.ndarray:
        """The integrator's cost of sending parcels of these weights (kg) this way, USD each."""
        return self.cost_parcel + self.cost_kg * np.asarray(weight, dtype=np.float64)


class ServiceCatalogue:
    """The service graph of one integrator, its Pareto fronts, and the offers it makes.

    Takes the model because the graph is built from the world's route variants and the offer
    book, and a leg's values come from the offer book (markups, capacity), the integrator's
    contracts in the contract book, the network and customs tables (days, risk) and the
    scenario's density discount; it rebuilds them when the model's ``market_version`` moves,
    and finds open routes with the quoter.
    """

    def __init__(self, model: Marketplace, integrator):
        self.model = model
        self.integrator = integrator
        self.G = nx.MultiDiGraph()
        self.cache = ServiceCache(self.G, objectives=("cost", "time", "risk"))
        self.version = -1
        self.requests = 0
        self._menus: dict[tuple, dict] = {}      # offers made from an unchanged front
        self._edges: list[tuple[tuple, tuple, int, int]] = []   # (u, v, offer, route)
        # per leg (as in _edges): its data in the graph, the values composition last saw
        # (cost at the reference weight, days, risk, capacity) and whether it has been valued
        self._data: list[dict] = []
        self._stored = np.zeros((0, 4))
        self._valued = np.zeros(0, dtype=bool)
        self._build()

    # ---- the graph ----
    def _build(self):
        model, G = self.model, self.G
        for family, routes in model.world.route_variants.items():
            if family[2] == "replenish":
                continue
            src, dst = ("src", family), ("dst", family)
            for r in routes:
                route_spec = model.world.routes[r]
                G.add_edge(src, (r, 0), key=-1, cost=0.0, time=0.0, risk=0.0, capacity=np.inf,
                           cost_parcel=0.0, cost_kg=0.0, offer=-1)
                G.add_edge((r, route_spec.n_stages), dst, key=-1, cost=0.0, time=0.0, risk=0.0, capacity=np.inf,
                           cost_parcel=0.0, cost_kg=0.0, offer=-1)
                for s, res in enumerate(route_spec.resources):
                    offs = model.offers.by_resource.get(res, np.zeros(0, dtype=np.int64))
                    for offer in offs:
                        G.add_edge((r, s), (r, s + 1), key=int(offer), offer=int(offer), resource=res, route=r)
                        self._edges.append(((r, s), (r, s + 1), int(offer), r))
        self.refresh()

    def add_offers(self, offers: np.ndarray):
        """New providers' offers become legs of every route that uses their resource."""
        model = self.model
        for offer in offers:
            res = int(model.offers.resource[offer])
            for family, routes in model.world.route_variants.items():
                if family[2] == "replenish":
                    continue
                for r in routes:
                    for s, rr in enumerate(model.world.routes[r].resources):
                        if rr == res:
                            self.G.add_edge((r, s), (r, s + 1), key=int(offer), offer=int(offer), resource=res,
                                            route=r)
                            self._edges.append(((r, s), (r, s + 1), int(offer), r))
                            self.cache.leg_added((r, s), (r, s + 1), int(offer))
        self.version = -1

    def _leg_values(self, offers: np.ndarray):
        """Cost (per parcel, per kg), expected days, risk and capacity of legs on these offers."""
        model, offer_book, net, clearance = self.model, self.model.offers, self.model.net, self.model.clearance
        res = offer_book.resource[offers]
        kind = net.res_kind[res]
        terr = net.res_territory[res]
        vol = self.integrator.planned_volume(res)
        cfg = model.config.carriers
        dens = np.where(net.res_bulk[res], 1.0, 1.0 - cfg.density_discount * vol / (vol + cfg.density_half_volume))
        up = (1.0 + offer_book.markup[offers]) * dens
        cp, ck = offer_book.cost_parcel[offers] * up, offer_book.cost_kg[offers] * up
        # where it holds a contract with the provider, its contract rate is its cost
        book = model.contracts
        mine = np.flatnonzero((book.status == ACTIVE) & (book.buyer_acct == self.integrator.acct))
        if mine.size:
            by_offer = dict(zip(book.offer[mine].tolist(), mine.tolist()))
            for i, off in enumerate(offers.tolist()):
                contract = by_offer.get(off)
                if contract is not None:
                    cp[i], ck[i] = book.rate_parcel[contract], book.rate_kg[contract]
        tri_mean = net.res_tri[res].mean(axis=1)
        delay = net.res_delay[res] * offer_book.delay_mult[offers]
        time = np.where(kind == TRANSPORT,
                        tri_mean * offer_book.speed[offers] + delay * net.res_delay_tri[res].mean(axis=1),
                        np.where(kind == HANDLING, tri_mean, 0.0))
        regime = net.res_regime[res]
        clear = np.where(kind == EXPORT, clearance.export_clearance[terr].mean(axis=1),
                         np.where(kind == IMPORT, clearance.clearance[terr, np.maximum(regime, 0)].mean(axis=1), 0.0))
        insp = np.where(kind == IMPORT, clearance.inspection[terr, np.maximum(regime, 0)], 0.0)
        hold = 1.0 - offer_book.accuracy[offers]
        time = time + np.where((kind == EXPORT) | (kind == IMPORT),
                               clear + insp * clearance.inspection_days[terr].mean(axis=1)
                               + hold * clearance.hold_days[terr].mean(axis=1), 0.0)
        risk = np.where(kind == TRANSPORT,
                        (net.res_loss[res] + net.res_damage[res]) * offer_book.loss_mult[offers] + delay,
                        np.where((kind == EXPORT) | (kind == IMPORT), insp + hold, 0.0))
        # room on the leg: the open capacity of its resource (a buyer's volume may be split
        # among the resource's providers), nothing where this provider is closed
        open_cap = np.bincount(offer_book.resource, weights=np.where(offer_book.active, offer_book.capacity, 0.0),
                               minlength=int(res.max(initial=0)) + 1)
        cap = np.where(offer_book.active[offers] & (offer_book.capacity[offers] > 0), open_cap[res], 0.0)
        return cp, ck, time, np.clip(risk, 0.0, 0.999), cap

    def refresh(self):
        """Bring the legs' values up to date; invalidate cached fronts whose legs changed."""
        if self.version == self.model.market_version:
            return
        self.version = self.model.market_version
        if not self._edges:
            return
        n = len(self._edges)
        offers = np.array([e[2] for e in self._edges], dtype=np.int64)
        cp, ck, time, risk, cap = self._leg_values(offers)
        new = np.column_stack([cp + ck * self.model.reference_weight, time, risk, cap])
        if self._stored.shape[0] < n:           # legs added since: never valued yet
            grow = n - self._stored.shape[0]
            self._stored = np.vstack([self._stored, np.full((grow, 4), np.nan)])
            self._valued = np.concatenate([self._valued, np.zeros(grow, dtype=bool)])
            self._data.extend(self.G.edges[u, v, offer] for u, v, offer, _ in self._edges[-grow:])
        old, valued = self._stored, self._valued
        # a leg is revalued where it changed enough to matter for composition (1% on cost, the
        # capacity class); price drift too small to change which services are efficient is not
        material = ~valued | _material(old, new)
        update = np.flatnonzero(material & ((new != old).any(axis=1) | ~valued))
        for i in update.tolist():
            u, v, offer, _ = self._edges[i]
            cost, days, risk_i, capacity = new[i].tolist()
            self._data[i].update(cost=cost, time=days, risk=risk_i, capacity=capacity,
                                 cost_parcel=float(cp[i]), cost_kg=float(ck[i]))
            if valued[i]:
                o = old[i]
                worse = cost >= o[0] and days >= o[1] and risk_i >= o[2] and capacity <= o[3]
                self.cache.leg_changed(u, v, offer, worsened=bool(worse))
        old[update] = new[update]
        valued[update] = True
        if update.size:
            self._menus.clear()
        return int(update.size)

    # ---- services ----
    def services(self, family: tuple, volume: float = 0.0) -> list[Service]:
        """The Pareto front of a route family over open legs; those with room for ``volume`` a
        day first (every leg's capacity at least the volume), or all if none has."""
        self.refresh()
        self.requests += 1
        src, dst = ("src", family), ("dst", family)
        if src not in self.G:
            return []
        front = self.cache.get(src, dst, edge_ok=_open_leg, filter_key="open")
        roomy = [svc for svc in front if svc.capacity >= volume]
        return roomy or front

    def offers(self, family: tuple, volume: float = 0.0) -> dict[str, ServiceOffer]:
        """Economy, standard and express services for a family (fewer if the front is small)."""
        front = self.services(family, volume)
        if not front:
            return {}
        key = (family, tuple(front))
        menu = self._menus.get(key)
        if menu is None:
            picked = pick_offers(front, OFFER_NAMES)
            menu = self._menus[key] = {name: self._offer(name, svc) for name, svc in picked.items()}
        return menu

    def _offer(self, name: str, svc: Service) -> ServiceOffer:
        route = next(u[0] for u, v, k in svc.legs if k != -1)
        offers = tuple(k for u, v, k in svc.legs if k != -1)
        cp = sum(self.G.edges[u, v, k]["cost_parcel"] for u, v, k in svc.legs)
        ck = sum(self.G.edges[u, v, k]["cost_kg"] for u, v, k in svc.legs)
        # loss or damage alone, as the merchant judges its own routes (delays and customs holds
        # are in `risk`, which a merchant's own route has no counterpart of: comparing one with
        # the other made every 4PL service look less reliable than shipping oneself)
        book, net = self.model.offers, self.model.net
        ids = np.asarray(offers, dtype=np.int64)
        res = book.resource[ids]
        per_leg = np.minimum((net.res_loss[res] + net.res_damage[res]) * book.loss_mult[ids], 1.0)
        loss_risk = 1.0 - float(np.prod(1.0 - per_leg))
        return ServiceOffer(name, int(route), offers, float(cp), float(ck), float(svc.time), float(svc.risk),
                            loss_risk)

    def best_open_route(self, family: tuple, prefix: list[int] | None = None) -> int | None:
        """The cheapest variant of a family whose legs are all open, optionally sharing a prefix."""
        return self.model.quoter.cheapest_open_variant(family, prefix)

