"""Consumers' orders: each day every listing draws its orders, and each order becomes a parcel.

A listing's orders are Poisson with the mean of the demand model (``market/world/demand.py``):
its merchant's base rate in the market, the product's share, the sales calendar and shocks,
the delivery time, reliability and delivery-time spread consumers expect of the merchant's choice, and
the landed price they pay (the listed retail price plus the duty and VAT passed on to them,
against the listing's reference price). On a day the duty rules change, every listing's duty
and VAT, and so the demand it meets, change at once.

An order ships from stock when its merchant's channel in that market keeps stock in a
warehouse and there is some; on a direct channel it ships from the origin by the channel the
merchant chose; when a warehouse is out of stock it ships direct by express (or waits for
stock, by ``merchants.stockout_policy``). The sale (at the consumer's price), the goods, the
4PL's service fee (and its own overhead) and any cargo insurance premium are paid through the
ledger as the parcel is created; the parcel's customs value is its retail price.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from market.arrays import broadcast
from market.goods.parcels import WAITING, WAITING_STOCK
from market.mechanisms.insurance import premium as insurance_premium
from market.money.ledger import to_cents
from market.world import IMPORT

if TYPE_CHECKING:
    from market.model import Marketplace


class Orders:
    """Places the day's orders. It takes the model because a sale touches every part of it:
    the merchants' choices and products, stock, the integrators' prices, the ledger, the
    parcel table and the day's figures."""

    def __init__(self, model: Marketplace):
        self.model = model
        world = model.world
        # (market, warehouse) -> the route an order takes from that warehouse's stock
        self.route_from_stock = np.full((len(world.markets), len(model.warehouse_nodes)), -1, dtype=np.int64)
        for (market, _channel), r in world.order_route.items():
            self.route_from_stock[world.markets.index(market), model.route_warehouse[r]] = r
        # a route that sells from stock inside the consumer's territory (no import on the way):
        # the territory whose VAT the sale pays, else -1
        self.sale_vat_territory = np.full(len(world.routes), -1, dtype=np.int64)
        for rt in world.routes:
            if rt.warehouse and not rt.bulk and not any(world.resources[r].kind == IMPORT for r in rt.resources):
                territory = world.graph.nodes[world.spec.markets[rt.market].node]["territory"]
                if world.graph.nodes[rt.warehouse]["territory"] == territory:
                    self.sale_vat_territory[rt.index] = world.territories.index(territory)
        # a parcel route with an import on the way: its duty is assessed on the sale price
        self.route_imports = np.array([any(world.resources[r].kind == IMPORT for r in rt.resources)
                                       for rt in world.routes], dtype=bool)
        self._rules_in_force: tuple | None = None
        self._credit_memo: dict[tuple, np.ndarray] = {}     # import VAT credited per unit, for the day
        n_markets = len(world.markets)
        self.created_by_market = np.zeros(n_markets, dtype=np.int64)     # parcels ordered, per market
        self.sales_by_market = np.zeros(n_markets)                       # consumers' payments, USD
        self.today_by_market = np.zeros(n_markets, dtype=np.int64)
        self.sales_today_by_market = np.zeros(n_markets)

    def sale_vat(self, products: np.ndarray, route: int, rep_route: int, price: np.ndarray, date) -> np.ndarray:
        """VAT a sale from stock inside the consumer's territory owes, per unit: the territory's
        VAT on the sale price (output VAT), less the import VAT paid on the unit when its bulk
        consignment entered at its goods cost (input VAT, credited), never below 0. Zero for
        other routes (a parcel that crosses a border pays duty and VAT at that import)."""
        t = int(self.sale_vat_territory[route]) if route >= 0 else -1
        if t < 0 or rep_route < 0:
            return np.zeros(products.size)
        model = self.model
        world = model.world
        territory = world.territories[t]
        output = world.duty_rule(territory, date).vat * np.asarray(price, dtype=np.float64)
        key = (date, t, products.tobytes())
        credit = self._credit_memo.get(key)
        if credit is None:
            if self._credit_memo and next(iter(self._credit_memo))[0] != date:
                self._credit_memo.clear()
            cost = model.prod_value[products] * model.prod_cost_share[products]
            _, credit = model.duties.assess(territory, date, "general", cost, model.prod_weight[products],
                                            model.prod_category[products], model.prod_origin_territory[products])
            self._credit_memo[key] = credit
        return np.maximum(output - credit, 0.0)

    def taxes(self, products: np.ndarray, route: int, rep_route: int, price: np.ndarray, fx: float) -> np.ndarray:
        """Duty and VAT per unit a sale along these routes bears under today's rules: at the
        parcel's import on its sale price, at the bulk entry on its goods cost, and VAT on a
        sale from stock inside the market (net of the import VAT credited).

        ``price`` is listed in the market's local units and ``fx`` is today's USD value of one
        (``Rates.market_value``): duties are assessed in USD (the customs value, thresholds and
        the goods cost are USD), and the result is in local units, like the price it is added to."""
        model = self.model
        usd = np.asarray(price, dtype=np.float64) * fx
        sale = usd if route >= 0 and self.route_imports[route] else None     # else the price is not assessed
        return (model.expected_duties.per_unit(products, route, rep_route, model.day, model.date, sale)
                + self.sale_vat(products, route, rep_route, usd, model.date)) / fx

    def taxes_rows(self, products: np.ndarray, routes: list[int], rep_routes: list[int], price: np.ndarray,
                   fx: float) -> np.ndarray:
        """:meth:`taxes` for many candidate routes at once (rows x products, figure for figure):
        row ``i`` along ``routes[i]`` and ``rep_routes[i]`` at the prices ``price[i]``."""
        model = self.model
        usd = np.asarray(price, dtype=np.float64) * fx
        duties = model.expected_duties.per_unit_rows(products, routes, rep_routes, model.date, usd)
        sale_vat = np.zeros(usd.shape)
        for i, (route, rep_route) in enumerate(zip(routes, rep_routes)):
            if route >= 0 and rep_route >= 0 and self.sale_vat_territory[route] >= 0:
                sale_vat[i] = self.sale_vat(products, route, rep_route, usd[i], model.date)
        return (duties + sale_vat) / fx

    def _refresh_taxes_if_rules_changed(self):
        """Re-price every listing's duty and VAT when the rules in force changed (a dated rule
        starts, or a duty shock begins or ends)."""
        model = self.model
        world = model.world
        rules = tuple(id(world.duty_rule(t, model.date)) for t in world.territories)
        if rules == self._rules_in_force:
            return
        first = self._rules_in_force is None
        self._rules_in_force = rules
        if first:
            return          # day 0: the merchants' first choices priced them under these rules
        for mer in model.merchants:
            for row in mer.rows:
                mer.refresh_taxes(int(row))
        model.plan.dirty = True

    def place(self, day: int):
        """Consumers order; each order ships from stock if its market has some, else as chosen."""
        model = self.model
        cfg, mm = model.config, model.mm
        listing_row, listing_product = model.lst_mm, model.lst_product
        self.today_by_market[:] = 0
        self.sales_today_by_market[:] = 0.0
        if listing_row.size == 0:
            return
        self._refresh_taxes_if_rules_changed()
        season = model.demand_calendar.on(day, mm.market[listing_row])
        rate = mm.base[listing_row] * cfg.demand.scale * mm.nonprice[listing_row] * model.lst_pf \
            * model.prod_share[listing_product] * season * model.shockboard.demand[mm.market[listing_row]]
        # a market the merchant left, or with no channel allowed, is not served
        rate = np.where((mm.route[listing_row] >= 0) & mm.served[listing_row], rate, 0.0)
        orders = model.rng.poisson(rate).astype(np.int64)

        wh_now = mm.warehouse[listing_row]
        wh = np.where(wh_now >= 0, wh_now, mm.prev_warehouse[listing_row])
        # the seasonally adjusted order level per (product, warehouse), for replenishment
        observed = np.zeros_like(model.inventory.demand_ema)
        watched = np.zeros(observed.shape, dtype=bool)
        stocked = wh_now >= 0
        np.add.at(observed, (listing_product[stocked], wh_now[stocked]), orders[stocked] / season[stocked])
        watched[listing_product[stocked], wh_now[stocked]] = True
        model.inventory.observe_demand(observed, watched)

        from_stock = np.zeros_like(orders)
        unit_cost = np.zeros(orders.size)
        unit_duty = np.zeros(orders.size)
        has = (wh >= 0) & (orders > 0)
        if has.any():
            issued, cost, duty = model.inventory.issue(listing_product[has], wh[has], orders[has])
            from_stock[has], unit_cost[has], unit_duty[has] = issued, cost, duty
        rest = orders - from_stock
        stockout = (wh_now >= 0) & (rest > 0)
        lacking = int(rest[stockout].sum())
        model.metrics.stockouts_today += lacking
        model.metrics.stockouts += lacking

        groups = []
        # (a) from stock: the warehouse's order route
        sel = from_stock > 0
        if sel.any():
            # from the channel's own route (an integrator may have chosen a variant), or, when
            # selling down stock of a channel it left, the warehouse's default route
            sell_down = wh_now[sel] != wh[sel]
            stock_route = np.where(sell_down, self.route_from_stock[mm.market[listing_row[sel]], wh[sel]],
                                   mm.route[listing_row[sel]])
            vat = self._stock_sale_vat(np.flatnonzero(sel), stock_route)
            # the taxes the consumer's price passes on: the listing's (its channel's) or, selling
            # down stock of a channel it left, those this sale bears (the unit's bulk-entry duty
            # and import VAT, and the sale's VAT net of it), not the new channel's
            # (those are USD; the listing's tax, like its price, is in local units)
            fx = model.rates.market_value[mm.market[listing_row[sel]]]
            tax = np.where(sell_down, (unit_duty[sel] + vat) / fx, model.lst_tax[np.flatnonzero(sel)])
            groups.append(dict(rows=np.flatnonzero(sel), count=from_stock[sel], route=stock_route,
                               status=WAITING, fallback=0, upstream=unit_cost[sel], updu=unit_duty[sel],
                               goods=False, vat=vat, tax=tax))
        # (b) direct channels as chosen
        sel = (rest > 0) & (wh_now < 0)
        if sel.any():
            groups.append(dict(rows=np.flatnonzero(sel), count=rest[sel], route=mm.route[listing_row[sel]],
                               status=WAITING, fallback=0, upstream=0.0, updu=0.0, goods=True))
        # (c) stock-outs on a warehouse channel
        sel = stockout
        if sel.any():
            rows = np.flatnonzero(sel)
            if cfg.merchants.stockout_policy == "direct":
                route = self.fallback_route(listing_row[rows])
                groups.append(dict(rows=rows, count=rest[sel], route=route, status=WAITING, fallback=1,
                                   upstream=0.0, updu=0.0, goods=True))
            else:
                groups.append(dict(rows=rows, count=rest[sel], route=mm.route[listing_row[rows]],
                                   status=WAITING_STOCK, fallback=0, upstream=0.0, updu=0.0, goods=False))
        for group in groups:
            self._create_parcels(day, group)

    def _stock_sale_vat(self, listings: np.ndarray, route: np.ndarray) -> np.ndarray:
        """Net VAT per unit of listings sold from stock along these routes today (vectorised
        ``sale_vat``: output VAT on the sale price less the import VAT on the goods cost)."""
        model = self.model
        world = model.world
        out = np.zeros(listings.size)
        terr = self.sale_vat_territory[route]
        domestic = np.flatnonzero(terr >= 0)
        if domestic.size == 0:
            return out
        lst = listings[domestic]
        prod = model.lst_product[lst]
        price = model.lst_price[lst] * model.rates.market_value[model.mm.market[model.lst_mm[lst]]]   # USD today
        cost = model.prod_value[prod] * model.prod_cost_share[prod]
        t = terr[domestic]
        for k in np.unique(t):
            sel = t == k
            territory = world.territories[int(k)]
            rule = world.duty_rule(territory, model.date)
            _, vat_in = model.duties.assess(territory, model.date, "general", cost[sel], model.prod_weight[prod[sel]],
                                            model.prod_category[prod[sel]], model.prod_origin_territory[prod[sel]])
            out[domestic[sel]] = np.maximum(rule.vat * price[sel] - vat_in, 0.0)
        return out

    def fallback_route(self, rows: np.ndarray) -> np.ndarray:
        """When its warehouse is empty a merchant ships direct: as it did before it moved to the
        warehouse (while the first stock is on its way), else by express from its origin."""
        model = self.model
        out = np.empty(rows.size, dtype=np.int64)
        for i, row in enumerate(rows):
            previous = int(model.mm.fallback_route[row])
            if previous >= 0 and model.quoter.route_open(previous):
                out[i] = previous
                continue
            merchant = model.merchants[model.mm.merchant[row]]
            market = model.world.markets[model.mm.market[row]]
            variants = model.world.route_variants[(merchant.origin, market, "express")]
            out[i] = next((r for r in variants if model.quoter.route_open(r)), variants[0])
        return out

    def _create_parcels(self, day: int, group: dict):
        """One parcel per order of a group of listings, with the money that moves at the sale."""
        model = self.model
        mm, parcels = model.mm, model.parcels
        listings, count = group["rows"], group["count"]
        total = int(count.sum())
        if total == 0:
            return

        def per_parcel(a):
            return np.repeat(broadcast(a, listings.shape), count)
        row = per_parcel(model.lst_mm[listings])
        prod = per_parcel(model.lst_product[listings])
        route = per_parcel(group["route"])
        mer_idx = mm.merchant[row]
        integ_idx = mm.integrator[row]
        mer_acct = model.merchant_accts[mer_idx]
        mer_uid = np.array([mer.unique_id for mer in model.merchants], dtype=np.int64)[mer_idx]
        if model.integrators:
            it_acct = np.array([it.acct for it in model.integrators] + [-1], dtype=np.int64)[integ_idx]
            it_uid = np.array([it.unique_id for it in model.integrators] + [-1], dtype=np.int64)[integ_idx]
        else:
            it_acct = np.full(total, -1, dtype=np.int64)
            it_uid = np.full(total, -1, dtype=np.int64)
        buyer = np.where(integ_idx >= 0, it_acct, mer_acct)
        # prices are in the market's currency (local units, market/money/currency.py): the sale
        # is booked in USD at today's rate, and so is the customs value
        fx = model.rates.market_value[mm.market[row]]
        local = per_parcel(model.lst_price[listings])
        value = local * fx                                       # the sale price in USD: the customs value
        tax = per_parcel(group["tax"]) if "tax" in group else per_parcel(model.lst_tax[listings])
        paid = (local + model.config.demand.tax_pass_through * tax) * fx
        weight = model.prod_weight[prod]
        channel = model.net.route_channel[route]
        # the promise of the channel the parcel actually takes (a stock-out shipped by express
        # is promised express times)
        promised = model.promised_days[channel]
        created = parcels.append(
            total, created_day=day, merchant=mer_uid, merchant_idx=mer_idx, mm_row=row,
            product=prod, category=model.prod_category[prod],
            origin_territory=model.prod_origin_territory[prod], market=mm.market[row],
            channel=channel, route=route, n_stages=model.net.route_n[route], stage=0,
            status=group["status"], ready_day=day, end_day=day, buyer_acct=buyer,
            merchant_acct=mer_acct, integrator=it_uid, integrator_idx=integ_idx,
            value=value, sale_cents=to_cents(paid), weight=weight, promised_days=promised, fallback=group["fallback"],
            stockout_wait=int(group["status"] == WAITING_STOCK),
            upstream_cents=to_cents(per_parcel(group["upstream"])),
            upstream_duty_cents=to_cents(per_parcel(group["updu"])))
        ledger = model.ledger
        sale = parcels["sale_cents"][created]
        ledger.post(model.acct_consumers, mer_acct, sale, "sale")
        market = mm.market[row]
        model.payments.on_sale(day, mer_idx, market, channel, sale)   # held until it settles
        n_markets = self.created_by_market.size
        k = np.bincount(market, minlength=n_markets)
        usd = np.bincount(market, weights=sale / 100.0, minlength=n_markets)
        self.today_by_market += k
        self.created_by_market += k
        self.sales_today_by_market += usd
        self.sales_by_market += usd
        if group["goods"]:
            ledger.post(mer_acct, model.acct_suppliers,      # goods made in China: in CNY at today's rate
                        to_cents(model.prod_value[prod] * model.prod_cost_share[prod] * model.rates.goods_factor(model.prod_in_cny[prod])), "goods")
        if "vat" in group:          # a sale from stock inside the market owes its VAT
            vat = to_cents(per_parcel(group["vat"]))
            owing = vat > 0
            if owing.any():
                authority = model.acct_authority[self.sale_vat_territory[route[owing]]]
                ledger.post(mer_acct[owing], authority, vat[owing], "duty")
                parcels["duty_cents"][created[owing]] += vat[owing]
        via = integ_idx >= 0
        if via.any():
            price = np.zeros(total)
            overhead = np.zeros(total)
            n_routes = len(model.world.routes)
            key = integ_idx[via] * n_routes + route[via]
            for k in np.unique(key):
                i, r = divmod(int(k), n_routes)
                sel = np.flatnonzero(via)[key == k]
                it = model.integrators[i]
                price[sel] = it.unit_basis(r, weight[sel]) * (1.0 + mm.markup[row[sel]])
                overhead[sel] = it.overhead
            cents = to_cents(price[via])
            ledger.post(mer_acct[via], it_acct[via], cents, "service_fee")
            parcels["price_cents"][created[via]] = cents
            if overhead.any():      # the integrator's own cost of the parcel (platform, service desk)
                ledger.post(it_acct[via], model.acct_inputs, to_cents(overhead[via]), "operating_cost")
        # cargo insurance: a 4PL insures what it carries; a merchant insures if it chose to
        insured = np.where(integ_idx >= 0, model.config.integrators.insure, mm.insured[row])
        if insured.any():
            ins = np.flatnonzero(insured)
            insurance = model.config.insurance
            loading = np.where(integ_idx[ins] >= 0, insurance.integrator_loading, insurance.loading)
            prem = insurance_premium(value[ins], model.net.route_risk[route[ins]], loading=loading,
                                     carrier_liability_limit=model.config.carriers.liability_per_kg * weight[ins],
                                     deductible=insurance.deductible, expense=insurance.expense)
            cents = to_cents(prem)
            ledger.post(buyer[ins], model.acct_insurer, cents, "premium")
            parcels["insured"][created[ins]] = 1
            parcels["premium_cents"][created[ins]] = cents
            model.metrics.insured_parcels += ins.size
        model.metrics.on_created(channel, integ_idx, group["fallback"])

    # ---- figures ----
    def daily_figures(self) -> dict:
        """Today's orders and consumer spending per market, and the merchants' market
        presence (one row of timeseries.parquet)."""
        model = self.model
        mm = model.mm
        row = {}
        for i, market in enumerate(model.world.markets):
            row[f"orders_{market}"] = int(self.today_by_market[i])
            row[f"sales_usd_{market}"] = float(self.sales_today_by_market[i])
        today = [e for e in mm.events if e[0] == model.day] if model.steps else []
        row["markets_served"] = int(mm.served.sum())
        row["market_exits"] = sum(e[3] == "exit" for e in today)
        row["market_entries"] = sum(e[3] == "entry" for e in today)
        with np.errstate(invalid="ignore", divide="ignore"):
            sel = mm.served[model.lst_mm] & (mm.route[model.lst_mm] >= 0)
            paid = model.lst_price + model.config.demand.tax_pass_through * model.lst_tax
            row["price_index"] = float((paid[sel] / model.lst_ref_price[sel]).mean()) if sel.any() else float("nan")
        return row

    def summary_figures(self) -> dict:
        """The run's orders and consumer spending per market, and merchants' exits from and
        entries into markets (in total and per market; each one is in the daily series)."""
        model = self.model
        mm = model.mm
        markets = model.world.markets

        def count(kind):
            return {market: sum(1 for e in mm.events if e[3] == kind and e[2] == k) for k, market in enumerate(markets)}
        return {
            "by_market": {market: {"parcels_created": int(self.created_by_market[i]),
                                   "sales_usd": float(self.sales_by_market[i])}
                          for i, market in enumerate(markets)},
            "merchant_markets": {"rows": int(mm.n), "served_at_end": int(mm.served.sum()),
                                 "exits": sum(e[3] == "exit" for e in mm.events),
                                 "entries": sum(e[3] == "entry" for e in mm.events),
                                 "exits_by_market": count("exit"), "entries_by_market": count("entry")},
        }
