"""Warehouse stock and bulk replenishment consignments.

Stock is held per (product, warehouse) with the logistics cost and import duty it carries
(pools, allocated to units at average cost when they ship). Replenishment consignments are
few (a merchant's periodic bulk shipment), so they are small Python objects moved stage by
stage over the bulk lanes and customs points, with the same contract-then-spot rule as
parcels, and money through the same ledger.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from market.arrays import unique_inverse
from market.world.customs import triangular
from market.money.claims import INSURANCE, LOSS
from market.money.ledger import to_cents
from market.mechanisms.insurance import premium as insurance_premium
from market.mechanisms.insurance import settle_claims
from market.goods.parcels import WAITING, WAITING_STOCK
from market.world import EXPORT, IMPORT, REGIMES, TRANSPORT

if TYPE_CHECKING:
    from market.model import Marketplace

IN_TRANSIT, ARRIVED, LOST_C = 0, 1, 2


@dataclass
class Consignment:
    """One replenishment shipment: a merchant's goods moving in bulk, stage by stage, from its
    supplier to a warehouse over a replenishment route. Weight in kg; money in USD or cents as
    named; ``status`` is IN_TRANSIT, ARRIVED or LOST_C."""

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
    seen: bool = True             # its buyer tracks it on its way (market/goods/tracking.py)
    due_day: int = 0              # the day it is expected at the warehouse
    counted_unseen: bool = False  # untracked, and in Inventory.on_order_unseen (not arrived, lost or overdue)
    cost_cents: int = 0           # logistics paid (freight, brokerage, fees)
    duty_cents: int = 0
    providers: list = field(default_factory=list)


class Inventory:
    """Stock, pools and consignments for every (product, warehouse).

    Takes the model because stock touches much of the market: consignments buy capacity from
    the offer book and contract book (contract allowance first, then spot), pay freight,
    brokerage, customs fees, duty, premiums and storage through the ledger, file loss claims,
    draw durations and mishaps from the run's random stream, and release parcels waiting for
    stock in the parcel table; it reads the products' values and weights, the network and
    clearance tables, the merchants' choices (``mm``) and the storage rates from the quoter,
    and reports space shortfalls to the metrics.
    """

    def __init__(self, model: Marketplace, n_products: int, n_warehouses: int):
        self.model = model
        shape = (n_products, n_warehouses)
        self.stock = np.zeros(shape, dtype=np.int64)
        self.on_order = np.zeros(shape, dtype=np.int64)
        self.on_order_seen = np.zeros(shape, dtype=np.int64)   # ... of which its buyer tracks on its way
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
        self.unseen_dispatched = 0             # consignments sent that their buyer did not track
        # units of those still on their way and not yet overdue, which replenishment counts
        # (on_order_counted), and the consignments counted there, by due day, to drop once overdue
        self.on_order_unseen = np.zeros(shape, dtype=np.int64)
        self._unseen_due: list[tuple[int, int, Consignment]] = []

    # ---- space ----
    def space(self) -> np.ndarray:
        """Storage space (units) of each warehouse today: the space of its operators in the market."""
        return np.array([self.space_of(w) for w in range(self.stock.shape[1])])

    def space_of(self, warehouse: int) -> float:
        """Storage space (units) at one warehouse: the space of its operators' active offers."""
        model, offers = self.model, self.model.offers
        offs = offers.by_resource.get(model.handling_resource[model.warehouse_nodes[warehouse]])
        return float(offers.storage_capacity[offs[offers.active[offs]]].sum()) if offs is not None else 0.0

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
        self.model.metrics.on_space_shortfall(wh, want - int(fitted.sum()))
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

    def demand_sd(self, products=slice(None), wh=slice(None)) -> np.ndarray:
        """Standard deviation of daily orders per (product, warehouse), from the smoothed moments;
        of the rows and columns given, or all (a merchant's review asks for a few products: the
        whole matrix per review took 4% of a 1% market's run)."""
        ema = self.demand_ema[products, wh]
        return np.sqrt(np.maximum(self.demand_sq[products, wh] - ema ** 2, 0.0))

    # ---- consignments ----
    def on_order_counted(self, products: np.ndarray, wh: int, day: int) -> np.ndarray:
        """Units on their way to a warehouse that replenishment counts: those its buyer tracks,
        and untracked ones until they are overdue (after that nobody knows whether they come).
        ``day`` is today: days only move forward."""
        self._drop_overdue_unseen(day)
        return self.on_order_seen[products, wh] + self.on_order_unseen[products, wh]

    def _drop_overdue_unseen(self, day: int):
        """Untracked consignments past their due day leave the count (a scan of every untracked
        consignment on its way per merchant and warehouse took half of a 1% market's run)."""
        due = self._unseen_due
        while due and due[0][0] < day:
            _, _, consignment = heapq.heappop(due)
            self._uncount_unseen(consignment)

    def _uncount_unseen(self, consignment: Consignment):
        if consignment.counted_unseen:
            consignment.counted_unseen = False
            np.subtract.at(self.on_order_unseen,
                           (consignment.products, np.full(consignment.products.size, consignment.warehouse)),
                           consignment.qty)

    def dispatch(self, merchant_idx: int, buyer_acct: int, integrator_idx: int, route: int, wh: int,
                 products: np.ndarray, qty: np.ndarray, day: int) -> Consignment | None:
        """Buy goods from the supplier and send them to a warehouse as one consignment."""
        model = self.model
        keep = qty > 0
        products, qty = products[keep], qty[keep]
        if products.size == 0:
            return None
        # goods made in China are bought in CNY at today's rate (market/money/currency.py)
        goods = float((model.prod_value[products] * model.prod_cost_share[products] * qty
                       * model.rates.goods_factor(model.prod_in_cny[products])).sum())
        mer = model.merchants[merchant_idx]
        model.ledger.transfer(mer.acct, model.acct_suppliers, to_cents(goods), "goods")
        consignment = Consignment(id=self.next_id, merchant_idx=merchant_idx, buyer_acct=buyer_acct,
                                  integrator_idx=integrator_idx, route=route, warehouse=wh,
                                  products=products, qty=qty,
                                  weight=float((model.prod_weight[products] * qty).sum()),
                                  goods_value=goods, created_day=day, ready_day=day)
        self.next_id += 1
        np.add.at(self.on_order, (products, np.full(products.size, wh)), qty)
        # whether the buyer tracks the consignment on its way (bulk freight's coverage, through its
        # portal or its control tower): replenishment counts only stock on its way that it sees
        consignment.due_day = day + int(np.ceil(model.net.route_expected_days[route]))
        capture, _ = model.tracking.capture(np.array([integrator_idx]))
        consignment.seen = bool(model.rng.random() < model.tracking.bulk_coverage() * float(capture[0]))
        if consignment.seen:
            np.add.at(self.on_order_seen, (products, np.full(products.size, wh)), qty)
        else:
            self.unseen_dispatched += 1
            np.add.at(self.on_order_unseen, (products, np.full(products.size, wh)), qty)
            consignment.counted_unseen = True
            heapq.heappush(self._unseen_due, (consignment.due_day, consignment.id, consignment))
        # a 4PL that makes merchants whole on lost goods insures the consignment (pooled cover);
        # a merchant shipping its own stock insures it by the same rule as its parcels: when the
        # uninsured loss it fears (expected loss x its risk aversion) exceeds the premium
        insurance, via_4pl = model.config.insurance, integrator_idx >= 0
        limit = model.config.carriers.liability_per_kg * consignment.weight
        risk = float(model.net.route_loss[route])    # a consignment can be lost (damage is not modelled)
        prem = float(insurance_premium(goods, risk,
                                       loading=insurance.integrator_loading if via_4pl else insurance.loading,
                                       carrier_liability_limit=limit, deductible=insurance.deductible,
                                       expense=insurance.expense))
        if via_4pl:
            insure = model.config.integrators.insure
        else:
            insure = mer.risk_aversion * risk * max(goods - limit - insurance.deductible, 0.0) > prem
        if insure:
            model.ledger.transfer(buyer_acct, model.acct_insurer, int(to_cents(prem)), "premium")
            consignment.insured = True
        self.consignments.append(consignment)
        return consignment

    def advance(self, day: int):
        """Move consignments: end stages that are due, start waiting ones if capacity allows."""
        self.arrived_today = 0
        for _ in range(12):
            changed = False
            for consignment in self.consignments:
                if consignment.status != IN_TRANSIT:
                    continue
                if not consignment.waiting and consignment.end_day <= day:
                    self._finish(consignment, day)
                    changed = True
                if consignment.status == IN_TRANSIT and consignment.waiting and consignment.ready_day <= day:
                    changed |= self._start(consignment, day)
            if not changed:
                break
        self.consignments = [c for c in self.consignments if c.status == IN_TRANSIT]

    def _start(self, consignment: Consignment, day: int) -> bool:
        """Start the consignment's next stage if a contract allowance or spot capacity takes it
        (a provider with nothing used today takes any load); draw its duration and mishaps and
        pay for it. Returns whether it started."""
        model, offers, book, net = self.model, self.model.offers, self.model.contracts, self.model.net
        resource = int(net.route_res[consignment.route, consignment.stage])
        kind = int(net.res_kind[resource])
        load = consignment.weight if kind == TRANSPORT else 1.0
        offer, contract = -1, -1
        # contract first: a bulk contract is a volume allowance over its life
        cand = book.by_resource.get(resource, np.zeros(0, dtype=np.int64))
        for cid in cand:
            if book.buyer_acct[cid] == consignment.buyer_acct and book.cols["allowance"][cid] >= load:
                held_offer = int(book.offer[cid])
                if offers.active[held_offer] and (offers.used_today[held_offer] + load <= offers.capacity[held_offer]
                                                  or offers.used_today[held_offer] == 0):
                    offer, contract = held_offer, int(cid)
                    break
        if offer < 0:
            cands = offers.by_resource.get(resource, np.zeros(0, dtype=np.int64))
            cands = cands[offers.active[cands]]
            if cands.size == 0:
                return False
            fits = (offers.used_today[cands] + load <= offers.capacity[cands]) | (offers.used_today[cands] == 0)
            cands = cands[fits]
            if cands.size == 0:
                return False
            sp_parcel, sp_kg, sp_ship = offers.spot_rates(cands)
            price = sp_kg * consignment.weight + sp_ship + (sp_parcel if kind != TRANSPORT else 0.0)
            offer = int(cands[np.argmin(price)])
        offers.used_today[offer] += load
        if contract >= 0:
            book.cols["allowance"][contract] -= load
            book.cols["executed"][contract] += load

        # duration and mishaps
        u = model.rng.random(6).tolist()
        terr = int(net.res_territory[resource])
        clearance = model.clearance
        if kind == TRANSPORT:
            tri = net.res_tri[resource]
            dur = triangular(*tri, u[0]) * offers.speed[offer]
            if u[1] < net.res_delay[resource] * offers.delay_mult[offer]:
                dur += triangular(*net.res_delay_tri[resource], u[2])
            consignment.will_lose = bool(u[3] < net.res_loss[resource] * offers.loss_mult[offer])
        else:
            regime = int(net.res_regime[resource])
            tri = clearance.export_clearance[terr] if kind == EXPORT else clearance.clearance[terr, regime]
            dur = triangular(*tri, u[0])
            inspected = kind == IMPORT and u[3] < clearance.inspection[terr, regime]
            if inspected:
                dur += triangular(*clearance.inspection_days[terr], u[2])
                fee = to_cents(clearance.inspection_fee_shipment[terr])
                model.ledger.transfer(consignment.buyer_acct, model.acct_authority[terr], fee, "customs_fee")
                consignment.cost_cents += int(fee)
                self.fee_cents += int(fee)
                self._recharge(consignment, int(fee))
            if u[4] > offers.accuracy[offer]:
                dur += triangular(*clearance.hold_days[terr], u[5])
        days = math.floor(dur + model.rng.random())    # whole_days() for one draw

        # money
        if contract >= 0:
            rate = book.rate_kg[contract] * consignment.weight + book.rate_shipment[contract] \
                + (book.rate_parcel[contract] if kind != TRANSPORT else 0.0)
            factor = book.cost_factor[contract]
        else:
            sp_parcel, sp_kg, sp_ship = offers.spot_rates(np.array([offer]))
            rate = float(sp_kg[0] * consignment.weight + sp_ship[0] + (sp_parcel[0] if kind != TRANSPORT else 0.0))
            factor = 1.0
        var = (offers.cost_kg[offer] * consignment.weight + offers.cost_shipment[offer]
               + (offers.cost_parcel[offer] if kind != TRANSPORT else 0.0)) * factor \
            * (1.0 - model.config.carriers.fixed_cost_share)
        rate_c, var_c = int(to_cents(rate)), int(to_cents(var))
        pay_kind = "freight" if kind == TRANSPORT else "brokerage"
        payee = int(book.provider_acct[contract]) if contract >= 0 else int(offers.acct[offer])
        model.ledger.transfer(consignment.buyer_acct, payee, rate_c, pay_kind)
        model.ledger.transfer(int(offers.acct[offer]), model.acct_inputs, var_c, "operating_cost")
        consignment.cost_cents += rate_c
        self.leg_cents += rate_c
        self._recharge(consignment, rate_c)
        if kind == IMPORT:
            self._duty(consignment, terr, REGIMES[int(net.res_regime[resource])])
        payee = int(book.provider_acct[contract]) if contract >= 0 else int(offers.acct[offer])
        consignment.providers.append((int(book.provider[contract]) if contract >= 0 else int(offers.provider[offer]),
                                      payee))
        consignment.waiting = False
        consignment.end_day = day + days
        return True

    def _recharge(self, consignment: Consignment, cents: int):
        """A 4PL that bought the leg bills its merchant at cost plus its markup."""
        if consignment.integrator_idx >= 0 and cents:
            integ = self.model.integrators[consignment.integrator_idx]
            mer = self.model.merchants[consignment.merchant_idx]
            fee = int(round(cents * (1.0 + integ.markup)))
            self.model.ledger.transfer(mer.acct, integ.acct, fee, "service_fee")
            consignment.cost_cents += fee - cents   # the merchant's cost is what it paid

    def _duty(self, consignment: Consignment, terr: int, regime: str):
        """Duty and VAT on a bulk import, on the goods' cost; the merchant pays the authority."""
        model, products = self.model, consignment.products
        value = model.prod_value[products] * model.prod_cost_share[products] * consignment.qty
        duty, vat = model.duties.assess(model.net.territories[terr], model.date, regime, value,
                                        model.prod_weight[products] * consignment.qty, model.prod_category[products],
                                        model.prod_origin_territory[products])
        cents = to_cents(duty + vat)
        consignment.line_duty = cents
        total = int(cents.sum())
        if total:
            model.ledger.transfer(model.merchants[consignment.merchant_idx].acct, model.acct_authority[terr], total,
                                  "duty")
        consignment.duty_cents += total
        self.duty_cents += total

    def _finish(self, consignment: Consignment, day: int):
        """End the consignment's current stage: lost (claims filed), on to the next stage, or
        arrived (into stock, with its cost and duty pooled, and backorders released)."""
        model = self.model
        wh_idx = np.full(consignment.products.size, consignment.warehouse)
        if consignment.will_lose:
            consignment.status = LOST_C
            np.subtract.at(self.on_order, (consignment.products, wh_idx), consignment.qty)
            if consignment.seen:
                np.subtract.at(self.on_order_seen, (consignment.products, wh_idx), consignment.qty)
            self._uncount_unseen(consignment)
            liability = to_cents(min(consignment.goods_value,
                                     model.config.carriers.liability_per_kg * consignment.weight))
            uid, acct = consignment.providers[-1]
            model.claims.file(day, np.array([LOSS]), np.array([consignment.buyer_acct]), np.array([acct]),
                              np.array([uid]), np.array([int(liability)]), np.array([-1 - consignment.id]),
                              np.array([consignment.integrator_idx >= 0]))
            if consignment.insured:   # the insurer pays the goods' value above the carrier's liability
                rest = to_cents(settle_claims(consignment.goods_value, liability / 100.0, True,
                                              model.config.insurance.deductible).insurer)
                model.claims.file(day, np.array([INSURANCE]), np.array([consignment.buyer_acct]),
                                  np.array([model.acct_insurer]), np.array([-1]), np.array([int(rest)]),
                                  np.array([-1 - consignment.id]), np.array([consignment.integrator_idx >= 0]))
            if consignment.integrator_idx >= 0:  # the 4PL makes the merchant whole on the goods
                model.ledger.transfer(consignment.buyer_acct, model.merchants[consignment.merchant_idx].acct,
                                      int(to_cents(consignment.goods_value)), "claim")
            model.metrics.consignments_lost += 1
            return
        consignment.stage += 1
        if consignment.stage < model.net.route_n[consignment.route]:
            consignment.waiting = True
            consignment.ready_day = day
            return
        # arrived: into stock, with its cost and duty spread over units by weight and value
        consignment.status = ARRIVED
        self.arrived_today += 1
        np.subtract.at(self.on_order, (consignment.products, wh_idx), consignment.qty)
        if consignment.seen:
            np.subtract.at(self.on_order_seen, (consignment.products, wh_idx), consignment.qty)
        self._uncount_unseen(consignment)
        np.add.at(self.stock, (consignment.products, wh_idx), consignment.qty)
        wshare = model.prod_weight[consignment.products] * consignment.qty / max(consignment.weight, 1e-9)
        np.add.at(self.pool_cost, (consignment.products, wh_idx), wshare * consignment.cost_cents / 100.0)
        line_duty = getattr(consignment, "line_duty", None)
        if line_duty is not None:
            np.add.at(self.pool_duty, (consignment.products, wh_idx), line_duty / 100.0)
        # its first stock is in: from now on a stock-out there ships express, not as before the move
        rows = model.merchants[consignment.merchant_idx].rows
        model.mm.fallback_route[rows[model.mm.warehouse[rows] == consignment.warehouse]] = -1
        self._release_backorders(consignment, day)

    def _release_backorders(self, consignment: Consignment, day: int):
        """Orders that waited for this stock start their journey today, first come first served."""
        model, parcels = self.model, self.model.parcels
        if parcels.n == 0 or model.config.merchants.stockout_policy != "wait":
            return      # only the 'wait' policy leaves orders waiting for stock
        waiting = np.flatnonzero((parcels["status"] == WAITING_STOCK)
                                 & (model.route_warehouse[parcels["route"]] == consignment.warehouse))
        if waiting.size == 0:
            return
        for product in np.unique(parcels["product"][waiting]):
            rows = waiting[parcels["product"][waiting] == product]
            take, ucost, uduty = self.issue(np.full(rows.size, product), np.full(rows.size, consignment.warehouse),
                                            np.ones(rows.size, dtype=np.int64))
            rows = rows[take > 0]
            parcels["status"][rows] = WAITING
            parcels["ready_day"][rows] = day
            parcels["upstream_cents"][rows] += to_cents(ucost[take > 0])
            parcels["upstream_duty_cents"][rows] += to_cents(uduty[take > 0])
            parcels["wait_days"][rows] += (day - parcels["created_day"][rows]).astype(np.int16)

    # ---- storage ----
    def bill_storage(self, day: int, peak: bool):
        """Each day every unit in stock pays its operator's storage rate (peak-season rate Oct-Dec).

        The buyer of a merchant's warehouse services (the merchant, or the 4PL serving that
        market) pays the operator it contracted (else the cheapest one); a 4PL bills the
        merchant at cost plus its markup. Storage becomes part of the units' landed cost.
        """
        model = self.model
        self.storage_cents_today = 0
        held = self.stock > 0
        if not held.any():
            return
        prod, wh = np.nonzero(held)
        mer = model.prod_merchant_idx[prod]
        n_warehouses = self.stock.shape[1]
        key = mer * n_warehouses + wh
        keys, inv = unique_inverse(key)
        units = np.bincount(inv, weights=self.stock[prod, wh])
        k_mer, k_wh = keys // n_warehouses, keys % n_warehouses
        integ = model.mm.stock_holders(len(model.merchants), len(model.warehouse_nodes))[k_mer, k_wh]   # -1: the merchant
        mer_acct = model.merchant_accts[k_mer]
        it_acct = np.where(integ >= 0, model.integrator_accts[np.maximum(integ, 0)], -1) if model.integrators \
            else np.full(keys.size, -1)
        buyer = np.where(integ >= 0, it_acct, mer_acct)
        offer, rate = model.quoter.storage_rates(buyer, k_wh)
        ok = offer >= 0
        if peak:
            rate = rate * model.peak_storage_multiplier[k_wh]
        cents = np.where(ok, np.rint(rate * units * 100.0), 0).astype(np.int64)
        model.ledger.post(buyer[ok], model.offers.acct[offer[ok]], cents[ok], "storage")
        paid = cents.copy()
        via = ok & (integ >= 0)
        if via.any():
            markup = np.array([it.markup for it in model.integrators])[integ[via]]
            paid[via] = np.rint(cents[via] * (1.0 + markup)).astype(np.int64)
            model.ledger.post(mer_acct[via], it_acct[via], paid[via], "service_fee")
        # the operator's cost of the space: rented by the unit-day, all of it variable (storage
        # space carries no fixed cost in the offer book)
        var = np.rint(model.offers.cost_storage[offer[ok]] * units[ok] * 100.0).astype(np.int64)
        model.ledger.post(model.offers.acct[offer[ok]], model.acct_inputs, var, "operating_cost")
        self.storage_cents_today = int(cents.sum())
        per_unit = np.where(units > 0, paid / 100.0 / units, 0.0)
        self.pool_cost[prod, wh] += per_unit[inv] * self.stock[prod, wh]
