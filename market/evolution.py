"""Market evolution: providers and integrators exit after sustained losses, new providers enter
where margins stay high, and capacity follows utilisation.

Every ``evolution.period_days`` each provider's profit and revenue over the period are read
from the ledger. A provider or integrator that lost money ``exit_after`` periods in a row
leaves: its offers close and its contracts are terminated (its buyers go to spot until the
next tender; an integrator's merchants must choose again). A provider that ran hot adds
capacity (and the fixed cost of it); one that stood idle sheds some. The operators of a
warehouse that turned stock away for want of space add space. In a group (a carrier
group, the operators of a warehouse, the brokers at a customs point) whose providers together
earned more than ``entry_margin`` on their revenue while busy, a new provider enters with
half an incumbent's capacity and its own costs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.carrier import Carrier
from agents.customs_agent import CustomsAgent
from agents.warehouse_operator import WarehouseOperator, add_space_where_stock_was_turned_away
from market.money.contracts import ACTIVE, SIGNED, TERMINATED

if TYPE_CHECKING:
    from market.model import Marketplace


class Evolution:
    """Exits, entries and capacity changes, reviewed once every ``evolution.period_days``.

    Takes the model because a review reads every provider's and integrator's profit and
    revenue from the ledger, utilisation and queues from the offer book and the parcel flow,
    space shortfalls from the metrics and stock from the inventory, and changes the market:
    it closes offers and terminates contracts of those who leave (an integrator's merchants
    choose again), creates new provider agents with new offers, moves capacity (the shock
    board's base values), and then has the shocks reapplied and the quotes refreshed.
    """

    def __init__(self, model: Marketplace):
        self.model = model
        self._cash = model.ledger.balances.copy()
        self._received = model.ledger.received.copy()
        self._util = np.zeros(model.offers.n)
        self._queue = np.zeros(len(model.world.resources))
        W = len(model.warehouse_nodes)
        self._space_peak = np.zeros(W)                      # most units held at each warehouse
        self._space_short = model.metrics.space_short.copy()  # units turned away, at the last review
        self.exits = 0
        self.entries = 0
        self.exits_today = 0
        self.entries_today = 0
        self.log: list[dict] = []

    def observe_day(self):
        """Accumulate today's utilisation of every offer."""
        offers = self.model.offers
        if self._util.size < offers.n:
            self._util = np.concatenate([self._util, np.zeros(offers.n - self._util.size)])
        self._util += np.divide(offers.used_today, offers.capacity, out=np.zeros(offers.n),
                                where=offers.capacity > 0)
        self._queue += getattr(self.model.flow, "queue_today", 0)
        self._space_peak = np.maximum(self._space_peak, self.model.inventory.held())

    def review(self, day: int):
        """At the end of a period: each provider leaves after sustained losses (unless it is the
        last of its group) or moves its capacity towards its demand; warehouses that turned
        stock away add space; integrators leave after sustained losses (unless the last one);
        new providers enter groups that earned more than ``entry_margin`` while busy."""
        model, cfg = self.model, self.model.config.evolution
        self.exits_today = self.entries_today = 0
        if not cfg.enabled or day == 0 or day % cfg.period_days:
            return
        ledger = model.ledger
        n = ledger.n_accounts
        cash_now, rec_now = ledger.balances.copy(), ledger.received.copy()
        pad = lambda a: np.concatenate([a, np.zeros(n - a.size, dtype=a.dtype)]) if a.size < n else a  # noqa: E731
        profit = cash_now - pad(self._cash)
        revenue = rec_now - pad(self._received)
        util = self._util / cfg.period_days
        # demand includes the queue: parcels left waiting at a resource, shared by its providers
        offers = model.offers
        open_cap = np.where(offers.active, offers.capacity, 0.0)
        res_cap = np.bincount(offers.resource, weights=open_cap, minlength=self._queue.size)
        queue = self._queue / cfg.period_days
        backlog = np.divide(queue[offers.resource] * open_cap,
                            res_cap[offers.resource] * np.maximum(open_cap, 1e-9),
                            out=np.zeros(offers.n), where=(res_cap[offers.resource] > 0) & (open_cap > 0))
        demand_util = util + backlog
        providers = [p for p in model.carriers + model.operators + model.brokers if p.in_market]
        lo = model.config.carriers.utilisation_target[0]
        changed = False
        # each provider decides: leave after sustained losses (unless it is the last of its
        # group), else move its capacity towards its demand
        base_capacity = model.shockboard.base["capacity"]
        for provider in providers:
            if provider.close_period(profit[provider.acct], cfg.exit_after) and len(self._peers(provider)) > 1:
                self.exit(provider, day)
                changed = True
                continue
            changed |= provider.review_capacity(demand_util, base_capacity, cfg)
        changed |= add_space_where_stock_was_turned_away(
            model, model.metrics.space_short - self._space_short, self._space_peak)
        for it in model.integrators:
            if not it.in_market:
                continue
            if it.close_period(profit[it.acct], cfg.exit_after) and sum(i.in_market for i in model.integrators) > 1:
                self.exit_integrator(it, day)
                changed = True
        # entry where incumbents earn well and are busy
        groups: dict[tuple, list] = {}
        for provider in providers:
            if provider.in_market:
                groups.setdefault(self._group_key(provider), []).append(provider)
        for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
            rev = sum(revenue[p.acct] for p in members)
            prof = sum(profit[p.acct] for p in members)
            offs = np.concatenate([p.offer_ids[model.offers.active[p.offer_ids]] for p in members])
            busy = demand_util[offs].mean() if offs.size else 0.0
            if rev > 0 and prof / rev > cfg.entry_margin and busy > lo:
                for _ in range(cfg.max_entrants):
                    self.enter(members, day)
                    changed = True
        self._cash, self._received = ledger.balances.copy(), ledger.received.copy()
        self._util = np.zeros(model.offers.n)
        self._queue = np.zeros(len(model.world.resources))
        self._space_peak = np.zeros(len(model.warehouse_nodes))
        self._space_short = model.metrics.space_short.copy()
        if changed:
            model.shockboard.reapply()
            model.quoter.invalidate()
            model.market_version += 1

    @staticmethod
    def _group_key(p) -> tuple:
        return (p.role, p.group)

    def _peers(self, p) -> list:
        return [q for q in self.model.carriers + self.model.operators + self.model.brokers
                if q.in_market and self._group_key(q) == self._group_key(p)]

    # ---- exit ----
    def exit(self, provider, day: int):
        """A provider leaves: its offers close; its contracts (as party or subcontractor) are
        terminated, so its buyers go to spot until the next tender."""
        model = self.model
        provider.in_market = False
        model.offers.active[provider.offer_ids] = False
        book = model.contracts
        st = book.cols["status"][: book.n]
        gone = ((st == ACTIVE) | (st == SIGNED)) \
            & ((book.provider == provider.unique_id) | (book.sub_provider == provider.unique_id))
        st[gone] = TERMINATED
        self.exits += 1
        self.exits_today += 1
        self.log.append({"day": day, "event": "exit", "agent": provider.name, "role": provider.role})

    def exit_integrator(self, it, day: int):
        """An integrator leaves: its contracts (bought and sold) are terminated and its merchants
        choose again."""
        model = self.model
        it.in_market = False
        book = model.contracts
        st = book.cols["status"][: book.n]
        st[((st == ACTIVE) | (st == SIGNED)) & ((book.buyer == it.unique_id) | (book.provider == it.unique_id))] = TERMINATED
        self.exits += 1
        self.exits_today += 1
        self.log.append({"day": day, "event": "exit", "agent": it.name, "role": it.role})
        model.integrator_left(it)

    # ---- entry ----
    def enter(self, members: list, day: int):
        """A newcomer copies an incumbent's footprint with its own costs and half the capacity."""
        model, rng = self.model, self.model.rng
        template = members[int(rng.integers(len(members)))]
        spread = model.config.carriers.cost_spread
        cost_factor = 1.0 + rng.uniform(-spread, spread)
        n_in_group = sum(1 for p in model.carriers + model.operators + model.brokers
                         if self._group_key(p) == self._group_key(template))
        name = f"{template.group.split(':')[-1]}-{n_in_group + 1}" if template.role == "carrier" \
            else f"{template.name.rsplit('-', 1)[0]}-{n_in_group + 1}"
        if isinstance(template, Carrier):
            newcomer = Carrier(model, name, template.group, cost_factor=cost_factor,
                               speed=1.0 + rng.uniform(-0.05, 0.05), reliability=rng.uniform(0.7, 1.3))
            model.carriers.append(newcomer)
        elif isinstance(template, WarehouseOperator):
            newcomer = WarehouseOperator(model, name, template.node, cost_factor)
            model.operators.append(newcomer)
        else:
            lo, hi = model.config.customs_agents.accuracy
            newcomer = CustomsAgent(model, name, template.node, template.territory, cost_factor, rng.uniform(lo, hi))
            model.brokers.append(newcomer)
        offers = model.offers
        rows = []
        ratio = cost_factor / getattr(template, "cost_factor", 1.0)
        for off in template.offer_ids:
            rows.append({
                "resource": int(offers.resource[off]), "provider": newcomer.unique_id, "acct": newcomer.acct,
                "kind": int(offers.kind[off]), "capacity": 0.5 * float(offers.base_capacity[off]),
                "storage_capacity": 0.5 * float(offers.storage_capacity[off]),
                "cost_parcel": float(offers.cost_parcel[off]) * ratio, "cost_kg": float(offers.cost_kg[off]) * ratio,
                "cost_shipment": float(offers.cost_shipment[off]) * ratio,
                "cost_storage": float(offers.cost_storage[off]) * ratio,
                "fixed_cost_day": 0.5 * float(offers.fixed_cost_day[off]) * ratio,
                "speed": getattr(newcomer, "speed", 1.0), "delay_mult": getattr(newcomer, "reliability", 1.0),
                "loss_mult": getattr(newcomer, "reliability", 1.0), "accuracy": getattr(newcomer, "accuracy", 1.0),
                "markup": float(offers.markup[off]), "provider_idx": -1})
        newcomer.offer_ids = offers.extend(rows, len(model.world.resources))
        model.provider_entered(newcomer)
        self.entries += 1
        self.entries_today += 1
        self.log.append({"day": day, "event": "entry", "agent": newcomer.name, "role": newcomer.role})
