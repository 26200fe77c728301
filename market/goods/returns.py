"""Returns: consumers send back a share of delivered orders; merchants refund them and decide
what becomes of the goods.

The flow, a day at a time and vectorised over returns (scenario section ``returns``):

1. **Draw.** Every parcel delivered today intact is returned with its category's rate, times
   ``1 + late_uplift`` when it arrived after its promise; a returned order is opened a number of
   days after delivery (first week, second week, rest of the window, by ``lag_shares``).
   Damaged parcels are not returned: the flow already refunded them in full when the damage
   happened (a returnless refund), so they count as kept.
2. **Open.** On its day the merchant refunds the consumer what the consumer paid (price plus
   the duty and VAT passed on) and picks the disposition that recovers most, net of its costs,
   among those its channel makes possible:

   - ``resell``: back to the merchant's warehouse serving that market, refurbished and resold
     at ``resale_share`` of the retail price, less ``restocking_cost``. Only possible for a
     merchant that keeps stock for the market (a warehouse channel, or selling down stock of
     one); a direct channel has no local stock point. A border warehouse (in China, for Russia)
     is reached across the border, at the ship-back freight and time; a bonded zone's warehouse
     takes its market's returns back locally.
   - ``liquidate``: to a local liquidator at ``liquidation_share`` of the retail price.
   - ``scrap``: a returnless refund or local disposal, at ``scrap_cost`` and no return freight.
   - ``ship_back``: across the border to the origin, where it recovers ``origin_recovery`` of
     its goods cost; a market that grants drawback (``drawback_markets``) refunds
     ``drawback_share`` of the import duty and VAT the unit paid. A merchant whose origin is in
     the market's territory ships it back at the local freight only, with no drawback.

   Every disposition but ``scrap`` pays the local return freight (consumer to a return point).
   The return freight is paid when the return opens; recovered value, restocking and scrapping
   when the goods arrive.
3. **Arrive.** Returns reaching their destination are resold, liquidated, scrapped or received
   at the origin, and the money moves.

Customs treatment modelled: a unit resold or liquidated in the market stays imported (its duty
and VAT are not refunded; VAT on the resale is not charged); a unit shipped back out is
refunded its duty and VAT where the market grants drawback, and re-enters the origin free of
duty (returned goods relief, e.g. China's duty exemption for goods returned within a year);
export entries and the re-import are in the ship-back freight. Not modelled: drawback
paperwork delays and partial claims, VAT on resale, the reverse legs taking providers'
capacity (return freight and processing are paid to an outside account), and the 4PL handling
returns for its merchants (the merchant pays).

Money (integer cents, through the ledger): refunds to the consumers' account; return freight,
restocking and scrapping to an outside account for reverse logistics; resale from the
consumers' account (second buyers) or, at the origin, from the goods suppliers; liquidation
from an outside liquidators' account; drawback from the market's customs authority.

Returned units are conserved: returned = resold + liquidated + scrapped + back at origin + in
transit; sold (delivered) = kept + returned. Rows go to ``returns.parquet``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from market.archive import ColumnArchive
from market.goods.parcels import DELIVERED
from market.money.ledger import to_cents
from market.world.customs import triangular, whole_days

if TYPE_CHECKING:
    from market.model import Marketplace

# dispositions, in the order ties are broken
RESELL, LIQUIDATE, SCRAP, SHIP_BACK = 0, 1, 2, 3
DISPOSITIONS = ("resell", "liquidate", "scrap", "ship_back")
# statuses of a return; SCHEDULED ones (the consumer has not sent it yet) are not written
SCHEDULED, IN_TRANSIT, RESOLD, LIQUIDATED, SCRAPPED, AT_ORIGIN = 0, 1, 2, 3, 4, 5
STATUS_NAMES = ("scheduled", "in_transit", "resold", "liquidated", "scrapped", "back_at_origin")
OUTCOME = np.array([RESOLD, LIQUIDATED, SCRAPPED, AT_ORIGIN], dtype=np.int8)    # by disposition

COLUMNS: dict[str, np.dtype] = {
    "return_id": np.int64,
    "parcel_id": np.int64,
    "merchant": np.int32,         # merchant agent unique_id
    "merchant_idx": np.int32,
    "mm_row": np.int32,
    "product": np.int32,
    "category": np.int8,
    "origin_territory": np.int8,
    "market": np.int8,
    "channel": np.int8,           # the channel the order was delivered by
    "integrator": np.int32,       # -1: the merchant bought its logistics itself
    "warehouse": np.int16,        # the merchant's warehouse for the market when it opened, where a resold unit goes (-1: none)
    "delivered_day": np.int32,
    "late": np.int8,              # 1: delivered after its promise
    "opened_day": np.int32,       # day the consumer sent it back (and was refunded)
    "disposition": np.int8,
    "status": np.int8,
    "leg1_days": np.int16,        # consumer -> return point in the market (0: scrapped, no leg)
    "leg2_days": np.int16,        # across the border (ship back, or to a warehouse abroad; 0: none)
    "arrive_day": np.int32,       # day it reaches its destination (-1 until opened)
    "done_day": np.int32,         # day it was resold, liquidated, scrapped or received (-1: not yet)
    "value": np.float32,          # retail price, USD
    "weight": np.float32,
    "refund_cents": np.int64,     # what the consumer paid and got back
    "duty_paid_cents": np.int64,  # import duty and VAT the unit paid (parcel and bulk entry)
    "goods_cents": np.int64,      # the unit's goods cost (what recovery at the origin is a share of)
    "freight_cents": np.int64,    # return freight (local, and across the border)
    "restocking_cents": np.int64,
    "scrap_cents": np.int64,
    "recovered_cents": np.int64,  # resale, liquidation or recovery at the origin
    "drawback_cents": np.int64,
}
DEFAULTS = {"warehouse": -1, "arrive_day": -1, "done_day": -1}
LABELS = ("category", "origin_territory", "market", "channel")
MONEY = ("refund", "freight", "restocking", "scrap", "recovered", "drawback")


class ReturnTable:
    """Growable structure-of-arrays of returns. Returns still to open or on their way are the
    live rows; finished ones are moved to ``archive`` (on disk, :mod:`market.archive`) in
    batches (:meth:`compact`), so the daily scans stay short and memory does not grow with the
    returns a run finishes. :meth:`column` reads a column over both."""

    def __init__(self, capacity: int = 1024):
        self.n = 0
        self.next_id = 0
        self.cols = {k: np.zeros(capacity, dtype=t) for k, t in COLUMNS.items()}
        self.archive = ColumnArchive(COLUMNS)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name][: self.n]

    def column(self, name: str) -> np.ndarray:
        """A column over every return, finished (archived) and live."""
        return np.concatenate([self.archive.column(name), self[name]])

    def append(self, count: int, **values) -> np.ndarray:
        cap = self.cols["return_id"].size
        if self.n + count > cap:
            while cap < self.n + count:
                cap *= 2
            for k, a in self.cols.items():
                b = np.zeros(cap, dtype=a.dtype)
                b[: self.n] = a[: self.n]
                self.cols[k] = b
        sl = slice(self.n, self.n + count)
        for k, a in self.cols.items():
            a[sl] = values.get(k, DEFAULTS.get(k, 0))
        self.cols["return_id"][sl] = np.arange(self.next_id, self.next_id + count)
        self.next_id += count
        self.n += count
        return np.arange(sl.start, sl.stop)

    def compact(self, keep: np.ndarray):
        """Move the rows where ``keep`` is False to the archive."""
        idx = np.flatnonzero(keep)
        self.archive.append({k: a[: self.n][~keep] for k, a in self.cols.items()})
        for a in self.cols.values():
            a[: idx.size] = a[: self.n].take(idx)
        self.n = idx.size


class Returns:
    """The return flow engine. Takes the model because a return touches the parcel table (what
    was delivered today), the merchants' current channels (whether they keep stock in the
    market), the products, the world's territories, the ledger and the run's random stream."""

    def __init__(self, model: Marketplace):
        self.model = model
        self.cfg = cfg = model.config.returns
        world = model.world
        ledger = model.ledger
        self.acct_reverse = ledger.open("reverse logistics (return freight, processing, disposal)")
        self.acct_liquidators = ledger.open("liquidators")
        self.table = ReturnTable()
        self._pp = None                   # per-product figures for expected_cost (built on first use)
        self.rate = np.array([cfg.rate_of(c) for c in world.categories])
        terr = {t: i for i, t in enumerate(world.territories)}
        self.market_territory = np.array([terr[world.graph.nodes[world.spec.markets[m].node]["territory"]]
                                          for m in world.markets], dtype=np.int64)
        # a warehouse across a border from the markets it serves (a border warehouse: Harbin for
        # Russia); a bonded zone's warehouse takes its market's returns back locally
        self.warehouse_abroad = np.array([world.graph.nodes[w].get("warehouse") == "border"
                                          for w in model.warehouse_nodes] + [False], dtype=bool)
        self.drawback = np.array([m in cfg.drawback_markets for m in world.markets], dtype=bool)
        C, K = len(world.categories), len(world.channels)
        # running totals: delivered intact and returned (opened), by category x channel
        self.delivered = np.zeros((C, K), dtype=np.int64)
        self.delivered_late = np.zeros((C, K), dtype=np.int64)
        self.opened = np.zeros((C, K), dtype=np.int64)
        self.opened_late = np.zeros((C, K), dtype=np.int64)
        self.outcomes = np.zeros(len(STATUS_NAMES), dtype=np.int64)     # finished returns by status
        self.money = {k: np.zeros(K, dtype=np.int64) for k in MONEY}      # cents by channel
        self.scrapped_goods_cents = 0
        self.start_day()

    def start_day(self):
        """Zero today's figures."""
        self.today = {"opened": 0, "resold": 0, "liquidated": 0, "scrapped": 0, "back_at_origin": 0,
                      **{k: 0 for k in MONEY}}

    # ------------------------------------------------------------------------------------
    def net_values(self, value, weight, goods, duty, market, warehouse, origin_territory) -> np.ndarray:
        """What each disposition recovers net of its costs (USD, one column per disposition in
        ``DISPOSITIONS`` order; -inf where impossible) for units of these retail values, weights
        (kg), goods costs and duty and VAT paid, sold into ``market`` by a merchant keeping stock
        for it at ``warehouse`` (-1: none). Arrays broadcast; the refund is not included."""
        cfg = self.cfg
        value, weight, goods, duty = (np.asarray(a, dtype=np.float64) for a in (value, weight, goods, duty))
        market = np.asarray(market, dtype=np.int64)
        warehouse = np.asarray(warehouse, dtype=np.int64)
        origin_territory = np.asarray(origin_territory, dtype=np.int64)
        shape = np.broadcast_shapes(value.shape, weight.shape, goods.shape, duty.shape, market.shape,
                                    warehouse.shape, origin_territory.shape)
        local = cfg.local_freight_parcel + cfg.local_freight_kg * weight
        across = cfg.ship_back_parcel + cfg.ship_back_kg * weight
        m_terr = self.market_territory[market]
        has_wh = warehouse >= 0
        wh_abroad = self.warehouse_abroad[warehouse]          # -1 (no warehouse) reads the last entry: False
        abroad = origin_territory != m_terr
        out = np.empty(shape + (4,))
        out[..., RESELL] = np.where(has_wh, cfg.resale_share * value - local - np.where(wh_abroad, across, 0.0)
                                    - cfg.restocking_cost, -np.inf)
        out[..., LIQUIDATE] = cfg.liquidation_share * value - local
        out[..., SCRAP] = -cfg.scrap_cost
        drawback = np.where(abroad & self.drawback[market], cfg.drawback_share * duty, 0.0)
        out[..., SHIP_BACK] = cfg.origin_recovery * goods - local - np.where(abroad, across, 0.0) + drawback
        return out

    def expected_cost(self, products, refund, duty, market: int, warehouse, on_time) -> np.ndarray:
        """Expected cost of returns per unit sold (USD) of these products, sold into ``market``
        at consumer prices ``refund`` with ``duty`` (duty and VAT) paid per unit, by a merchant
        keeping stock for it at ``warehouse`` (-1: none), delivering on time a share
        ``on_time``: the return rate times the refund less the best disposition's net value
        (the same values as :meth:`net_values`, for one market and warehouse). What merchants
        weigh in their channel choice; called for the options they look at, so per-product
        figures are computed once.

        Several options at once: ``refund`` and ``duty`` with a row per option, ``warehouse``
        and ``on_time`` with one entry per option."""
        cfg = self.cfg
        if not cfg.enabled:
            return np.zeros(np.shape(refund))
        pp = self._per_product()
        products = np.asarray(products, dtype=np.int64)
        one = np.ndim(warehouse) == 0         # one option (else a row per option)
        warehouse = np.atleast_1d(np.asarray(warehouse, dtype=np.int64))
        on_time = np.atleast_1d(np.asarray(on_time, dtype=np.float64))[:, None]
        local, across = pp["local"][products], pp["across"][products]
        abroad = pp["origin_territory"][products] != self.market_territory[market]
        best = np.maximum(pp["liquidate"][products] - local, -cfg.scrap_cost)
        back = pp["origin_value"][products] - local - np.where(abroad, across, 0.0)
        if self.drawback[market]:
            back = back + np.where(abroad, cfg.drawback_share * np.asarray(duty, dtype=np.float64), 0.0)
        best = np.maximum(best, back)
        # stock kept for the market: resold there (less the way back across a border from abroad)
        resell = pp["resale"][products] - local - cfg.restocking_cost
        wh_abroad = self.warehouse_abroad[warehouse][:, None]     # -1 (no warehouse) reads the last entry: False
        best = np.where((warehouse >= 0)[:, None], np.maximum(best, np.where(wh_abroad, resell - across, resell)), best)
        rate = np.minimum(pp["rate"][products] * (1.0 + cfg.late_uplift * (1.0 - on_time)), 1.0)
        out = rate * (np.asarray(refund, dtype=np.float64) - best)
        return out[0] if one else out

    def _per_product(self) -> dict[str, np.ndarray]:
        """Per product: on-time return rate, local and cross-border return freight, and the
        value of resale, liquidation and recovery at the origin (USD)."""
        if self._pp is None or self._pp["rate"].size != self.model.prod_value.size:
            model, cfg = self.model, self.cfg
            value, weight = model.prod_value, model.prod_weight
            self._pp = {
                "rate": self.rate[model.prod_category], "origin_territory": model.prod_origin_territory,
                "local": cfg.local_freight_parcel + cfg.local_freight_kg * weight,
                "across": cfg.ship_back_parcel + cfg.ship_back_kg * weight,
                "resale": cfg.resale_share * value, "liquidate": cfg.liquidation_share * value,
                "origin_value": cfg.origin_recovery * value * model.prod_cost_share,
            }
        return self._pp

    # ------------------------------------------------------------------------------------
    def advance(self, day: int):
        """Today's returns: draw them for parcels delivered today, open those due (refunds,
        dispositions, freight), finish those arriving (resale, liquidation, scrapping, receipt
        at the origin)."""
        self.start_day()
        if not self.cfg.enabled:
            return
        self._draw(day)
        self._open(day)
        self._arrive(day)
        finished = self.table["status"] >= RESOLD
        if finished.sum() >= max(0.5 * self.table.n, 1024):      # finished rows leave the daily scans
            self.table.compact(~finished)

    def _draw(self, day: int):
        model, cfg = self.model, self.cfg
        parcels = model.parcels
        rows = np.flatnonzero((parcels["status"] == DELIVERED) & (parcels["finished_day"] == day)
                              & (parcels["collected"] == 0))
        if rows.size == 0:
            return
        intact = parcels["damaged"][rows] == 0
        rows = rows[intact]
        if rows.size == 0:
            return
        category = parcels["category"][rows].astype(np.int64)
        channel = parcels["channel"][rows].astype(np.int64)
        late = (day - parcels["created_day"][rows]) > parcels["promised_days"][rows]
        np.add.at(self.delivered, (category, channel), 1)
        np.add.at(self.delivered_late, (category[late], channel[late]), 1)
        u = model.rng.random((rows.size, 3))
        p = np.minimum(self.rate[category] * np.where(late, 1.0 + cfg.late_uplift, 1.0), 1.0)
        back = u[:, 0] < p
        if not back.any():
            return
        # the day it is sent back: in the first week, the second, or the rest of the window
        lo = np.array([1, 8, 15])
        hi = np.array([7, 14, cfg.window_days])
        week = np.searchsorted(np.cumsum(cfg.lag_shares)[:2], u[back, 1], side="right")
        lag = lo[week] + np.floor(u[back, 2] * (hi[week] - lo[week] + 1)).astype(np.int64)
        r = rows[back]
        self.table.append(
            r.size, parcel_id=parcels["parcel_id"][r], merchant=parcels["merchant"][r],
            merchant_idx=parcels["merchant_idx"][r], mm_row=parcels["mm_row"][r], product=parcels["product"][r],
            category=category[back], origin_territory=parcels["origin_territory"][r], market=parcels["market"][r],
            channel=channel[back], integrator=parcels["integrator"][r], delivered_day=day, late=late[back],
            opened_day=day + lag, status=SCHEDULED, value=parcels["value"][r], weight=parcels["weight"][r],
            refund_cents=parcels["sale_cents"][r],
            goods_cents=to_cents(model.prod_value[parcels["product"][r]] * model.prod_cost_share[parcels["product"][r]]),
            duty_paid_cents=parcels["duty_cents"][r] + parcels["upstream_duty_cents"][r])

    def _open(self, day: int):
        model, cfg, t = self.model, self.cfg, self.table
        idx = np.flatnonzero((t["status"] == SCHEDULED) & (t["opened_day"] == day))
        if idx.size == 0:
            return
        market = t["market"][idx].astype(np.int64)
        value = t["value"][idx].astype(np.float64)
        weight = t["weight"][idx].astype(np.float64)
        goods = t["goods_cents"][idx] / 100.0
        # the merchant's stock point for that market today (its channel, or stock it sells down)
        row = t["mm_row"][idx].astype(np.int64)
        wh = np.where(model.mm.warehouse[row] >= 0, model.mm.warehouse[row], model.mm.prev_warehouse[row])
        origin = t["origin_territory"][idx].astype(np.int64)
        net = self.net_values(value, weight, goods, t["duty_paid_cents"][idx] / 100.0, market, wh, origin)
        disp = np.argmax(net, axis=1)
        m_terr = self.market_territory[market]
        across = np.where(disp == SHIP_BACK, origin != m_terr,
                          (disp == RESELL) & self.warehouse_abroad[wh])
        # the legs: consumer -> return point; across the border
        u = model.rng.random((idx.size, 2))
        loc = np.array(cfg.local_days)
        leg1 = np.where(disp == SCRAP, 0, whole_days(triangular(loc[0], loc[1], loc[2], u[:, 0]), model.rng))
        sb = np.array(cfg.ship_back_days)
        leg2 = np.where(across, whole_days(triangular(sb[0], sb[1], sb[2], u[:, 1]), model.rng), 0)
        freight = np.where(disp == SCRAP, 0.0, cfg.local_freight_parcel + cfg.local_freight_kg * weight) \
            + np.where(across, cfg.ship_back_parcel + cfg.ship_back_kg * weight, 0.0)
        cols = t.cols
        cols["disposition"][idx] = disp
        cols["status"][idx] = IN_TRANSIT
        cols["warehouse"][idx] = wh
        cols["leg1_days"][idx] = leg1
        cols["leg2_days"][idx] = leg2
        cols["arrive_day"][idx] = day + leg1 + leg2
        freight_c = to_cents(freight)
        cols["freight_cents"][idx] = freight_c
        mer_acct = model.merchant_accts[t["merchant_idx"][idx]]
        refund = t["refund_cents"][idx]
        ledger = model.ledger
        ledger.post(mer_acct, model.acct_consumers, refund, "return_refund")
        ledger.post(mer_acct, self.acct_reverse, freight_c, "return_freight")
        cat, ch = t["category"][idx].astype(np.int64), t["channel"][idx].astype(np.int64)
        np.add.at(self.opened, (cat, ch), 1)
        late = t["late"][idx] > 0
        np.add.at(self.opened_late, (cat[late], ch[late]), 1)
        self._count(ch, refund, "refund")
        self._count(ch, freight_c, "freight")
        self.today["opened"] += idx.size

    def _arrive(self, day: int):
        model, cfg, t = self.model, self.cfg, self.table
        idx = np.flatnonzero((t["status"] == IN_TRANSIT) & (t["arrive_day"] <= day))
        if idx.size == 0:
            return
        cols, ledger = t.cols, model.ledger
        disp = t["disposition"][idx].astype(np.int64)
        value = t["value"][idx].astype(np.float64)
        goods = t["goods_cents"][idx] / 100.0
        mer_acct = model.merchant_accts[t["merchant_idx"][idx]]
        ch = t["channel"][idx].astype(np.int64)
        recovered = to_cents(np.select([disp == RESELL, disp == LIQUIDATE, disp == SHIP_BACK],
                                       [cfg.resale_share * value, cfg.liquidation_share * value,
                                        cfg.origin_recovery * goods], 0.0))
        restock = to_cents(np.where(disp == RESELL, cfg.restocking_cost, 0.0))
        scrap = to_cents(np.where(disp == SCRAP, cfg.scrap_cost, 0.0))
        market = t["market"][idx].astype(np.int64)
        back_out = (disp == SHIP_BACK) & (t["origin_territory"][idx] != self.market_territory[market]) \
            & self.drawback[market]
        drawback = np.where(back_out, np.rint(cfg.drawback_share * t["duty_paid_cents"][idx]), 0).astype(np.int64)
        liq = disp == LIQUIDATE
        resale = ~liq
        payer = np.where(disp == RESELL, model.acct_consumers, model.acct_suppliers)     # second buyers; at the origin
        ledger.post(payer[resale], mer_acct[resale], recovered[resale], "resale")
        ledger.post(self.acct_liquidators, mer_acct[liq], recovered[liq], "liquidation")
        ledger.post(mer_acct, self.acct_reverse, restock, "restocking")
        ledger.post(mer_acct, self.acct_reverse, scrap, "scrapping")
        if back_out.any():
            authority = model.acct_authority[self.market_territory[market[back_out]]]
            ledger.post(authority, mer_acct[back_out], drawback[back_out], "drawback")
        cols["recovered_cents"][idx] = recovered
        cols["restocking_cents"][idx] = restock
        cols["scrap_cents"][idx] = scrap
        cols["drawback_cents"][idx] = drawback
        outcome = OUTCOME[disp]
        cols["status"][idx] = outcome
        cols["done_day"][idx] = day
        np.add.at(self.outcomes, outcome, 1)
        for k, name in ((RESOLD, "resold"), (LIQUIDATED, "liquidated"), (SCRAPPED, "scrapped"),
                        (AT_ORIGIN, "back_at_origin")):
            self.today[name] += int((outcome == k).sum())
        self.scrapped_goods_cents += int(t["goods_cents"][idx][disp == SCRAP].sum())
        self._count(ch, recovered, "recovered")
        self._count(ch, restock, "restocking")
        self._count(ch, scrap, "scrap")
        self._count(ch, drawback, "drawback")

    def _count(self, channel: np.ndarray, cents: np.ndarray, key: str):
        self.money[key] += np.bincount(channel, weights=cents, minlength=self.money[key].size).astype(np.int64)
        self.today[key] += int(cents.sum())

    # ---- figures ----
    def in_transit(self) -> int:
        """Returns on their way back (opened, not yet at their destination)."""
        return int((self.table["status"] == IN_TRANSIT).sum())

    def daily_figures(self) -> dict:
        """Today's returns: one block of columns of timeseries.parquet."""
        d = self.today
        return {
            "returns_opened": d["opened"],
            "returns_in_transit_back": self.in_transit(),
            "returns_resold": d["resold"],
            "returns_liquidated": d["liquidated"],
            "returns_scrapped": d["scrapped"],
            "returns_back_at_origin": d["back_at_origin"],
            "return_refunds_usd": d["refund"] / 100.0,
            "return_costs_usd": (d["freight"] + d["restocking"] + d["scrap"]) / 100.0,
            "return_recovered_usd": d["recovered"] / 100.0,
            "return_drawback_usd": d["drawback"] / 100.0,
        }

    def summary_figures(self) -> dict:
        """The run's returns (``summary.json`` key ``returns``): units sold, kept and returned
        and where the returned went; return rates by category and channel; dispositions; money."""
        model = self.model
        world = model.world
        status = self.table.column("status")
        disp = self.table.column("disposition")
        channel = self.table.column("channel")
        opened = status != SCHEDULED
        sold = int(model.metrics.delivered.sum())
        returned = int(opened.sum())
        money = {k: v / 100.0 for k, v in self.money.items()}

        def usd(key, sel=slice(None)):
            return float(money[key][sel].sum())

        def net_cost(sel=slice(None)):
            return usd("refund", sel) + usd("freight", sel) + usd("restocking", sel) + usd("scrap", sel) \
                - usd("recovered", sel) - usd("drawback", sel)

        def rate(num, den):
            return float(num / den) if den else None

        by_category = {c: {"delivered_intact": int(self.delivered[i].sum()), "returned": int(self.opened[i].sum()),
                           "return_rate": rate(self.opened[i].sum(), self.delivered[i].sum()),
                           "configured_rate": float(self.rate[i])}
                       for i, c in enumerate(world.categories)}
        by_channel = {}
        for k, ch in enumerate(world.channels):
            n_ret = int(self.opened[:, k].sum())
            done = opened & (channel == k) & (status != IN_TRANSIT)
            by_channel[ch] = {
                "delivered_intact": int(self.delivered[:, k].sum()), "returned": n_ret,
                "return_rate": rate(n_ret, self.delivered[:, k].sum()),
                "dispositions": {name: int((done & (disp == j)).sum()) for j, name in enumerate(DISPOSITIONS)},
                "recovered_usd": usd("recovered", k), "net_cost_usd": net_cost(k),
                "net_recovered_per_return_usd": rate(usd("recovered", k) + usd("drawback", k) - usd("freight", k)
                                                 - usd("restocking", k) - usd("scrap", k), int(done.sum())),
            }
        late_d, late_o = int(self.delivered_late.sum()), int(self.opened_late.sum())
        ontime_d, ontime_o = int(self.delivered.sum()) - late_d, int(self.opened.sum()) - late_o
        return {
            "enabled": self.cfg.enabled,
            "units": {"sold": sold, "kept": sold - returned, "returned": returned,
                      "in_transit_back": int((status == IN_TRANSIT).sum()),
                      "resold": int((status == RESOLD).sum()), "liquidated": int((status == LIQUIDATED).sum()),
                      "scrapped": int((status == SCRAPPED).sum()), "back_at_origin": int((status == AT_ORIGIN).sum()),
                      "to_be_returned_after_the_run": int((~opened).sum())},
            "return_rate": rate(returned, sold),
            "on_time_return_rate": rate(ontime_o, ontime_d),
            "late_return_rate": rate(late_o, late_d),
            "by_category": by_category,
            "by_channel": by_channel,
            "dispositions": {name: int((opened & (disp == j)).sum()) for j, name in enumerate(DISPOSITIONS)},
            "money_usd": {"refunds": usd("refund"), "return_freight": usd("freight"), "restocking": usd("restocking"),
                          "scrapping": usd("scrap"), "recovered": usd("recovered"), "drawback": usd("drawback")},
            "recovered_value_usd": usd("recovered") + usd("drawback"),
            "scrapped_goods_cost_usd": self.scrapped_goods_cents / 100.0,
            "net_cost_usd": net_cost(),
            "net_cost_per_order_usd": rate(net_cost(), sold),
            "handling_cost_per_return_usd": rate(usd("freight") + usd("restocking") + usd("scrap"), returned),
        }

    def opened_rows(self) -> np.ndarray:
        """Positions (in :meth:`ReturnTable.column` order) of the opened returns, by return id."""
        t = self.table
        order = np.argsort(t.column("return_id"), kind="stable")
        return order[t.column("status")[order] != SCHEDULED]

    def frame(self, start: int = 0, stop: int | None = None, rows: np.ndarray | None = None) -> pa.Table:
        """The opened returns as an Arrow table (``returns.parquet``): one row per return, with
        its status, disposition, legs and money (USD); or those from ``start`` to ``stop`` (of
        ``rows``, :meth:`opened_rows`), one column read at a time (a 1% market's year opens
        millions of returns)."""
        model = self.model
        t = self.table
        keep = (self.opened_rows() if rows is None else rows)[start:stop]
        labels = {"category": model.world.categories, "origin_territory": model.world.territories,
                  "market": model.world.markets, "channel": model.world.channels}
        cols = {}
        for k in COLUMNS:
            if k in ("merchant_idx", "mm_row"):
                continue
            v = t.column(k)[keep]
            if k in labels:
                cols[k] = pa.DictionaryArray.from_arrays(pa.array(v.astype(np.int32)), pa.array(labels[k]))
            elif k == "warehouse":      # the warehouse node's name, null where the merchant had none
                cols[k] = pa.array(np.array(list(model.warehouse_nodes) + [None], dtype=object)[v], type=pa.string())
            elif k == "disposition":
                cols[k] = pa.DictionaryArray.from_arrays(pa.array(v.astype(np.int32)), pa.array(DISPOSITIONS))
            elif k == "status":
                cols[k] = pa.DictionaryArray.from_arrays(pa.array(v.astype(np.int32)), pa.array(STATUS_NAMES))
            elif k.endswith("_cents"):
                cols[k[: -len("_cents")] + "_usd"] = pa.array(v / 100.0)
            else:
                cols[k] = pa.array(v)
        return pa.table(cols)
