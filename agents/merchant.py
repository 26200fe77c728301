"""Merchant: a cross-border seller with products, demand in several markets, and cash.

Per market it decides the fulfilment channel (postal, express, dedicated line, or stock in an
overseas / border / bonded warehouse) and whom to buy logistics from: one of the 4PL
integrators' composed services (economy / standard / express), or itself from the 3PLs. Each
option's value is the expected daily profit it gives - orders fall with delivery time and
rise with tracking visibility, and each order pays landed logistics cost and duty - plus the
reliability and visibility it cares about; it chooses by a multinomial logit with its own
preferences, reviews periodically, and pays a switching cost to move. Doing it yourself has
real frictions: a transaction cost for each contract, hand-off delays between providers, no
pooled discounts. For warehouse channels it runs an (s, S) replenishment policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import mesa
import numpy as np

from market.integration.choice import mnl_probabilities, sample_choice
from market.world.demand import time_factor
from market.goods.parcels import DELIVERED
from market.money.contracts import ACTIVE, EXECUTED, SERVICES
from market.money.ledger import to_cents

MAX_INTEGRATORS = 20      # the schema's limit on integrators.count


@dataclass
class Option:
    """One way a merchant can serve a market: a channel, who buys the logistics (an
    integrator's service, or itself), the routes, and what it expects of them per order (USD)
    and per day."""

    channel: int
    integrator: int        # -1: do it yourself
    route: int
    rep_route: int         # -1 for direct channels
    cost: float            # logistics per order, USD (the price paid)
    duty: float            # duty and VAT per order, USD
    days: float            # expected delivery days
    orders: float          # expected orders a day
    profit: float          # expected profit a day, USD
    reliability: float = 1.0
    visibility: float = 0.0
    service: str = "diy"   # the integrator's service name (economy / standard / express)
    markup: float = 0.0    # the integrator's markup in the quote
    arm: int = -1          # the pricing bandit's arm behind the quote
    basis: float = 0.0     # the integrator's cost per order behind the quote


class MerchantMarkets:
    """One row per (merchant, market): the merchant's current choice and what it expects.

    Data, not an agent: merchants write their choices here; orders, replenishment, planning and
    the integrators read them as columns.
    """

    FIELDS = {"merchant": np.int64, "market": np.int64, "base": np.float64, "channel": np.int64,
              "integrator": np.int64, "route": np.int64, "rep_route": np.int64, "warehouse": np.int64,
              "prev_warehouse": np.int64, "expected_days": np.float64, "time_factor": np.float64,
              "lead_ema": np.float64, "lead_n": np.int64, "since": np.int64}

    def __init__(self, rows: list[tuple[int, int, float]]):
        n = len(rows)
        for k, t in self.FIELDS.items():
            setattr(self, k, np.full(n, -1 if t is np.int64 else 0.0, dtype=t))
        for i, (merchant, market, base) in enumerate(rows):
            self.merchant[i], self.market[i], self.base[i] = merchant, market, base
        self.time_factor[:] = 1.0
        self.lead_n[:] = 0
        self.insured = np.zeros(n, dtype=bool)
        self.markup = np.zeros(n)            # the integrator's agreed markup on its cost
        self.e2e_contract = np.full(n, -1, dtype=np.int64)   # its end-to-end contract, if any
        self.fallback_route = np.full(n, -1, dtype=np.int64) # direct route while a new warehouse fills
        self.n = n

    def stock_holders(self, n_merchants: int, n_warehouses: int) -> np.ndarray:
        """(merchant, warehouse) -> integrator buying that stock's services, or -1 (the merchant)."""
        out = np.full((n_merchants, n_warehouses), -1, dtype=np.int64)
        for field in ("prev_warehouse", "warehouse"):       # the current channel wins
            w = getattr(self, field)
            sel = w >= 0
            out[self.merchant[sel], w[sel]] = self.integrator[sel]
        return out

    def learn_lead_times(self, finished: dict):
        """Merchants update what delivery time they see on their current choice (an EMA over the
        parcels delivered today that were sent under that choice)."""
        ok = finished["status"] == DELIVERED
        row = finished["mm_row"][ok]
        current = (finished["channel"][ok] == self.channel[row]) \
            & (finished["integrator_idx"][ok] == self.integrator[row]) \
            & (finished["created_day"][ok] >= self.since[row])
        row = row[current]
        if row.size == 0:
            return
        lead = (finished["finished_day"][ok][current] - finished["created_day"][ok][current]).astype(np.float64)
        n = np.bincount(row, minlength=self.n)
        total = np.bincount(row, weights=lead, minlength=self.n)
        has = n > 0
        mean = total[has] / n[has]
        alpha = np.minimum(1.0, n[has] / np.maximum(self.lead_n[has] + n[has], 1)) * 0.5 + 0.05
        self.lead_ema[has] = np.where(self.lead_n[has] == 0, mean,
                                      self.lead_ema[has] + alpha * (mean - self.lead_ema[has]))
        self.lead_n[has] += n[has]


class Merchant(mesa.Agent):
    """A cross-border e-commerce seller."""

    role = "merchant"

    def __init__(self, model, name: str, origin: str, index: int):
        super().__init__(model)
        self.name = name
        self.origin = origin
        self.index = index
        self.acct = model.ledger.open(f"merchant:{name}", self.role, self.unique_id)
        self.products = np.zeros(0, dtype=np.int64)   # global product indices
        self.rows = np.zeros(0, dtype=np.int64)       # rows of the model's merchant-market table
        self.review_offset = index % model.config.merchants.review_days
        self.switches = 0
        mc = model.config.merchants
        # heterogeneous preferences: how much it values reliability and visibility
        self.reliability_weight = mc.reliability_weight * model.rng.lognormal(-0.125, 0.5)
        self.visibility_weight = mc.visibility_weight * model.rng.lognormal(-0.125, 0.5)
        self.risk_aversion = model.rng.uniform(*model.config.insurance.risk_aversion)
        # persistent, merchant-specific liking of each (channel, provider): unobserved heterogeneity
        # (drawn for the most integrators a scenario may have, so the same seed builds the same
        # merchants whatever the number of integrators: common random numbers across designs)
        self.taste = model.rng.standard_normal((len(model.world.channels), MAX_INTEGRATORS + 1))

    # ------------------------------------------------------------------------------------
    def step(self):
        """On its review days choose again for each market; on its replenishment days restock."""
        model, cfg = self.model, self.model.config.merchants
        if model.day > 0 and (model.day + self.review_offset) % cfg.review_days == 0:
            self.review(model.day)
        if (model.day + self.review_offset) % cfg.replenish_review_days == 0:
            self.replenish(model.day)

    # ---- choosing channel and provider ----
    def options(self, row: int) -> list[Option]:
        """Every feasible (channel, provider, service) for one market, with its expected daily profit."""
        model, cfg = self.model, self.model.config
        mm = model.mm
        market = model.world.markets[mm.market[row]]
        share = model.lst_share_of(row)
        prods = self.products
        weights, value = model.prod_weight[prods], model.prod_value[prods]
        margin = float((share * value * (1.0 - model.prod_cost_share[prods])).sum())
        base = mm.base[row] * cfg.demand.scale
        uplift = cfg.integrators.visibility_uplift
        allowed = model.allowed_channels()
        out = []
        for ch_name, (route, rep) in model.world.channel_routes(self.origin, market).items():
            if ch_name not in allowed or not model.quoter.route_open(route) \
                    or (rep is not None and not model.quoter.route_open(rep)):
                continue
            channel = model.world.channels.index(ch_name)
            duty = float((share * model.expected_duties.per_unit(prods, route, rep if rep is not None else -1,
                                                                 model.day, model.date)).sum())
            days0 = model.net.route_expected_days[route]
            stock_days, units = 0.0, 1.0
            wh = model.world.routes[route].warehouse
            if rep is not None:
                daily_orders = base * time_factor(days0, cfg.demand.time_elasticity, cfg.demand.reference_days)
                lead = model.net.route_expected_days[rep]
                units = max(daily_orders * cfg.merchants.order_cycle_days, 1.0)
                stock_days = cfg.merchants.order_cycle_days / 2 + cfg.merchants.service_level_z * np.sqrt(
                    (lead + cfg.merchants.replenish_review_days) / max(daily_orders, 1.0))
            carrying = float((share * value * model.prod_cost_share[prods]).sum()) \
                * cfg.merchants.carrying_cost_rate * stock_days / 365

            def value_of(cost, days, reliability, visibility, integ, **kw):
                if not np.isfinite(cost):
                    return None
                current = mm.channel[row] == channel and mm.integrator[row] == integ
                if current and mm.lead_n[row] >= 30:
                    days = 0.5 * days + 0.5 * mm.lead_ema[row]   # what it has seen, not just the promise
                orders = base * time_factor(days, cfg.demand.time_elasticity, cfg.demand.reference_days) \
                    * (1.0 + uplift * visibility)
                profit = orders * (margin - cost - duty - carrying)
                return Option(channel, integ, kw.pop("route", route), kw.pop("rep_route", -1 if rep is None else rep),
                              cost, duty, days, orders, profit, reliability, visibility, **kw)

            # do it yourself: the channel's default route, its own contracts or spot
            transaction_cost = cfg.merchants.diy_transaction_cost
            diy = model.quoter.route_cost(self.acct, route, weights, base, transaction_cost)
            if rep is not None:
                kg = base * float((share * weights).sum())
                diy = diy + model.quoter.replenish_cost(self.acct, rep, wh, weights, units, stock_days,
                                                        transaction_cost, kg)
            diy_cost = float((share * diy).sum())
            days_diy = days0 + model.net.route_handoffs[route] * cfg.merchants.diy_handoff_delay
            opt = value_of(diy_cost, days_diy, 1.0 - model.net.route_risk[route], 0.0, -1)
            if opt is not None:
                out.append(opt)
            # each integrator's composed services for this route family
            for it in model.integrators:
                if not it.in_market:
                    continue
                for name, svc in it.offers(model.world.routes[route].family, base).items():
                    # priced on what the route costs the integrator today (as its parcels will be)
                    basis = float((share * it.route_cost(svc.route, weights)).sum())
                    rep_route = -1
                    if rep is not None:
                        value_kg = float((share * value).sum() / max((share * weights).sum(), 1e-9))
                        rep_route = it.replenish_route(self.origin, wh, value_kg)
                        up = model.quoter.replenish_cost(it.acct, rep_route, wh, weights, units, stock_days)
                        basis += float((share * up).sum())
                    markup, arm = it.price(basis, diy_cost)
                    opt = value_of(basis * (1.0 + markup), svc.days, 1.0 - svc.risk, 1.0, it.index,
                                   route=svc.route, rep_route=rep_route, service=name, markup=markup,
                                   arm=arm, basis=basis)
                    if opt is not None:
                        out.append(opt)
        return out

    def typical_profit(self) -> float:
        """Its usual daily gross margin across its markets: the scale of its choices."""
        model = self.model
        share = model.prod_share[self.products]
        margin = float((share * model.prod_value[self.products] * (1.0 - model.prod_cost_share[self.products])).sum())
        return max(float(model.mm.base[self.rows].sum()) * model.config.demand.scale * margin / max(len(self.rows), 1),
                   1.0)

    def choose(self, row: int, initial: bool = False, forced: bool = False) -> Option | None:
        """Choose among the options by a multinomial logit; moving costs the switching cost.

        ``forced``: the current option is no longer allowed, so it must move.
        """
        model, cfg = self.model, self.model.config.merchants
        opts = self.options(row)
        if not opts:
            return None
        scale = self.typical_profit()
        beta = 1.0 / max(cfg.choice_noise * scale, 1e-9)     # utility per USD a day
        profit = np.array([opt.profit for opt in opts])
        rel = np.array([opt.reliability for opt in opts])
        vis = np.array([opt.visibility for opt in opts])
        taste = np.array([self.taste[opt.channel, opt.integrator + 1] for opt in opts])
        U = beta * (profit + scale * (self.reliability_weight * rel + self.visibility_weight * vis
                                      + cfg.taste_spread * taste))
        mm = model.mm
        is_current = np.array([opt.channel == mm.channel[row] and opt.integrator == mm.integrator[row]
                               for opt in opts])
        if not initial and not forced and is_current.any():
            U = U - beta * cfg.switching_cost / cfg.review_days * ~is_current
        pick = int(sample_choice(mnl_probabilities(U[None, :]), model.rng)[0])
        best = opts[pick]
        self._report_quotes(opts, pick)
        if not initial and is_current[pick] and not forced:
            cur = opts[pick]
            if (cur.route, cur.rep_route, cur.markup) != (mm.route[row], mm.rep_route[row], mm.markup[row]):
                self.adopt(row, cur, keep_learning=True)   # another service of the same provider
            return cur
        if not initial:
            model.ledger.transfer(self.acct, model.acct_overheads, int(to_cents(cfg.switching_cost)), "onboarding")
            self.switches += 1
        self.adopt(row, best, initial=initial)
        model.mm.insured[row] = self.wants_insurance(row, best)
        if not initial and best.rep_route >= 0:
            self.replenish(model.day, rows=[row])   # stock the new warehouse at once
        return best

    def adopt(self, row: int, opt: Option, initial: bool = False, keep_learning: bool = False):
        """Record its choice for a market (and warm-start its stock on day 0).

        ``keep_learning``: the same channel and provider (another service level), so what it
        has learned about its delivery times is kept.
        """
        model = self.model
        mm, cfg = model.mm, model.config
        self._sign_end_to_end(row, opt)
        old_wh = mm.warehouse[row]
        old_route, old_rep = int(mm.route[row]), int(mm.rep_route[row])
        if opt.rep_route >= 0 and old_route >= 0 and old_rep < 0:
            mm.fallback_route[row] = old_route   # ships as before until the warehouse has stock
        elif opt.rep_route < 0:
            mm.fallback_route[row] = -1
        mm.channel[row] = opt.channel
        mm.integrator[row] = opt.integrator
        mm.route[row] = opt.route
        mm.rep_route[row] = opt.rep_route
        new_wh = model.route_warehouse[opt.route] if opt.rep_route >= 0 else -1
        mm.warehouse[row] = new_wh
        if old_wh >= 0 and old_wh != new_wh:
            mm.prev_warehouse[row] = old_wh      # sell down what is left there
        mm.markup[row] = opt.markup
        mm.expected_days[row] = opt.days
        mm.time_factor[row] = time_factor(opt.days, cfg.demand.time_elasticity, cfg.demand.reference_days) \
            * (1.0 + cfg.integrators.visibility_uplift * opt.visibility)
        if not keep_learning:
            mm.lead_ema[row] = 0.0
            mm.lead_n[row] = 0
            mm.since[row] = model.day
        model.plan.dirty = True
        if initial and new_wh >= 0:
            self._warm_start_stock(row, opt)

    def _sign_end_to_end(self, row: int, opt: Option):
        """Buying an integrator's service is an end-to-end contract with it; the previous one
        ends (executed) when it switches."""
        model = self.model
        mm, book = model.mm, model.contracts
        old = int(mm.e2e_contract[row])
        if old >= 0 and book.status[old] == ACTIVE:
            book.cols["status"][old] = EXECUTED
            book.cols["end"][old] = model.day
        mm.e2e_contract[row] = -1
        if opt.integrator < 0:
            return
        it = model.integrators[opt.integrator]
        per_parcel, per_kg = it.route_rates(opt.route)
        up = 1.0 + opt.markup
        mm.e2e_contract[row] = book.add(
            f"quote/{opt.service}", buyer=self.unique_id, buyer_acct=self.acct, provider=it.unique_id,
            provider_acct=it.acct, offer=-1, resource=-1, service=SERVICES.index("end_to_end"),
            rate_parcel=per_parcel * up, rate_kg=per_kg * up, cost_factor=1.0, capacity=opt.orders,
            sla_days=int(np.ceil(opt.days)), penalty=model.config.integrators.service_credit,
            start=model.day, end=10 ** 6, status=ACTIVE, round=model.day, n_bids=1,
            winning_bid=float(per_parcel * up + per_kg * up * model.reference_weight),
            second_bid=float("nan"),
            score=float(opt.profit))

    def _warm_start_stock(self, row: int, opt: Option):
        """Opening stock: one replenishment cycle plus safety stock, carrying its expected cost."""
        model = self.model
        mm, cfg = model.mm, model.config
        prods = self.products
        wh = mm.warehouse[row]
        daily_orders = mm.base[row] * cfg.demand.scale * mm.time_factor[row] * model.prod_share[prods]
        lead = model.net.route_expected_days[opt.rep_route] + cfg.merchants.replenish_review_days
        cal = model.demand_calendar.ahead(int(mm.market[row]), model.day)
        window = cal[: int(np.ceil(lead + cfg.merchants.order_cycle_days))].sum()
        units = np.ceil(daily_orders * window
                        + cfg.merchants.service_level_z * np.sqrt(daily_orders * lead)).astype(np.int64)
        units = model.inventory.fit_to_space(int(wh), units)
        model.inventory.stock[prods, wh] += units
        per_unit_duty = model.expected_duties.per_unit(prods, -1, opt.rep_route, model.day, model.date)
        buyer = self.acct if opt.integrator < 0 else model.integrators[opt.integrator].acct
        up = model.quoter.replenish_cost(buyer, opt.rep_route, model.warehouse_nodes[wh], model.prod_weight[prods],
                                         max(float(daily_orders.sum() * cfg.merchants.order_cycle_days), 1.0), 0.0)
        model.inventory.pool_cost[prods, wh] += up * units
        model.inventory.pool_duty[prods, wh] += per_unit_duty * units
        model.inventory.opening_stock_cost += float((up * units).sum())

    def _report_quotes(self, opts: list[Option], pick: int):
        """Integrators with adaptive pricing learn which of their quotes were taken."""
        for it in self.model.integrators:
            mine = [i for i, o in enumerate(opts) if o.integrator == it.index and o.arm >= 0]
            if mine:
                it.learn([opts[i].arm for i in mine], [opts[i].basis for i in mine],
                         [opts[i].markup for i in mine], [i == pick for i in mine],
                         [opts[i].orders for i in mine])

    def wants_insurance(self, row: int, opt: Option) -> bool:
        """Insure when the uninsured loss it fears exceeds the premium (DIY only; a 4PL insures)."""
        if opt.integrator >= 0:
            return False
        model, insurance = self.model, self.model.config.insurance
        share = model.lst_share_of(row)
        value, weights = model.prod_value[self.products], model.prod_weight[self.products]
        risk = model.net.route_risk[opt.route]
        uncovered = np.maximum(value - model.config.carriers.liability_per_kg * weights - insurance.deductible, 0.0)
        premium = (1.0 + insurance.loading) * risk * uncovered + insurance.expense
        return bool(self.risk_aversion * float((share * risk * uncovered).sum()) > float((share * premium).sum()))

    def review(self, day: int):
        """Choose again for each of its markets."""
        for row in self.rows:
            self.choose(int(row))

    # ---- stock ----
    def replenish(self, day: int, rows=None):
        """(s, S) policy per product at each warehouse this merchant's channels stock."""
        model, cfg = self.model, self.model.config.merchants
        mm = model.mm
        for row in self.rows if rows is None else rows:
            wh = mm.warehouse[row]
            if wh < 0 or mm.rep_route[row] < 0:
                continue
            prods = self.products
            share = model.lst_share_of(int(row))
            # demand level (seasonally adjusted) from what it has sold, else from its plan
            planned = mm.base[row] * model.config.demand.scale * mm.time_factor[row] * share
            inv = model.inventory
            # trust what it has sold in proportion to how long it has watched (60 days to full)
            trust = np.minimum(inv.demand_days[prods, wh] / 60.0, 1.0)
            level = trust * inv.demand_ema[prods, wh] + (1.0 - trust) * planned
            sd = np.maximum(inv.demand_sd()[prods, wh], np.sqrt(level))
            # merchants know the sales calendar: cover the peaks ahead, not just today's rate
            lead = model.net.route_expected_days[mm.rep_route[row]] + cfg.replenish_review_days
            cal = model.demand_calendar.ahead(int(mm.market[row]), day)
            k = int(np.ceil(lead))
            cover = cal[:k].sum()
            cycle = cal[k:k + int(np.ceil(cfg.order_cycle_days))].sum()
            s = level * cover + cfg.service_level_z * sd * np.sqrt(lead)
            S = s + level * cycle
            position = inv.stock[prods, wh] + inv.on_order[prods, wh]
            qty = np.where(position <= s, np.ceil(S - position), 0).astype(np.int64)
            qty = inv.fit_to_space(int(wh), qty)     # the warehouse's space is shared by all its users
            if qty.any():
                buyer, integ = self.logistics_buyer_for_warehouse(wh)
                inv.dispatch(self.index, buyer, -1 if integ is None else integ.index,
                             int(mm.rep_route[row]), int(wh), prods, qty, day)

    def logistics_buyer_for_warehouse(self, wh: int):
        """Who buys the legs of stock at this warehouse: the 4PL serving that market, or itself."""
        model = self.model
        integ = int(model.mm.stock_holders(len(model.merchants), len(model.warehouse_nodes))[self.index, wh])
        if integ >= 0:
            it = model.integrators[integ]
            return it.acct, it
        return self.acct, None

    @property
    def cash(self) -> float:
        """Its ledger balance, USD."""
        return self.model.ledger.balance(self.acct) / 100.0
