"""Consumers' orders: each day every listing draws its orders, and each order becomes a parcel.

An order ships from stock when its merchant's channel in that market keeps stock in a
warehouse and there is some; on a direct channel it ships from the origin by the channel the
merchant chose; when a warehouse is out of stock it ships direct by express (or waits for
stock, by ``merchants.stockout_policy``). The sale, the goods, the 4PL's service fee and any
cargo insurance premium are paid through the ledger as the parcel is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from market.goods.parcels import WAITING, WAITING_STOCK
from market.mechanisms.insurance import premium as insurance_premium
from market.money.ledger import to_cents

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

    def place(self, day: int):
        """Consumers order; each order ships from stock if its market has some, else as chosen."""
        model = self.model
        cfg, mm = model.config, model.mm
        listing_row, listing_product = model.lst_mm, model.lst_product
        if listing_row.size == 0:
            return
        season = model.demand_calendar.on(day, mm.market[listing_row])
        rate = mm.base[listing_row] * cfg.demand.scale * mm.time_factor[listing_row] \
            * model.prod_share[listing_product] * season * model.shockboard.demand[mm.market[listing_row]]
        rate = np.where(mm.route[listing_row] >= 0, rate, 0.0)   # a market with no channel allowed is not served
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
            stock_route = np.where(wh_now[sel] == wh[sel], mm.route[listing_row[sel]],
                                   self.route_from_stock[mm.market[listing_row[sel]], wh[sel]])
            groups.append(dict(rows=np.flatnonzero(sel), count=from_stock[sel], route=stock_route,
                               status=WAITING, fallback=0, upstream=unit_cost[sel], updu=unit_duty[sel],
                               goods=False))
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
            out[i] = model.world.direct_route[(merchant.origin, market, "express")]
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
            return np.repeat(np.broadcast_to(a, listings.shape), count)
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
        value = model.prod_value[prod]
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
            value=value, weight=weight, promised_days=promised, fallback=group["fallback"],
            stockout_wait=int(group["status"] == WAITING_STOCK),
            upstream_cents=to_cents(per_parcel(group["upstream"])),
            upstream_duty_cents=to_cents(per_parcel(group["updu"])))
        ledger = model.ledger
        ledger.post(model.acct_consumers, mer_acct, to_cents(value), "sale")
        if group["goods"]:
            ledger.post(mer_acct, model.acct_suppliers, to_cents(value * model.prod_cost_share[prod]), "goods")
        via = integ_idx >= 0
        if via.any():
            price = np.zeros(total)
            n_routes = len(model.world.routes)
            key = integ_idx[via] * n_routes + route[via]
            for k in np.unique(key):
                i, r = divmod(int(k), n_routes)
                sel = np.flatnonzero(via)[key == k]
                price[sel] = model.integrators[i].route_cost(r, weight[sel]) * (1.0 + mm.markup[row[sel]])
            cents = to_cents(price[via])
            ledger.post(mer_acct[via], it_acct[via], cents, "service_fee")
            parcels["price_cents"][created[via]] = cents
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
