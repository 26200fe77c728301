"""Warehouse stock and bulk replenishment consignments.

Stock is held per (product, warehouse) with the logistics cost and import duty it carries
(pools, allocated to units at average cost when they ship). Replenishment consignments are
few (a merchant's periodic bulk shipment), so they are small Python objects moved stage by
stage over the bulk lanes and customs points, with the same contract-then-spot rule as
parcels, and money through the same ledger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from market.world.customs import triangular
from market.money.claims import INSURANCE, LOSS
from market.money.ledger import to_cents
from market.mechanisms.insurance import premium as insurance_premium
from market.goods.parcels import WAITING, WAITING_STOCK
from market.world import EXPORT, IMPORT, REGIMES, TRANSPORT

if TYPE_CHECKING:
    from market.model import Marketplace

IN_TRANSIT, ARRIVED, LOST_C = 0, 1, 2


@dataclass
class Consignment:
    id: int
    merchant_idx: int
    buyer_acct: int
    integrator_idx: int           # -1 when the merchant buys the legs itself
    route: int
    warehouse: int                # warehouse index
    products: np.ndarray
    qty: np.ndarray
    weight: float
    goods_value: float            # customs value (goods cost), USD
    created_day: int
    stage: int = 0
    waiting: bool = True
    ready_day: int = 0
    end_day: int = 0
    status: int = IN_TRANSIT
    will_lose: bool = False
    insured: bool = False
    cost_cents: int = 0           # logistics paid (freight, brokerage, fees)
    duty_cents: int = 0
    providers: list = field(default_factory=list)


class Inventory:
    """Stock, pools and consignments for every (product, warehouse)."""

    def __init__(self, model: Marketplace, n_products: int, n_warehouses: int):
        self.m = model
        shape = (n_products, n_warehouses)
        self.stock = np.zeros(shape, dtype=np.int64)
        self.on_order = np.zeros(shape, dtype=np.int64)
        self.pool_cost = np.zeros(shape)       # USD of upstream logistics in stock
        self.pool_duty = np.zeros(shape)       # USD of import duty in stock
        self.demand_ema = np.zeros(shape)      # orders a day, exponentially smoothed
        self.demand_sq = np.zeros(shape)
        self.demand_days = np.zeros(shape)     # days of sales observed
        self.consignments: list[Consignment] = []
        self.next_id = 0
        self.arrived_today = 0
        self.stockouts_today = 0
        self.storage_cents_today = 0
        self.opening_stock_cost = 0.0          # upstream cost carried by the warm-start stock
        # running totals for reconciliation with the ledger (cents)
        self.leg_cents = 0                     # paid to providers for consignment legs
        self.duty_cents = 0                    # duty and VAT on bulk imports
        self.fee_cents = 0                     # inspection fees on bulk imports

    # ---- space ----
    def space(self) -> np.ndarray:
        """Storage space (units) of each warehouse today: the space of its operators in the market."""
        return np.array([self.space_of(w) for w in range(self.stock.shape[1])])

    def space_of(self, wh: int) -> float:
        m, o = self.m, self.m.offers
        offs = o.by_resource.get(m.handling_resource[m.warehouse_nodes[wh]])
        return float(o.storage_capacity[offs[o.active[offs]]].sum()) if offs is not None else 0.0

    def held(self) -> np.ndarray:
        """Units per warehouse in stock or on their way there: the space they hold."""
        return self.stock.sum(axis=0) + self.on_order.sum(axis=0)

    def fit_to_space(self, wh: int, qty: np.ndarray) -> np.ndarray:
        """Cut an order (units per product) pro rata to the space left at the warehouse.

        Units on their way hold space as well as units in stock, so a consignment never arrives
        to a full warehouse; what is cut is counted as a space shortfall.
        """
        want = int(qty.sum())
        if want == 0:
            return qty
        free = int(self.space_of(wh)) - int(self.stock[:, wh].sum()) - int(self.on_order[:, wh].sum())
        if want <= free:
            return qty
        fitted = np.floor(qty * (max(free, 0) / want)).astype(np.int64)
        self.m.metrics.on_space_shortfall(wh, want - int(fitted.sum()))
        return fitted

    # ---- stock ----
    def issue(self, product: np.ndarray, wh: np.ndarray, qty: np.ndarray):
        """Take up to qty units per (product, wh) row; returns (units issued, unit cost, unit duty)."""
        avail = self.stock[product, wh]
        take = np.minimum(qty, avail)
        with np.errstate(invalid="ignore", divide="ignore"):
            unit_cost = np.where(avail > 0, self.pool_cost[product, wh] / np.maximum(avail, 1), 0.0)
            unit_duty = np.where(avail > 0, self.pool_duty[product, wh] / np.maximum(avail, 1), 0.0)
        np.subtract.at(self.stock, (product, wh), take)
        np.subtract.at(self.pool_cost, (product, wh), unit_cost * take)
        np.subtract.at(self.pool_duty, (product, wh), unit_duty * take)
        return take, unit_cost, unit_duty

    def observe_demand(self, orders: np.ndarray, watched: np.ndarray, alpha: float = 0.05):
        """Smooth daily orders per (product, warehouse) for the replenishment policy.

        ``watched`` marks the (product, warehouse) pairs on sale there today; the average is a
        bias-corrected EMA over the days watched, so it does not start from zero.
        """
        self.demand_days += watched
        a = np.where(watched, np.maximum(alpha, 1.0 / np.maximum(self.demand_days, 1.0)), 0.0)
        self.demand_ema += a * (orders - self.demand_ema)
        self.demand_sq += a * (orders ** 2 - self.demand_sq)

    def demand_sd(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.demand_sq - self.demand_ema ** 2, 0.0))

    # ---- consignments ----
    def dispatch(self, merchant_idx: int, buyer_acct: int, integrator_idx: int, route: int, wh: int,
                 products: np.ndarray, qty: np.ndarray, day: int) -> Consignment | None:
        """Buy goods from the supplier and send them to a warehouse as one consignment."""
        m = self.m
        keep = qty > 0
        products, qty = products[keep], qty[keep]
        if products.size == 0:
            return None
        goods = float((m.prod_value[products] * m.prod_cost_share[products] * qty).sum())
        mer = m.merchants[merchant_idx]
        m.ledger.transfer(mer.acct, m.acct_suppliers, to_cents(goods), "goods")
        c = Consignment(id=self.next_id, merchant_idx=merchant_idx, buyer_acct=buyer_acct,
                        integrator_idx=integrator_idx, route=route, warehouse=wh,
                        products=products, qty=qty,
                        weight=float((m.prod_weight[products] * qty).sum()),
                        goods_value=goods, created_day=day, ready_day=day)
        self.next_id += 1
        np.add.at(self.on_order, (products, np.full(products.size, wh)), qty)
        # a 4PL that makes merchants whole on lost goods insures the consignment (pooled cover);
        # a merchant shipping its own stock insures it by the same rule as its parcels: when the
        # uninsured loss it fears (expected loss x its risk aversion) exceeds the premium
        ic, via_4pl = m.config.insurance, integrator_idx >= 0
        limit = m.config.carriers.liability_per_kg * c.weight
        risk = float(m.net.route_loss[route])    # a consignment can be lost (damage is not modelled)
        prem = float(insurance_premium(goods, risk, loading=ic.integrator_loading if via_4pl else ic.loading,
                                       carrier_liability_limit=limit, deductible=ic.deductible,
                                       expense=ic.expense))
        if via_4pl:
            insure = m.config.integrators.insure
        else:
            insure = mer.risk_aversion * risk * max(goods - limit - ic.deductible, 0.0) > prem
        if insure:
            m.ledger.transfer(buyer_acct, m.acct_insurer, int(to_cents(prem)), "premium")
            c.insured = True
        self.consignments.append(c)
        return c

    def advance(self, day: int):
        """Move consignments: end stages that are due, start waiting ones if capacity allows."""
        self.arrived_today = 0
        for _ in range(12):
            changed = False
            for c in self.consignments:
                if c.status != IN_TRANSIT:
                    continue
                if not c.waiting and c.end_day <= day:
                    self._finish(c, day)
                    changed = True
                if c.status == IN_TRANSIT and c.waiting and c.ready_day <= day:
                    changed |= self._start(c, day)
            if not changed:
                break
        self.consignments = [c for c in self.consignments if c.status == IN_TRANSIT]

    def _start(self, c: Consignment, day: int) -> bool:
        m, offers, book, net = self.m, self.m.offers, self.m.contracts, self.m.net
        r = int(net.route_res[c.route, c.stage])
        kind = int(net.res_kind[r])
        load = c.weight if kind == TRANSPORT else 1.0
        offer, contract = -1, -1
        # contract first: a bulk contract is a volume allowance over its life
        cand = book.by_resource.get(r, np.zeros(0, dtype=np.int64))
        for cid in cand:
            if book.buyer_acct[cid] == c.buyer_acct and book.cols["allowance"][cid] >= load:
                o = int(book.offer[cid])
                if offers.active[o] and (offers.used_today[o] + load <= offers.capacity[o] or offers.used_today[o] == 0):
                    offer, contract = o, int(cid)
                    break
        if offer < 0:
            cands = offers.by_resource.get(r, np.zeros(0, dtype=np.int64))
            cands = cands[offers.active[cands]]
            if cands.size == 0:
                return False
            fits = (offers.used_today[cands] + load <= offers.capacity[cands]) | (offers.used_today[cands] == 0)
            cands = cands[fits]
            if cands.size == 0:
                return False
            sp_parcel, sp_kg, sp_ship = offers.spot_rates(cands)
            price = sp_kg * c.weight + sp_ship + (sp_parcel if kind != TRANSPORT else 0.0)
            offer = int(cands[np.argmin(price)])
        offers.used_today[offer] += load
        if contract >= 0:
            book.cols["allowance"][contract] -= load
            book.cols["executed"][contract] += load

        # duration and mishaps
        u = m.rng.random(6).tolist()
        terr = int(net.res_territory[r])
        ct = m.clearance
        if kind == TRANSPORT:
            tri = net.res_tri[r]
            dur = triangular(*tri, u[0]) * offers.speed[offer]
            if u[1] < net.res_delay[r] * offers.delay_mult[offer]:
                dur += triangular(*net.res_delay_tri[r], u[2])
            c.will_lose = bool(u[3] < net.res_loss[r] * offers.loss_mult[offer])
        else:
            g = int(net.res_regime[r])
            tri = ct.export_clearance[terr] if kind == EXPORT else ct.clearance[terr, g]
            dur = triangular(*tri, u[0])
            inspected = kind == IMPORT and u[3] < ct.inspection[terr, g]
            if inspected:
                dur += triangular(*ct.inspection_days[terr], u[2])
                fee = to_cents(ct.inspection_fee_shipment[terr])
                m.ledger.transfer(c.buyer_acct, m.acct_authority[terr], fee, "customs_fee")
                c.cost_cents += int(fee)
                self.fee_cents += int(fee)
                self._recharge(c, int(fee))
            if u[4] > offers.accuracy[offer]:
                dur += triangular(*ct.hold_days[terr], u[5])
        days = math.floor(dur + m.rng.random())    # whole_days() for one draw

        # money
        if contract >= 0:
            rate = book.rate_kg[contract] * c.weight + book.rate_shipment[contract] \
                + (book.rate_parcel[contract] if kind != TRANSPORT else 0.0)
            factor = book.cost_factor[contract]
        else:
            sp_parcel, sp_kg, sp_ship = offers.spot_rates(np.array([offer]))
            rate = float(sp_kg[0] * c.weight + sp_ship[0] + (sp_parcel[0] if kind != TRANSPORT else 0.0))
            factor = 1.0
        var = (offers.cost_kg[offer] * c.weight + offers.cost_shipment[offer]
               + (offers.cost_parcel[offer] if kind != TRANSPORT else 0.0)) * factor \
            * (1.0 - m.config.carriers.fixed_cost_share)
        rate_c, var_c = int(to_cents(rate)), int(to_cents(var))
        pay_kind = "freight" if kind == TRANSPORT else "brokerage"
        payee = int(book.provider_acct[contract]) if contract >= 0 else int(offers.acct[offer])
        m.ledger.transfer(c.buyer_acct, payee, rate_c, pay_kind)
        m.ledger.transfer(int(offers.acct[offer]), m.acct_inputs, var_c, "operating_cost")
        c.cost_cents += rate_c
        self.leg_cents += rate_c
        self._recharge(c, rate_c)
        if kind == IMPORT:
            self._duty(c, terr, REGIMES[int(net.res_regime[r])])
        payee = int(book.provider_acct[contract]) if contract >= 0 else int(offers.acct[offer])
        c.providers.append((int(book.provider[contract]) if contract >= 0 else int(offers.provider[offer]), payee))
        c.waiting = False
        c.end_day = day + days
        return True

    def _recharge(self, c: Consignment, cents: int):
        """A 4PL that bought the leg bills its merchant at cost plus its markup."""
        if c.integrator_idx >= 0 and cents:
            integ = self.m.integrators[c.integrator_idx]
            mer = self.m.merchants[c.merchant_idx]
            fee = int(round(cents * (1.0 + integ.markup)))
            self.m.ledger.transfer(mer.acct, integ.acct, fee, "service_fee")
            c.cost_cents += fee - cents   # the merchant's cost is what it paid

    def _duty(self, c: Consignment, terr: int, regime: str):
        m = self.m
        value = m.prod_value[c.products] * m.prod_cost_share[c.products] * c.qty
        duty, vat = m.duties.assess(m.net.territories[terr], m.date, regime, value,
                                    m.prod_weight[c.products] * c.qty, m.prod_category[c.products],
                                    m.prod_origin_territory[c.products])
        cents = to_cents(duty + vat)
        c.line_duty = cents
        total = int(cents.sum())
        if total:
            m.ledger.transfer(m.merchants[c.merchant_idx].acct, m.acct_authority[terr], total, "duty")
        c.duty_cents += total
        self.duty_cents += total

    def _finish(self, c: Consignment, day: int):
        m = self.m
        wh_idx = np.full(c.products.size, c.warehouse)
        if c.will_lose:
            c.status = LOST_C
            np.subtract.at(self.on_order, (c.products, wh_idx), c.qty)
            liability = to_cents(min(c.goods_value, m.config.carriers.liability_per_kg * c.weight))
            uid, acct = c.providers[-1]
            m.claims.file(day, np.array([LOSS]), np.array([c.buyer_acct]), np.array([acct]), np.array([uid]),
                          np.array([int(liability)]), np.array([-1 - c.id]), np.array([c.integrator_idx >= 0]))
            if c.insured:   # the insurer pays the goods' value above the carrier's liability
                rest = to_cents(max(c.goods_value - liability / 100.0 - m.config.insurance.deductible, 0.0))
                m.claims.file(day, np.array([INSURANCE]), np.array([c.buyer_acct]), np.array([m.acct_insurer]),
                              np.array([-1]), np.array([int(rest)]), np.array([-1 - c.id]),
                              np.array([c.integrator_idx >= 0]))
            if c.integrator_idx >= 0:  # the 4PL makes the merchant whole on the goods
                m.ledger.transfer(c.buyer_acct, m.merchants[c.merchant_idx].acct,
                                  int(to_cents(c.goods_value)), "claim")
            m.metrics.consignments_lost += 1
            return
        c.stage += 1
        if c.stage < m.net.route_n[c.route]:
            c.waiting = True
            c.ready_day = day
            return
        # arrived: into stock, with its cost and duty spread over units by weight and value
        c.status = ARRIVED
        self.arrived_today += 1
        np.subtract.at(self.on_order, (c.products, wh_idx), c.qty)
        np.add.at(self.stock, (c.products, wh_idx), c.qty)
        wshare = m.prod_weight[c.products] * c.qty / max(c.weight, 1e-9)
        np.add.at(self.pool_cost, (c.products, wh_idx), wshare * c.cost_cents / 100.0)
        line_duty = getattr(c, "line_duty", None)
        if line_duty is not None:
            np.add.at(self.pool_duty, (c.products, wh_idx), line_duty / 100.0)
        # its first stock is in: from now on a stock-out there ships express, not as before the move
        rows = m.merchants[c.merchant_idx].rows
        m.mm.fallback_route[rows[m.mm.warehouse[rows] == c.warehouse]] = -1
        self._release_backorders(c, day)

    def _release_backorders(self, c: Consignment, day: int):
        """Orders that waited for this stock start their journey today, first come first served."""
        m, P = self.m, self.m.parcels
        if P.n == 0 or m.config.merchants.stockout_policy != "wait":
            return      # only the 'wait' policy leaves orders waiting for stock
        waiting = np.flatnonzero((P["status"] == WAITING_STOCK)
                                 & (m.route_warehouse[P["route"]] == c.warehouse))
        if waiting.size == 0:
            return
        for p in np.unique(P["product"][waiting]):
            rows = waiting[P["product"][waiting] == p]
            take, ucost, uduty = self.issue(np.full(rows.size, p), np.full(rows.size, c.warehouse),
                                            np.ones(rows.size, dtype=np.int64))
            rows = rows[take > 0]
            P["status"][rows] = WAITING
            P["ready_day"][rows] = day
            P["upstream_cents"][rows] += to_cents(ucost[take > 0])
            P["upstream_duty_cents"][rows] += to_cents(uduty[take > 0])
            P["wait_days"][rows] += (day - P["created_day"][rows]).astype(np.int16)

    # ---- storage ----
    def bill_storage(self, day: int, peak: bool):
        """Each day every unit in stock pays its operator's storage rate (peak-season rate Oct-Dec).

        The buyer of a merchant's warehouse services (the merchant, or the 4PL serving that
        market) pays the operator it contracted (else the cheapest one); a 4PL bills the
        merchant at cost plus its markup. Storage becomes part of the units' landed cost.
        """
        m = self.m
        self.storage_cents_today = 0
        held = self.stock > 0
        if not held.any():
            return
        prod, wh = np.nonzero(held)
        mer = m.prod_merchant_idx[prod]
        W = self.stock.shape[1]
        key = mer * W + wh
        keys, inv = np.unique(key, return_inverse=True)
        units = np.bincount(inv, weights=self.stock[prod, wh])
        k_mer, k_wh = keys // W, keys % W
        integ = m.mm.stock_holders(len(m.merchants), len(m.warehouse_nodes))[k_mer, k_wh]   # -1: the merchant
        mer_acct = m.merchant_accts[k_mer]
        it_acct = np.where(integ >= 0, m.integrator_accts[np.maximum(integ, 0)], -1) if m.integrators \
            else np.full(keys.size, -1)
        buyer = np.where(integ >= 0, it_acct, mer_acct)
        offer, rate = m.quoter.storage_rates(buyer, k_wh)
        ok = offer >= 0
        if peak:
            rate = rate * m.peak_storage_multiplier[k_wh]
        cents = np.where(ok, np.rint(rate * units * 100.0), 0).astype(np.int64)
        m.ledger.post(buyer[ok], m.offers.acct[offer[ok]], cents[ok], "storage")
        paid = cents.copy()
        via = ok & (integ >= 0)
        if via.any():
            markup = np.array([it.markup for it in m.integrators])[integ[via]]
            paid[via] = np.rint(cents[via] * (1.0 + markup)).astype(np.int64)
            m.ledger.post(mer_acct[via], it_acct[via], paid[via], "service_fee")
        # the operator's own variable cost of the space
        var = np.rint(m.offers.cost_storage[offer[ok]] * units[ok] * 100.0
                      * (1.0 - m.config.carriers.fixed_cost_share)).astype(np.int64)
        m.ledger.post(m.offers.acct[offer[ok]], m.acct_inputs, var, "operating_cost")
        self.storage_cents_today = int(cents.sum())
        per_unit = np.where(units > 0, paid / 100.0 / units, 0.0)
        self.pool_cost[prod, wh] += per_unit[inv] * self.stock[prod, wh]
