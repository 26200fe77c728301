"""Integrator: a 4PL that sells end-to-end cross-border services built from providers' legs.

It keeps a service graph of the legs it has contracted or can buy, composes Pareto-efficient
services (economy, standard, express) per route family, prices them by its pricing policy
(cost-plus, value-based, or a markup learned by a bandit), pools many merchants' volume into
tenders (volume discounts a single merchant cannot get), coordinates hand-offs, gives
merchants tracking (what its providers record, and with a control tower all of it at once),
expedites the delays it sees in time, handles its merchants' after-sales contacts and claims,
insures what it carries, and re-routes the parcels it can locate around a closed lane or
border (``market/goods/tracking.py``).

Integrators differ (drawn per integrator in ``market/build.py``): their own cost per parcel
(``overhead``: platform, customer service, claims handling, times a cost factor), their
network (the channels they serve, ``covers``) and whether they run a control tower (decided
by what it saves, ``tracking.control_tower``).
"""

from __future__ import annotations

import mesa
import numpy as np

from market.goods.parcels import IN_STAGE, WAITING
from market.integration.pricing import make_pricing_policy
from market.integration.services import ServiceCatalogue, ServiceOffer


MARKUP_STEP = 0.05        # adaptive pricing: the markup grid's step


class Integrator(mesa.Agent):
    """A 4PL integrator."""

    role = "integrator"

    def __init__(self, model, name: str, markup: float, cost_factor: float = 1.0, covers=None):
        super().__init__(model)
        cfg = model.config.integrators
        self.name = name
        self.cost_factor = cost_factor
        self.overhead = cfg.overhead_per_parcel * cost_factor      # its own cost per parcel, USD
        n_channels = len(model.world.channels)
        self.covers = np.ones(n_channels, dtype=bool) if covers is None else np.asarray(covers, dtype=bool)
        self.control_tower = False        # set by market.goods.tracking.Tracking
        self.systems_per_parcel = 0.0     # its control tower's cost per parcel, USD (priced in)
        self.reroute_blind = 0            # parcels it could not re-route: it did not know where they were
        self.acct = model.ledger.open(f"integrator:{name}", self.role, self.unique_id)
        self.index = len(model.integrators)
        self.in_market = True
        self.pricing = cfg.pricing_by_integrator[self.index] if self.index < len(cfg.pricing_by_integrator) \
            else cfg.pricing
        if self.pricing == "value_based":
            self.policy = make_pricing_policy("value_based", share=cfg.value_share, min_markup=cfg.min_markup)
        elif self.pricing == "adaptive":
            grid = np.round(np.arange(cfg.min_markup, cfg.max_markup + 1e-9, MARKUP_STEP), 3)
            self.policy = make_pricing_policy("adaptive", markups=grid, method=cfg.learning, rng=model.rng,
                                              discount=cfg.learning_discount)
        else:
            self.policy = make_pricing_policy("cost_plus", markup=markup)
        self.markup = markup              # its current headline markup (reported daily)
        self.catalogue: ServiceCatalogue | None = None
        self.rerouted = 0
        self.loss_periods = 0
        self._rates: dict[int, tuple[float, float]] = {}
        self._rates_day = -1
        self._replenish_memo: dict[tuple, int] = {}
        self._contracts_day = -1
        self._has_contracts = False
        self._arms: dict = {}             # adaptive pricing: the markup arm drawn per quote key today
        self._arms_day = -1

    # ---- cost basis ----
    def planned_volume(self, resources) -> np.ndarray:
        """The pooled daily volume it expects on each resource; before it holds any contract,
        at least its planning volume (what it expects to win)."""
        model = self.model
        if self._contracts_day != model.day:
            book = model.contracts
            self._has_contracts = bool(((book.status == 1) & (book.buyer_acct == self.acct) & (book.offer >= 0)).any())
            self._contracts_day = model.day
        floor = 0.0 if self._has_contracts else model.config.integrators.planning_volume
        plan = model.plan.by_buyer.get(self.acct)
        res = np.asarray(resources, dtype=np.int64)
        return np.maximum(plan[res] if plan is not None else 0.0, floor) * np.ones(res.size)

    def route_rates(self, route: int) -> tuple[float, float]:
        """Its cost of a route today: (per parcel, per kg), from contracts or pooled list prices."""
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

    def route_cost(self, route: int, weights) -> np.ndarray:
        """Its cost today of sending parcels of these weights (kg) along a route, USD each."""
        a, b = self.route_rates(route)
        return a + b * np.asarray(weights, dtype=np.float64)

    def unit_basis(self, route: int, weights) -> np.ndarray:
        """What a parcel along a route costs it all in today (legs, its own overhead, the
        after-sales contacts it handles on the route's channel and its control tower): the basis
        its quotes and fees mark up."""
        model = self.model
        after = model.aftersales.expected_cost(int(model.net.route_channel[route]), self.index)
        return self.route_cost(route, weights) + self.overhead + after + self.systems_per_parcel

    # ---- services and prices ----
    def offers(self, family: tuple, volume: float) -> dict[str, ServiceOffer]:
        """Its composed services for a route family (economy / standard / express)."""
        if self.catalogue is None:
            self.catalogue = ServiceCatalogue(self.model, self)
        return self.catalogue.offers(family, volume)

    def price(self, cost: float, diy_cost: float, key=None) -> tuple[float, int]:
        """Quote for a service whose cost per order is ``cost``; returns (markup, bandit arm or -1).

        ``key`` (e.g. a merchant's market and the day): adaptive pricing draws one markup per
        key and quotes every service under it at that markup, so what the merchant answers is
        news about that one price."""
        if cost <= 0:
            return 0.0, -1
        if key is not None and hasattr(self.policy, "choose_arms"):
            if self._arms_day != self.model.day:
                self._arms.clear()
                self._arms_day = self.model.day
            arm = self._arms.get(key)
            if arm is None:
                arm = self._arms[key] = int(self.policy.choose_arms(1)[0])
            return float(self.policy.markups[arm]), arm
        p = self.policy.price(np.array([cost]), diy_cost=np.array([diy_cost]))
        arm = int(self.policy.last_arms[0]) if getattr(self.policy, "last_arms", None) is not None else -1
        return float(p[0]) / cost - 1.0, arm

    def learn(self, arms: list[int], costs: list[float], markups: list[float], accepted: list[bool],
              orders: list[float]):
        """Adaptive pricing: learn from which quotes merchants took, weighted by their volume."""
        if not arms or not hasattr(self.policy, "choose_arms"):
            return
        arms_a = np.array(arms, dtype=int)
        cost = np.array(costs) * np.array(orders)
        profit = cost * np.array(markups)
        self.policy.observe(np.array(accepted), profit=profit, cost=np.maximum(cost, 1e-9), arms=arms_a)

    def replenish_route(self, origin: str, wh_node: str, value_per_kg: float = 30.0) -> int:
        """The bulk route it replenishes a warehouse by: cheapest freight plus the carrying cost
        of the goods in transit (sea is cheap and slow, air dear and fast, rail between)."""
        model = self.model
        key = (model.day, origin, wh_node, round(value_per_kg))
        got = self._replenish_memo.get(key)
        if got is not None:
            return got
        if self._replenish_memo and next(iter(self._replenish_memo))[0] != model.day:
            self._replenish_memo.clear()
        model.quoter._refresh()
        carry = value_per_kg * model.config.merchants.carrying_cost_rate / 365.0
        best, best_cost = model.world.replenish_route[(origin, wh_node)], np.inf
        for r in model.world.route_variants.get((origin, wh_node, "replenish"), []):
            if not model.quoter.route_open(r):
                continue
            res = model.world.routes[r].resources
            rates = model.quoter.stage_rates(self.acct, res, self.planned_volume(res))
            per_kg = rates[:, 1].sum() + (rates[:, 0].sum() + rates[:, 2].sum()) / 1000.0
            cost = per_kg + carry * model.net.route_expected_days[r]
            if cost < best_cost:
                best, best_cost = r, cost
        self._replenish_memo[key] = int(best)
        return int(best)

    # ---- the day ----
    def step(self):
        """Report its current headline markup; review and pay for its control tower; re-route
        when a shock changed the network today."""
        model = self.model
        if not self.in_market:
            return
        model.tracking.integrator_day(self)
        if hasattr(self.policy, "best_markup"):
            self.markup = self.policy.best_markup
        elif hasattr(self.policy, "markup"):
            self.markup = self.policy.markup
        if model.network_changed:
            self.reroute()

    def reroute(self):
        """Move its merchants' flows and its waiting parcels off closed lanes and borders."""
        model, mm, parcels = self.model, self.model.mm, self.model.parcels
        if self.catalogue is None:
            self.catalogue = ServiceCatalogue(model, self)
        model.quoter._refresh()
        mine = np.flatnonzero(mm.integrator == self.index)
        for row in mine:
            for field in ("route", "rep_route"):
                r = int(getattr(mm, field)[row])
                if r < 0 or model.quoter.route_open(r):
                    continue
                alt = self.catalogue.best_open_route(model.world.routes[r].family)
                if alt is not None and alt != r:
                    getattr(mm, field)[row] = alt
                    self.rerouted += 1
        if parcels.n == 0:
            return
        # parcels waiting for a stage, or in one: switch what is left of their way to a variant
        # that shares what they have done (or are doing) so far
        status = parcels["status"]
        waiting = np.flatnonzero(((status == WAITING) | (status == IN_STAGE)) & (parcels["integrator_idx"] == self.index))
        if waiting.size == 0:
            return
        routes = parcels["route"][waiting]
        closed = np.array([not model.quoter.route_open(int(r)) for r in routes])
        # only a parcel it can locate (its last hand-off seen) can be re-routed
        stuck = waiting[closed]
        known = model.tracking.position_known(stuck, model.day)
        self.reroute_blind += int((~known).sum())
        for i in stuck[known]:
            r, s = int(parcels["route"][i]), int(parcels["stage"][i]) + int(status[i] == IN_STAGE)
            done = model.world.routes[r].resources[:s]
            alt = self.catalogue.best_open_route(model.world.routes[r].family, prefix=done)
            if alt is not None and alt != r:
                parcels["route"][i] = alt
                parcels["n_stages"][i] = model.world.routes[alt].n_stages
                self.rerouted += 1

    def close_period(self, profit_cents: float, exit_after: int) -> bool:
        """Count loss-making periods in a row; True when it has had enough and wants to leave."""
        self.loss_periods = self.loss_periods + 1 if profit_cents < 0 else 0
        return self.loss_periods >= exit_after

    # ---- reporting ----
    def visibility(self) -> dict:
        """Its tracking figures (the app's agent inspector): control tower, share of legs seen,
        delays detected and missed, days expedited, contacts and their cost, systems' cost."""
        model = self.model
        out = model.tracking.integrator_figures(self)
        out.update(model.aftersales.slot_figures(self.index + 1))
        out["reroute_blind"] = self.reroute_blind
        return out

    @property
    def tracking_coverage(self) -> float | None:
        """Share of its parcels' legs whose event it saw (None before any leg)."""
        return self.model.tracking.coverage_of(self.index + 1)

    @property
    def cash(self) -> float:
        """Its ledger balance, USD."""
        return self.model.ledger.balance(self.acct) / 100.0
