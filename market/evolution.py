"""Market evolution: providers exit after sustained losses, new providers enter where expected
margins beat a hurdle, and capacity follows utilisation.

Every ``evolution.period_days`` each provider's profit and revenue over the period are read
from the ledger, and the fixed cost it paid from the offer book. A provider leaves when its
losses over the last ``exit_window`` periods exceed the share of its fixed cost over them it
is prepared to bear (its own draw from ``loss_tolerance``, so exits spread over time and the
worst-placed go first); an integrator leaves after ``exit_after`` loss-making periods in a row.
The market starts with nothing in transit, so a period counts towards a provider's exit window
only once it starts after goods sent on day 0 could have reached every resource (the longest
expected door-to-door time of the world's routes): until then the customs points, ports and
lanes at the far end of the slowest routes pay for capacity that the pipeline has not reached
yet, which says nothing about their economics.
Its offers close and its contracts are terminated (its buyers go to spot until the next
tender; an integrator's merchants must choose again). A provider that ran hot adds capacity
(and the fixed cost of it); one that stood idle sheds some. The operators of a warehouse that
turned stock away for want of space add space. A newcomer enters a group (a carrier group,
the operators of a warehouse, the brokers at a customs point) when the margin it can expect -
the group's profit over the period less the newcomer's own fixed cost, on the group's
revenue, since it brings capacity but no new demand - beats a hurdle drawn from
``entry_hurdle``; it comes with half an incumbent's capacity and its own costs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.carrier import Carrier
from agents.customs_agent import CustomsAgent
from agents.provider import Provider
from agents.warehouse_operator import WarehouseOperator, add_space_where_stock_was_turned_away
from market.goods.parcels import IN_STAGE, WAITING
from market.money.contracts import ACTIVE, SIGNED, TERMINATED

AHEAD_DAYS = 2      # how far ahead providers see parcels coming (pre-alerts, pre-arrival data)

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
        self._cash = self._worth()
        self._received = model.ledger.received.copy()
        n, R = model.offers.n, len(model.world.resources)
        self._util = np.zeros(n)                # sums of daily utilisation over the period
        self._fixed = np.zeros(n)               # fixed cost paid over the period (USD)
        self._queue = np.zeros(R)               # sums of daily queues at each resource
        self._util_c = np.zeros(n)              # ... since the last capacity review
        self._queue_c = np.zeros(R)
        self._days_c = 0
        self._peak: np.ndarray | None = None    # recent peak demand per offer (units a day)
        # periods that start before goods sent on day 0 could reach every resource do not count
        # towards providers' exit windows (the pipeline is still filling)
        self.pipeline_days = float(model.net.route_expected_days.max()) if model.net.route_expected_days.size else 0.0
        W = len(model.warehouse_nodes)
        self._space_peak = np.zeros(W)                      # most units held at each warehouse
        self._space_short = model.metrics.space_short.copy()  # units turned away, at the last review
        self.exits = 0
        self.entries = 0
        self.exits_today = 0
        self.entries_today = 0
        self.log: list[dict] = []

    def observe_day(self):
        """Accumulate today's utilisation of every offer, the fixed cost it paid and the queues."""
        offers = self.model.offers
        if self._util.size < offers.n:
            grow = offers.n - self._util.size
            self._util, self._fixed, self._util_c = (np.concatenate([a, np.zeros(grow)])
                                                     for a in (self._util, self._fixed, self._util_c))
        util = np.divide(offers.used_today, offers.capacity, out=np.zeros(offers.n), where=offers.capacity > 0)
        self._util += util
        self._util_c += util
        self._fixed += np.where(offers.active, offers.fixed_cost_day, 0.0)    # as the model paid it
        queue = getattr(self.model.flow, "queue_today", 0)
        self._queue += queue
        self._queue_c += queue
        self._days_c += 1
        self._space_peak = np.maximum(self._space_peak, self.model.inventory.held())

    def _backlog(self, queue_sum: np.ndarray, days: int) -> np.ndarray:
        """Each offer's share (pro rata to capacity) of the parcels left waiting at its resource
        over ``days``, as a share of its capacity."""
        offers = self.model.offers
        open_cap = np.where(offers.active, offers.capacity, 0.0)
        res_cap = np.bincount(offers.resource, weights=open_cap, minlength=queue_sum.size)
        return np.divide(queue_sum[offers.resource] / max(days, 1), res_cap[offers.resource],
                         out=np.zeros(offers.n), where=(res_cap[offers.resource] > 0) & (open_cap > 0))

    def _demand_util(self, util_sum: np.ndarray, queue_sum: np.ndarray, days: int) -> np.ndarray:
        """Each offer's mean demand over ``days`` as a share of its capacity: its utilisation
        plus its share (pro rata to capacity) of the parcels left waiting at its resource."""
        return util_sum / max(days, 1) + self._backlog(queue_sum, days)

    def arrivals_ahead(self, day: int) -> np.ndarray:
        """Parcels each resource will see arrive on its busiest day among the next
        ``AHEAD_DAYS`` + 1 (today included), from the parcels now in flight: a parcel in a stage
        reaches the next one when its stage ends, and each later one after the expected days of
        the stages between; a parcel waiting for a stage reaches the next after that stage's
        expected days. What carriers see in their own networks and pre-alerts, and customs in
        pre-arrival data."""
        model = self.model
        parcels, net = model.parcels, model.net
        n, R, H = parcels.n, len(model.world.resources), AHEAD_DAYS + 1
        status = parcels["status"][:n]
        live = np.flatnonzero((status == IN_STAGE) | (status == WAITING))
        counts = np.zeros(R * H)
        if live.size == 0:
            return np.zeros(R)
        route, stage = parcels["route"][live], parcels["stage"][live].astype(np.int64)
        n_stages = parcels["n_stages"][live]
        here = net.route_res[route, stage]
        eta = np.where(status[live] == IN_STAGE, np.maximum(parcels["end_day"][live] - day, 0),
                       net.res_expected_days[here]).astype(np.float64)
        for k in range(1, net.max_stages):
            nxt = stage + k
            ok = (nxt < n_stages) & (eta < H)
            if not ok.any():
                break
            # parcels past their last stage or beyond the horizon drop out for good
            route, stage, n_stages, eta, nxt = route[ok], stage[ok], n_stages[ok], eta[ok], nxt[ok]
            r = net.route_res[route, nxt]
            counts += np.bincount(r * H + np.floor(eta).astype(np.int64), minlength=R * H)
            eta += net.res_expected_days[r]
        return counts.reshape(R, H).max(axis=1)

    def _remember_peak(self, demand_util: np.ndarray) -> np.ndarray:
        """Update each offer's recent peak of weekly demand (units a day): demand smoothed over
        a week (exponentially), and its running maximum, which decays with a half-life of
        ``evolution.capacity_memory_days``; both start at the volume the capacity was planned
        for, mid-band. Returns the peak as a share of the capacity before shocks."""
        model, offers = self.model, self.model.offers
        base = model.shockboard.base["capacity"]
        u_mid = float(np.mean(model.config.carriers.utilisation_target))
        if self._peak is None:
            self._peak = u_mid * base.copy()
            self._weekly = self._peak.copy()
        elif self._peak.size < offers.n:
            self._peak = np.concatenate([self._peak, u_mid * base[self._peak.size:]])
            self._weekly = np.concatenate([self._weekly, u_mid * base[self._weekly.size:]])
        days = max(self._days_c, 1)
        self._weekly += (1.0 - np.exp(-days / 7.0)) * (demand_util * offers.capacity - self._weekly)
        decay = 0.5 ** (days / model.config.evolution.capacity_memory_days)
        self._peak = np.maximum(self._weekly, self._peak * decay)
        return np.divide(self._peak, base, out=np.zeros(offers.n), where=base > 0)

    def review(self, day: int):
        """Every ``evolution.capacity_review_days`` providers move their capacity towards their
        demand. At the end of a period (``period_days``), first: each provider leaves after
        sustained losses (unless it is the last of its group; its peers take over its
        customers); warehouses that turned stock away add space; integrators leave after
        sustained losses (unless the last one); then, after the capacity review, new providers
        enter groups whose capacity runs short where the margin they can expect beats their
        hurdle."""
        model, cfg = self.model, self.model.config.evolution
        self.exits_today = self.entries_today = 0
        if not cfg.enabled or day == 0:
            return
        period = day % cfg.period_days == 0
        weekly = day % cfg.capacity_review_days == 0
        if not (period or weekly):
            return
        offers = model.offers
        providers = [p for p in model.carriers + model.operators + model.brokers if p.in_market]
        demand_c = self._demand_util(self._util_c, self._queue_c, self._days_c)
        changed = False
        if period:
            ledger = model.ledger
            n = ledger.n_accounts
            cash_now, rec_now = self._worth(), ledger.received.copy()
            pad = lambda a: np.concatenate([a, np.zeros(n - a.size, dtype=a.dtype)]) if a.size < n else a  # noqa: E731
            profit = cash_now - pad(self._cash)
            revenue = rec_now - pad(self._received)
            util = self._util / cfg.period_days
            demand_util = self._demand_util(self._util, self._queue, cfg.period_days)
            fixed = self._fixed * 100.0            # cents, per offer
            # each provider decides whether to leave after sustained losses (unless it is the
            # last of its group; the peers it leaves take over its customers)
            filled = day - cfg.period_days >= self.pipeline_days
            wants_out = [p for p in providers
                         if filled and p.close_period(profit[p.acct], float(fixed[p.offer_ids].sum()))]
            exited_groups = set()
            for provider in wants_out:
                if len(self._peers(provider)) > 1 and not self._last_on_a_resource(provider):
                    self.exit(provider, day, util, (demand_util, demand_c))
                    exited_groups.add(self._group_key(provider))
                    changed = True
            changed |= add_space_where_stock_was_turned_away(
                model, model.metrics.space_short - self._space_short, self._space_peak)
            for it in model.integrators:
                if not it.in_market:
                    continue
                if it.close_period(profit[it.acct], cfg.exit_after) and sum(i.in_market for i in model.integrators) > 1:
                    self.exit_integrator(it, day)
                    changed = True
        if weekly or period:
            # the others move their capacity towards their demand: on parcel resources the
            # latest demand (adding where parcels queued) and its recent peak (shedding); on bulk
            # resources, where consignments come in lumps, the period's mean use
            base_capacity = model.shockboard.base["capacity"]
            bulk = model.net.res_bulk[offers.resource]
            nan = np.full(offers.n, np.nan)
            if weekly:
                peak_util = self._remember_peak(demand_c)
                queued = self._backlog(self._queue_c, self._days_c) > 0
                # parcels seen coming: a resource's busiest day ahead, over its open capacity
                open_cap = np.bincount(offers.resource, weights=np.where(offers.active, offers.capacity, 0.0),
                                       minlength=len(model.world.resources))
                ahead = np.divide(self.arrivals_ahead(day), open_cap, out=np.zeros(open_cap.size),
                                  where=open_cap > 0)[offers.resource]
                coming = ahead > 1.0                   # more coming on a day than it can take
                queued = queued | coming
                demand = np.where(bulk, nan, np.where(coming, np.fmax(demand_c, ahead), demand_c))
                peak = np.where(bulk, nan, peak_util)
            else:
                demand, peak, queued = nan.copy(), nan.copy(), np.zeros(offers.n, dtype=bool)
            if period:
                demand = np.where(bulk, demand_util, demand)
                peak = np.where(bulk, demand_util, peak)
                queued = queued | bulk
            growable = offers.capacity >= base_capacity * (1.0 - 1e-9)      # no disruption cut it
            lo, hi = model.config.carriers.utilisation_target
            off_band = offers.active & (((demand > hi) & queued & growable) | (peak < 0.9 * 0.5 * (lo + hi)))
            deciding = set(offers.provider[off_band].tolist())
            before = base_capacity.copy()
            Provider.review_capacity([p for p in providers if p.in_market and p.unique_id in deciding],
                                     demand, queued, peak, base_capacity, growable, cfg)
            moved = np.flatnonzero(base_capacity != before)
            if moved.size and not changed:
                # only capacities moved: scale today's capacity (shocks in force included) with
                # its base; prices and services see it at the next weekly price review
                ratio = np.divide(offers.capacity[moved], before[moved], out=np.ones(moved.size),
                                  where=before[moved] > 0)
                offers.capacity[moved] = base_capacity[moved] * ratio
        if weekly:
            self._util_c = np.zeros(offers.n)
            self._queue_c = np.zeros(len(model.world.resources))
            self._days_c = 0
        if period:
            changed |= self._entries(day, providers, profit, revenue, demand_util, fixed, exited_groups)
            self._cash, self._received = self._worth(), ledger.received.copy()
            self._util = np.zeros(model.offers.n)
            self._fixed = np.zeros(model.offers.n)
            self._queue = np.zeros(len(model.world.resources))
            self._space_peak = np.zeros(len(model.warehouse_nodes))
            self._space_short = model.metrics.space_short.copy()
        if self._util_c.size < model.offers.n:      # newcomers' offers
            grow = model.offers.n - self._util_c.size
            self._util_c = np.concatenate([self._util_c, np.zeros(grow)])
        if changed:
            model.shockboard.reapply()
            model.quoter.invalidate()
            model.market_version += 1

    def _entries(self, day: int, providers: list, profit, revenue, demand_util, fixed, exited_groups) -> bool:
        """A newcomer enters a group whose capacity ran short over the period (its demand above
        the utilisation band) when the margin it can expect - the group's profit less the
        newcomer's own fixed cost (half an incumbent's), on the group's revenue - beats a
        hurdle drawn from ``evolution.entry_hurdle``; not where someone just left."""
        model, cfg = self.model, self.model.config.evolution
        offers = model.offers
        groups: dict[tuple, list] = {}
        for provider in providers:
            if provider.in_market:
                groups.setdefault(self._group_key(provider), []).append(provider)
        lo, hi = cfg.entry_hurdle
        tight = model.config.carriers.utilisation_target[1]
        entered = False
        for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
            hurdle = float(model.rng.uniform(lo, hi))
            if key in exited_groups:
                continue
            offs = np.concatenate([p.offer_ids[offers.active[p.offer_ids]] for p in members])
            offs = offs[offs < demand_util.size]
            cap = offers.capacity[offs]
            busy = float((demand_util[offs] * cap).sum() / cap.sum()) if cap.sum() > 0 else 0.0
            rev = sum(revenue[p.acct] for p in members)
            prof = sum(profit[p.acct] for p in members)
            newcomer_fixed = 0.5 * sum(float(fixed[p.offer_ids].sum()) for p in members) / len(members)
            for _ in range(cfg.max_entrants):
                if busy <= tight or rev <= 0 or (prof - newcomer_fixed) / rev <= hurdle:
                    break
                self.enter(members, day)
                prof -= newcomer_fixed
                entered = True
        return entered

    @staticmethod
    def _group_key(p) -> tuple:
        return (p.role, p.group)

    def _peers(self, p) -> list:
        return [q for q in self.model.carriers + self.model.operators + self.model.brokers
                if q.in_market and self._group_key(q) == self._group_key(p)]

    def _worth(self) -> np.ndarray:
        """Each account's cash plus what it is owed on terms less what it owes (its receivables
        and payables accounts), in cents: profit over a period is its change (accrual), so
        selling on net-30 terms is not a loss for the first month, while bad debt written off
        (receivables cut) is."""
        ledger = self.model.ledger
        worth = ledger.balances.copy()
        credit = getattr(self.model, "credit", None)      # built after the evolution rules
        if credit is not None:
            worth += credit.on_terms(ledger.balances)
        return worth

    def _last_on_a_resource(self, provider) -> bool:
        """Whether some resource it serves has no other open offer: its customers there would
        have no one to take them over (a port's last customs broker, a lane's last carrier), and
        every route through the resource would stop; such a provider stays."""
        offers = self.model.offers
        own = provider.offer_ids[offers.active[provider.offer_ids]]
        mine = set(own.tolist())
        for offer in own:
            others = [o for o in offers.by_resource.get(int(offers.resource[offer]), ()) if int(o) not in mine]
            if not offers.active[np.asarray(others, dtype=np.int64)].any():
                return True
        return False

    # ---- exit ----
    def exit(self, provider, day: int, util: np.ndarray | None = None, demand_util: tuple = ()):
        """A provider leaves: its offers close; its contracts (as party or subcontractor) are
        terminated, so its buyers go to spot until the next tender. The providers that stay on
        each of its resources take over its customers: the capacity that served them (its
        mean use over the period, ``util`` x capacity, at the middle of the utilisation band)
        passes to them pro rata to their capacity, with its fixed cost, and their demand
        (each array of ``demand_util``, shares of capacity, updated in place) counts its use."""
        model = self.model
        offers = model.offers
        provider.in_market = False
        offers.active[provider.offer_ids] = False
        if util is not None:
            base = model.shockboard.base["capacity"]
            u_mid = float(np.mean(model.config.carriers.utilisation_target))
            for off in provider.offer_ids:
                used = float(util[off] * offers.capacity[off])
                peers = offers.by_resource.get(int(offers.resource[off]), np.zeros(0, dtype=np.int64))
                peers = peers[offers.active[peers]]
                if used <= 0 or peers.size == 0:
                    continue
                weight = base[peers] / base[peers].sum() if base[peers].sum() > 0 else np.full(peers.size, 1 / peers.size)
                before = base[peers] * 1.0
                base[peers] += min(used / u_mid, float(base[off])) * weight
                offers.set_fixed_cost(peers, base[peers])
                for d in demand_util:
                    d[peers] = (d[peers] * before + used * weight) / np.maximum(base[peers], 1e-9)
                if self._peak is not None:
                    self._peak[peers] += used * weight
                    self._weekly[peers] += used * weight
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
        """A newcomer copies an incumbent's footprint (its capacity before shocks) with its own
        costs and half the capacity."""
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
        base = model.shockboard.base["capacity"]
        for off in template.offer_ids:
            rows.append({
                "resource": int(offers.resource[off]), "provider": newcomer.unique_id, "acct": newcomer.acct,
                "kind": int(offers.kind[off]), "capacity": 0.5 * float(base[off]),
                "outside_capacity": 0.5 * float(offers.outside_capacity[off]),
                "storage_capacity": 0.5 * float(offers.storage_capacity[off]),
                "cost_parcel": float(offers.cost_parcel[off]) * ratio, "cost_kg": float(offers.cost_kg[off]) * ratio,
                "cost_shipment": float(offers.cost_shipment[off]) * ratio,
                "cost_storage": float(offers.cost_storage[off]) * ratio,
                "fixed_rate": float(offers.fixed_rate[off]) * ratio,
                "fixed_cost_day": float(offers.fixed_rate[off]) * ratio
                * max(0.5 * float(base[off] - offers.outside_capacity[off]), 0.0),
                "speed": getattr(newcomer, "speed", 1.0), "delay_mult": getattr(newcomer, "reliability", 1.0),
                "loss_mult": getattr(newcomer, "reliability", 1.0), "accuracy": getattr(newcomer, "accuracy", 1.0),
                "markup": float(offers.markup[off]), "provider_idx": -1})
        newcomer.offer_ids = offers.extend(rows, len(model.world.resources))
        model.provider_entered(newcomer)
        self.entries += 1
        self.entries_today += 1
        self.log.append({"day": day, "event": "entry", "agent": newcomer.name, "role": newcomer.role})
