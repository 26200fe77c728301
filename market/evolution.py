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
    def __init__(self, model: Marketplace):
        self.m = model
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
        o = self.m.offers
        if self._util.size < o.n:
            self._util = np.concatenate([self._util, np.zeros(o.n - self._util.size)])
        self._util += np.divide(o.used_today, o.capacity, out=np.zeros(o.n), where=o.capacity > 0)
        self._queue += getattr(self.m.flow, "queue_today", 0)
        self._space_peak = np.maximum(self._space_peak, self.m.inventory.held())

    def review(self, day: int):
        m, cfg = self.m, self.m.config.evolution
        self.exits_today = self.entries_today = 0
        if not cfg.enabled or day == 0 or day % cfg.period_days:
            return
        L = m.ledger
        n = L.n_accounts
        cash_now, rec_now = L.balances.copy(), L.received.copy()
        pad = lambda a: np.concatenate([a, np.zeros(n - a.size, dtype=a.dtype)]) if a.size < n else a  # noqa: E731
        profit = cash_now - pad(self._cash)
        revenue = rec_now - pad(self._received)
        util = self._util / cfg.period_days
        # demand includes the queue: parcels left waiting at a resource, shared by its providers
        o = m.offers
        open_cap = np.where(o.active, o.capacity, 0.0)
        res_cap = np.bincount(o.resource, weights=open_cap, minlength=self._queue.size)
        queue = self._queue / cfg.period_days
        backlog = np.divide(queue[o.resource] * open_cap, res_cap[o.resource] * np.maximum(open_cap, 1e-9),
                            out=np.zeros(o.n), where=(res_cap[o.resource] > 0) & (open_cap > 0))
        demand_util = util + backlog
        providers = [p for p in m.carriers + m.operators + m.brokers if p.in_market]
        lo = m.config.carriers.utilisation_target[0]
        changed = False
        # each provider decides: leave after sustained losses (unless it is the last of its
        # group), else move its capacity towards its demand
        base_capacity = m.shockboard.base["capacity"]
        for p in providers:
            if p.close_period(profit[p.acct], cfg.exit_after) and len(self._peers(p)) > 1:
                self.exit(p, day)
                changed = True
                continue
            changed |= p.review_capacity(demand_util, base_capacity, cfg)
        changed |= add_space_where_stock_was_turned_away(
            m, m.metrics.space_short - self._space_short, self._space_peak)
        for it in m.integrators:
            if not it.in_market:
                continue
            if it.close_period(profit[it.acct], cfg.exit_after) and sum(i.in_market for i in m.integrators) > 1:
                self.exit_integrator(it, day)
                changed = True
        # entry where incumbents earn well and are busy
        groups: dict[tuple, list] = {}
        for p in providers:
            if p.in_market:
                groups.setdefault(self._group_key(p), []).append(p)
        for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
            rev = sum(revenue[p.acct] for p in members)
            prof = sum(profit[p.acct] for p in members)
            offs = np.concatenate([p.offer_ids[m.offers.active[p.offer_ids]] for p in members])
            busy = demand_util[offs].mean() if offs.size else 0.0
            if rev > 0 and prof / rev > cfg.entry_margin and busy > lo:
                for _ in range(cfg.max_entrants):
                    self.enter(members, day)
                    changed = True
        self._cash, self._received = L.balances.copy(), L.received.copy()
        self._util = np.zeros(m.offers.n)
        self._queue = np.zeros(len(m.world.resources))
        self._space_peak = np.zeros(len(m.warehouse_nodes))
        self._space_short = m.metrics.space_short.copy()
        if changed:
            m.shockboard.reapply()
            m.quoter.invalidate()
            m.market_version += 1

    @staticmethod
    def _group_key(p) -> tuple:
        return (p.role, p.group)

    def _peers(self, p) -> list:
        return [q for q in self.m.carriers + self.m.operators + self.m.brokers
                if q.in_market and self._group_key(q) == self._group_key(p)]

    # ---- exit ----
    def exit(self, p, day: int):
        m = self.m
        p.in_market = False
        m.offers.active[p.offer_ids] = False
        book = m.contracts
        st = book.cols["status"][: book.n]
        gone = ((st == ACTIVE) | (st == SIGNED)) & ((book.provider == p.unique_id) | (book.sub_provider == p.unique_id))
        st[gone] = TERMINATED
        self.exits += 1
        self.exits_today += 1
        self.log.append({"day": day, "event": "exit", "agent": p.name, "role": p.role})

    def exit_integrator(self, it, day: int):
        m = self.m
        it.in_market = False
        book = m.contracts
        st = book.cols["status"][: book.n]
        st[((st == ACTIVE) | (st == SIGNED)) & ((book.buyer == it.unique_id) | (book.provider == it.unique_id))] = TERMINATED
        self.exits += 1
        self.exits_today += 1
        self.log.append({"day": day, "event": "exit", "agent": it.name, "role": it.role})
        m.integrator_left(it)

    # ---- entry ----
    def enter(self, members: list, day: int):
        """A newcomer copies an incumbent's footprint with its own costs and half the capacity."""
        m, rng = self.m, self.m.rng
        template = members[int(rng.integers(len(members)))]
        spread = m.config.carriers.cost_spread
        cf = 1.0 + rng.uniform(-spread, spread)
        k = sum(1 for p in m.carriers + m.operators + m.brokers if self._group_key(p) == self._group_key(template))
        name = f"{template.group.split(':')[-1]}-{k + 1}" if template.role == "carrier" else f"{template.name.rsplit('-', 1)[0]}-{k + 1}"
        if isinstance(template, Carrier):
            p = Carrier(m, name, template.group, cost_factor=cf, speed=1.0 + rng.uniform(-0.05, 0.05),
                        reliability=rng.uniform(0.7, 1.3))
            m.carriers.append(p)
        elif isinstance(template, WarehouseOperator):
            p = WarehouseOperator(m, name, template.node, cf)
            m.operators.append(p)
        else:
            lo, hi = m.config.customs_agents.accuracy
            p = CustomsAgent(m, name, template.node, template.territory, cf, rng.uniform(lo, hi))
            m.brokers.append(p)
        o = m.offers
        rows = []
        ratio = cf / getattr(template, "cost_factor", 1.0)
        for off in template.offer_ids:
            rows.append({
                "resource": int(o.resource[off]), "provider": p.unique_id, "acct": p.acct, "kind": int(o.kind[off]),
                "capacity": 0.5 * float(o.base_capacity[off]), "storage_capacity": 0.5 * float(o.storage_capacity[off]),
                "cost_parcel": float(o.cost_parcel[off]) * ratio, "cost_kg": float(o.cost_kg[off]) * ratio,
                "cost_shipment": float(o.cost_shipment[off]) * ratio, "cost_storage": float(o.cost_storage[off]) * ratio,
                "fixed_cost_day": 0.5 * float(o.fixed_cost_day[off]) * ratio,
                "speed": getattr(p, "speed", 1.0), "delay_mult": getattr(p, "reliability", 1.0),
                "loss_mult": getattr(p, "reliability", 1.0), "accuracy": getattr(p, "accuracy", 1.0),
                "markup": float(o.markup[off]), "provider_idx": -1})
        p.offer_ids = o.extend(rows, len(m.world.resources))
        m.provider_entered(p)
        self.entries += 1
        self.entries_today += 1
        self.log.append({"day": day, "event": "entry", "agent": p.name, "role": p.role})
