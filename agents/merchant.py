"""Merchant: a cross-border seller with products, demand in several markets, and cash.

Per market it decides the fulfilment channel (postal, express, dedicated line, or stock in an
overseas / border / bonded warehouse) and whom to buy logistics from: one of the 4PL
integrators' composed services (economy / standard / express), or itself from the 3PLs, on the
route variant (crossing, gateway, replenishment mode) that pays best. It prices each product
from its costs: the retail price moves with the unit's logistics cost by the pass-through, and
the consumer pays the duty and VAT on top (``market/world/demand.py``). Each option's value is
the expected daily profit it gives - orders answer the consumer's landed price, the delivery
time and the reliability consumers expect, and the spread of delivery times they see for the
channel and provider (``market/goods/tracking.py``); costs include the after-sales contacts
of parcels it ships itself - plus the reliability the merchant itself cares about; it chooses by a nested logit (a
nest per channel for doing it itself and one per channel for the 4PLs' services, which are
close substitutes) with its own preferences, reviews periodically, and pays a switching cost to
move. Doing it yourself has real frictions: a transaction cost for each contract, hand-off
delays between providers, no pooled discounts. It leaves a market whose best option stops
paying its fixed cost for a while and comes back when it pays again. For warehouse channels it
runs an (s, S) replenishment policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import mesa
import numpy as np

from market.goods.parcels import DELIVERED, IN_STAGE, WAITING
from market.integration.choice import nested_logit_probabilities, sample_choice
from market.money.contracts import ACTIVE, EXECUTED, SERVICES
from market.money.ledger import to_cents
from market.goods.tracking import SPREAD_PRIOR
from market.world.demand import (consumer_price, price_factor, reliability_factor, retail_price, spread_factor,
                                 time_factor, unit_margin)

MAX_INTEGRATORS = 20      # the schema's limit on integrators.count
MARKET_COST_DAYS = 30     # merchants pay the fixed cost of each market they serve every 30 days
ON_TIME_PRIOR = 0.9       # on-time share expected of a channel nobody has used yet (assumption) ...
ON_TIME_PRIOR_WEIGHT = 20.0   # ... worth this many parcels against what the channel has delivered


@dataclass
class Option:
    """One way a merchant can serve a market: a channel, who buys the logistics (an
    integrator's service, or itself), the routes, and what it expects of them per order (USD)
    and per day. Arrays hold one entry per product of the merchant."""

    channel: int
    integrator: int        # -1: do it yourself
    route: int
    rep_route: int         # -1 for direct channels
    cost: float            # logistics per order, USD (the price paid, mean over its products)
    duty: float            # duty and VAT per order, USD (mean over its products)
    days: float            # expected delivery days
    orders: float          # expected orders a day
    profit: float          # expected profit a day, USD
    reliability: float = 1.0
    spread: float = 0.0    # standard deviation of delivery days consumers see for the channel and provider
    service: str = "diy"   # the integrator's service name (economy / standard / express)
    markup: float = 0.0    # the integrator's markup in the quote
    arm: int = -1          # the pricing bandit's arm behind the quote
    basis: float = 0.0     # the integrator's cost per order behind the quote
    nonprice: float = 1.0  # demand factor of delivery time, reliability and delivery-time spread
    unit_cost: np.ndarray = field(default_factory=lambda: np.zeros(0))   # logistics + carrying per unit
    price: np.ndarray = field(default_factory=lambda: np.zeros(0))       # retail price per unit
    tax: np.ndarray = field(default_factory=lambda: np.zeros(0))         # duty and VAT per unit
    pf: np.ndarray = field(default_factory=lambda: np.zeros(0))          # price factor per unit


class Candidate(NamedTuple):
    """An option before it is valued (:meth:`Merchant._value_options`)."""

    facts: dict            # its channel's: channel index, on-time prior, warehouse index, carrying cost
    logistics: np.ndarray  # logistics cost per unit of each product, USD
    days: float            # expected delivery days
    reliability: float
    integrator: int        # -1: do it yourself
    route: int
    rep_route: int         # -1 for direct channels
    quote: dict            # an integrator's quote: the further Option fields (service, markup, arm, basis)


class MerchantMarkets:
    """One row per (merchant, market): the merchant's current choice and what it expects.

    Data, not an agent: merchants write their choices here; orders, replenishment, planning and
    the integrators read them as columns. ``demand_factor`` multiplies a row's base orders:
    delivery time, reliability, delivery-time spread and its products' prices (0 while the merchant does
    not serve the market); ``nonprice`` is its part without prices.
    """

    FIELDS = {"merchant": np.int64, "market": np.int64, "base": np.float64, "channel": np.int64,
              "integrator": np.int64, "route": np.int64, "rep_route": np.int64, "warehouse": np.int64,
              "prev_warehouse": np.int64, "expected_days": np.float64, "demand_factor": np.float64,
              "nonprice": np.float64, "lead_ema": np.float64, "ontime_ema": np.float64, "lead_n": np.int64,
              "since": np.int64, "first_listing": np.int64, "below_since": np.int64, "above_since": np.int64}

    def __init__(self, rows: list[tuple[int, int, float]]):
        n = len(rows)
        for k, t in self.FIELDS.items():
            setattr(self, k, np.full(n, -1 if t is np.int64 else 0.0, dtype=t))
        for i, (merchant, market, base) in enumerate(rows):
            self.merchant[i], self.market[i], self.base[i] = merchant, market, base
        self.demand_factor[:] = 1.0
        self.nonprice[:] = 1.0
        self.lead_n[:] = 0
        self.insured = np.zeros(n, dtype=bool)
        self.served = np.ones(n, dtype=bool)     # the merchant sells in this market now
        self.markup = np.zeros(n)            # the integrator's agreed markup on its cost
        self.e2e_contract = np.full(n, -1, dtype=np.int64)   # its end-to-end contract, if any
        self.fallback_route = np.full(n, -1, dtype=np.int64) # direct route while a new warehouse fills
        self.events: list[tuple[int, int, int, str]] = []    # (day, merchant, market, 'exit' | 'entry')
        self.n = n

    def stock_holders(self, n_merchants: int, n_warehouses: int) -> np.ndarray:
        """(merchant, warehouse) -> integrator buying that stock's services, or -1 (the merchant)."""
        out = np.full((n_merchants, n_warehouses), -1, dtype=np.int64)
        for field_name in ("prev_warehouse", "warehouse"):       # the current channel wins
            w = getattr(self, field_name)
            sel = w >= 0
            out[self.merchant[sel], w[sel]] = self.integrator[sel]
        return out

    def learn_lead_times(self, finished: dict):
        """Merchants update what delivery time and on-time share they see on their current
        choice (EMAs over the parcels delivered today that were sent under that choice)."""
        ok = finished["status"] == DELIVERED
        row = finished["mm_row"][ok]
        current = (finished["channel"][ok] == self.channel[row]) \
            & (finished["integrator_idx"][ok] == self.integrator[row]) \
            & (finished["created_day"][ok] >= self.since[row])
        row = row[current]
        if row.size == 0:
            return
        lead = (finished["finished_day"][ok][current] - finished["created_day"][ok][current]).astype(np.float64)
        late = lead > finished["promised_days"][ok][current]
        n = np.bincount(row, minlength=self.n)
        total = np.bincount(row, weights=lead, minlength=self.n)
        on_time = np.bincount(row, weights=(~late).astype(np.float64), minlength=self.n)
        has = n > 0
        mean = total[has] / n[has]
        share = on_time[has] / n[has]
        alpha = np.minimum(1.0, n[has] / np.maximum(self.lead_n[has] + n[has], 1)) * 0.5 + 0.05
        first = self.lead_n[has] == 0
        self.lead_ema[has] = np.where(first, mean, self.lead_ema[has] + alpha * (mean - self.lead_ema[has]))
        self.ontime_ema[has] = np.where(first, share, self.ontime_ema[has] + alpha * (share - self.ontime_ema[has]))
        self.lead_n[has] += n[has]

    @property
    def time_factor(self) -> np.ndarray:
        """The former name of ``demand_factor`` (when demand answered delivery time only)."""
        return self.demand_factor

    def listings(self, row: int, n_products: int) -> slice:
        """The listing rows (one per product) of a merchant-market row."""
        first = int(self.first_listing[row])
        return slice(first, first + n_products)


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
        self.best_profit = float("nan")               # expected profit a day of the best option at the last look
        mc = model.config.merchants
        # heterogeneous preferences: how much it values reliability
        self.reliability_weight = mc.reliability_weight * model.rng.lognormal(-0.125, 0.5)
        self.risk_aversion = model.rng.uniform(*model.config.insurance.risk_aversion)
        # persistent, merchant-specific liking of each channel done itself (column 0) or through
        # a 4PL (column 1): unobserved heterogeneity. Not per integrator: integrators differ in
        # what they are (cost, network, service), not in a taste draw each, so a copy of an
        # integrator adds nothing a merchant likes more (the draws do not depend on how many
        # integrators there are: common random numbers across designs).
        self.taste = model.rng.standard_normal((len(model.world.channels), 2))

    # ------------------------------------------------------------------------------------
    def step(self):
        """On its review days choose again for each market (leave or re-enter markets); on its
        replenishment days restock; pay the fixed cost of the markets it serves; route around
        a closure at once."""
        model, cfg = self.model, self.model.config.merchants
        if model.network_changed and model.day > 0:
            self.reroute()
        if model.day > 0 and (model.day + self.review_offset) % cfg.review_days == 0:
            self.review(model.day)
        if (model.day + self.review_offset) % cfg.replenish_review_days == 0:
            self.replenish(model.day)
        if (model.day + self.review_offset) % MARKET_COST_DAYS == 0:
            self.pay_market_costs()

    # ---- what a market pays ----
    def _reference(self, row: int):
        """Products' values, goods costs, reference unit logistics costs and reference consumer prices."""
        model, demand = self.model, self.model.config.demand
        prods = self.products
        value = model.prod_value[prods]
        return (value, value * model.prod_cost_share[prods], demand.reference_logistics_share * value,
                model.lst_ref_price[model.mm.listings(row, prods.size)])

    def _on_time_prior(self, channel: int) -> float:
        """The on-time share the market has seen on a channel (with a prior before it has seen much)."""
        met = self.model.metrics
        done = float(met.delivered[channel] + met.lost[channel])
        return (float(met.on_time[channel]) + ON_TIME_PRIOR_WEIGHT * ON_TIME_PRIOR) / (done + ON_TIME_PRIOR_WEIGHT)

    # ---- choosing channel and provider ----
    def options(self, row: int) -> list[Option]:
        """Every feasible (channel, provider, service, route variant) for one market, with its
        expected daily profit under the demand model consumers answer.

        Two passes over the channels: first every way of doing it yourself (the best route and
        replenishment variant per channel), then the integrators' services, priced against that
        best (their quotes need it). Each pass values all its candidates at once
        (:meth:`_value_options`)."""
        model, cfg = self.model, self.model.config
        demand = cfg.demand
        mm, world, quoter = model.mm, model.world, model.quoter
        market = world.markets[mm.market[row]]
        share = model.lst_share_of(row)
        prods = self.products
        weights = model.prod_weight[prods]
        value, goods, _, _ = self._reference(row)
        base = mm.base[row] * cfg.demand.scale
        allowed = model.allowed_channels()
        channels = []       # per channel: what its candidates share, and its do-it-yourself candidates
        for ch_name, (route0, rep0) in world.channel_routes(self.origin, market).items():
            if ch_name not in allowed:
                continue
            variants = [r for r in world.route_variants[world.routes[route0].family] if quoter.route_open(r)]
            reps = [-1] if rep0 is None else \
                [r for r in world.route_variants[world.routes[rep0].family] if quoter.route_open(r)]
            if not variants or not reps:
                continue      # every variant crosses a closed lane, border or warehouse
            channel = world.channels.index(ch_name)
            wh = world.routes[route0].warehouse
            days0 = model.net.route_expected_days[variants[0]]
            stock_days, units = 0.0, 1.0
            if rep0 is not None:
                daily_orders = base * time_factor(days0, demand.time_elasticity, demand.reference_days)
                lead = model.net.route_expected_days[reps[0]]
                units = max(daily_orders * cfg.merchants.order_cycle_days, 1.0)
                stock_days = cfg.merchants.order_cycle_days / 2 + cfg.merchants.service_level_z * np.sqrt(
                    (lead + cfg.merchants.replenish_review_days) / max(daily_orders, 1.0))
            ch = {"channel": channel, "prior_on_time": self._on_time_prior(channel),
                  "wh_idx": model.warehouse_nodes.index(wh) if wh else -1,     # where returns can be resold
                  "carrying": goods * cfg.merchants.carrying_cost_rate * stock_days / 365}
            # do it yourself: every route variant (crossing, gateway) and replenishment variant
            # (sea, rail, air) at its own contract rates, else list or spot prices
            transaction_cost = cfg.merchants.diy_transaction_cost
            after = model.aftersales.expected_cost(channel, -1)   # the contacts it handles itself
            kg = base * float((share * weights).sum())
            diy = []
            for route in variants:
                parcel = quoter.route_cost(self.acct, route, weights, base, transaction_cost) + after
                days = model.net.route_expected_days[route] + model.net.route_handoffs[route] * cfg.merchants.diy_handoff_delay
                for rep in reps:
                    cost = parcel if rep < 0 else parcel + quoter.replenish_cost(
                        self.acct, rep, wh, weights, units, stock_days, transaction_cost, kg)
                    diy.append(Candidate(ch, cost, days, 1.0 - model.net.route_risk[route], -1, route, rep, {}))
            channels.append((ch, route0, rep0, wh, units, stock_days, diy))
        diy_values = iter(self._value_options(row, [c for *_, diy in channels for c in diy]))
        bests, services = [], []
        for ch, route0, rep0, wh, units, stock_days, diy in channels:
            best = None
            for opt in (next(diy_values) for _ in diy):
                if opt is not None and (best is None or opt.profit > best.profit):
                    best = opt
            bests.append(best)
            diy_cost = best.cost if best is not None else np.inf
            # each integrator's composed services for this route family, where it works
            for it in model.integrators:
                if not it.in_market or not it.covers[ch["channel"]]:
                    continue
                for name, svc in it.offers(world.routes[route0].family, base).items():
                    # priced on what the route costs the integrator today (as its parcels will be)
                    basis = it.unit_basis(svc.route, weights)
                    rep_route = -1
                    if rep0 is not None:
                        value_kg = float((share * value).sum() / max((share * weights).sum(), 1e-9))
                        rep_route = it.replenish_route(self.origin, wh, value_kg)
                        if not quoter.route_open(rep_route):
                            continue
                        basis = basis + quoter.replenish_cost(it.acct, rep_route, wh, weights, units, stock_days)
                    mean_basis = float((share * basis).sum())
                    markup, arm = it.price(mean_basis, diy_cost, key=(row, model.day))
                    services.append(Candidate(ch, basis * (1.0 + markup), svc.days, 1.0 - svc.loss_risk, it.index,
                                              svc.route, rep_route,
                                              dict(service=name, markup=markup, arm=arm, basis=mean_basis)))
        # per channel: its own best, then the integrators' services on it
        service_values = self._value_options(row, services)
        out = []
        for (ch, *_), best in zip(channels, bests):
            if best is not None:
                out.append(best)
            out.extend(opt for c, opt in zip(services, service_values) if c.facts is ch and opt is not None)
        return out

    def _value_options(self, row: int, candidates: list[Candidate]) -> list[Option | None]:
        """Value candidate options for one market at once: their prices, orders and profit from
        their logistics cost per unit, over an options x products array (the same figures as
        valuing each alone); a candidate with a non-finite cost is None."""
        if not candidates:
            return []
        model, demand = self.model, self.model.config.demand
        mm, tracking = model.mm, model.tracking
        prods = self.products
        market = int(mm.market[row])
        share = model.lst_share_of(row)
        value, goods, ref_cost, ref_price = self._reference(row)
        base = mm.base[row] * demand.scale
        # the market's currency against the USD today, and the CNY goods made in China are bought in
        # (market/money/currency.py): prices are listed in local units, passing on part of the
        # currency's move since the first day; goods cost in USD moves with the CNY
        fx = float(model.rates.market_value[market])
        fx_price = fx ** -model.config.currency.price_pass_through
        goods_usd = goods * model.rates.goods_factor(model.prod_in_cny[prods])
        logistics = np.array([c.logistics for c in candidates], dtype=np.float64).reshape(len(candidates), prods.size)
        finite = np.flatnonzero(np.isfinite(logistics).all(axis=1))
        out: list[Option | None] = [None] * len(candidates)
        if finite.size == 0:
            return out
        chosen = [candidates[i] for i in finite]
        logistics = logistics[finite]
        days, on_time, sd = [], [], []
        for c in chosen:
            d, ot = c.days, c.facts["prior_on_time"]
            if mm.channel[row] == c.facts["channel"] and mm.integrator[row] == c.integrator and mm.lead_n[row] >= 30:
                d = 0.5 * d + 0.5 * mm.lead_ema[row]   # what it has seen, not just the promise
                ot = 0.5 * ot + 0.5 * mm.ontime_ema[row]
            days.append(d)
            on_time.append(ot)
            # the spread of delivery days consumers have seen for this channel and provider
            sd.append(tracking.spread_faced(c.facts["channel"], c.integrator + 1,
                                            SPREAD_PRIOR * model.net.route_expected_days[c.route]))
        on_time = np.array(on_time, dtype=np.float64)
        nonprice = (time_factor(np.array(days, dtype=np.float64), demand.time_elasticity, demand.reference_days)
                    * reliability_factor(on_time, demand.late_churn) * spread_factor(np.array(sd), demand.spread_penalty))
        unit_cost = logistics + np.array([c.facts["carrying"] for c in chosen])
        price = retail_price(value, unit_cost, ref_cost, demand.pass_through) * fx_price
        # duty and VAT: one assessment per customs regime, over all the candidates' units at once
        tax = model.orders.taxes_rows(prods, [c.route for c in chosen], [c.rep_route for c in chosen], price, fx)
        paid = consumer_price(price, tax, demand.tax_pass_through)
        pf = price_factor(paid, ref_price, demand.price_elasticity)
        orders = (base * nonprice)[:, None] * share * pf
        # in USD at today's rate, less the payment fee of the channel's payment route and
        # the expected cost of returns (refunds less what the returned units recover)
        paid_usd, tax_usd = paid * fx, tax * fx
        fee = model.payments.fee[[c.facts["channel"] for c in chosen]]
        returns = model.returns.expected_cost(prods, paid_usd, tax_usd, market,
                                              np.array([c.facts["wh_idx"] for c in chosen]), on_time)
        margin = unit_margin(price * fx, tax * fx, goods_usd, unit_cost, demand.tax_pass_through) \
            - fee[:, None] * paid * fx - returns
        cost = (share * logistics).sum(axis=1)
        duty = (share * tax).sum(axis=1)
        n_orders = orders.sum(axis=1)
        profit = (orders * margin).sum(axis=1)
        for i, (k, c) in enumerate(zip(finite, chosen)):
            out[k] = Option(c.facts["channel"], c.integrator, c.route, c.rep_route, float(cost[i]), float(duty[i]),
                            float(days[i]), float(n_orders[i]), float(profit[i]), c.reliability, sd[i],
                            nonprice=float(nonprice[i]), unit_cost=unit_cost[i], price=price[i], tax=tax[i], pf=pf[i],
                            **c.quote)
        return out

    def typical_profit(self) -> float:
        """Its usual daily gross margin across its markets: the scale of its choices."""
        model = self.model
        share = model.prod_share[self.products]
        margin = float((share * model.prod_value[self.products] * (1.0 - model.prod_cost_share[self.products])).sum())
        return max(float(model.mm.base[self.rows].sum()) * model.config.demand.scale * margin / max(len(self.rows), 1),
                   1.0)

    def choice_probabilities(self, row: int, opts: list[Option], initial: bool = False,
                             forced: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Nested logit probabilities of the options, and which option is the current one.

        Nests: per channel, doing it yourself, and the 4PLs' services (close substitutes, with
        ``merchants.nest_dissimilarity``). Options other than the current one pay the switching
        cost spread over the review period (not when ``initial`` or ``forced``)."""
        model, cfg = self.model, self.model.config.merchants
        scale = self.typical_profit()
        beta = 1.0 / max(cfg.choice_noise * scale, 1e-9)     # utility per USD a day
        profit = np.array([opt.profit for opt in opts])
        rel = np.array([opt.reliability for opt in opts])
        via = np.array([opt.integrator >= 0 for opt in opts], dtype=np.int64)
        channel = np.array([opt.channel for opt in opts], dtype=np.int64)
        taste = self.taste[channel, via]
        U = beta * (profit + scale * (self.reliability_weight * rel + cfg.taste_spread * taste))
        mm = model.mm
        is_current = (channel == mm.channel[row]) & (np.array([opt.integrator for opt in opts]) == mm.integrator[row])
        if not initial and not forced and is_current.any():
            U = U - beta * cfg.switching_cost / cfg.review_days * ~is_current
        lambdas = np.tile([1.0, cfg.nest_dissimilarity], len(model.world.channels))
        return nested_logit_probabilities(U[None, :], channel * 2 + via, lambdas), is_current

    def choose(self, row: int, initial: bool = False, forced: bool = False) -> Option | None:
        """Choose among the options by a nested logit; moving costs the switching cost.

        ``forced``: the current option is no longer allowed (or the merchant enters the market
        anew), so it must move.
        """
        model, cfg = self.model, self.model.config.merchants
        opts = self.options(row)
        self.best_profit = max((opt.profit for opt in opts), default=float("-inf"))
        if not opts:
            return None
        probs, is_current = self.choice_probabilities(row, opts, initial, forced)
        pick = int(sample_choice(probs, model.rng)[0])
        best = opts[pick]
        self._report_quotes(opts, pick)
        if not initial and is_current[pick] and not forced:
            cur = opts[pick]
            mm = model.mm
            if (cur.route, cur.rep_route, cur.markup) != (mm.route[row], mm.rep_route[row], mm.markup[row]):
                self.adopt(row, cur, keep_learning=True)   # another service or route of the same provider
            else:
                self._set_prices(row, cur)                 # its costs moved: so do its prices
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
        """Record its choice for a market and price its products on it (and warm-start its
        stock on day 0).

        ``keep_learning``: the same channel and provider (another service level or route), so
        what it has learned about its delivery times is kept.
        """
        model = self.model
        mm = model.mm
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
        self._set_prices(row, opt)
        if not keep_learning:
            mm.lead_ema[row] = 0.0
            mm.ontime_ema[row] = 0.0
            mm.lead_n[row] = 0
            mm.since[row] = model.day
        model.plan.dirty = True
        if initial and new_wh >= 0:
            self._warm_start_stock(row, opt)

    def _set_prices(self, row: int, opt: Option):
        """List its products at the option's retail prices; the demand they meet follows."""
        model, mm = self.model, self.model.mm
        sl = mm.listings(row, self.products.size)
        model.lst_unit_cost[sl] = opt.unit_cost
        model.lst_price[sl] = opt.price
        model.lst_tax[sl] = opt.tax
        model.lst_pf[sl] = opt.pf
        mm.nonprice[row] = opt.nonprice
        self._update_demand_factor(row)

    def _update_demand_factor(self, row: int):
        model, mm = self.model, self.model.mm
        sl = mm.listings(row, self.products.size)
        mm.demand_factor[row] = mm.nonprice[row] * float((model.prod_share[self.products] * model.lst_pf[sl]).sum()) \
            * mm.served[row]

    def refresh_taxes(self, row: int):
        """The duty rules changed today: the consumer's price of each listing (the duty and VAT
        on its sale price along the merchant's routes) and the demand it meets, at once."""
        model, mm = self.model, self.model.mm
        if mm.route[row] < 0:
            return
        demand = model.config.demand
        sl = mm.listings(row, self.products.size)
        price = model.lst_price[sl]
        fx = float(model.rates.market_value[mm.market[row]])        # price and tax in local units
        tax = model.orders.taxes(self.products, int(mm.route[row]), int(mm.rep_route[row]), price, fx)
        model.lst_tax[sl] = tax
        model.lst_pf[sl] = price_factor(consumer_price(price, tax, demand.tax_pass_through), model.lst_ref_price[sl],
                                        demand.price_elasticity)
        self._update_demand_factor(row)

    def expected_orders(self, row: int) -> np.ndarray:
        """Orders a day it expects of each product in a market (before the sales calendar)."""
        model, mm = self.model, self.model.mm
        sl = mm.listings(row, self.products.size)
        return mm.base[row] * model.config.demand.scale * mm.nonprice[row] * mm.served[row] \
            * model.prod_share[self.products] * model.lst_pf[sl]

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
        per_parcel += it.overhead
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
        daily_orders = self.expected_orders(row)
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
        """Integrators with adaptive pricing learn whether the merchant took their price (one
        markup per merchant and review, on all their services): where they quoted on the channel
        the merchant chose, so their price competed with the other integrators' and with doing
        it yourself; a channel it did not want carries no news about prices."""
        chosen = opts[pick]
        for it in self.model.integrators:
            mine = [o for o in opts if o.integrator == it.index and o.arm >= 0 and o.channel == chosen.channel]
            if mine:
                quote = chosen if chosen.integrator == it.index else min(mine, key=lambda o: o.basis)
                it.learn([quote.arm], [quote.basis], [quote.markup], [chosen.integrator == it.index], [quote.orders])

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
        """Choose again for each market it serves; leave a market whose best option has not
        paid its fixed cost for ``merchants.exit_after_days``; re-enter one it left once its
        best option has paid for ``merchants.entry_after_days``."""
        model, cfg = self.model, self.model.config.merchants
        mm = model.mm
        fixed = cfg.market_cost / MARKET_COST_DAYS
        for row in self.rows:
            row = int(row)
            if mm.served[row]:
                self.choose(row)
                if self.best_profit - fixed < 0:
                    if mm.below_since[row] < 0:
                        mm.below_since[row] = day
                    if day - mm.below_since[row] >= cfg.exit_after_days:
                        self.leave(row, day)
                else:
                    mm.below_since[row] = -1
            else:
                opts = self.options(row)
                self.best_profit = max((opt.profit for opt in opts), default=float("-inf"))
                if self.best_profit - fixed > 0:
                    if mm.above_since[row] < 0:
                        mm.above_since[row] = day
                    if day - mm.above_since[row] >= cfg.entry_after_days:
                        self.enter(row, day)
                else:
                    mm.above_since[row] = -1

    def leave(self, row: int, day: int):
        """Stop selling in a market: its listings get no more orders, its end-to-end contract
        ends; stock already in a warehouse there waits for its return."""
        model, mm, book = self.model, self.model.mm, self.model.contracts
        mm.served[row] = False
        mm.below_since[row] = mm.above_since[row] = -1
        old = int(mm.e2e_contract[row])
        if old >= 0 and book.status[old] == ACTIVE:
            book.cols["status"][old] = EXECUTED
            book.cols["end"][old] = day
        self._update_demand_factor(row)
        mm.events.append((day, self.index, int(mm.market[row]), "exit"))
        model.plan.dirty = True

    def enter(self, row: int, day: int):
        """Sell in a market again: choose its channel and provider afresh (paying onboarding)."""
        model, mm = self.model, self.model.mm
        mm.served[row] = True
        mm.below_since[row] = mm.above_since[row] = -1
        if self.choose(row, forced=True) is None:
            mm.served[row] = False
            return
        self._update_demand_factor(row)
        mm.events.append((day, self.index, int(mm.market[row]), "entry"))

    def pay_market_costs(self):
        """The fixed cost of each market it serves (``merchants.market_cost`` every 30 days)."""
        model = self.model
        n = int(model.mm.served[self.rows].sum())
        cost = model.config.merchants.market_cost * n
        if cost > 0:
            model.ledger.transfer(self.acct, model.acct_overheads, int(to_cents(cost)), "market_cost")

    def reroute(self):
        """A shock changed the network today: where it buys the logistics itself, move its
        routes and its parcels (waiting, or in a stage, for what is left of their way) off
        closed lanes, borders and warehouses to the cheapest open variant that shares the
        stages done (its integrators do the same for theirs)."""
        model, mm, parcels = self.model, self.model.mm, self.model.parcels
        quoter, world = model.quoter, model.world
        quoter._refresh()
        for row in self.rows:
            if mm.integrator[row] >= 0 or mm.route[row] < 0:
                continue
            for field_name in ("route", "rep_route"):
                r = int(getattr(mm, field_name)[row])
                if r < 0 or quoter.route_open(r):
                    continue
                alt = quoter.cheapest_open_variant(world.routes[r].family)
                if alt is not None and alt != r:
                    getattr(mm, field_name)[row] = alt
                    model.plan.dirty = True
        if parcels.n == 0:
            return
        status = parcels["status"]
        mine = np.flatnonzero(((status == WAITING) | (status == IN_STAGE)) & (parcels["integrator_idx"] < 0)
                              & (parcels["merchant_idx"] == self.index))
        for i in mine:
            r, stage = int(parcels["route"][i]), int(parcels["stage"][i])
            if quoter.route_open(r):
                continue
            done = stage + int(status[i] == IN_STAGE)          # stages done or under way
            alt = quoter.cheapest_open_variant(world.routes[r].family, prefix=world.routes[r].resources[:done])
            if alt is not None and alt != r:
                parcels["route"][i] = alt
                parcels["n_stages"][i] = world.routes[alt].n_stages

    # ---- stock ----
    def replenish(self, day: int, rows=None):
        """(s, S) policy per product at each warehouse this merchant's channels stock."""
        model, cfg = self.model, self.model.config.merchants
        mm = model.mm
        for row in self.rows if rows is None else rows:
            wh = mm.warehouse[row]
            if wh < 0 or mm.rep_route[row] < 0 or not mm.served[row]:
                continue
            prods = self.products
            # demand level (seasonally adjusted) from what it has sold, else from its plan
            planned = self.expected_orders(int(row))
            inv = model.inventory
            # trust what it has sold in proportion to how long it has watched (60 days to full)
            trust = np.minimum(inv.demand_days[prods, wh] / 60.0, 1.0)
            level = trust * inv.demand_ema[prods, wh] + (1.0 - trust) * planned
            sd = np.maximum(inv.demand_sd(prods, wh), np.sqrt(level))
            # merchants know the sales calendar: cover the peaks ahead, not just today's rate
            lead = model.net.route_expected_days[mm.rep_route[row]] + cfg.replenish_review_days
            cal = model.demand_calendar.ahead(int(mm.market[row]), day)
            k = int(np.ceil(lead))
            cover = cal[:k].sum()
            cycle = cal[k:k + int(np.ceil(cfg.order_cycle_days))].sum()
            s = level * cover + cfg.service_level_z * sd * np.sqrt(lead)
            S = s + level * cycle
            # stock on its way counts where it is tracked, or not yet overdue (market/goods/tracking.py)
            position = inv.stock[prods, wh] + inv.on_order_counted(prods, int(wh), day)
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
